// One checkpoint on its own (docs/analysis.md, "One checkpoint"): every headline measure, the attention
// mass on a span per head and per layer (mean over heads), and M_C per lens layer, each the mean over
// probes (NaN skipped) with its 95% bootstrap interval (Statistics.swift; the paired estimate against 0,
// so the same resamples as every other interval). This is what `diff` and `report` show for a run
// with a single complete checkpoint, where there is no pair to compare and no trajectory. Heads and
// layers are ranked by their mean, largest first (NaN last; ties by layer, then head).

/// One head's mean at one checkpoint.
public struct HeadLevel: Sendable {
    public let layer: Int
    public let head: Int
    public let estimate: Estimate
}

/// One layer's (or lens layer's) mean at one checkpoint.
public struct LayerLevel: Sendable {
    public let layer: Int
    public let estimate: Estimate
}

/// One headline measure's mean at one checkpoint.
public struct MeasureLevel: Sendable {
    public let measure: Measure
    public let estimate: Estimate
}

/// Means over probes at one complete checkpoint.
public struct CheckpointLevels: Sendable {
    /// The complete-checkpoint index, its name and step.
    public let checkpoint: Int
    public let name: String
    public let step: Int64
    /// The span of `heads` and `layers`.
    public let span: String
    /// Per headline measure (`Measure.allCases` order).
    public let measures: [MeasureLevel]
    /// Every head's attention mass on `span`, ranked by mean (largest first).
    public let heads: [HeadLevel]
    /// Per layer (layer order): mean over heads of the attention mass on `span`.
    public let layers: [LayerLevel]
    /// Per lens layer (lens order): M_C.
    public let lens: [LayerLevel]

    /// - Throws: `unknownSpan`, read errors, bootstrap option errors.
    public init(run: RunData, measures m: RunMeasures, span: String, checkpoint c: Int, bootstrap: Bootstrap) throws {
        let s = try run.spanIndex(span)
        let P = run.probes.count, L = run.layers, H = run.heads, LL = run.lensLayers
        checkpoint = c
        name = run.checkpoints[c]
        step = run.steps[c]
        self.span = span

        let cases = Measure.allCases
        var perMeasure = [Double](repeating: .nan, count: P * cases.count)
        for (j, measure) in cases.enumerated() {
            for (p, v) in m.values(measure, checkpoint: c).enumerated() { perMeasure[p * cases.count + j] = v }
        }
        let measureEst = try bootstrap.means(perMeasure, probes: P, columns: cases.count)
        measures = cases.enumerated().map { MeasureLevel(measure: $1, estimate: measureEst[$0]) }

        let mass = try run.attention(checkpoint: c, span: s)
        let headEst = try bootstrap.means(mass, probes: P, columns: L * H)
        heads = (0..<(L * H)).map { HeadLevel(layer: $0 / H, head: $0 % H, estimate: headEst[$0]) }.sorted { x, y in
            let a = x.estimate.value, b = y.estimate.value
            if a.isNaN != b.isNaN { return b.isNaN }
            if !a.isNaN, a != b { return a > b }
            return (x.layer, x.head) < (y.layer, y.head)
        }
        var layerMass = [Double](repeating: .nan, count: P * L)
        for p in 0..<P { for l in 0..<L {
            layerMass[p * L + l] = Stats.nanMean(mass[(p * L * H + l * H)..<(p * L * H + (l + 1) * H)]).mean
        } }
        let layerEst = try bootstrap.means(layerMass, probes: P, columns: L)
        layers = (0..<L).map { LayerLevel(layer: $0, estimate: layerEst[$0]) }

        let mc = (0..<(P * LL)).map { Double(run.mcRatio[c * P * LL + $0]) }
        let lensEst = try bootstrap.means(mc, probes: P, columns: LL)
        lens = (0..<LL).map { LayerLevel(layer: $0, estimate: lensEst[$0]) }
    }

    /// Layers ranked by mean (largest first, NaN last, ties by layer).
    public var rankedLayers: [LayerLevel] {
        layers.sorted { x, y in
            let a = x.estimate.value, b = y.estimate.value
            if a.isNaN != b.isNaN { return b.isNaN }
            if !a.isNaN, a != b { return a > b }
            return x.layer < y.layer
        }
    }

    /// The level of `measure`.
    public func level(_ measure: Measure) -> Estimate {
        measures.first { $0.measure == measure }?.estimate ?? .undefined
    }
}
