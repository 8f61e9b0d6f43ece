// Trajectory analysis: the curve of a measure over checkpoints, its peak, the rise to it and the
// drop from it, and a verdict. Definitions (docs/analysis.md, "Verdicts"):
//   curve y_c     mean over probes of the measure at checkpoint c (NaN skipped)
//   peak k        the first checkpoint with the largest y_c; none when every finite y_c is the same
//                 (a constant series) or there are fewer than 2 checkpoints
//   rise          paired bootstrap estimate of mean_p (x_{k,p} − x_{0,p})
//   drop          paired bootstrap estimate of mean_p (x_{k,p} − x_{C−1,p})   (positive = a fall)
//   net           paired bootstrap estimate of mean_p (x_{C−1,p} − x_{0,p})
//   minimum effect m = max(the measure's absolute floor, 0.1 × (max_c y_c − min_c y_c)) (VerdictFloor)
//   a change e counts when e > its interval's half-width and e ≥ m
//   inversion     0 < k < C−1 and both the rise and the drop count
//   rising        not an inversion and net counts
//   falling       not an inversion and −net counts
//   flat          none of these (a constant series is flat)
//   insufficient  fewer than 2 checkpoints, or fewer than 2 probes paired between first and last
// The peak is chosen on the same data, so the drop's interval is conditional on that choice (it
// does not account for picking the largest of C curve points); read it as descriptive.

/// The smallest changes a verdict counts (docs/analysis.md, "Verdicts"): a change must reach the larger
/// of its measure's absolute floor and `relative` × the curve's range across checkpoints, besides
/// exceeding its interval's half-width. Without them a 0.005 drop in attention mass with a tight
/// interval would read as an inversion.
public enum VerdictFloor {
    /// Share of the curve's range (max − min of the means over checkpoints) a change must reach.
    public static let relative = 0.1
    /// Absolute floors in each measure's unit.
    public static let accuracy = 0.05      // fraction of probes (5 points)
    public static let attention = 0.01     // attention mass (0–1)
    public static let mc = 0.02            // M_C, a probability ratio (0–1)
    public static let logits = 0.1         // a logit difference or a DLA term

    /// The minimum effect for a curve with absolute floor `absolute`.
    public static func minimum(absolute: Double, curve: [Double]) -> Double {
        let finite = curve.filter(\.isFinite)
        let range = (finite.max() ?? 0) - (finite.min() ?? 0)
        return max(absolute, relative * range)
    }
}

/// The verdict of a trajectory.
public enum Verdict: String, Sendable, CaseIterable {
    case inversion, rising, falling, flat, insufficient

    /// One line saying what the verdict means.
    public var explanation: String {
        switch self {
        case .inversion: return "rises to a peak inside the trajectory, then falls; the rise and the fall each exceed their 95% interval's half-width and the minimum effect"
        case .rising: return "ends higher than it starts by more than the 95% interval's half-width and the minimum effect, without such a fall after a peak"
        case .falling: return "ends lower than it starts by more than the 95% interval's half-width and the minimum effect"
        case .flat: return "no change exceeds both its 95% interval's half-width and the minimum effect"
        case .insufficient: return "too few checkpoints or probes to decide"
        }
    }
}

/// One measure across checkpoints, analysed.
public struct MeasureTrajectory: Sendable {
    /// Measure id (e.g. `counterfactual_accuracy`, `context_attention_layer_3`).
    public let id: String
    public let label: String
    public let unit: String
    /// Mean over probes per checkpoint, and how many probes had a finite value.
    public let values: [Double]
    public let counts: [Int]
    /// Index of the peak checkpoint (nil when no value is finite, every finite value is the same, or
    /// there are fewer than 2 checkpoints).
    public let peak: Int?
    public let rise: Estimate
    public let drop: Estimate
    public let net: Estimate
    /// The smallest change the verdict counts: max(absolute floor, VerdictFloor.relative × range).
    public let minimumEffect: Double
    public let verdict: Verdict

    /// Whether the curve has two or more finite values, all equal (so it has no peak).
    public var constant: Bool {
        let finite = values.filter(\.isFinite)
        return finite.count >= 2 && finite.allSatisfy { $0 == finite[0] }
    }

    /// Analyses per-probe values `x` (`[checkpoint, probe]`); `minimumEffect` is the measure's absolute
    /// floor (VerdictFloor), in its unit.
    public init(id: String, label: String, unit: String, perProbe x: [Double], checkpoints C: Int, probes P: Int,
                minimumEffect floor: Double, bootstrap: Bootstrap) throws {
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
        minimumEffect = VerdictFloor.minimum(absolute: floor, curve: values)
        let finite = values.filter(\.isFinite)
        let constant = finite.count >= 2 && finite.allSatisfy { $0 == finite[0] }
        var peak: Int?
        for (c, v) in values.enumerated() where v.isFinite && C >= 2 && !constant {
            if let k = peak, v <= values[k] { continue }
            peak = c
        }
        self.peak = peak
        guard C >= 2, !finite.isEmpty else {
            rise = .undefined; drop = .undefined; net = .undefined; verdict = .insufficient
            return
        }
        let first = row(0), last = row(C - 1)
        net = try bootstrap.paired(from: first, to: last)
        guard let k = peak else {
            // A constant series: no peak, nothing rises or falls.
            rise = .undefined; drop = .undefined
            verdict = net.n >= 2 ? .flat : .insufficient
            return
        }
        let top = row(k)
        rise = try bootstrap.paired(from: first, to: top)
        drop = try bootstrap.paired(from: last, to: top)
        verdict = Self.verdict(peak: k, checkpoints: C, rise: rise, drop: drop, net: net, minimumEffect: minimumEffect)
    }

    /// The verdict rule (see the file header): a change counts when it exceeds its interval's
    /// half-width and reaches `minimumEffect`.
    public static func verdict(peak k: Int, checkpoints C: Int, rise: Estimate, drop: Estimate, net: Estimate,
                               minimumEffect m: Double) -> Verdict {
        guard C >= 2, net.n >= 2 else { return .insufficient }
        func counts(_ v: Double, _ e: Estimate) -> Bool { v > 0 && v > e.interval.halfWidth && v >= m }
        if k > 0, k < C - 1, rise.n >= 2, drop.n >= 2, counts(rise.value, rise), counts(drop.value, drop) {
            return .inversion
        }
        if counts(net.value, net) { return .rising }
        if counts(-net.value, net) { return .falling }
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
    public let measures: [MeasureTrajectory]
    /// Context attention per layer.
    public let layers: [MeasureTrajectory]
    /// Per layer, then the all-layer mean (layer nil).
    public let correlations: [LayerCorrelation]

    public init(run: RunData, measures m: RunMeasures, bootstrap: Bootstrap) throws {
        let C = m.checkpoints, P = m.probes
        measures = try Measure.allCases.map {
            try MeasureTrajectory(id: $0.rawValue, label: $0.label, unit: $0.unit, perProbe: m.perProbe[$0] ?? [],
                                  checkpoints: C, probes: P, minimumEffect: $0.minimumEffect, bootstrap: bootstrap)
        }
        layers = try (0..<m.layers).map { l in
            try MeasureTrajectory(id: "context_attention_layer_\(l)", label: "Context attention, layer \(l)",
                                  unit: Measure.contextAttention.unit, perProbe: m.layerValues(m.layerContext, layer: l),
                                  checkpoints: C, probes: P, minimumEffect: Measure.contextAttention.minimumEffect, bootstrap: bootstrap)
        }
        let accuracy = m.curve(.counterfactualAccuracy)
        var correlations = layers.enumerated().map { l, t in
            LayerCorrelation(layer: l, correlation: Stats.spearman(t.values, accuracy))
        }
        correlations.append(LayerCorrelation(layer: nil, correlation: Stats.spearman(m.curve(.contextAttention), accuracy)))
        self.correlations = correlations
    }

    /// The trajectory of a headline measure (`measures` holds one per case, in case order).
    public func trajectory(_ measure: Measure) -> MeasureTrajectory {
        measures[Measure.allCases.firstIndex(of: measure) ?? 0]
    }
}
