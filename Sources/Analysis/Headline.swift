// The headline of a run: where context reliance peaks and falls, which heads and layers move,
// and how sure we are. `cpiscope demo`, `cpiscope report` and `cpiscope diff` print it.
import Foundation

/// The headline answers for one run.
public struct Headline: Sendable {
    public let run: String
    public let checkpoints: [String]
    public let steps: [Int64]
    public let probes: Int
    public let seed: UInt64
    public let resamples: Int
    /// Checkpoints left out because they are not complete.
    public let incompleteCheckpoints: [String]
    /// All trajectories of the run.
    public let trajectories: RunTrajectories
    /// The primary measure: counterfactual accuracy (context reliance in generation).
    public let primary: MeasureTrajectory
    /// Context attention change between `diff.from` (the primary measure's peak, or the first
    /// checkpoint when the peak is the final one or there is none) and the final checkpoint; nil for a
    /// run with one complete checkpoint.
    public let diff: CheckpointDiff?
    /// The 5 heads and 3 layers whose context attention changed most in `diff` (empty without one).
    public let topHeads: [HeadChange]
    public let topLayers: [LayerChange]
    /// A run with one complete checkpoint: its measures, heads and layers (context span) with
    /// intervals; nil when the run has two or more.
    public let levels: CheckpointLevels?
    /// Direct logit attribution (nil for a schema-version-1 run or when not asked for).
    public let dla: LogitAttributionAnalysis?

    public var peakCheckpoint: String? { primary.peak.map { checkpoints[$0] } }
    public var peakStep: Int64? { primary.peak.map { steps[$0] } }
    /// Peak − final of the primary measure, with its 95% interval.
    public var drop: Estimate { primary.drop }
    public var verdict: Verdict { primary.verdict }
    /// Whether the run has one complete checkpoint (no pair, no trajectory, no verdict).
    public var single: Bool { checkpoints.count == 1 }

    /// A plain-text summary, one fact per line.
    public func lines() -> [String] {
        var out: [String] = []
        if let levels {
            out.append("run \(run): 1 checkpoint (\(levels.name), step \(levels.step)), \(probes) probes; bootstrap seed \(seed), \(resamples) resamples; "
                       + "one checkpoint, so no trajectory, peak or verdict: means over probes with 95% intervals")
        } else {
            out.append("run \(run): \(checkpoints.count) checkpoints (steps \(steps.first ?? 0)–\(steps.last ?? 0)), \(probes) probes; bootstrap seed \(seed), \(resamples) resamples")
        }
        if !incompleteCheckpoints.isEmpty {
            out.append("left out (incomplete): \(AnalysisError.list(incompleteCheckpoints))")
        }
        if let levels {
            out += Self.describe(levels)
        } else {
            for t in trajectories.measures { out.append(Self.describe(t, checkpoints: checkpoints, steps: steps)) }
        }
        if let diff {
            out.append("top moving heads (\(diff.span) attention, \(diff.fromName) → \(diff.toName)): "
                       + topHeads.map { "L\($0.layer)H\($0.head) \(Fmt.signed($0.change.estimate.value)) \(Fmt.interval($0.change.estimate.interval))" }.joined(separator: ", "))
            out.append("top moving layers: "
                       + topLayers.map { "L\($0.layer) \(Fmt.signed($0.change.estimate.value)) \(Fmt.interval($0.change.estimate.interval))" }.joined(separator: ", "))
            if let all = trajectories.correlations.last {
                out.append("Spearman rho (context attention vs counterfactual accuracy across checkpoints): \(Fmt.number(all.correlation.rho)) (n = \(all.correlation.n))")
            }
        }
        if let dla { out += Self.describe(dla, checkpoints: checkpoints) }
        return out
    }

    /// The lines of a one-checkpoint run: each measure's mean, and the heads and layers with the most
    /// attention on the span.
    public static func describe(_ levels: CheckpointLevels) -> [String] {
        var out = levels.measures.map { m in
            "\(m.measure.label) at \(levels.name): \(Fmt.number(m.estimate.value)) \(Fmt.interval(m.estimate.interval)) (n = \(m.estimate.n))"
        }
        out.append("heads with the most \(levels.span) attention at \(levels.name): "
                   + levels.heads.prefix(5).map { "L\($0.layer)H\($0.head) \(Fmt.number($0.estimate.value)) \(Fmt.interval($0.estimate.interval))" }.joined(separator: ", "))
        out.append("layers with the most \(levels.span) attention (mean over heads): "
                   + levels.rankedLayers.prefix(3).map { "L\($0.layer) \(Fmt.number($0.estimate.value)) \(Fmt.interval($0.estimate.interval))" }.joined(separator: ", "))
        return out
    }

    /// "Counterfactual accuracy: peak 0.812 at checkpoint-500 (step 500); final 0.406; drop 0.406 [0.31, 0.50] (n = 32) → inversion"
    /// A constant series names no peak: "Counterfactual accuracy: 0.000 at every checkpoint (constant, no peak) → flat".
    public static func describe(_ t: MeasureTrajectory, checkpoints: [String], steps: [Int64]) -> String {
        if t.constant, let v = t.values.first(where: \.isFinite) {
            return "\(t.label): \(Fmt.number(v)) at every checkpoint (constant, no peak) → \(t.verdict.rawValue)"
        }
        guard let k = t.peak, let last = t.values.last else { return "\(t.label): no data → \(t.verdict.rawValue)" }
        return "\(t.label): first \(Fmt.number(t.values[0])), peak \(Fmt.number(t.values[k])) at \(checkpoints[k]) (step \(steps[k])), "
            + "final \(Fmt.number(last)); drop peak→final \(Fmt.number(t.drop.value)) \(Fmt.interval(t.drop.interval)) (n = \(t.drop.n); "
            + "minimum effect \(Fmt.number(t.minimumEffect))) → \(t.verdict.rawValue)"
    }
}

extension Headline {
    /// The DLA lines: context and memory heads at the peak and the final checkpoint, and the logit
    /// difference split into attention, MLP and the rest.
    public static func describe(_ d: LogitAttributionAnalysis, checkpoints: [String]) -> [String] {
        var out: [String] = []
        let single = d.first == d.final
        for r in d.peak == d.final ? [d.keyRankings[1]] : [d.keyRankings[1], d.keyRankings[2]] {
            let at = single ? checkpoints[r.checkpoint] : "\(checkpoints[r.checkpoint]) (\(r.checkpoint == d.peak && d.peakKnown ? "peak" : "final"))"
            out.append("context heads at \(at) (mean DLA, logits): " + Fmt.heads(r.contextHeads))
            out.append("memory heads at \(at): " + Fmt.heads(r.memoryHeads))
        }
        let parts = ["logit_diff", "attention_heads", "mlp"].compactMap { d.component($0) }
        guard parts.count == 3 else { return out }
        // One entry per distinct key checkpoint ("first = peak" when they coincide).
        out.append("logit difference (context − memory answer, mean over probes): " + d.keyCheckpoints.map { key in
            let v = parts.map { $0.trajectory.values[key.index] }
            let name = single ? "at \(checkpoints[key.index])" : key.roles.joined(separator: " = ")
            return "\(name) \(Fmt.signed(v[0])) = heads \(Fmt.signed(v[1])) + MLP \(Fmt.signed(v[2])) + rest \(Fmt.signed(v[0] - v[1] - v[2]))"
        }.joined(separator: "; "))
        return out
    }
}

/// Entry points for the whole-run analysis.
public enum TrajectoryAnalysis {
    /// Opens `run`, analyses it and returns the headline.
    /// - Throws: `AnalysisError` (not a run, schema version, no complete checkpoint, ...).
    public static func analyze(run url: URL, seed: UInt64 = 0, resamples: Int = 2000) throws -> Headline {
        let run = try RunData(url: url)
        return try analyze(run, measures: try RunMeasures(run: run),
                           bootstrap: try Bootstrap(seed: seed, resamples: resamples))
    }

    /// The headline of an opened run, reusing computed measures; `dla: false` leaves out direct logit
    /// attribution (it is always absent for a version-1 run).
    public static func analyze(_ run: RunData, measures: RunMeasures, bootstrap: Bootstrap, dla: Bool = true) throws -> Headline {
        try run.requireCheckpoints(1)
        let trajectories = try RunTrajectories(run: run, measures: measures, bootstrap: bootstrap)
        let primary = trajectories.trajectory(.counterfactualAccuracy)
        let last = run.checkpoints.count - 1
        let from = primary.peak.map { $0 < last ? $0 : 0 } ?? 0
        let diff = last > 0 ? try CheckpointDiff(run: run, measures: measures, span: "context", from: from, to: last, bootstrap: bootstrap) : nil
        let levels = last == 0 ? try CheckpointLevels(run: run, measures: measures, span: "context", checkpoint: 0, bootstrap: bootstrap) : nil
        return Headline(run: run.path, checkpoints: run.checkpoints, steps: run.steps, probes: run.probes.count,
                        seed: bootstrap.seed, resamples: bootstrap.resamples,
                        incompleteCheckpoints: run.incompleteCheckpoints, trajectories: trajectories, primary: primary,
                        diff: diff, topHeads: Array(diff?.heads.prefix(5) ?? []), topLayers: Array(diff?.rankedLayers.prefix(3) ?? []),
                        levels: levels,
                        dla: dla ? try LogitAttributionAnalysis(run: run, peak: primary.peak, bootstrap: bootstrap) : nil)
    }
}

/// Number formatting shared by diff, report and demo (C locale; NaN prints as "n/a").
public enum Fmt {
    public static func number(_ x: Double, _ digits: Int = 3) -> String {
        x.isFinite ? String(format: "%.\(digits)f", x) : "n/a"
    }

    public static func signed(_ x: Double, _ digits: Int = 3) -> String {
        x.isFinite ? String(format: "%+.\(digits)f", x) : "n/a"
    }

    public static func interval(_ i: Interval, _ digits: Int = 3) -> String {
        i.low.isFinite && i.high.isFinite ? "[\(signed(i.low, digits)), \(signed(i.high, digits))]" : "[n/a]"
    }

    /// "L2H1 +1.234 [+1.100, +1.370]" per head, comma-separated ("none" when empty).
    public static func heads(_ heads: [HeadDLA]) -> String {
        heads.isEmpty ? "none" : heads.map { "\($0.name) \(signed($0.estimate.value)) \(interval($0.estimate.interval))" }.joined(separator: ", ")
    }
}
