// Direct logit attribution (DLA) across checkpoints, for runs of schema version 2. Definitions
// (docs/analysis.md, "Direct logit attribution"):
//   head DLA        mean over probes (NaN skipped) of head_dla[c, p, l, h], with the 95% bootstrap
//                   interval of that mean (Statistics.swift; the same resamples as every other estimate)
//   context heads   at checkpoint c, the heads with a positive mean, largest first (ties: layer, head)
//   memory heads    the heads with a negative mean, most negative first
//   role            context when the head's interval lies above 0, memory when below, neutral otherwise
//   rank            position of the head when every head is sorted by mean DLA, largest first (1-based)
//   key checkpoints first, the counterfactual-accuracy peak, final (the headline's peak)
//   tracked heads   the top `tracked` context heads and memory heads at the peak, followed over the run
//   role changes    candidates: the top-`listed` context and memory heads at any key checkpoint; ordered
//                   by a context↔memory role flip first, then the largest rank shift between key
//                   checkpoints, then the largest swing of the mean
//   components      per probe: logit_diff, Σ heads (attention), Σ MLP layers, embedding, Σ attention
//                   output biases, final-norm bias and remainder; a NaN anywhere leaves the probe out
// Intervals are computed only for the heads listed, so the cost stays that of a few columns.

/// One head's mean DLA over probes at one checkpoint.
public struct HeadDLA: Sendable {
    public let layer: Int
    public let head: Int
    /// Mean over probes with its 95% interval (n = probes with a finite value).
    public let estimate: Estimate
    /// Rank among all heads at that checkpoint (1 = largest mean DLA).
    public let rank: Int

    public var role: HeadRole { HeadRole(estimate.interval) }
    /// "L2H1".
    public var name: String { "L\(layer)H\(head)" }
}

/// What a head does to logit[context answer] − logit[memory answer] at one checkpoint.
public enum HeadRole: String, Sendable {
    case context, memory, neutral

    /// context when the interval lies above 0, memory when below, else neutral.
    public init(_ i: Interval) {
        self = i.low > 0 ? .context : i.high < 0 ? .memory : .neutral
    }
}

/// The context and memory heads at one checkpoint.
public struct DLARanking: Sendable {
    public let checkpoint: Int
    public let contextHeads: [HeadDLA]
    public let memoryHeads: [HeadDLA]
}

/// A head followed across the run.
public struct TrackedHead: Sendable {
    /// Its role at the peak (context or memory), and its rank there among heads of that role.
    public let role: HeadRole
    public let layer: Int
    public let head: Int
    /// Mean DLA per checkpoint, peak, rise, drop and verdict.
    public let trajectory: MeasureTrajectory
    /// 95% interval of the mean per checkpoint.
    public let bands: [Interval]
    public var name: String { "L\(layer)H\(head)" }
}

/// One component of the logit difference across the run.
public struct DLAComponent: Sendable {
    public let trajectory: MeasureTrajectory
    public let bands: [Interval]
}

/// A head whose role changed between the key checkpoints.
public struct RoleChange: Sendable {
    public let layer: Int
    public let head: Int
    /// At first, peak, final (in that order; entries repeat when the peak is the first or final).
    public let at: [HeadDLA]
    public var name: String { "L\(layer)H\(head)" }
    public var flips: Bool { Set(at.map(\.role)).isSuperset(of: [.context, .memory]) }
    public var rankShift: Int { (at.map(\.rank).max() ?? 0) - (at.map(\.rank).min() ?? 0) }
    public var swing: Double {
        let v = at.map(\.estimate.value).filter(\.isFinite)
        return (v.max() ?? 0) - (v.min() ?? 0)
    }
}

/// A head's DLA split by source span at one checkpoint.
public struct SpanSplit: Sendable {
    public let role: HeadRole
    public let layer: Int
    public let head: Int
    public let checkpoint: Int
    /// Mean over probes per span (span order of the run; NaN where no probe has the span).
    public let perSpan: [Double]
    /// The head's mean DLA over the same checkpoint (all probes with a value).
    public let total: Double
    public var name: String { "L\(layer)H\(head)" }
}

/// DLA analysis of a run.
public struct LogitAttributionAnalysis: Sendable {
    public static let listed = 5, tracked = 3, roleChangeRows = 10

    /// The key checkpoints (complete-checkpoint indices): first, peak, final. Without a
    /// counterfactual-accuracy peak (a constant accuracy, one checkpoint) `peak` is the final checkpoint
    /// and `peakKnown` is false.
    public let first: Int
    public let peak: Int
    public let final: Int
    public let peakKnown: Bool
    /// `[checkpoint, layer, head]`: mean DLA over probes.
    public let headMeans: [Double]
    /// `[checkpoint, layer]`: mean MLP DLA over probes.
    public let mlpMeans: [Double]
    /// Context and memory heads at first, peak and final.
    public let keyRankings: [DLARanking]
    public let tracked: [TrackedHead]
    /// logit_diff, attention_heads, mlp, embed, attention_bias, norm_bias, remainder.
    public let components: [DLAComponent]
    public let roleChanges: [RoleChange]
    /// Tracked heads split by source span, at each distinct key checkpoint.
    public let spanSplits: [SpanSplit]

    public let run: RunData
    let data: LogitAttributionData

    /// The distinct key checkpoints, ascending, each with its names ("first", "peak", "final").
    public var keyCheckpoints: [(index: Int, roles: [String])] {
        var out: [(index: Int, roles: [String])] = []
        for (c, role) in [(first, "first"), (peak, "peak"), (final, "final")] where role != "peak" || peakKnown {
            if let i = out.firstIndex(where: { $0.index == c }) { out[i].roles.append(role) } else { out.append((c, [role])) }
        }
        return out
    }

    /// Analyses the run's DLA; `peak` is the counterfactual-accuracy peak (nil: the final checkpoint).
    /// Returns nil for a run without DLA (schema version 1).
    public init?(run: RunData, peak: Int?, bootstrap: Bootstrap) throws {
        guard let data = run.dla else { return nil }
        self.run = run; self.data = data
        let C = run.checkpoints.count, P = run.probes.count, L = run.layers, LH = run.layers * run.heads
        first = 0; final = C - 1; self.peak = peak ?? (C - 1); peakKnown = peak != nil
        var means = [Double](repeating: .nan, count: C * LH)
        var mlp = [Double](repeating: .nan, count: C * L)
        for c in 0..<C {
            for j in 0..<LH { means[c * LH + j] = Stats.nanMean((0..<P).lazy.map { Double(data.head[(c * P + $0) * LH + j]) }).mean }
            for l in 0..<L { mlp[c * L + l] = Stats.nanMean((0..<P).lazy.map { Double(data.mlp[(c * P + $0) * L + l]) }).mean }
        }
        headMeans = means
        mlpMeans = mlp

        let keys = [first, self.peak, final]
        let ranked = try keys.map { try Self.ranking(run: run, data: data, means: means, at: $0, top: Self.listed, bootstrap: bootstrap) }
        keyRankings = ranked
        let reference = ranked[1]
        tracked = try (reference.contextHeads.prefix(Self.tracked).map { (HeadRole.context, $0) }
                       + reference.memoryHeads.prefix(Self.tracked).map { (HeadRole.memory, $0) }).map { role, x in
            let j = x.layer * run.heads + x.head
            let perProbe = (0..<(C * P)).map { Double(data.head[$0 * LH + j]) }
            return TrackedHead(role: role, layer: x.layer, head: x.head,
                               trajectory: try MeasureTrajectory(id: "head_dla_L\(x.layer)H\(x.head)", label: "DLA of head L\(x.layer)H\(x.head)",
                                                                 unit: "logit difference", perProbe: perProbe, checkpoints: C, probes: P,
                                                                 minimumEffect: VerdictFloor.logits, bootstrap: bootstrap),
                               bands: try bootstrap.bands(perProbe, checkpoints: C, probes: P))
        }

        components = try Self.componentSeries(run: run, data: data).map { id, label, perProbe in
            DLAComponent(trajectory: try MeasureTrajectory(id: id, label: label, unit: "logit difference", perProbe: perProbe,
                                                           checkpoints: C, probes: P, minimumEffect: VerdictFloor.logits, bootstrap: bootstrap),
                         bands: try bootstrap.bands(perProbe, checkpoints: C, probes: P))
        }

        // Role changes: candidates are the heads listed at any key checkpoint.
        var candidates: [Int] = []
        for r in ranked { for x in r.contextHeads + r.memoryHeads where !candidates.contains(x.layer * run.heads + x.head) {
            candidates.append(x.layer * run.heads + x.head)
        } }
        let atKeys = try keys.map { try Self.estimates(run: run, data: data, means: means, at: $0, columns: candidates, bootstrap: bootstrap) }
        roleChanges = Array(candidates.indices.map { i in
            RoleChange(layer: candidates[i] / run.heads, head: candidates[i] % run.heads, at: atKeys.map { $0[i] })
        }.sorted { a, b in
            if a.flips != b.flips { return a.flips }
            if a.rankShift != b.rankShift { return a.rankShift > b.rankShift }
            if a.swing != b.swing { return a.swing > b.swing }
            return (a.layer, a.head) < (b.layer, b.head)
        }.prefix(Self.roleChangeRows))

        // Tracked heads by source span, one slab read per distinct key checkpoint.
        var splits: [SpanSplit] = []
        let S = run.spans.count, H = run.heads
        for c in Set(keys).sorted() {
            let slab = try run.headDLABySpan(checkpoint: c)
            for t in tracked {
                let perSpan = (0..<S).map { s in
                    Stats.nanMean((0..<P).lazy.map { Double(slab[((($0 * S) + s) * run.layers + t.layer) * H + t.head]) }).mean
                }
                splits.append(SpanSplit(role: t.role, layer: t.layer, head: t.head, checkpoint: c, perSpan: perSpan,
                                        total: means[c * LH + t.layer * H + t.head]))
            }
        }
        spanSplits = splits
    }

    /// Context and memory heads at checkpoint `c`, `top` of each, with intervals.
    public func ranking(at c: Int, top: Int, bootstrap: Bootstrap) throws -> DLARanking {
        try Self.ranking(run: run, data: data, means: headMeans, at: c, top: top, bootstrap: bootstrap)
    }

    /// The component named `id` (logit_diff, attention_heads, mlp, ...).
    public func component(_ id: String) -> DLAComponent? { components.first { $0.trajectory.id == id } }

    /// Heads at `c` in rank order (largest mean first; NaN means left out; ties by layer, head).
    static func order(_ means: [Double], at c: Int, heads LH: Int) -> [Int] {
        (0..<LH).filter { means[c * LH + $0].isFinite }.sorted { a, b in
            let x = means[c * LH + a], y = means[c * LH + b]
            return x != y ? x > y : a < b
        }
    }

    static func ranking(run: RunData, data: LogitAttributionData, means: [Double], at c: Int, top: Int,
                        bootstrap: Bootstrap) throws -> DLARanking {
        let LH = run.layers * run.heads
        let order = Self.order(means, at: c, heads: LH)
        let context = Array(order.filter { means[c * LH + $0] > 0 }.prefix(top))
        let memory = Array(order.reversed().filter { means[c * LH + $0] < 0 }.prefix(top))
        let est = try estimates(run: run, data: data, means: means, at: c, columns: context + memory, bootstrap: bootstrap)
        return DLARanking(checkpoint: c, contextHeads: Array(est.prefix(context.count)), memoryHeads: Array(est.dropFirst(context.count)))
    }

    /// Mean DLA with intervals for the heads `columns` (flat `layer * heads + head`) at checkpoint `c`.
    static func estimates(run: RunData, data: LogitAttributionData, means: [Double], at c: Int, columns: [Int],
                          bootstrap: Bootstrap) throws -> [HeadDLA] {
        let P = run.probes.count, LH = run.layers * run.heads, m = columns.count
        guard m > 0 else { return [] }
        var rank = [Int](repeating: 0, count: LH)
        for (i, j) in order(means, at: c, heads: LH).enumerated() { rank[j] = i + 1 }
        var x = [Double](repeating: .nan, count: P * m)
        for p in 0..<P { for (k, j) in columns.enumerated() { x[p * m + k] = Double(data.head[(c * P + p) * LH + j]) } }
        let est = try bootstrap.means(x, probes: P, columns: m)
        return columns.enumerated().map { k, j in HeadDLA(layer: j / run.heads, head: j % run.heads, estimate: est[k], rank: rank[j]) }
    }

    /// Per-probe `[checkpoint, probe]` series of each component: (id, label, values).
    static func componentSeries(run: RunData, data: LogitAttributionData) -> [(String, String, [Double])] {
        let n = run.checkpoints.count * run.probes.count, LH = run.layers * run.heads, L = run.layers
        let d = { (x: [Float]) in x.map(Double.init) }
        let heads = (0..<n).map { i in (0..<LH).reduce(0.0) { $0 + Double(data.head[i * LH + $1]) } }
        let mlp = (0..<n).map { i in (0..<L).reduce(0.0) { $0 + Double(data.mlp[i * L + $1]) } }
        return [("logit_diff", "Logit difference (context − memory answer)", d(data.logitDiff)),
                ("attention_heads", "Σ attention heads", heads), ("mlp", "Σ MLP layers", mlp),
                ("embed", "Embedding", d(data.embed)), ("attention_bias", "Σ attention output biases", d(data.attentionBias)),
                ("norm_bias", "Final-norm bias", d(data.normBias)), ("remainder", "Remainder", d(data.remainder))]
    }
}
