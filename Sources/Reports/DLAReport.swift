// The report's direct-logit-attribution parts (runs of schema version 2; docs/analysis.md,
// "Direct logit attribution"): the tracked heads' DLA trajectory beside the attention trajectory, and
// a section with layer × head DLA heatmaps at the key checkpoints (first, counterfactual-accuracy
// peak, final), the context and memory heads there, the heads that changed role, the tracked heads'
// DLA split by source span, and the logit difference split into attention, MLP and the rest.
// Element ids: chart-dla-heads, chart-dla-components, heatmap-dla-first (+ heatmap-dla-peak and
// heatmap-dla-final when those are other checkpoints), heatmap-dla-spans; tables dla-heads,
// dla-role-changes, dla-components.
import Analysis
import Foundation

enum DLAReport {
    static let chartIDs = ["chart-dla-heads", "chart-dla-components", "heatmap-dla-first", "heatmap-dla-spans"]
    static let tableIDs = ["dla-heads", "dla-role-changes", "dla-components"]
    static let unit = "logit[context answer] − logit[memory answer]"

    /// "first", "peak", "final" names of each key checkpoint, joined: "first = peak".
    static func keyLabel(_ roles: [String]) -> String { roles.joined(separator: " = ") }

    /// The position (0 first, 1 peak, 2 final) of a key checkpoint's first role in `RoleChange.at`.
    static func keySlot(_ roles: [String]) -> Int { ["first", "peak", "final"].firstIndex(of: roles.first ?? "first") ?? 0 }

    /// The tracked heads' DLA over the run with 95% bands (context heads solid, memory heads dashed).
    static func headsChart(_ m: ReportModel, _ d: LogitAttributionAnalysis) -> String {
        let series = d.tracked.enumerated().map { i, t in
            Series(name: "\(t.name) (\(t.role.rawValue))", color: palette[i % palette.count], y: t.trajectory.values, band: t.bands,
                   dashed: t.role == .memory)
        }
        return HTMLReport.figure(LineChart(id: "chart-dla-heads", title: "Direct logit attribution of the context and memory heads", x: m.x,
                                           xLabel: m.xLabel, yLabel: "head DLA (logits)", series: series, xNames: m.run.checkpoints).svg(),
                                 "Mean over probes of each head's direct contribution to \(unit) at the answer position; the top \(LogitAttributionAnalysis.tracked) context heads (solid) and memory heads (dashed) at \(d.peakKnown ? "the counterfactual-accuracy peak \(esc(m.run.checkpoints[d.peak]))" : "the final checkpoint \(esc(m.run.checkpoints[d.peak])) (counterfactual accuracy has no peak)"). Bands: 95% bootstrap interval of the mean over probes.")
    }

    static func section(_ m: ReportModel, _ d: LogitAttributionAnalysis) -> String {
        let run = m.run, H = run.heads, LH = run.layers * run.heads
        var o = "<section id=\"dla\"><h2>Direct logit attribution</h2>"
        o += "<p class=\"meta\">Each component's direct contribution to \(unit) (first tokens) at the answer position, through the final norm frozen at the real residual's scale; the components (heads, MLP layers, embedding, biases, remainder) sum to the logit difference. Context heads push towards the context answer (largest positive mean over probes), memory heads towards the memorised one (most negative). \(esc(run.dla?.definition ?? ""))</p>"

        // Components over the run (two or more checkpoints).
        let parts = ["logit_diff", "attention_heads", "mlp"].compactMap { d.component($0) }
        let single = run.checkpoints.count == 1
        o += "<div class=\"grid2\">"
        if !single { o += HTMLReport.figure(LineChart(id: "chart-dla-components", title: "Logit difference: attention vs MLP", x: m.x, xLabel: m.xLabel,
                                         yLabel: "mean DLA (logits)",
                                         series: parts.enumerated().map { i, x in
                                             Series(name: x.trajectory.label, color: palette[[6, 0, 1][i]], y: x.trajectory.values, band: x.bands, dashed: i == 0)
                                         }, width: 520, height: 320, xNames: run.checkpoints).svg(),
                               "Mean over probes of the logit difference (dashed) and of its sum over attention heads and over MLP layers; bands: 95% bootstrap intervals.") }

        // Split by source span of the tracked heads.
        let keys = d.keyCheckpoints
        let rows = d.spanSplits
        let roleOf = Dictionary(keys.map { ($0.index, single ? "" : keyLabel($0.roles)) }, uniquingKeysWith: { a, _ in a })
        let spanMax = rows.flatMap(\.perSpan).filter(\.isFinite).map(abs).max() ?? 1
        o += HTMLReport.figure(Heatmap(id: "heatmap-dla-spans", title: "Where the heads' DLA comes from (source span)",
                                       rowLabels: rows.map { "\($0.name) \(roleOf[$0.checkpoint] ?? "")".trimmingCharacters(in: .whitespaces) }, columnLabels: run.spans,
                                       rowAxis: "head at checkpoint", columnAxis: "source span", values: rows.flatMap(\.perSpan),
                                       scale: .diverging(spanMax), unit: "mean DLA from the span (logits)", maxWidth: 520, maxHeight: 420).svg(),
                               "Each tracked head's DLA split over the key positions it reads from, summed per span, mean over the probes where the span was found; red pushes towards the context answer, blue towards the memorised one.")
        o += "</div>"

        // Layer × head heatmaps at the key checkpoints, on one colour scale.
        let layerLabels = (0..<run.layers).map(String.init), headLabels = (0..<H).map(String.init)
        let keyMeans = keys.map { k in Array(d.headMeans[(k.index * LH)..<((k.index + 1) * LH)]) }
        let maxAbs = keyMeans.joined().filter(\.isFinite).map(abs).max() ?? 1
        o += single ? "<h3>Head DLA at \(esc(run.checkpoints[0]))</h3><div class=\"grid2\">" : "<h3>Head DLA at the key checkpoints</h3><div class=\"grid2\">"
        for (k, means) in zip(keys, keyMeans) {
            o += HTMLReport.figure(Heatmap(id: "heatmap-dla-\(k.roles[0])", title: single ? "Head DLA at \(run.checkpoints[k.index])" : "Head DLA at \(run.checkpoints[k.index]) (\(keyLabel(k.roles)))",
                                           rowLabels: layerLabels, columnLabels: headLabels, rowAxis: "layer", columnAxis: "head", values: means,
                                           scale: .diverging(maxAbs), unit: "mean head DLA (logits)", maxWidth: 340, maxHeight: 360).svg(),
                                   "Mean over probes at step \(run.steps[k.index]); red = context head, blue = memory head\(keys.count > 1 ? " (one colour scale for all \(keys.count) maps)" : "").")
        }
        o += "</div>"

        // Context and memory heads at the key checkpoints.
        o += "<h3>Context and memory heads</h3><div class=\"tablewrap\"><table id=\"dla-heads\"><thead><tr><th>checkpoint</th><th>role</th><th>rank</th><th>head</th><th>mean DLA [95% CI]</th><th>n</th></tr></thead><tbody>"
        for key in keys {
            guard let r = d.keyRankings.first(where: { $0.checkpoint == key.index }) else { continue }
            let k = key.index
            for (role, heads) in [("context", r.contextHeads), ("memory", r.memoryHeads)] {
                for (i, x) in heads.enumerated() {
                    o += "<tr><td>\(esc(run.checkpoints[k]))\(single ? "" : " (\(keyLabel(key.roles)))")</td><td>\(role)</td><td class=\"num\">\(i + 1)</td><td>\(x.name)</td>"
                    o += "<td class=\"num\">\(Fmt.signed(x.estimate.value)) \(Fmt.interval(x.estimate.interval))</td><td class=\"num\">\(x.estimate.n)</td></tr>"
                }
            }
        }
        o += "</tbody></table></div>"

        // Heads that changed role: one column per distinct key checkpoint ("first = peak" when they coincide).
        if keys.count > 1 {
            o += "<h3>Heads that changed role (first → peak → final)</h3><div class=\"tablewrap\"><table id=\"dla-role-changes\"><thead><tr><th>head</th>"
            for k in keys { o += "<th>\(esc(run.checkpoints[k.index])) (\(keyLabel(k.roles))) mean DLA [95% CI] (rank)</th>" }
            o += "<th>role</th></tr></thead><tbody>"
            for x in d.roleChanges {
                let at = keys.map { x.at[keySlot($0.roles)] }
                o += "<tr><td>\(x.name)</td>" + at.map { "<td class=\"num\">\(Fmt.signed($0.estimate.value)) \(Fmt.interval($0.estimate.interval)) (\($0.rank))</td>" }.joined()
                o += "<td>\(at.map(\.role.rawValue).joined(separator: " → "))</td></tr>"
            }
            o += "</tbody></table></div><p class=\"meta\">Candidates: the top \(LogitAttributionAnalysis.listed) context and memory heads at any of the key checkpoints; a head flipping between context and memory comes first, then the largest shift of rank among all \(LH) heads. Role: context when the 95% interval lies above 0, memory when below, neutral otherwise.</p>"
        }

        // Components at the key checkpoints, one column per distinct one.
        o += "<h3>Logit difference and its components</h3><div class=\"tablewrap\"><table id=\"dla-components\"><thead><tr><th>component</th>"
        for k in keys { o += "<th>\(esc(run.checkpoints[k.index]))\(single ? "" : " (\(keyLabel(k.roles)))") mean [95% CI]</th>" }
        o += "</tr></thead><tbody>"
        for x in d.components {
            o += "<tr><td>\(esc(x.trajectory.label))</td>"
            for k in keys { o += "<td class=\"num\">\(Fmt.signed(x.trajectory.values[k.index])) \(Fmt.interval(x.bands[k.index]))</td>" }
            o += "</tr>"
        }
        o += "</tbody></table></div></section>"
        return o
    }
}
