// The report of an intervention file (`cpiscope intervene`, docs/interventions.md): the same page style
// as the probe report, with a section per kind of intervention present in the file:
//   iv-ablation    layer × head heatmaps of the mean change in logit difference per checkpoint
//                  (heatmap-ablation-heads-K), and layer × site heatmaps for attn/mlp ablations
//                  (heatmap-ablation-layers-K)
//   iv-transplant  layer × component tables of the change in M_C and counterfactual accuracy with
//                  95% intervals (table-transplant-K) and a heatmap of the restoration (heatmap-transplant-K)
//   iv-knockout    the change in logit difference over the knockout window's centre layer, one line per
//                  span and window size (chart-knockout-K); knockouts of every layer as their own labelled
//                  bars (chart-knockout-all-K), not a point at the centre layer; and a table (table-knockout)
//   iv-patching    layer × head heatmaps of the patch recovery (heatmap-patching-heads-K) and
//                  layer × checkpoint heatmaps for block-output patches (heatmap-patching-layers-K)
// plus the headline (iv-headline) and the interventions ranked at one checkpoint (table-ranking).
// K counts the charts of one kind from 1. Every number is an `InterventionEffect`; the CSVs hold them.
import Analysis
import Foundation

/// What `cpiscope report` wrote, for either kind of file.
public struct ReportSummary: Sendable {
    public let directory: URL
    /// File names inside `directory`, index.html first.
    public let files: [String]
    /// The headline, one sentence per line, for the terminal.
    public let lines: [String]
}

struct InterventionModel {
    let run: InterventionRun
    let effects: [InterventionEffect]
    let options: ReportOptions
    /// The checkpoint of the ranking table and the headline (--checkpoint, default the last complete one).
    let focus: String

    init(run: InterventionRun, options: ReportOptions) throws {
        guard !run.checkpoints.isEmpty else { throw AnalysisError.incompleteRun(path: run.path, complete: 0, needed: 1) }
        self.run = run
        self.options = options
        effects = try InterventionEffects.analyze(run, bootstrap: try Bootstrap(seed: options.seed, resamples: options.resamples))
        focus = run.checkpoints[try options.checkpoint.map(run.checkpointIndex) ?? run.checkpoints.count - 1]
    }

    func of(_ kind: String, _ include: (InterventionEffect) -> Bool = { _ in true }) -> [InterventionEffect] {
        effects.filter { $0.kind == kind && include($0) }
    }

    var kinds: [String] { InterventionRun.kinds.filter { k in run.kinds.contains(k) } }

    /// The headline: the transplant sentence at the focus checkpoint, then the strongest effect of each kind.
    var headline: [String] {
        var out = ["intervention file \(run.path): \(run.checkpoints.count) complete checkpoints, \(run.probes.count) probes, "
            + "\(run.names.count) interventions (\(kinds.joined(separator: ", "))); bootstrap seed \(options.seed), \(options.resamples) resamples"]
        if !run.incompleteCheckpoints.isEmpty { out.append("left out (incomplete): \(run.incompleteCheckpoints.joined(separator: ", "))") }
        if let t = InterventionEffects.transplantHeadline(effects, checkpoint: focus) { out.append(t) }
        return out + InterventionEffects.kindHeadlines(effects, checkpoint: focus)
    }
}

/// Effects grouped in first-appearance order of their key.
func grouped<K: Hashable>(_ effects: [InterventionEffect], by key: (InterventionEffect) -> K) -> [(K, [InterventionEffect])] {
    var order: [K] = [], groups: [K: [InterventionEffect]] = [:]
    for e in effects {
        let k = key(e)
        if groups[k] == nil { order.append(k) }
        groups[k, default: []].append(e)
    }
    return order.map { ($0, groups[$0] ?? []) }
}

/// A rows × columns grid of one estimate per cell (NaN where no intervention), with the effect behind each cell.
struct EffectGrid {
    let rows: [String]
    let columns: [String]
    let cells: [InterventionEffect?]

    func values(_ measure: EffectMeasure) -> [Double] { cells.map { $0.map { measure.estimate($0).value } ?? .nan } }

    /// Layers × heads of head interventions: every layer and head of the model (`layers` × `heads`, from
    /// the file), not only those the interventions touch; cells without an intervention are "no data".
    static func heads(_ effects: [InterventionEffect], layers: Int = 0, heads: Int = 0) -> EffectGrid {
        let L = max(layers, (effects.map(\.layer).max() ?? -1) + 1), H = max(heads, (effects.map(\.head).max() ?? -1) + 1)
        var cells = [InterventionEffect?](repeating: nil, count: L * H)
        for e in effects where e.layer >= 0 && e.head >= 0 { cells[e.layer * H + e.head] = e }
        return EffectGrid(rows: (0..<L).map(String.init), columns: (0..<H).map(String.init), cells: cells)
    }

    /// Rows keyed by layer (−1 = "all"), columns by `column` in first-appearance order.
    static func layers(_ effects: [InterventionEffect], column: (InterventionEffect) -> String) -> EffectGrid {
        let layers = Array(Set(effects.map(\.layer))).sorted()
        let columns = grouped(effects, by: column).map(\.0)
        var cells = [InterventionEffect?](repeating: nil, count: layers.count * columns.count)
        for e in effects {
            if let r = layers.firstIndex(of: e.layer), let c = columns.firstIndex(of: column(e)) { cells[r * columns.count + c] = e }
        }
        return EffectGrid(rows: layers.map { $0 < 0 ? "all" : String($0) }, columns: columns, cells: cells)
    }
}

enum InterventionReport {
    static let sectionIDs = ["iv-headline", "iv-ablation", "iv-transplant", "iv-knockout", "iv-patching", "iv-ranking"]
    static let sectionOfKind = ["ablate": "iv-ablation", "transplant": "iv-transplant", "knockout": "iv-knockout", "patch": "iv-patching"]
    static let unit = "logit[context answer] − logit[memory answer]"

    static func write(run url: URL, to dir: URL, options: ReportOptions) throws -> ReportSummary {
        let model = try InterventionModel(run: try InterventionRun(url: url), options: options)
        try ReportWriter.makeDirectory(dir)
        let csvs = self.csvs(model)
        let files = ["index.html", "report.md"] + csvs.map(\.0)
        try ReportWriter.save(page(model, files: files), dir.appendingPathComponent("index.html"))
        try ReportWriter.save(markdown(model, files: files), dir.appendingPathComponent("report.md"))
        for (name, text) in csvs { try ReportWriter.save(text, dir.appendingPathComponent(name)) }
        return ReportSummary(directory: dir, files: files, lines: model.headline)
    }

    // MARK: CSV

    /// One row per effect: the CSV of `diff --format csv` and of every report table.
    static func effectsCSV(_ effects: [InterventionEffect], run: InterventionRun, ranks: Bool = false) -> String {
        var t = CSVTable((ranks ? ["rank"] : []) + ["checkpoint", "step", "intervention", "kind", "layer", "head", "component", "source", "detail",
                          "logit_diff_change", "logit_diff_ci_low", "logit_diff_ci_high", "logit_diff_n",
                          "mc_change", "mc_ci_low", "mc_ci_high", "mc_n", "cf_change", "cf_ci_low", "cf_ci_high", "cf_n",
                          "recovery", "recovery_ci_low", "recovery_ci_high", "recovery_n"])
        let steps = Dictionary(zip(run.checkpoints, run.steps), uniquingKeysWith: { a, _ in a })
        for (k, e) in effects.enumerated() {
            let detail = e.kind == "ablate" ? e.ablationMode : e.kind == "patch" ? e.patchPositions
                : e.kind == "knockout" ? e.knockoutLayers.map(String.init).joined(separator: " ") : ""
            var row: [CSVTable.Cell] = ranks ? [.int(k + 1)] : []
            row += [.text(e.checkpoint), .int(Int(steps[e.checkpoint] ?? -1)), .text(e.name), .text(e.kind), .int(e.layer), .int(e.head),
                    .text(e.component), .text(e.source), .text(detail)]
            for x in [e.logitDiffChange, e.mcChange, e.counterfactualChange ?? .undefined, e.recovery] {
                row += [.number(x.value), .number(x.interval.low), .number(x.interval.high), .int(x.n)]
            }
            t.add(row)
        }
        return t.text
    }

    static func csvs(_ m: InterventionModel) -> [(String, String)] {
        var out = [("intervention_effects.csv", effectsCSV(m.effects, run: m.run))]
        for (kind, file) in [("ablate", "ablation.csv"), ("transplant", "transplant.csv"), ("knockout", "knockout.csv"), ("patch", "patching.csv")] {
            let rows = m.of(kind)
            if !rows.isEmpty { out.append((file, effectsCSV(rows, run: m.run))) }
        }
        out.append(("ranking.csv", effectsCSV(InterventionEffects.ranked(m.effects, checkpoint: m.focus), run: m.run, ranks: true)))
        return out
    }

    // MARK: HTML

    static func cell(_ e: Estimate) -> String { "\(Fmt.signed(e.value)) \(Fmt.interval(e.interval))" }

    static func note(_ e: InterventionEffect?) -> String {
        guard let e else { return "" }
        var s = " (\(e.name)); Δ logit diff \(cell(e.logitDiffChange)), Δ M_C \(cell(e.mcChange))"
        if let cf = e.counterfactualChange { s += ", Δ cf accuracy \(cell(cf))" }
        if e.kind == "patch" { s += ", recovery \(cell(e.recovery))" }
        return s + ", n = \(e.logitDiffChange.n)"
    }

    static func heatmap(_ id: String, _ title: String, _ grid: EffectGrid, _ measure: EffectMeasure, rowAxis: String, columnAxis: String,
                        scaleAtLeast: Double = 0, unit: String, caption: String) -> String {
        let values = grid.values(measure)
        let maxAbs = max(values.filter(\.isFinite).map(abs).max() ?? 1, scaleAtLeast)
        return HTMLReport.figure(Heatmap(id: id, title: title, rowLabels: grid.rows, columnLabels: grid.columns, rowAxis: rowAxis,
                                         columnAxis: columnAxis, values: values, scale: .diverging(maxAbs), unit: unit,
                                         cellNote: { r, c in note(grid.cells[r * grid.columns.count + c]) }, maxWidth: 520, maxHeight: 420).svg(),
                                 caption)
    }

    static func table(id: String, header: [String], rows: [[String]]) -> String {
        var o = "<div class=\"tablewrap\"><table id=\"\(esc(id))\"><thead><tr>" + header.map { "<th>\(esc($0))</th>" }.joined() + "</tr></thead><tbody>"
        for r in rows {
            o += "<tr>" + r.enumerated().map { i, v in i == 0 ? "<td>\(esc(v))</td>" : "<td class=\"num\">\(esc(v))</td>" }.joined() + "</tr>"
        }
        return o + "</tbody></table></div>"
    }

    static func page(_ m: InterventionModel, files: [String]) -> String {
        let run = m.run
        var o = HTMLReport.documentStart(file: run.path)
        o += HTMLReport.header(title: "cpiscope report: interventions", fileLabel: "File", path: run.path, info: run.info,
                               facts: "\(run.checkpoints.count) checkpoints · \(run.probes.count) probes · \(run.names.count) interventions",
                               options: m.options, incomplete: run.incompleteCheckpoints)
        let titles = ["ablate": "Ablation", "transplant": "Transplant", "knockout": "Knockout", "patch": "Patching"]
        o += "<nav><a href=\"#iv-headline\">Headline</a>" + m.kinds.map { "<a href=\"#\(sectionOfKind[$0] ?? "")\">\(titles[$0] ?? $0)</a>" }.joined()
        o += "<a href=\"#iv-ranking\">Ranking</a></nav></header><main>"

        o += "<section id=\"iv-headline\"><h2>Headline</h2><div class=\"headline\">"
        o += m.headline.dropFirst().map { "<p>\(esc($0))</p>" }.joined() + "</div>"
        o += "<p class=\"meta\">Every change is intervened − clean, the mean over probes of the per-probe difference at the same checkpoint, with a paired bootstrap 95% interval; probes where a value is missing (NaN, e.g. a span not found) are left out. Logit difference: \(unit), first tokens, at the answer position. M_C = p_ctx / (p_ctx + p_mem). Patch recovery = Σ (patched − target) / Σ (source − target) of the logit difference over the probes (the ratio of the means, with a paired bootstrap of that ratio; docs/interventions.md).</p></section>"
        if m.kinds.contains("ablate") { o += ablation(m) }
        if m.kinds.contains("transplant") { o += transplant(m) }
        if m.kinds.contains("knockout") { o += knockout(m) }
        if m.kinds.contains("patch") { o += patching(m) }

        let ranked = InterventionEffects.ranked(m.effects, checkpoint: m.focus)
        o += "<section id=\"iv-ranking\"><h2>Interventions ranked by |Δ logit diff| at \(esc(m.focus))</h2>"
        o += table(id: "table-ranking", header: ["intervention", "rank", "Δ logit diff [95% CI]", "Δ M_C [95% CI]", "Δ cf accuracy [95% CI]", "recovery [95% CI]", "n"],
                   rows: ranked.prefix(20).enumerated().map { k, e in
                       [e.name, String(k + 1), cell(e.logitDiffChange), cell(e.mcChange), e.counterfactualChange.map(cell) ?? "–",
                        e.kind == "patch" ? cell(e.recovery) : "–", String(e.logitDiffChange.n)]
                   })
        o += "<p class=\"meta\">The top \(min(20, ranked.count)) of \(ranked.count); every intervention at every checkpoint is in intervention_effects.csv, and `cpiscope diff` ranks them at any checkpoint.</p></section></main>"
        o += HTMLReport.documentEnd(files: files, toolVersion: run.info["tool_version"] ?? "", definitions: "docs/interventions.md")
        return o
    }

    static func ablation(_ m: InterventionModel) -> String {
        var o = "<section id=\"iv-ablation\"><h2>Ablation</h2><div class=\"grid2\">"
        for (k, (key, effects)) in grouped(m.of("ablate") { $0.head >= 0 }, by: { [$0.checkpoint, $0.ablationMode] }).enumerated() {
            o += heatmap("heatmap-ablation-heads-\(k + 1)", "Head ablation (\(key[1])) at \(key[0]): Δ logit diff",
                         .heads(effects, layers: m.run.layerCount, heads: m.run.headCount), .logitDiff,
                         rowAxis: "layer", columnAxis: "head", unit: "mean Δ logit diff (logits)",
                         caption: "Mean over probes of the change in \(unit) when the head's output (hook_z) is replaced by its \(esc(key[1])) ablation at every position; blue = the head pushed towards the context answer. Hover a cell for its 95% interval and Δ M_C.")
        }
        for (k, (key, effects)) in grouped(m.of("ablate") { $0.head < 0 }, by: { [$0.checkpoint, $0.ablationMode] }).enumerated() {
            o += heatmap("heatmap-ablation-layers-\(k + 1)", "Layer ablation (\(key[1])) at \(key[0]): Δ logit diff", .layers(effects) { $0.component },
                         .logitDiff, rowAxis: "layer", columnAxis: "site", unit: "mean Δ logit diff (logits)",
                         caption: "Attention output (attn_out) or MLP output (mlp_out) of each layer ablated at every position.")
        }
        return o + "</div></section>"
    }

    static func transplant(_ m: InterventionModel) -> String {
        let generated = m.run.generated
        let measure: EffectMeasure = generated ? .counterfactual : .mc
        var o = "<section id=\"iv-transplant\"><h2>Transplant</h2>"
        for (k, (key, effects)) in grouped(m.of("transplant"), by: { [$0.checkpoint, $0.source] }).enumerated() {
            let grid = EffectGrid.layers(effects) { $0.component }
            o += "<h3>\(esc(key[0])) with components from \(esc(key[1]))</h3><div class=\"grid2\">"
            o += heatmap("heatmap-transplant-\(k + 1)", "Transplant from \(key[1]) into \(key[0]): \(measure.label)", grid, measure,
                         rowAxis: "layer", columnAxis: "component", unit: generated ? "Δ counterfactual accuracy" : "Δ M_C",
                         caption: "Red = the transplant raises context reliance at \(esc(key[0])). Rows are the transplanted layer (all = every layer at once).")
            o += "</div>"
            var rows: [[String]] = []
            for (r, layer) in grid.rows.enumerated() {
                var row = [layer]
                for c in grid.columns.indices {
                    let e = grid.cells[r * grid.columns.count + c]
                    row.append(e.map { cell($0.mcChange) } ?? "–")
                    if generated { row.append(e.flatMap { $0.counterfactualChange }.map(cell) ?? "–") }
                }
                rows.append(row)
            }
            let header = ["layer"] + grid.columns.flatMap { generated ? ["\($0) Δ M_C [95% CI]", "\($0) Δ cf accuracy [95% CI]"] : ["\($0) Δ M_C [95% CI]"] }
            o += table(id: "table-transplant-\(k + 1)", header: header, rows: rows)
        }
        return o + "<p class=\"meta\">Each target checkpoint rebuilt with one component's weights of one layer taken from the source checkpoint; every other weight is the target's own.</p></section>"
    }

    /// The query positions of a knockout ("generation", "all") from its name's " from X" suffix, "" for the answer position.
    static func queryPositions(_ e: InterventionEffect) -> String {
        let words = e.name.split(separator: " ")
        return words.count >= 2 && words[words.count - 2] == "from" ? String(words[words.count - 1]) : ""
    }

    static func knockout(_ m: InterventionModel) -> String {
        let effects = m.of("knockout")
        // A knockout of every layer has no place on a layer axis: it gets its own bars, not a point at the centre layer.
        let L = m.run.layerCount
        let everyLayer = { (e: InterventionEffect) in L > 1 && e.knockoutLayers == Array(0..<L) }
        func from(_ e: InterventionEffect) -> String { queryPositions(e).isEmpty ? "" : ", from \(queryPositions(e))" }
        var o = "<section id=\"iv-knockout\"><h2>Knockout</h2><div class=\"grid2\">"
        for (k, (checkpoint, atCheckpoint)) in grouped(effects.filter { !$0.knockoutLayers.isEmpty && !everyLayer($0) }, by: \.checkpoint).enumerated() {
            let lines = grouped(atCheckpoint) { "\($0.component) (\($0.knockoutLayers.count) layer\($0.knockoutLayers.count == 1 ? "" : "s")\(from($0)))" }
            let centres = Array(Set(atCheckpoint.map(centre))).sorted()
            let series = lines.enumerated().map { i, line -> Series in
                var y = [Double](repeating: .nan, count: centres.count), band = [Interval](repeating: .undefined, count: centres.count)
                for e in line.1 {
                    guard let x = centres.firstIndex(of: centre(e)) else { continue }
                    y[x] = e.logitDiffChange.value; band[x] = e.logitDiffChange.interval
                }
                return Series(name: line.0, color: palette[i % palette.count], y: y, band: band)
            }
            o += HTMLReport.figure(LineChart(id: "chart-knockout-\(k + 1)", title: "Attention knockout at \(checkpoint): Δ logit diff by layer", x: centres,
                                             xLabel: "centre layer of the blocked window", yLabel: "mean Δ logit diff (logits)", series: series,
                                             width: 520, height: 320, integerX: centres.allSatisfy { $0 == $0.rounded() }).svg(),
                                   "Attention from the answer position to the span blocked in every head of the window's layers; one line per span and window size. Bands: 95% paired bootstrap intervals. Below 0: the span carried the context answer.")
        }
        for (k, (checkpoint, atCheckpoint)) in grouped(effects.filter(everyLayer), by: \.checkpoint).enumerated() {
            o += HTMLReport.figure(BarChart(id: "chart-knockout-all-\(k + 1)", title: "Attention knockout of every layer (0–\(L - 1)) at \(checkpoint): Δ logit diff",
                                            labels: atCheckpoint.map { "\($0.component), all layers\(from($0))" },
                                            values: atCheckpoint.map(\.logitDiffChange.value), intervals: atCheckpoint.map(\.logitDiffChange.interval),
                                            xLabel: "mean Δ logit diff (logits)").svg(),
                                   "The span blocked in every head of all \(L) layers at once, one bar per span; whiskers: 95% paired bootstrap intervals. Below 0: the span carried the context answer.")
        }
        o += "</div>"
        o += table(id: "table-knockout", header: ["intervention", "checkpoint", "Δ logit diff [95% CI]", "Δ M_C [95% CI]", "n"],
                   rows: effects.map { [$0.name, $0.checkpoint, cell($0.logitDiffChange), cell($0.mcChange), String($0.logitDiffChange.n)] })
        return o + "<p class=\"meta\">n counts the probes where the span was found (others are missing, never guessed).</p></section>"
    }

    /// The centre of a knockout's window of layers.
    static func centre(_ e: InterventionEffect) -> Double {
        let l = e.knockoutLayers
        return l.isEmpty ? .nan : Double(l.reduce(0, +)) / Double(l.count)
    }

    static func patching(_ m: InterventionModel) -> String {
        var o = "<section id=\"iv-patching\"><h2>Activation patching</h2><div class=\"grid2\">"
        for (k, (key, effects)) in grouped(m.of("patch") { $0.head >= 0 }, by: { [$0.checkpoint, $0.source, $0.patchPositions] }).enumerated() {
            o += heatmap("heatmap-patching-heads-\(k + 1)", "Patching \(key[1]) → \(key[0]) (\(key[2]) positions): recovery per head",
                         .heads(effects, layers: m.run.layerCount, heads: m.run.headCount),
                         .recovery, rowAxis: "layer", columnAxis: "head", scaleAtLeast: 1, unit: "recovery (1 = the source's logit diff)",
                         caption: "Each head's hook_z copied from \(esc(key[1])) into \(esc(key[0])) at the \(esc(key[2])) position(s); the recovery Σ (patched − target) / Σ (source − target) of the logit difference over the probes. 1 = the head alone carries the difference.")
        }
        for (k, (key, effects)) in grouped(m.of("patch") { $0.head < 0 }, by: { [$0.source, $0.patchPositions, $0.component] }).enumerated() {
            let grid = EffectGrid.layers(effects) { $0.checkpoint }
            o += heatmap("heatmap-patching-layers-\(k + 1)", "Patching \(key[2]) from \(key[0]) (\(key[1]) positions): recovery per layer", grid,
                         .recovery, rowAxis: "layer", columnAxis: "target checkpoint", scaleAtLeast: 1, unit: "recovery",
                         caption: "The block output of one layer copied from \(esc(key[0])) into each target checkpoint.")
        }
        return o + "</div></section>"
    }

    // MARK: Markdown

    static func markdown(_ m: InterventionModel, files: [String]) -> String {
        var o = "# cpiscope report: interventions\n\n"
        o += m.headline.map { "- \($0)\n" }.joined()
        let ranked = InterventionEffects.ranked(m.effects, checkpoint: m.focus)
        o += "\n## Top interventions at \(m.focus) (by |Δ logit diff|)\n\n| rank | intervention | Δ logit diff [95% CI] | Δ M_C [95% CI] | Δ cf accuracy [95% CI] | n |\n|---:|---|---:|---:|---:|---:|\n"
        for (k, e) in ranked.prefix(10).enumerated() {
            o += "| \(k + 1) | \(e.name) | \(cell(e.logitDiffChange)) | \(cell(e.mcChange)) | \(e.counterfactualChange.map(cell) ?? "–") | \(e.logitDiffChange.n) |\n"
        }
        for (key, effects) in grouped(m.of("transplant"), by: { [$0.checkpoint, $0.source] }) {
            let grid = EffectGrid.layers(effects) { $0.component }
            o += "\n## Transplant into \(key[0]) from \(key[1]) (Δ M_C; Δ counterfactual accuracy) [95% CI]\n\n| layer | " + grid.columns.joined(separator: " | ") + " |\n|---|"
            o += String(repeating: "---:|", count: grid.columns.count) + "\n"
            for (r, layer) in grid.rows.enumerated() {
                o += "| \(layer) | " + grid.columns.indices.map { c in
                    guard let e = grid.cells[r * grid.columns.count + c] else { return "–" }
                    return cell(e.mcChange) + (e.counterfactualChange.map { "; " + cell($0) } ?? "")
                }.joined(separator: " | ") + " |\n"
            }
        }
        o += "\n## Sections\n\n" + m.kinds.map { "- \(sectionOfKind[$0] ?? $0)\n" }.joined()
        o += "\n## Files\n\n" + files.map { "- `\($0)`" }.joined(separator: "\n") + "\n"
        return o
    }
}
