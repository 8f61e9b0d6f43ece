// JSON-compatible dictionaries of analysis results (for `--format json` and reports). Every
// number is a Double; NaN (no data) is written as null.
import Foundation

public enum AnalysisJSON {
    public static func number(_ x: Double) -> Any { x.isFinite ? x : NSNull() }

    public static func estimate(_ e: Estimate) -> [String: Any] {
        ["value": number(e.value), "ci_low": number(e.interval.low), "ci_high": number(e.interval.high), "n": e.n]
    }

    public static func change(_ c: Change) -> [String: Any] {
        ["mean_from": number(c.meanFrom), "mean_to": number(c.meanTo), "change": estimate(c.estimate)]
    }

    public static func diff(_ d: CheckpointDiff, top: Int? = nil) -> [String: Any] {
        let heads = top.map { Array(d.heads.prefix($0)) } ?? d.heads
        return [
            "from": ["name": d.fromName, "step": d.fromStep], "to": ["name": d.toName, "step": d.toStep],
            "span": d.span,
            "heads": heads.map { h -> [String: Any] in
                var o = change(h.change); o["layer"] = h.layer; o["head"] = h.head; return o
            },
            "layers": d.layers.map { l -> [String: Any] in var o = change(l.change); o["layer"] = l.layer; return o },
            "lens_mc": d.lens.map { l -> [String: Any] in var o = change(l.change); o["lens_layer"] = l.layer; return o },
            "measures": d.measures.map { m -> [String: Any] in
                var o = change(m.change); o["measure"] = m.measure.rawValue; o["unit"] = m.measure.unit; return o
            },
        ]
    }

    /// One checkpoint's means (a run with one complete checkpoint).
    public static func levels(_ x: CheckpointLevels) -> [String: Any] {
        func level(_ e: Estimate) -> [String: Any] { estimate(e) }
        return [
            "checkpoint": ["name": x.name, "step": x.step], "span": x.span,
            "measures": x.measures.map { m -> [String: Any] in var o = level(m.estimate); o["measure"] = m.measure.rawValue; o["unit"] = m.measure.unit; return o },
            "heads": x.heads.map { h -> [String: Any] in var o = level(h.estimate); o["layer"] = h.layer; o["head"] = h.head; return o },
            "layers": x.layers.map { l -> [String: Any] in var o = level(l.estimate); o["layer"] = l.layer; return o },
            "lens_mc": x.lens.map { l -> [String: Any] in var o = level(l.estimate); o["lens_layer"] = l.layer; return o },
        ]
    }

    public static func trajectory(_ t: MeasureTrajectory, checkpoints: [String], steps: [Int64]) -> [String: Any] {
        var o: [String: Any] = [
            "id": t.id, "label": t.label, "unit": t.unit,
            "values": t.values.map(number), "counts": t.counts,
            "rise": estimate(t.rise), "drop": estimate(t.drop), "net": estimate(t.net),
            "verdict": t.verdict.rawValue, "minimum_effect": number(t.minimumEffect), "constant": t.constant,
        ]
        if let k = t.peak {
            o["peak"] = ["index": k, "name": checkpoints[k], "step": steps[k], "value": number(t.values[k])]
        } else {
            o["peak"] = NSNull()
        }
        return o
    }

    public static func headDLA(_ x: HeadDLA) -> [String: Any] {
        var o = estimate(x.estimate)
        o["layer"] = x.layer; o["head"] = x.head; o["rank"] = x.rank; o["role"] = x.role.rawValue
        return o
    }

    public static func ranking(_ r: DLARanking, run: RunData) -> [String: Any] {
        ["checkpoint": run.checkpoints[r.checkpoint], "step": run.steps[r.checkpoint],
         "context_heads": r.contextHeads.map(headDLA), "memory_heads": r.memoryHeads.map(headDLA)]
    }

    static func bands(_ b: [Interval]) -> [[Any]] { b.map { [number($0.low), number($0.high)] } }

    /// Direct logit attribution: key-checkpoint rankings, tracked heads, components, role changes, span splits.
    public static func dla(_ d: LogitAttributionAnalysis) -> [String: Any] {
        let run = d.run
        let key = { (c: Int) -> [String: Any] in ["name": run.checkpoints[c], "step": run.steps[c]] }
        return [
            "definition": run.dla?.definition ?? NSNull(),
            "first": key(d.first), "peak": d.peakKnown ? key(d.peak) : NSNull(), "final": key(d.final),
            "rankings": d.keyRankings.map { ranking($0, run: run) },
            "tracked_heads": d.tracked.map { t -> [String: Any] in
                ["role": t.role.rawValue, "layer": t.layer, "head": t.head,
                 "trajectory": trajectory(t.trajectory, checkpoints: run.checkpoints, steps: run.steps), "bands": bands(t.bands)]
            },
            "components": d.components.map { x -> [String: Any] in
                ["trajectory": trajectory(x.trajectory, checkpoints: run.checkpoints, steps: run.steps), "bands": bands(x.bands)]
            },
            "role_changes": d.roleChanges.map { r -> [String: Any] in
                ["layer": r.layer, "head": r.head, "flips": r.flips, "rank_shift": r.rankShift,
                 "first": headDLA(r.at[0]), "peak": headDLA(r.at[1]), "final": headDLA(r.at[2])]
            },
            "span_split": d.spanSplits.map { x -> [String: Any] in
                ["role": x.role.rawValue, "layer": x.layer, "head": x.head, "checkpoint": run.checkpoints[x.checkpoint],
                 "total": number(x.total), "spans": Dictionary(uniqueKeysWithValues: zip(run.spans, x.perSpan.map(number)))]
            },
        ]
    }

    public static func headline(_ h: Headline) -> [String: Any] {
        var o: [String: Any] = [
            "run": h.run, "probes": h.probes, "seed": h.seed, "resamples": h.resamples, "level": 0.95,
            "checkpoints": zip(h.checkpoints, h.steps).map { ["name": $0, "step": $1] },
            "incomplete_checkpoints": h.incompleteCheckpoints,
            "primary": h.primary.id,
            "peak": h.peakCheckpoint.map { ["name": $0, "step": h.peakStep ?? -1] as [String: Any] } ?? NSNull(),
            "drop": estimate(h.drop), "verdict": h.verdict.rawValue,
            "trajectories": h.trajectories.measures.map { trajectory($0, checkpoints: h.checkpoints, steps: h.steps) },
            "layer_trajectories": h.trajectories.layers.map { trajectory($0, checkpoints: h.checkpoints, steps: h.steps) },
            "spearman": h.trajectories.correlations.map { c -> [String: Any] in
                ["layer": c.layer.map { $0 as Any } ?? "all", "rho": number(c.correlation.rho), "n": c.correlation.n]
            },
            "top_heads": h.diff.map { d -> Any in
                ["from": d.fromName, "to": d.toName, "span": d.span,
                 "heads": h.topHeads.map { x -> [String: Any] in
                     var o = change(x.change); o["layer"] = x.layer; o["head"] = x.head; return o
                 },
                 "layers": h.topLayers.map { x -> [String: Any] in var o = change(x.change); o["layer"] = x.layer; return o }] as [String: Any]
            } ?? NSNull(),
        ]
        if let l = h.levels { o["levels"] = levels(l) }
        if let d = h.dla { o["dla"] = dla(d) }
        return o
    }

    public static func comparison(_ c: RunComparison) -> [String: Any] {
        [
            "run_a": c.pathA, "run_b": c.pathB, "probes": c.probes,
            "checkpoints": zip(c.checkpoints, c.steps).map { ["name": $0, "step": $1] },
            "measures": c.measures.map { m -> [String: Any] in
                [
                    "measure": m.measure.rawValue, "unit": m.measure.unit,
                    "a": trajectory(m.trajectoryA, checkpoints: c.checkpoints, steps: c.steps),
                    "b": trajectory(m.trajectoryB, checkpoints: c.checkpoints, steps: c.steps),
                    "difference_b_minus_a": m.difference.map(estimate),
                ]
            },
        ]
    }

    /// The whole diff result.
    public static func result(_ r: DiffResult, top: Int? = nil) -> [String: Any] {
        var o: [String: Any] = [
            "run": r.run.path, "span": r.options.span, "seed": r.options.seed, "resamples": r.options.resamples,
            "level": 0.95, "probes": r.run.probes.count, "layers": r.run.layers, "heads": r.run.heads,
            "checkpoints": zip(r.run.checkpoints, r.run.steps).map { ["name": $0, "step": $1] },
            "incomplete_checkpoints": r.run.incompleteCheckpoints,
            "diffs": r.diffs.map { diff($0, top: top) },
            "headline": headline(r.headline),
        ]
        if !r.dlaRankings.isEmpty { o["dla_rankings"] = r.dlaRankings.map { ranking($0, run: r.run) } }
        if let c = r.comparison { o["comparison"] = comparison(c) }
        return o
    }

    /// One intervention's effect: its coordinates and every estimate (null where undefined).
    public static func effect(_ e: InterventionEffect) -> [String: Any] {
        ["intervention": e.name, "kind": e.kind, "layer": e.layer, "head": e.head, "component": e.component, "source": e.source,
         "logit_diff_change": estimate(e.logitDiffChange), "mc_change": estimate(e.mcChange),
         "counterfactual_change": e.counterfactualChange.map(estimate) ?? NSNull(), "recovery": estimate(e.recovery)]
    }

    /// `diff --format json` of an intervention file; `top` limits the ranked list (nil = all).
    public static func interventions(_ r: InterventionRanking, top: Int? = nil) -> [String: Any] {
        let shown = top.map { Array(r.ranked.prefix($0)) } ?? r.ranked
        return [
            "file": r.run.path, "kind": "interventions", "checkpoint": ["name": r.checkpoint, "step": r.step],
            "checkpoints": r.run.checkpoints, "incomplete_checkpoints": r.run.incompleteCheckpoints, "probes": r.run.probes.count,
            "ranked_by": r.measure.rawValue, "filter_kind": r.kind ?? NSNull(), "bootstrap": ["seed": r.seed, "resamples": r.resamples, "level": 0.95],
            "total": r.ranked.count,
            "interventions": shown.enumerated().map { k, e -> [String: Any] in var o = effect(e); o["rank"] = k + 1; return o },
            "headline": r.headline,
        ]
    }

    /// Deterministic text (sorted keys).
    public static func string(_ object: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted])
        else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
