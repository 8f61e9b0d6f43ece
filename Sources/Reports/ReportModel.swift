// Everything the report shows, computed once from the run through Analysis: trajectories with a
// 95% band per checkpoint, per-layer heatmaps, the layer × head map at a chosen checkpoint and
// its change between two checkpoints, logit-lens curves and per-probe facts.
import Analysis
import Foundation

/// Options of a report.
public struct ReportOptions: Sendable {
    public var seed: UInt64 = 0
    public var resamples = 2000
    /// Checkpoint (name or step) of the layer × head heatmap; nil = the final one.
    public var checkpoint: String?
    /// Ends of the head-change heatmap; nil = the headline's (the counterfactual-accuracy peak,
    /// or the first checkpoint when the peak is the final one, to the final checkpoint).
    public var from: String?
    public var to: String?
    /// Span of the head heatmaps.
    public var span = "context"

    public init() {}
}

struct ReportModel {
    let run: RunData
    let options: ReportOptions
    let measures: RunMeasures
    let headline: Headline
    /// Direct logit attribution (schema-version-2 runs), the headline's.
    var dla: LogitAttributionAnalysis? { headline.dla }
    /// Per measure, the 95% bootstrap interval of the mean over probes at each checkpoint.
    let bands: [Measure: [Interval]]
    /// x positions of checkpoints: steps when they increase strictly, else indices.
    let x: [Double]
    let xLabel: String
    /// Short checkpoint labels for heatmap columns.
    let columnLabels: [String]
    /// `[layer, checkpoint]`.
    let contextLayers: [Double]
    let subjectLayers: [Double]
    /// Layer × head map at `headsCheckpoint`: `[layer, head]` means over probes and probe counts.
    let headsCheckpoint: Int
    let headsMean: [Double]
    /// Head changes between two checkpoints on `options.span` (nil for a run with one complete checkpoint).
    let change: CheckpointDiff?
    /// A run with one complete checkpoint: its means on `options.span` and on the subject span, with
    /// intervals (nil otherwise).
    let levels: CheckpointLevels?
    let subjectLevels: CheckpointLevels?
    /// `[lens_layer, checkpoint]` mean M_C.
    let mcLens: [Double]
    /// `[lens_layer, checkpoint]` mean M_C under the tuned lens, when the run has one.
    let mcTunedLens: [Double]?
    /// `[checkpoint, answer, lens_layer]` mean log-prob.
    let lens: [Double]
    /// Checkpoints drawn in the logit-lens charts.
    let lensCheckpoints: [Int]
    /// Per probe: the 3 heads whose attention on the span changed most (layer, head, change).
    let probeTopHeads: [[(Int, Int, Double)]]

    init(run: RunData, options: ReportOptions) throws {
        self.run = run
        self.options = options
        try run.requireCheckpoints(1)
        let span = try run.spanIndex(options.span)
        let bootstrap = try Bootstrap(seed: options.seed, resamples: options.resamples)
        let measures = try RunMeasures(run: run)
        self.measures = measures
        headline = try TrajectoryAnalysis.analyze(run, measures: measures, bootstrap: bootstrap)
        let C = run.checkpoints.count, P = run.probes.count, L = run.layers, H = run.heads, LL = run.lensLayers

        var bands: [Measure: [Interval]] = [:]
        for m in Measure.allCases {
            bands[m] = try bootstrap.bands(measures.perProbe[m] ?? [], checkpoints: C, probes: P)
        }
        self.bands = bands
        let increasing = run.steps.allSatisfy { $0 >= 0 } && zip(run.steps, run.steps.dropFirst()).allSatisfy { $0 < $1 }
        x = increasing ? run.steps.map(Double.init) : (0..<C).map(Double.init)
        xLabel = increasing ? "training step" : "checkpoint (index; steps unknown)"
        columnLabels = increasing ? run.steps.map(String.init) : run.checkpoints
        contextLayers = measures.layerHeatmap(measures.layerContext)
        subjectLayers = measures.layerHeatmap(measures.layerSubject)

        headsCheckpoint = try options.checkpoint.map(run.checkpointIndex) ?? (C - 1)
        let at = try run.attention(checkpoint: headsCheckpoint, span: span)
        headsMean = (0..<(L * H)).map { j in Stats.nanMean((0..<P).map { at[$0 * L * H + j] }).mean }

        if let diff = headline.diff {
            let from = try options.from.map(run.checkpointIndex) ?? diff.from
            let to = try options.to.map(run.checkpointIndex) ?? diff.to
            guard from != to else {
                throw AnalysisError.invalidOption(option: "--from/--to", detail: "both name \(run.checkpoints[from]); pick two different checkpoints")
            }
            change = (from == diff.from && to == diff.to && options.span == diff.span) ? diff
                : try CheckpointDiff(run: run, measures: measures, span: options.span, from: from, to: to, bootstrap: bootstrap)
            levels = nil
            subjectLevels = nil
        } else {
            if let option = options.from.map({ _ in "--from" }) ?? options.to.map({ _ in "--to" }) {
                throw AnalysisError.invalidOption(option: option, detail: "\(run.path) has one complete checkpoint (\(run.checkpoints[0])), so there is no change to draw; drop the option")
            }
            change = nil
            levels = options.span == "context" ? headline.levels
                : try CheckpointLevels(run: run, measures: measures, span: options.span, checkpoint: 0, bootstrap: bootstrap)
            subjectLevels = try CheckpointLevels(run: run, measures: measures, span: "subject", checkpoint: 0, bootstrap: bootstrap)
        }

        func meanByLensLayer(_ values: [Float]) -> [Double] {
            var out = [Double](repeating: .nan, count: LL * C)
            for c in 0..<C { for ll in 0..<LL { out[ll * C + c] = Stats.nanMean((0..<P).map { Double(values[(c * P + $0) * LL + ll]) }).mean } }
            return out
        }
        let mc = meanByLensLayer(run.mcRatio)
        mcTunedLens = run.tunedMcRatio.map(meanByLensLayer)
        var lens = [Double](repeating: .nan, count: C * 2 * LL)
        for c in 0..<C {
            for ll in 0..<LL {
                for a in 0..<2 {
                    lens[(c * 2 + a) * LL + ll] = Stats.nanMean((0..<P).map { Double(run.lensLogprob[((c * P + $0) * 2 + a) * LL + ll]) }).mean
                }
            }
        }
        mcLens = mc
        self.lens = lens
        var picks = Set([0, C - 1])
        if let k = headline.primary.peak { picks.insert(k) }
        let want = min(C, 6)
        for i in 0..<want where picks.count < want && want > 1 {
            picks.insert(Int((Double(i) * Double(C - 1) / Double(want - 1)).rounded()))
        }
        lensCheckpoints = picks.sorted()

        guard let change else { probeTopHeads = []; return }
        let a = try run.attention(checkpoint: change.from, span: span), b = try run.attention(checkpoint: change.to, span: span)
        probeTopHeads = (0..<P).map { p in
            var moves: [(Int, Int, Double)] = []
            for l in 0..<L { for h in 0..<H {
                let d = b[p * L * H + l * H + h] - a[p * L * H + l * H + h]
                if d.isFinite { moves.append((l, h, d)) }
            } }
            moves.sort { abs($0.2) != abs($1.2) ? abs($0.2) > abs($1.2) : ($0.0, $0.1) < ($1.0, $1.1) }
            return Array(moves.prefix(3))
        }
    }

    /// Whether the run has one complete checkpoint (no trajectory sections).
    var single: Bool { levels != nil }

    /// The headline sentence about the primary measure.
    var headlineSentence: String {
        if let levels {
            let e = levels.level(.counterfactualAccuracy)
            return "One complete checkpoint, \(levels.name) (step \(levels.step)): counterfactual accuracy \(Fmt.number(e.value)) "
                + "(95% CI \(Fmt.interval(e.interval)), n = \(e.n) probes). A trajectory, its peak and a verdict need two complete checkpoints; "
                + "the per-layer and per-head views below are at this checkpoint."
        }
        let t = headline.primary
        if t.constant, let v = t.values.first(where: \.isFinite) {
            return "\(t.label) is \(Fmt.number(v)) at every checkpoint: a constant series has no peak. Verdict: \(t.verdict.rawValue), \(t.verdict.explanation)."
        }
        guard let k = t.peak, let last = t.values.last else {
            return "\(t.label) has no data; verdict: \(t.verdict.rawValue) (\(t.verdict.explanation))."
        }
        let C = run.checkpoints.count
        return "\(t.label) starts at \(Fmt.number(t.values[0])), peaks at \(run.checkpoints[k]) (step \(run.steps[k])) at \(Fmt.number(t.values[k])) "
            + "and ends at \(Fmt.number(last)) (\(run.checkpoints[C - 1])): a drop of \(Fmt.number(t.drop.value)) "
            + "(95% CI \(Fmt.interval(t.drop.interval)), n = \(t.drop.n) probes; minimum effect \(Fmt.number(t.minimumEffect))). Verdict: \(t.verdict.rawValue), \(t.verdict.explanation)."
    }
}
