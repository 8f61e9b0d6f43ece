// The CSV tables behind each chart and the Markdown summary of the report.
import Analysis
import Foundation

enum ReportFiles {
    /// File name → CSV text, one per chart or table.
    static func csvs(_ m: ReportModel) -> [(String, String)] {
        let run = m.run, C = run.checkpoints.count, P = run.probes.count, L = run.layers, H = run.heads, LL = run.lensLayers
        var out: [(String, String)] = []

        var t = CSVTable(["checkpoint", "step", "measure", "unit", "mean", "ci_low", "ci_high", "n"])
        for measure in Measure.allCases {
            let curve = m.measures.curve(measure), band = m.bands[measure] ?? []
            let n = m.headline.trajectories.trajectory(measure).counts
            for c in 0..<C {
                t.add([.text(run.checkpoints[c]), .int(Int(run.steps[c])), .text(measure.rawValue), .text(measure.unit),
                       .number(curve[c]), .number(band[c].low), .number(band[c].high), .int(n[c])])
            }
        }
        out.append(("trajectory.csv", t.text))

        if let x = m.levels, let context = m.headline.levels, let subject = m.subjectLevels {
            // One checkpoint: the means behind the checkpoint table, the layer chart and the head table.
            var lv = CSVTable(["checkpoint", "step", "kind", "name", "span", "layer", "head", "mean", "ci_low", "ci_high", "n"])
            func add(_ kind: String, _ name: String, _ span: String, _ layer: Int?, _ head: Int?, _ e: Estimate) {
                lv.add([.text(x.name), .int(Int(x.step)), .text(kind), .text(name), .text(span), .text(layer.map(String.init) ?? ""),
                        .text(head.map(String.init) ?? ""), .number(e.value), .number(e.interval.low), .number(e.interval.high), .int(e.n)])
            }
            for e in x.measures { add("measure", e.measure.rawValue, "", nil, nil, e.estimate) }
            for y in [context, subject] + (x.span == "context" || x.span == "subject" ? [] : [x]) {
                for l in y.layers { add("layer", "\(y.span)_attention", y.span, l.layer, nil, l.estimate) }
            }
            for h in x.heads { add("head", "\(x.span)_attention", x.span, h.layer, h.head, h.estimate) }
            for l in x.lens { add("lens_mc", "mc_ratio", "", l.layer, nil, l.estimate) }
            out.append(("checkpoint_levels.csv", lv.text))
        }

        var v = CSVTable(["measure", "unit", "first", "peak_checkpoint", "peak_step", "peak", "final", "rise", "rise_ci_low", "rise_ci_high",
                          "drop", "drop_ci_low", "drop_ci_high", "drop_n", "net", "net_ci_low", "net_ci_high", "verdict", "minimum_effect"])
        for x in m.headline.trajectories.measures + m.headline.trajectories.layers {
            v.add([.text(x.id), .text(x.unit), .number(x.values.first ?? .nan), .text(x.peak.map { run.checkpoints[$0] } ?? ""),
                   .text(x.peak.map { String(run.steps[$0]) } ?? ""), .number(x.peak.map { x.values[$0] } ?? .nan), .number(x.values.last ?? .nan),
                   .number(x.rise.value), .number(x.rise.interval.low), .number(x.rise.interval.high),
                   .number(x.drop.value), .number(x.drop.interval.low), .number(x.drop.interval.high), .int(x.drop.n),
                   .number(x.net.value), .number(x.net.interval.low), .number(x.net.interval.high), .text(x.verdict.rawValue),
                   .number(x.minimumEffect)])
        }
        if !m.single { out.append(("verdicts.csv", v.text)) }

        for (name, grid) in [("context_attention_by_layer.csv", m.contextLayers), ("subject_attention_by_layer.csv", m.subjectLayers)] {
            var g = CSVTable(["layer", "checkpoint", "step", "mean_attention"])
            for l in 0..<L { for c in 0..<C {
                g.add([.int(l), .text(run.checkpoints[c]), .int(Int(run.steps[c])), .number(grid[l * C + c])])
            } }
            out.append((name, g.text))
        }

        var hc = CSVTable(["checkpoint", "step", "span", "layer", "head", "mean_attention"])
        for l in 0..<L { for h in 0..<H {
            hc.add([.text(run.checkpoints[m.headsCheckpoint]), .int(Int(run.steps[m.headsCheckpoint])), .text(m.options.span),
                    .int(l), .int(h), .number(m.headsMean[l * H + h])])
        } }
        out.append(("heads_at_checkpoint.csv", hc.text))

        if let change = m.change {
            var ch = CSVTable(["span", "from", "to", "rank", "layer", "head", "mean_from", "mean_to", "change", "ci_low", "ci_high", "n"])
            for (i, x) in change.heads.enumerated() {
                let e = x.change.estimate
                ch.add([.text(change.span), .text(change.fromName), .text(change.toName), .int(i + 1), .int(x.layer), .int(x.head),
                        .number(x.change.meanFrom), .number(x.change.meanTo), .number(e.value), .number(e.interval.low), .number(e.interval.high), .int(e.n)])
            }
            out.append(("heads_change.csv", ch.text))
        }

        var lens = CSVTable(["checkpoint", "step", "answer", "lens_layer", "mean_logprob"])
        for c in 0..<C { for a in 0..<2 { for ll in 0..<LL {
            lens.add([.text(run.checkpoints[c]), .int(Int(run.steps[c])), .text(run.answers[a]), .int(ll), .number(m.lens[(c * 2 + a) * LL + ll])])
        } } }
        out.append(("logit_lens.csv", lens.text))

        func mcByLensLayer(_ values: [Double]) -> String {
            var t = CSVTable(["checkpoint", "step", "lens_layer", "mean_mc"])
            for c in 0..<C { for ll in 0..<LL { t.add([.text(run.checkpoints[c]), .int(Int(run.steps[c])), .int(ll), .number(values[ll * C + c])]) } }
            return t.text
        }
        out.append(("mc_by_lens_layer.csv", mcByLensLayer(m.mcLens)))
        if let tuned = m.mcTunedLens { out.append(("mc_by_tuned_lens_layer.csv", mcByLensLayer(tuned))) }

        var sp = CSVTable(["layer", "rho", "n"])
        for c in m.headline.trajectories.correlations {
            sp.add([.text(c.layer.map(String.init) ?? "all"), .number(c.correlation.rho), .int(c.correlation.n)])
        }
        if !m.single { out.append(("spearman.csv", sp.text)) }

        var pr = CSVTable(["probe", "checkpoint", "step", "counterfactual_correct", "parametric_correct", "generated"])
        for p in 0..<P { for c in 0..<C {
            pr.add([.text(run.probes[p]), .text(run.checkpoints[c]), .int(Int(run.steps[c])), .int(Int(run.counterfactualCorrect[c * P + p])),
                    .int(Int(run.parametricCorrect[c * P + p])), .text(run.generated[c * P + p])])
        } }
        out.append(("probes.csv", pr.text))

        if let change = m.change {
            var pt = CSVTable(["probe", "from", "to", "rank", "layer", "head", "change"])
            for p in 0..<P {
                for (i, x) in m.probeTopHeads[p].enumerated() {
                    pt.add([.text(run.probes[p]), .text(change.fromName), .text(change.toName), .int(i + 1), .int(x.0), .int(x.1), .number(x.2)])
                }
            }
            out.append(("probe_top_heads.csv", pt.text))
        }
        if let d = m.dla { out += dlaCSVs(m, d) }
        return out
    }

    /// The tables behind the direct-logit-attribution charts (schema-version-2 runs).
    static func dlaCSVs(_ m: ReportModel, _ d: LogitAttributionAnalysis) -> [(String, String)] {
        let run = m.run, C = run.checkpoints.count, H = run.heads, LH = run.layers * run.heads
        var out: [(String, String)] = []
        var hm = CSVTable(["checkpoint", "step", "key", "layer", "head", "mean_dla"])
        for k in d.keyCheckpoints { for j in 0..<LH {
            hm.add([.text(run.checkpoints[k.index]), .int(Int(run.steps[k.index])), .text(DLAReport.keyLabel(k.roles)), .int(j / H), .int(j % H),
                    .number(d.headMeans[k.index * LH + j])])
        } }
        out.append(("dla_heads_at_checkpoints.csv", hm.text))

        var rk = CSVTable(["checkpoint", "step", "role", "rank", "layer", "head", "mean_dla", "ci_low", "ci_high", "n", "rank_all"])
        for k in d.keyCheckpoints {
            guard let r = d.keyRankings.first(where: { $0.checkpoint == k.index }) else { continue }
            for (role, heads) in [("context", r.contextHeads), ("memory", r.memoryHeads)] {
                for (i, x) in heads.enumerated() {
                    rk.add([.text(run.checkpoints[k.index]), .int(Int(run.steps[k.index])), .text(role), .int(i + 1), .int(x.layer), .int(x.head),
                            .number(x.estimate.value), .number(x.estimate.interval.low), .number(x.estimate.interval.high), .int(x.estimate.n), .int(x.rank)])
                }
            }
        }
        out.append(("dla_ranking.csv", rk.text))

        var tr = CSVTable(["series", "role", "checkpoint", "step", "mean", "ci_low", "ci_high", "n"])
        for (x, bands, role) in d.tracked.map({ ($0.trajectory, $0.bands, $0.role.rawValue) }) + d.components.map({ ($0.trajectory, $0.bands, "component") }) {
            for c in 0..<C {
                tr.add([.text(x.id), .text(role), .text(run.checkpoints[c]), .int(Int(run.steps[c])), .number(x.values[c]),
                        .number(bands[c].low), .number(bands[c].high), .int(x.counts[c])])
            }
        }
        out.append(("dla_trajectory.csv", tr.text))

        var rc = CSVTable(["layer", "head", "key", "checkpoint", "mean_dla", "ci_low", "ci_high", "n", "rank", "role"])
        for x in d.roleChanges {
            for (key, y) in zip(["first", "peak", "final"], x.at) {
                rc.add([.int(x.layer), .int(x.head), .text(key), .text(run.checkpoints[[d.first, d.peak, d.final][["first", "peak", "final"].firstIndex(of: key) ?? 0]]),
                        .number(y.estimate.value), .number(y.estimate.interval.low), .number(y.estimate.interval.high), .int(y.estimate.n), .int(y.rank), .text(y.role.rawValue)])
            }
        }
        if C > 1 { out.append(("dla_role_changes.csv", rc.text)) }

        var sp = CSVTable(["layer", "head", "role", "checkpoint", "step", "span", "mean_dla", "head_total"])
        for x in d.spanSplits { for (s, name) in run.spans.enumerated() {
            sp.add([.int(x.layer), .int(x.head), .text(x.role.rawValue), .text(run.checkpoints[x.checkpoint]), .int(Int(run.steps[x.checkpoint])),
                    .text(name), .number(x.perSpan[s]), .number(x.total)])
        } }
        out.append(("dla_by_span.csv", sp.text))

        var ml = CSVTable(["checkpoint", "step", "layer", "mean_mlp_dla"])
        for c in 0..<C { for l in 0..<run.layers {
            ml.add([.text(run.checkpoints[c]), .int(Int(run.steps[c])), .int(l), .number(d.mlpMeans[c * run.layers + l])])
        } }
        out.append(("mlp_dla_by_layer.csv", ml.text))
        return out
    }

    /// report.md: the headline numbers for terminals and pull requests.
    static func markdown(_ m: ReportModel, files: [String]) -> String {
        let run = m.run, h = m.headline
        var o = "# cpiscope report\n\n"
        let checkpoints = m.single ? "1 checkpoint (\(run.checkpoints[0]), step \(run.steps[0]))"
            : "\(run.checkpoints.count) checkpoints (steps \(run.steps.first ?? 0)–\(run.steps.last ?? 0))"
        o += "Run `\(run.path)`: \(checkpoints), \(run.probes.count) probes, "
        o += "\(run.layers) layers × \(run.heads) heads. Bootstrap: seed \(m.options.seed), \(m.options.resamples) resamples, 95% percentile intervals.\n\n"
        if !run.incompleteCheckpoints.isEmpty { o += "Left out (not complete): \(run.incompleteCheckpoints.joined(separator: ", ")).\n\n" }
        if let x = m.levels {
            o += "## One checkpoint: \(x.name)\n\n\(m.headlineSentence)\n\n| measure | mean [95% CI] | n |\n|---|---:|---:|\n"
            for e in x.measures { o += "| \(e.measure.label) | \(Fmt.number(e.estimate.value)) \(Fmt.interval(e.estimate.interval)) | \(e.estimate.n) |\n" }
            o += "\n## Heads with the most \(x.span) attention at \(x.name)\n\n| rank | layer | head | mean [95% CI] | n |\n|---:|---:|---:|---:|---:|\n"
            for (i, h) in x.heads.prefix(10).enumerated() {
                o += "| \(i + 1) | \(h.layer) | \(h.head) | \(Fmt.number(h.estimate.value)) \(Fmt.interval(h.estimate.interval)) | \(h.estimate.n) |\n"
            }
            o += "\n## Layers\n\nLayers with the most \(x.span) attention (mean over heads): "
            o += x.rankedLayers.prefix(3).map { "L\($0.layer) \(Fmt.number($0.estimate.value)) \(Fmt.interval($0.estimate.interval))" }.joined(separator: ", ") + ".\n"
            if let d = m.dla { o += dlaMarkdown(m, d) }
            o += "\n## Files\n\n" + files.map { "- `\($0)`" }.joined(separator: "\n") + "\n"
            return o
        }
        o += "## Verdict\n\n**\(h.primary.label): \(h.verdict.rawValue)**. \(m.headlineSentence)\n\n"
        o += "| measure | first | peak (step) | final | drop peak→final [95% CI] | n | verdict |\n|---|---:|---:|---:|---:|---:|---|\n"
        for t in h.trajectories.measures {
            o += "| \(t.label) | \(Fmt.number(t.values.first ?? .nan)) | \(t.peak.map { "\(Fmt.number(t.values[$0])) (\(run.steps[$0]))" } ?? (t.constant ? "none (constant)" : "n/a")) | "
            o += "\(Fmt.number(t.values.last ?? .nan)) | \(Fmt.number(t.drop.value)) \(Fmt.interval(t.drop.interval)) | \(t.drop.n) | \(t.verdict.rawValue) |\n"
        }
        guard let d = m.change else { return o }
        o += "\n## Top moving heads (\(d.span) attention, \(d.fromName) → \(d.toName))\n\n"
        o += "| rank | layer | head | from | to | change [95% CI] | n |\n|---:|---:|---:|---:|---:|---:|---:|\n"
        for (i, x) in d.heads.prefix(10).enumerated() {
            o += "| \(i + 1) | \(x.layer) | \(x.head) | \(Fmt.number(x.change.meanFrom)) | \(Fmt.number(x.change.meanTo)) | "
            o += "\(Fmt.signed(x.change.estimate.value)) \(Fmt.interval(x.change.estimate.interval)) | \(x.change.estimate.n) |\n"
        }
        o += "\n## Layers\n\nTop moving layers (\(d.span) attention, mean over heads): "
        o += d.rankedLayers.prefix(3).map { "L\($0.layer) \(Fmt.signed($0.change.estimate.value)) \(Fmt.interval($0.change.estimate.interval))" }.joined(separator: ", ") + ".\n\n"
        if let all = h.trajectories.correlations.last {
            o += "Spearman rho across checkpoints, context attention vs counterfactual accuracy: \(Fmt.signed(all.correlation.rho)) over all layers (n = \(all.correlation.n))"
            let strongest = h.trajectories.correlations.dropLast().filter { $0.correlation.rho.isFinite }
                .sorted { abs($0.correlation.rho) != abs($1.correlation.rho) ? abs($0.correlation.rho) > abs($1.correlation.rho) : ($0.layer ?? -1) < ($1.layer ?? -1) }.prefix(3)
            if !strongest.isEmpty {
                o += "; strongest layers: " + strongest.map { "L\($0.layer ?? -1) \(Fmt.signed($0.correlation.rho))" }.joined(separator: ", ")
            }
            o += ".\n"
        }
        if let d = m.dla { o += dlaMarkdown(m, d) }
        o += "\n## Files\n\n" + files.map { "- `\($0)`" }.joined(separator: "\n") + "\n"
        return o
    }

    /// report.md's direct-logit-attribution section.
    static func dlaMarkdown(_ m: ReportModel, _ d: LogitAttributionAnalysis) -> String {
        let run = m.run, keys = d.keyCheckpoints
        var o = "\n## Direct logit attribution (\(DLAReport.unit))\n\n"
        o += Headline.describe(d, checkpoints: run.checkpoints).map { "- \($0)\n" }.joined()
        if keys.count > 1 {
            // One column per distinct key checkpoint ("first = peak" when they coincide).
            o += "\n### Heads that changed role (first → peak → final)\n\n| head | "
            o += keys.map { "\(run.checkpoints[$0.index]) (\(DLAReport.keyLabel($0.roles))) [95% CI] (rank)" }.joined(separator: " | ")
            o += " | role |\n|---|" + String(repeating: "---:|", count: keys.count) + "---|\n"
            for x in d.roleChanges {
                let at = keys.map { x.at[DLAReport.keySlot($0.roles)] }
                o += "| \(x.name) | " + at.map { "\(Fmt.signed($0.estimate.value)) \(Fmt.interval($0.estimate.interval)) (\($0.rank))" }.joined(separator: " | ")
                o += " | \(at.map(\.role.rawValue).joined(separator: " → ")) |\n"
            }
        }
        o += "\n### Where the tracked heads' DLA comes from (mean per source span)\n\n| head | role | checkpoint | " + run.spans.joined(separator: " | ") + " | total |\n"
        o += "|---|---|---|" + String(repeating: "---:|", count: run.spans.count + 1) + "\n"
        for x in d.spanSplits {
            o += "| \(x.name) | \(x.role.rawValue) | \(run.checkpoints[x.checkpoint]) | " + x.perSpan.map { Fmt.signed($0) }.joined(separator: " | ") + " | \(Fmt.signed(x.total)) |\n"
        }
        o += "\n### Logit difference and its components (mean [95% CI])\n\n| component | "
        o += keys.map { keys.count == 1 ? run.checkpoints[$0.index] : "\(run.checkpoints[$0.index]) (\(DLAReport.keyLabel($0.roles)))" }.joined(separator: " | ") + " |\n|---|"
        o += String(repeating: "---:|", count: keys.count) + "\n"
        for x in d.components {
            o += "| \(x.trajectory.label) | " + keys.map { "\(Fmt.signed(x.trajectory.values[$0.index])) \(Fmt.interval(x.bands[$0.index]))" }.joined(separator: " | ") + " |\n"
        }
        return o
    }
}
