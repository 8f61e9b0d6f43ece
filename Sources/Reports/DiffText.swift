// Text renderings of `cpiscope diff`: an aligned table for terminals and one CSV with a
// `section` column (head, layer, lens_mc, measure, trajectory, spearman, compare, and for runs
// with direct logit attribution dla_head, dla_trajectory, dla_component; a run with one complete
// checkpoint has level_measure, level_head, level_layer and level_lens_mc instead of the pair and
// trajectory sections).
import Analysis
import Foundation

public enum DiffText {
    /// Aligned plain-text tables; `top` limits the head rows per checkpoint pair.
    public static func table(_ r: DiffResult, top: Int) -> String {
        let run = r.run
        var o = "run \(run.path): \(run.checkpoints.count) complete checkpoints, \(run.probes.count) probes, \(run.layers) layers × \(run.heads) heads\n"
        o += "bootstrap: seed \(r.options.seed), \(r.options.resamples) resamples; intervals are 95% percentile intervals of paired per-probe differences\n"
        if !run.incompleteCheckpoints.isEmpty { o += "left out (incomplete): \(run.incompleteCheckpoints.joined(separator: ", "))\n" }
        for d in r.diffs {
            let pair = "\(d.fromName) (step \(d.fromStep)) → \(d.toName) (step \(d.toStep))"
            o += "\n== \(d.span) attention by head, \(pair): top \(min(top, d.heads.count)) of \(d.heads.count) by |change| ==\n"
            o += align([["layer", "head", "from", "to", "change", "95% CI", "n"]] + d.heads.prefix(top).map { h in
                [String(h.layer), String(h.head)] + cells(h.change)
            })
            o += "\n== \(d.span) attention by layer (mean over heads), \(pair) ==\n"
            o += align([["layer", "from", "to", "change", "95% CI", "n"]] + d.layers.map { [String($0.layer)] + cells($0.change) })
            o += "\n== logit-lens M_C by lens layer (0 = embeddings), \(pair) ==\n"
            o += align([["lens layer", "from", "to", "change", "95% CI", "n"]] + d.lens.map { [String($0.layer)] + cells($0.change) })
            o += "\n== measures, \(pair) ==\n"
            o += align([["measure", "from", "to", "change", "95% CI", "n"]] + d.measures.map { [$0.measure.rawValue] + cells($0.change) })
        }
        let h = r.headline
        if let levels = h.levels {
            o += levelsTable(levels, top: top)
        } else {
            o += "\n== trajectories (peak = first checkpoint with the largest mean, none for a constant series; drop = peak − final; a change counts when it exceeds its 95% half-width and the minimum effect) ==\n"
            o += align([["measure", "first", "peak", "at (step)", "final", "drop", "95% CI", "n", "min effect", "verdict"]]
                       + (h.trajectories.measures + h.trajectories.layers).map { trajectoryRow($0, run) })
            o += "\n== Spearman rho across checkpoints: context attention per layer vs counterfactual accuracy ==\n"
            o += align([["layer", "rho", "n"]] + h.trajectories.correlations.map {
                [$0.layer.map(String.init) ?? "all", Fmt.signed($0.correlation.rho), String($0.correlation.n)]
            })
        }
        if let d = h.dla { o += dlaTable(r, d) }
        if let c = r.comparison {
            o += "\n== comparison: B − A per checkpoint, paired by probe id (A = \(c.pathA), B = \(c.pathB)) ==\n"
            var rows = [["measure", "checkpoint", "A", "B", "B − A", "95% CI", "n"]]
            for m in c.measures {
                for (i, e) in m.difference.enumerated() {
                    rows.append([m.measure.rawValue, c.checkpoints[i], Fmt.number(m.trajectoryA.values[i]), Fmt.number(m.trajectoryB.values[i]),
                                 Fmt.signed(e.value), Fmt.interval(e.interval), String(e.n)])
                }
            }
            o += align(rows)
            if c.checkpoints.count > 1 {
                o += "\nverdicts: " + c.measures.map { "\($0.measure.rawValue) A \($0.trajectoryA.verdict.rawValue), B \($0.trajectoryB.verdict.rawValue)" }.joined(separator: "; ") + "\n"
            }
        }
        if let levels = h.levels {
            let e = levels.level(.counterfactualAccuracy)
            o += "\nheadline: one checkpoint (\(levels.name)): \(Measure.counterfactualAccuracy.label.lowercased()) \(Fmt.number(e.value)) \(Fmt.interval(e.interval)) (n = \(e.n)); a trajectory needs two complete checkpoints\n"
        } else {
            o += "\nheadline: \(Headline.describe(h.primary, checkpoints: h.checkpoints, steps: h.steps))\n"
        }
        return o
    }

    /// The tables of a run with one complete checkpoint: each measure's mean, the heads and layers on
    /// the span, and M_C per lens layer, with 95% intervals; `top` limits the head rows.
    static func levelsTable(_ x: CheckpointLevels, top: Int) -> String {
        let at = "\(x.name) (step \(x.step))"
        var o = "\n== one complete checkpoint, \(at): no checkpoint pair, trajectory or verdict (they need two); means over probes with 95% intervals ==\n"
        o += "\n== measures at \(at) ==\n"
        o += align([["measure", "mean", "95% CI", "n"]] + x.measures.map { [$0.measure.rawValue] + levelCells($0.estimate) })
        o += "\n== \(x.span) attention by head at \(at): top \(min(top, x.heads.count)) of \(x.heads.count) by mean ==\n"
        o += align([["layer", "head", "mean", "95% CI", "n"]] + x.heads.prefix(top).map { [String($0.layer), String($0.head)] + levelCells($0.estimate) })
        o += "\n== \(x.span) attention by layer (mean over heads) at \(at) ==\n"
        o += align([["layer", "mean", "95% CI", "n"]] + x.layers.map { [String($0.layer)] + levelCells($0.estimate) })
        o += "\n== logit-lens M_C by lens layer (0 = embeddings) at \(at) ==\n"
        o += align([["lens layer", "mean", "95% CI", "n"]] + x.lens.map { [String($0.layer)] + levelCells($0.estimate) })
        return o
    }

    static func levelCells(_ e: Estimate) -> [String] {
        [Fmt.number(e.value), Fmt.interval(e.interval), String(e.n)]
    }

    /// One CSV of every row; `top` limits the head rows per pair (nil = all).
    public static func csv(_ r: DiffResult, top: Int?) -> String {
        var t = CSVTable(["section", "measure", "from", "to", "layer", "head", "mean_from", "mean_to", "change", "ci_low", "ci_high", "n", "verdict", "rho", "role", "rank"])
        func row(_ section: String, _ measure: String, _ from: String, _ to: String, _ layer: Int?, _ head: Int?, _ c: Change) {
            let e = c.estimate
            t.add([.text(section), .text(measure), .text(from), .text(to), .text(layer.map(String.init) ?? ""), .text(head.map(String.init) ?? ""),
                   .number(c.meanFrom), .number(c.meanTo), .number(e.value), .number(e.interval.low), .number(e.interval.high), .int(e.n), .text(""), .text(""), .text(""), .text("")])
        }
        for d in r.diffs {
            let heads = top.map { Array(d.heads.prefix($0)) } ?? d.heads
            for h in heads { row("head", "\(d.span)_attention", d.fromName, d.toName, h.layer, h.head, h.change) }
            for l in d.layers { row("layer", "\(d.span)_attention", d.fromName, d.toName, l.layer, nil, l.change) }
            for l in d.lens { row("lens_mc", "mc_ratio", d.fromName, d.toName, l.layer, nil, l.change) }
            for m in d.measures { row("measure", m.measure.rawValue, d.fromName, d.toName, nil, nil, m.change) }
        }
        let run = r.run, C = run.checkpoints.count
        if let x = r.headline.levels {
            // One checkpoint: level_* rows hold the mean at it (from = to = it; mean_from = mean_to = change = the mean).
            func level(_ section: String, _ measure: String, _ layer: Int?, _ head: Int?, _ e: Estimate) {
                t.add([.text(section), .text(measure), .text(x.name), .text(x.name), .text(layer.map(String.init) ?? ""), .text(head.map(String.init) ?? ""),
                       .number(e.value), .number(e.value), .number(e.value), .number(e.interval.low), .number(e.interval.high), .int(e.n),
                       .text(""), .text(""), .text(""), .text("")])
            }
            for m in x.measures { level("level_measure", m.measure.rawValue, nil, nil, m.estimate) }
            for h in top.map({ Array(x.heads.prefix($0)) }) ?? x.heads { level("level_head", "\(x.span)_attention", h.layer, h.head, h.estimate) }
            for l in x.layers { level("level_layer", "\(x.span)_attention", l.layer, nil, l.estimate) }
            for l in x.lens { level("level_lens_mc", "mc_ratio", l.layer, nil, l.estimate) }
        }
        // Trajectory rows: from = peak, to = final, change = final − peak (= −drop), interval negated to match.
        for x in r.headline.levels == nil ? r.headline.trajectories.measures + r.headline.trajectories.layers : [] {
            let k = x.peak
            t.add([.text("trajectory"), .text(x.id), .text(k.map { run.checkpoints[$0] } ?? ""), .text(run.checkpoints[C - 1]), .text(""), .text(""),
                   .number(k.map { x.values[$0] } ?? .nan), .number(x.values[C - 1]), .number(-x.drop.value),
                   .number(-x.drop.interval.high), .number(-x.drop.interval.low), .int(x.drop.n), .text(x.verdict.rawValue), .text(""), .text(""), .text("")])
        }
        for c in r.headline.levels == nil ? r.headline.trajectories.correlations : [] {
            t.add([.text("spearman"), .text("context_attention~counterfactual_accuracy"), .text(run.checkpoints[0]), .text(run.checkpoints[C - 1]),
                   .text(c.layer.map(String.init) ?? "all"), .text(""), .number(.nan), .number(.nan), .number(.nan), .number(.nan), .number(.nan),
                   .int(c.correlation.n), .text(""), .number(c.correlation.rho), .text(""), .text("")])
        }
        if let d = r.headline.dla {
            // dla_head: the mean at one checkpoint (from = to = it; mean_from = mean_to = change = the mean; rank among all heads).
            for k in r.dlaRankings {
                let name = run.checkpoints[k.checkpoint]
                for (role, heads) in [("context_head", k.contextHeads), ("memory_head", k.memoryHeads)] {
                    for x in heads {
                        t.add([.text("dla_head"), .text(role), .text(name), .text(name), .int(x.layer), .int(x.head), .number(x.estimate.value),
                               .number(x.estimate.value), .number(x.estimate.value), .number(x.estimate.interval.low), .number(x.estimate.interval.high),
                               .int(x.estimate.n), .text(""), .text(""), .text(x.role.rawValue), .int(x.rank)])
                    }
                }
            }
            // dla_trajectory / dla_component: per checkpoint, the mean with its 95% band.
            for (section, series) in [("dla_trajectory", d.tracked.map { ($0.trajectory, $0.bands, $0.role.rawValue, $0.layer as Int?, $0.head as Int?) }),
                                      ("dla_component", d.components.map { ($0.trajectory, $0.bands, "", nil, nil) })] {
                for (x, bands, role, layer, head) in series {
                    for c in 0..<C {
                        t.add([.text(section), .text(x.id), .text(run.checkpoints[c]), .text(run.checkpoints[c]), .text(layer.map(String.init) ?? ""),
                               .text(head.map(String.init) ?? ""), .number(x.values[c]), .number(x.values[c]), .number(x.values[c]),
                               .number(bands[c].low), .number(bands[c].high), .int(x.counts[c]), .text(""), .text(""), .text(role), .text("")])
                    }
                }
            }
        }
        if let c = r.comparison {
            for m in c.measures {
                for (i, e) in m.difference.enumerated() {
                    t.add([.text("compare"), .text(m.measure.rawValue), .text(c.pathA), .text(c.pathB), .text(""), .text(""),
                           .number(m.trajectoryA.values[i]), .number(m.trajectoryB.values[i]), .number(e.value),
                           .number(e.interval.low), .number(e.interval.high), .int(e.n), .text(c.checkpoints[i]), .text(""), .text(""), .text("")])
                }
            }
        }
        return t.text
    }

    /// The DLA sections of the table: rankings at the compared checkpoints, tracked heads, components.
    static func dlaTable(_ r: DiffResult, _ d: LogitAttributionAnalysis) -> String {
        let run = r.run
        var o = ""
        for k in r.dlaRankings {
            o += "\n== direct logit attribution by head at \(run.checkpoints[k.checkpoint]) (step \(run.steps[k.checkpoint])): "
            o += "context heads (largest mean DLA) and memory heads (most negative); logit difference context − memory answer ==\n"
            o += align([["role", "rank", "layer", "head", "mean DLA", "95% CI", "n"]]
                       + k.contextHeads.enumerated().map { dlaRow("context", $0 + 1, $1) } + k.memoryHeads.enumerated().map { dlaRow("memory", $0 + 1, $1) })
        }
        if run.checkpoints.count > 1 {
            o += "\n== head DLA trajectories: top context and memory heads at "
                + (d.peakKnown ? "the counterfactual-accuracy peak \(run.checkpoints[d.peak])" : "the final checkpoint \(run.checkpoints[d.peak]) (counterfactual accuracy has no peak)") + " ==\n"
            o += align([["role", "measure", "first", "peak", "at (step)", "final", "drop", "95% CI", "n", "min effect", "verdict"]]
                       + d.tracked.map { [$0.role.rawValue] + trajectoryRow($0.trajectory, run) })
            o += "\n== logit difference and its components (mean over probes) ==\n"
            o += align([["component"] + run.checkpoints] + d.components.map { x in [x.trajectory.id] + x.trajectory.values.map { Fmt.signed($0) } })
        } else {
            o += "\n== logit difference and its components at \(run.checkpoints[0]) (mean over probes, 95% interval) ==\n"
            o += align([["component", "mean", "95% CI", "n"]] + d.components.map { x in
                [x.trajectory.id, Fmt.signed(x.trajectory.values[0]), Fmt.interval(x.bands[0]), String(x.trajectory.counts[0])]
            })
        }
        return o
    }

    static func dlaRow(_ role: String, _ i: Int, _ x: HeadDLA) -> [String] {
        [role, String(i), String(x.layer), String(x.head), Fmt.signed(x.estimate.value), Fmt.interval(x.estimate.interval), String(x.estimate.n)]
    }

    static func cells(_ c: Change) -> [String] {
        [Fmt.number(c.meanFrom), Fmt.number(c.meanTo), Fmt.signed(c.estimate.value), Fmt.interval(c.estimate.interval), String(c.estimate.n)]
    }

    static func trajectoryRow(_ t: MeasureTrajectory, _ run: RunData) -> [String] {
        [t.id, Fmt.number(t.values.first ?? .nan), t.peak.map { Fmt.number(t.values[$0]) } ?? "n/a",
         t.peak.map { "\(run.checkpoints[$0]) (\(run.steps[$0]))" } ?? (t.constant ? "none (constant)" : "n/a"), Fmt.number(t.values.last ?? .nan),
         Fmt.number(t.drop.value), Fmt.interval(t.drop.interval), String(t.drop.n), Fmt.number(t.minimumEffect), t.verdict.rawValue]
    }

    /// Columns padded to their widest cell (first column left-aligned, others right-aligned).
    static func align(_ rows: [[String]]) -> String {
        guard let width = rows.map(\.count).max() else { return "" }
        var w = [Int](repeating: 0, count: width)
        for r in rows { for (i, c) in r.enumerated() { w[i] = max(w[i], c.count) } }
        return rows.map { r in
            r.enumerated().map { i, c in
                let pad = String(repeating: " ", count: w[i] - c.count)
                return i == 0 ? c + pad : pad + c
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}

extension DiffText {
    /// `diff` of an intervention file: the interventions at one checkpoint ranked by |measure|, each
    /// with every measure's mean change and 95% interval; `top` limits the rows.
    public static func table(_ r: InterventionRanking, top: Int) -> String {
        var o = "intervention file \(r.run.path): \(r.run.checkpoints.count) complete checkpoints, \(r.run.probes.count) probes, \(r.run.names.count) interventions\n"
        o += "bootstrap: seed \(r.seed), \(r.resamples) resamples; intervals are 95% percentile intervals of paired per-probe differences (intervened − clean)\n"
        if !r.run.incompleteCheckpoints.isEmpty { o += "left out (incomplete): \(r.run.incompleteCheckpoints.joined(separator: ", "))\n" }
        o += "\n== interventions at \(r.checkpoint) (step \(r.step))\(r.kind.map { ", kind \($0)" } ?? ""), ranked by |\(r.measure.label)|: "
        o += "top \(min(top, r.ranked.count)) of \(r.ranked.count) ==\n"
        var rows = [["intervention", "rank", "Δ logit diff", "95% CI", "Δ M_C", "95% CI"] + (r.run.generated ? ["Δ cf acc", "95% CI"] : [])
                    + ["recovery", "95% CI", "n"]]
        for (k, e) in r.ranked.prefix(top).enumerated() {
            var row = [e.name, String(k + 1)]
            for x in [e.logitDiffChange, e.mcChange] + (r.run.generated ? [e.counterfactualChange ?? .undefined] : []) + [e.recovery] {
                row += [Fmt.signed(x.value), Fmt.interval(x.interval)]
            }
            rows.append(row + [String(e.logitDiffChange.n)])
        }
        o += align(rows)
        o += "\n" + r.headline.map { "headline: \($0)\n" }.joined()
        return o
    }

    /// One CSV row per ranked intervention (`top` limits them; nil = all), the columns of the report's CSVs plus the rank.
    public static func csv(_ r: InterventionRanking, top: Int?) -> String {
        InterventionReport.effectsCSV(top.map { Array(r.ranked.prefix($0)) } ?? r.ranked, run: r.run, ranks: true)
    }
}
