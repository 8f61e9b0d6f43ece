// Trajectory analysis: the curve of a measure over checkpoints, its peak, the rise to it and the
// drop from it, and a verdict. Definitions (docs/analysis.md, "Verdicts"):
//   curve y_c     mean over probes of the measure at checkpoint c (NaN skipped)
//   peak k        the first checkpoint with the largest y_c
//   rise          paired bootstrap estimate of mean_p (x_{k,p} − x_{0,p})
//   drop          paired bootstrap estimate of mean_p (x_{k,p} − x_{C−1,p})   (positive = a fall)
//   net           paired bootstrap estimate of mean_p (x_{C−1,p} − x_{0,p})
//   inversion     0 < k < C−1, rise > its interval's half-width and drop > its interval's half-width
//   rising        not an inversion and net > its half-width
//   falling       not an inversion and −net > its half-width
//   flat          none of these
//   insufficient  fewer than 2 checkpoints, or fewer than 2 probes paired between first and last
// The peak is chosen on the same data, so the drop's interval is conditional on that choice (it
// does not account for picking the largest of C curve points); read it as descriptive.

/// The verdict of a trajectory.
public enum Verdict: String, Sendable, CaseIterable {
    case inversion, rising, falling, flat, insufficient

    /// One line saying what the verdict means.
    public var explanation: String {
        switch self {
        case .inversion: return "rises to a peak inside the trajectory, then falls by more than the 95% interval"
        case .rising: return "ends higher than it starts by more than the 95% interval, without a significant fall after a peak"
        case .falling: return "ends lower than it starts by more than the 95% interval"
        case .flat: return "no change larger than the 95% interval"
        case .insufficient: return "too few checkpoints or probes to decide"
        }
    }
}

/// One measure across checkpoints, analysed.
public struct Trajectory: Sendable {
    /// Measure id (e.g. `counterfactual_accuracy`, `context_attention_layer_3`).
    public let id: String
    public let label: String
    public let unit: String
    /// Mean over probes per checkpoint, and how many probes had a finite value.
    public let values: [Double]
    public let counts: [Int]
    /// Index of the peak checkpoint (nil when no value is finite).
    public let peak: Int?
    public let rise: Estimate
    public let drop: Estimate
    public let net: Estimate
    public let verdict: Verdict

    /// Analyses per-probe values `x` (`[checkpoint, probe]`).
    public init(id: String, label: String, unit: String, perProbe x: [Double], checkpoints C: Int, probes P: Int,
                bootstrap: Bootstrap) throws {
        precondition(x.count == C * P, "per-probe matrix size")
        self.id = id; self.label = label; self.unit = unit
        func row(_ c: Int) -> [Double] { Array(x[(c * P)..<((c + 1) * P)]) }
        var values: [Double] = [], counts: [Int] = []
        for c in 0..<C {
            let m = Stats.nanMean(row(c))
            values.append(m.mean); counts.append(m.count)
        }
        self.values = values
        self.counts = counts
        var peak: Int?
        for (c, v) in values.enumerated() where v.isFinite {
            if let k = peak, v <= values[k] { continue }
            peak = c
        }
        self.peak = peak
        guard C >= 2, let k = peak else {
            rise = .undefined; drop = .undefined; net = .undefined; verdict = .insufficient
            return
        }
        let first = row(0), last = row(C - 1), top = row(k)
        rise = try bootstrap.paired(from: first, to: top)
        drop = try bootstrap.paired(from: last, to: top)
        net = try bootstrap.paired(from: first, to: last)
        verdict = Self.verdict(peak: k, checkpoints: C, rise: rise, drop: drop, net: net)
    }

    /// The verdict rule (see the file header).
    public static func verdict(peak k: Int, checkpoints C: Int, rise: Estimate, drop: Estimate, net: Estimate) -> Verdict {
        guard C >= 2, net.n >= 2 else { return .insufficient }
        if k > 0, k < C - 1, rise.n >= 2, drop.n >= 2,
           rise.value > 0, rise.value > rise.interval.halfWidth,
           drop.value > 0, drop.value > drop.interval.halfWidth {
            return .inversion
        }
        if net.value > 0, net.value > net.interval.halfWidth { return .rising }
        if net.value < 0, -net.value > net.interval.halfWidth { return .falling }
        return .flat
    }
}

/// Spearman's rho across checkpoints between one layer's context attention and counterfactual accuracy.
public struct LayerCorrelation: Sendable {
    /// The layer, or nil for the mean over all layers.
    public let layer: Int?
    public let correlation: Correlation
}

/// Trajectory analysis of a whole run.
public struct RunTrajectories: Sendable {
    /// One per `Measure`, in `Measure.allCases` order.
    public let measures: [Trajectory]
    /// Context attention per layer.
    public let layers: [Trajectory]
    /// Per layer, then the all-layer mean (layer nil).
    public let correlations: [LayerCorrelation]

    public init(run: RunData, measures m: RunMeasures, bootstrap: Bootstrap) throws {
        let C = m.checkpoints, P = m.probes
        measures = try Measure.allCases.map {
            try Trajectory(id: $0.rawValue, label: $0.label, unit: $0.unit, perProbe: m.perProbe[$0] ?? [],
                           checkpoints: C, probes: P, bootstrap: bootstrap)
        }
        layers = try (0..<m.layers).map { l in
            try Trajectory(id: "context_attention_layer_\(l)", label: "Context attention, layer \(l)",
                           unit: Measure.contextAttention.unit, perProbe: m.layerValues(m.layerContext, layer: l),
                           checkpoints: C, probes: P, bootstrap: bootstrap)
        }
        let accuracy = m.curve(.counterfactualAccuracy)
        var correlations = layers.enumerated().map { l, t in
            LayerCorrelation(layer: l, correlation: Stats.spearman(t.values, accuracy))
        }
        correlations.append(LayerCorrelation(layer: nil, correlation: Stats.spearman(m.curve(.contextAttention), accuracy)))
        self.correlations = correlations
    }

    /// The trajectory of a headline measure (`measures` holds one per case, in case order).
    public func trajectory(_ measure: Measure) -> Trajectory {
        measures[Measure.allCases.firstIndex(of: measure) ?? 0]
    }
}
