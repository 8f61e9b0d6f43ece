// What one `cpiscope diff` invocation computes: the checkpoint pairs asked for, the run's
// trajectories and headline, and optionally a comparison with a second run. A run with one complete
// checkpoint has no pair and no trajectory: its headline carries the checkpoint's levels
// (CheckpointLevels.swift), and `--against` still compares it with another run of that checkpoint.
import Foundation

/// Options of a diff.
public struct DiffOptions: Sendable {
    /// Span whose attention mass is compared per head (`context`, `subject`, ...).
    public var span = "context"
    /// Checkpoint names or steps; nil = first / last complete checkpoint.
    public var from: String?
    public var to: String?
    /// Every checkpoint against `from` (default the first) instead of one pair.
    public var each = false
    public var seed: UInt64 = 0
    public var resamples = 2000
    /// Direct logit attribution (runs of schema version 2): context and memory heads at every
    /// checkpoint compared, `dlaTop` of each; `dla = false` leaves it out.
    public var dla = true
    public var dlaTop = 5

    public init() {}
}

/// The result of a diff.
public struct DiffResult: Sendable {
    public let run: RunData
    public let options: DiffOptions
    /// The checkpoint pairs compared (empty for a run with one complete checkpoint).
    public let diffs: [CheckpointDiff]
    public let headline: Headline
    public let comparison: RunComparison?
    /// Context and memory heads at each checkpoint the diffs compare (ascending; empty without DLA).
    public let dlaRankings: [DLARanking]
}

public enum DiffAnalysis {
    /// Opens `url` (and `against`), checks the options and computes the diff.
    /// - Throws: `AnalysisError`.
    public static func run(_ url: URL, options: DiffOptions, against other: URL? = nil) throws -> DiffResult {
        if options.each, options.to != nil {
            throw AnalysisError.invalidOption(option: "--each", detail: "compares every checkpoint with --from; drop --to")
        }
        let run = try RunData(url: url)
        try run.requireCheckpoints(1)
        _ = try run.spanIndex(options.span)
        let bootstrap = try Bootstrap(seed: options.seed, resamples: options.resamples)
        let last = run.checkpoints.count - 1
        let from = try options.from.map(run.checkpointIndex) ?? 0
        var pairs: [(Int, Int)]
        if last == 0 {
            // One complete checkpoint: nothing to pair; --from/--to/--each have no second checkpoint.
            if options.each || options.to != nil || options.from != nil {
                throw AnalysisError.invalidOption(option: options.each ? "--each" : options.from != nil ? "--from" : "--to",
                                                  detail: "\(run.path) has one complete checkpoint (\(run.checkpoints[0])), so there is no second checkpoint to compare with; drop the option to see its per-head and per-layer means, or compare two runs of it with --against")
            }
            pairs = []
        } else if options.each {
            pairs = run.checkpoints.indices.filter { $0 != from }.map { (from, $0) }
        } else {
            let to = try options.to.map(run.checkpointIndex) ?? last
            guard to != from else {
                throw AnalysisError.invalidOption(option: "--from/--to",
                                                  detail: "both name \(run.checkpoints[from]); pick two different checkpoints")
            }
            pairs = [(from, to)]
        }
        let measures = try RunMeasures(run: run)
        let diffs = try pairs.map {
            try CheckpointDiff(run: run, measures: measures, span: options.span, from: $0.0, to: $0.1, bootstrap: bootstrap)
        }
        guard options.dlaTop >= 1 else { throw AnalysisError.invalidOption(option: "--dla-top", detail: "\(options.dlaTop) is below 1") }
        let headline = try TrajectoryAnalysis.analyze(run, measures: measures, bootstrap: bootstrap, dla: options.dla)
        let ends = pairs.isEmpty ? [0] : Set(pairs.flatMap { [$0.0, $0.1] }).sorted()
        let dlaRankings = try headline.dla.map { d in try ends.map { try d.ranking(at: $0, top: options.dlaTop, bootstrap: bootstrap) } } ?? []
        var comparison: RunComparison?
        if let other {
            let b = try RunData(url: other)
            _ = try RunComparison.match(run, b)
            comparison = try RunComparison(run, b, measuresA: measures, measuresB: try RunMeasures(run: b), bootstrap: bootstrap)
        }
        return DiffResult(run: run, options: options, diffs: diffs, headline: headline, comparison: comparison,
                          dlaRankings: dlaRankings)
    }
}
