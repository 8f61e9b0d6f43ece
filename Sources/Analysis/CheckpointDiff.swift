// The change between two checkpoints, per head, per layer, per lens layer and per headline
// measure, each a paired bootstrap estimate across probes (Statistics.swift). Heads are ranked by
// |change| (largest first; ties by layer then head).

/// The change of one quantity between checkpoints `from` and `to`.
public struct Change: Sendable {
    /// Means over the paired probes at each end (mean_to − mean_from = estimate.value).
    public let meanFrom: Double
    public let meanTo: Double
    public let estimate: Estimate
}

public struct HeadChange: Sendable {
    public let layer: Int
    public let head: Int
    public let change: Change
}

public struct LayerChange: Sendable {
    /// A block layer, or a lens layer (0 = embeddings) for M_C.
    public let layer: Int
    public let change: Change
}

public struct MeasureChange: Sendable {
    public let measure: Measure
    public let change: Change
}

/// Everything `cpiscope diff` reports for one pair of checkpoints.
public struct CheckpointDiff: Sendable {
    /// Complete-checkpoint indices and their names and steps.
    public let from: Int
    public let to: Int
    public let fromName: String
    public let toName: String
    public let fromStep: Int64
    public let toStep: Int64
    /// The span whose attention mass is compared.
    public let span: String
    /// Every head, ranked by |change| (largest first).
    public let heads: [HeadChange]
    /// Per layer (layer order): mean over heads of the attention mass on the span.
    public let layers: [LayerChange]
    /// Per lens layer (lens order): M_C.
    public let lens: [LayerChange]
    /// Per headline measure (`Measure.allCases` order).
    public let measures: [MeasureChange]

    /// Compares complete checkpoints `from` and `to` of `run` on `span`.
    public init(run: RunData, measures m: RunMeasures, span: String, from a: Int, to b: Int,
                bootstrap: Bootstrap) throws {
        let s = try run.spanIndex(span)
        let P = run.probes.count, L = run.layers, H = run.heads, LL = run.lensLayers
        from = a; to = b
        fromName = run.checkpoints[a]; toName = run.checkpoints[b]
        fromStep = run.steps[a]; toStep = run.steps[b]
        self.span = span

        let headsA = try run.attention(checkpoint: a, span: s), headsB = try run.attention(checkpoint: b, span: s)
        let headEst = try bootstrap.paired(from: headsA, to: headsB, probes: P, columns: L * H)
        var heads: [HeadChange] = []
        for l in 0..<L {
            for h in 0..<H {
                let j = l * H + h
                heads.append(HeadChange(layer: l, head: h,
                                        change: Self.change(headsA, headsB, probes: P, columns: L * H, column: j, estimate: headEst[j])))
            }
        }
        self.heads = Self.ranked(heads)

        func layerMeans(_ x: [Double]) -> [Double] {
            var out = [Double](repeating: .nan, count: P * L)
            for p in 0..<P { for l in 0..<L {
                out[p * L + l] = Stats.nanMean(x[(p * L * H + l * H)..<(p * L * H + (l + 1) * H)]).mean
            } }
            return out
        }
        let layerA = layerMeans(headsA), layerB = layerMeans(headsB)
        let layerEst = try bootstrap.paired(from: layerA, to: layerB, probes: P, columns: L)
        layers = (0..<L).map {
            LayerChange(layer: $0, change: Self.change(layerA, layerB, probes: P, columns: L, column: $0, estimate: layerEst[$0]))
        }

        let lensA = (0..<(P * LL)).map { Double(run.mcRatio[a * P * LL + $0]) }
        let lensB = (0..<(P * LL)).map { Double(run.mcRatio[b * P * LL + $0]) }
        let lensEst = try bootstrap.paired(from: lensA, to: lensB, probes: P, columns: LL)
        lens = (0..<LL).map {
            LayerChange(layer: $0, change: Self.change(lensA, lensB, probes: P, columns: LL, column: $0, estimate: lensEst[$0]))
        }

        measures = try Measure.allCases.map { measure in
            let x = m.values(measure, checkpoint: a), y = m.values(measure, checkpoint: b)
            let est = try bootstrap.paired(from: x, to: y)
            return MeasureChange(measure: measure, change: Self.change(x, y, probes: P, columns: 1, column: 0, estimate: est))
        }
    }

    /// Means at both ends over the probes finite at both ends of column `j`.
    static func change(_ a: [Double], _ b: [Double], probes P: Int, columns m: Int, column j: Int, estimate: Estimate) -> Change {
        var sa = 0.0, sb = 0.0, n = 0
        for p in 0..<P {
            let x = a[p * m + j], y = b[p * m + j]
            if x.isFinite && y.isFinite { sa += x; sb += y; n += 1 }
        }
        return Change(meanFrom: n > 0 ? sa / Double(n) : .nan, meanTo: n > 0 ? sb / Double(n) : .nan, estimate: estimate)
    }

    /// Sorted by |change| descending, NaN last, ties by (layer, head).
    static func ranked(_ heads: [HeadChange]) -> [HeadChange] {
        heads.sorted { x, y in
            let a = abs(x.change.estimate.value), b = abs(y.change.estimate.value)
            if a.isNaN != b.isNaN { return b.isNaN }
            if !a.isNaN, a != b { return a > b }
            return (x.layer, x.head) < (y.layer, y.head)
        }
    }

    /// Layers ranked by |change| (largest first, NaN last, ties by layer).
    public var rankedLayers: [LayerChange] {
        layers.sorted { x, y in
            let a = abs(x.change.estimate.value), b = abs(y.change.estimate.value)
            if a.isNaN != b.isNaN { return b.isNaN }
            if !a.isNaN, a != b { return a > b }
            return x.layer < y.layer
        }
    }
}
