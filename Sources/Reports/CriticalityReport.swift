// The report of a criticality file (`cpiscope criticality`, docs/criticality.md), in the page style of
// the probe report:
//   crit-headline   counts, the base checkpoint's median criticality, the paper's split and what the
//                   filter at that share would remove, and when each group's loss falls
//   crit-histogram  the distribution of log10 criticality at the base checkpoint (chart-criticality-hist),
//                   and as a bins × checkpoint heatmap over the run (heatmap-criticality-hist)
//   crit-groups     each group's mean training loss over the steps with 95% bootstrap bands: the paper's
//                   C / C+S / S split (chart-groups-paper, Goyal, Baek et al. Proposition 1) and the
//                   criticality quartiles (chart-groups-quartiles), the data's categories when it has them
//                   (chart-groups-category); a table of first/last loss per group
// CSV: criticality_examples.csv (the per-example table at the base checkpoint) and group_curves.csv.
import Analysis
import Foundation

enum CriticalityReport {
    static let sectionIDs = ["crit-headline", "crit-histogram", "crit-groups"]
    static let chartIDs = ["chart-criticality-hist", "heatmap-criticality-hist", "chart-groups-paper", "chart-groups-quartiles"]
    static let paperOrder = ["C", "C+S", "S"]
    static let quartileOrder = ["Q1", "Q2", "Q3", "Q4"]

    struct Model {
        let table: CriticalityTable
        let options: ReportOptions
        let paper: [CriticalityTable.GroupCurve]
        let quartiles: [CriticalityTable.GroupCurve]
        /// Loss per data category (the most frequent ones), empty when the data has no categories.
        let categories: [CriticalityTable.GroupCurve]
        let groups: [String]

        init(table: CriticalityTable, options: ReportOptions) throws {
            self.table = table
            self.options = options
            groups = table.paperGroups()
            paper = try table.curves(groups: groups, order: CriticalityReport.paperOrder, resamples: options.resamples, seed: options.seed)
            quartiles = try table.curves(groups: table.quartiles(), order: CriticalityReport.quartileOrder, resamples: options.resamples, seed: options.seed)
            categories = try table.curves(groups: table.categories, order: table.topCategories(), resamples: options.resamples, seed: options.seed)
        }

        var base: String { table.checkpoints[table.baseCheckpoint] }

        var headline: [String] {
            let t = table
            let withContext = t.hasContext.filter { $0 }.count
            let skipped = t.skipReason.filter { !$0.isEmpty }.count
            var out = ["criticality file \(t.path): \(t.examples) examples (\(withContext) with a context, \(skipped) skipped), \(t.checkpoints.count) complete checkpoint\(t.checkpoints.count == 1 ? "" : "s")"]
            let values = t.criticalityValues(checkpoint: t.baseCheckpoint).sorted()
            if !values.isEmpty {
                out.append("at \(base): median criticality (perplexity of the response without its context) \(Fmt.number(Stats.quantile(sorted: values, 0.5), 4)) over the \(values.count) scored examples with a context; quartiles \(Fmt.number(Stats.quantile(sorted: values, 0.25), 4)) / \(Fmt.number(Stats.quantile(sorted: values, 0.75), 4))")
            }
            let counts = CriticalityReport.paperOrder.map { g in "\(g) \(groups.filter { $0 == g }.count)" }.joined(separator: ", ")
            out.append("paper split at \(Fmt.number(t.splitPercent, 3))% (C+S = the least context-critical examples with a context, the ones §3.4 filters out; S = no context): \(counts)")
            if t.checkpoints.count > 1 {
                for c in paper {
                    guard let first = c.mean.first, let last = c.mean.last, first.isFinite, last.isFinite else { continue }
                    func at(_ k: Int) -> String { t.steps[k] < 0 ? t.checkpoints[k] : "step \(t.steps[k])" }
                    var line = "group \(c.group) (\(c.members) examples): mean loss \(Fmt.number(first, 4)) → \(Fmt.number(last, 4)) nats/token"
                    if let low = c.mean.indices.filter({ c.mean[$0].isFinite }).min(by: { c.mean[$0] < c.mean[$1] }), c.mean[low] < first,
                       let half = CriticalityReport.halfDrop(c.mean) {
                        line += "; lowest \(Fmt.number(c.mean[low], 4)) at \(at(low)), half of the drop to it by \(at(half))"
                    } else {
                        line += "; never below the first checkpoint's"
                    }
                    out.append(line)
                }
            }
            return out
        }
    }

    /// The first checkpoint where the loss has covered half its way from the first value to its minimum.
    static func halfDrop(_ y: [Double]) -> Int? {
        guard let first = y.first, let low = y.filter(\.isFinite).min(), low < first else { return nil }
        let target = first - (first - low) / 2
        return y.firstIndex { $0.isFinite && $0 <= target }
    }

    static func write(run url: URL, to dir: URL, options: ReportOptions) throws -> ReportSummary {
        let model = try Model(table: try CriticalityTable.read(url), options: options)
        try ReportWriter.makeDirectory(dir)
        let csvs = [("criticality_examples.csv", try model.table.csv()), ("group_curves.csv", curvesCSV(model))]
        let files = ["index.html", "report.md"] + csvs.map(\.0)
        try ReportWriter.save(page(model, files: files), dir.appendingPathComponent("index.html"))
        try ReportWriter.save(markdown(model, files: files), dir.appendingPathComponent("report.md"))
        for (name, text) in csvs { try ReportWriter.save(text, dir.appendingPathComponent(name)) }
        return ReportSummary(directory: dir, files: files, lines: model.headline)
    }

    static func curvesCSV(_ m: Model) -> String {
        var t = CSVTable(["grouping", "group", "members", "checkpoint", "step", "mean_loss", "ci_low", "ci_high"])
        for (grouping, curves) in [("paper", m.paper), ("quartile", m.quartiles), ("category", m.categories)] {
            for c in curves {
                for k in m.table.checkpoints.indices {
                    t.add([.text(grouping), .text(c.group), .int(c.members), .text(m.table.checkpoints[k]), .int(Int(m.table.steps[k])),
                           .number(c.mean[k]), .number(c.low[k]), .number(c.high[k])])
                }
            }
        }
        return t.text
    }

    /// log10 criticality bins shared by every checkpoint: [lo, hi) in `count` equal steps.
    static func bins(_ m: Model, count: Int = 24) -> (edges: [Double], fractions: [[Double]]) {
        let per = m.table.checkpoints.indices.map { m.table.criticalityValues(checkpoint: $0).filter { $0 > 0 }.map { log10($0) } }
        let all = per.flatMap { $0 }
        var lo = (all.min() ?? 0).rounded(.down), hi = (all.max() ?? 1).rounded(.up)
        if hi <= lo { hi = lo + 1 }
        let width = (hi - lo) / Double(count)
        lo = lo.isFinite ? lo : 0
        let edges = (0...count).map { lo + Double($0) * width }
        let fractions = per.map { v -> [Double] in
            var h = [Double](repeating: 0, count: count)
            for x in v { h[min(count - 1, max(0, Int((x - lo) / width)))] += 1 }
            return v.isEmpty ? h.map { _ in .nan } : h.map { $0 / Double(v.count) }
        }
        return (edges, fractions)
    }

    static func page(_ m: Model, files: [String]) -> String {
        let t = m.table
        var o = HTMLReport.documentStart(file: t.path)
        o += HTMLReport.header(title: "cpiscope report: context criticality", fileLabel: "File", path: t.path, info: t.info,
                               facts: "\(t.checkpoints.count) checkpoints · \(t.examples) examples", options: m.options,
                               incomplete: t.incompleteCheckpoints)
        o += "<nav><a href=\"#crit-headline\">Headline</a><a href=\"#crit-histogram\">Distribution</a><a href=\"#crit-groups\">Loss by group</a></nav></header><main>"
        o += "<section id=\"crit-headline\"><h2>Headline</h2><div class=\"headline\">" + m.headline.dropFirst().map { "<p>\(esc($0))</p>" }.joined() + "</div>"
        o += "<p class=\"meta\">Criticality = exp(mean negative log-likelihood of the response without its context): high when the response needs the context, low when the model can give it from memory (Goyal, Baek et al. §3.4). Groups and the split use the base checkpoint \(esc(m.base)). Loss = the example's training loss: with its context when it has one.</p></section>"

        let (edges, fractions) = bins(m)
        let centres = zip(edges, edges.dropFirst()).map { ($0 + $1) / 2 }
        o += "<section id=\"crit-histogram\"><h2>Distribution of criticality</h2><div class=\"grid2\">"
        var series = [Series(name: m.base, color: palette[0], y: fractions[t.baseCheckpoint])]
        if t.checkpoints.count > 1, t.baseCheckpoint != t.checkpoints.count - 1 {
            series.append(Series(name: t.checkpoints.last!, color: palette[1], y: fractions.last!, dashed: true))
        }
        o += HTMLReport.figure(LineChart(id: "chart-criticality-hist", title: "Share of examples with a context per log10 criticality bin",
                                         x: centres, xLabel: "log10 criticality (perplexity without context)", yLabel: "share of examples",
                                         series: series).svg(),
                               "Each point is one bin's share of the scored examples with a context. The filter removes the left tail.")
        let rows = (0..<centres.count).reversed().map { String(format: "%.2f", centres[$0]) }
        var values: [Double] = []
        for r in (0..<centres.count).reversed() { for c in t.checkpoints.indices { values.append(fractions[c][r]) } }
        let maxV = values.filter(\.isFinite).max() ?? 1
        o += HTMLReport.figure(Heatmap(id: "heatmap-criticality-hist", title: "Criticality distribution over the run", rowLabels: rows,
                                       columnLabels: t.checkpoints, rowAxis: "log10 criticality", columnAxis: "checkpoint", values: values,
                                       scale: .viridis(0, maxV), unit: "share of examples", maxWidth: 520, maxHeight: 360).svg(),
                               "Column = one checkpoint's histogram. Finetuning that teaches the responses moves mass down (lower perplexity).")
        o += "</div></section>"

        o += "<section id=\"crit-groups\"><h2>Loss by group over training</h2><div class=\"grid2\">"
        let x = t.steps.enumerated().map { $0.element >= 0 ? Double($0.element) : Double($0.offset) }
        func chart(_ id: String, _ title: String, _ curves: [CriticalityTable.GroupCurve], caption: String) -> String {
            HTMLReport.figure(LineChart(id: id, title: title, x: x, xLabel: "step", yLabel: "mean loss (nats / response token)",
                                        series: curves.enumerated().map { k, c in
                                            Series(name: "\(c.group) (n=\(c.members))", color: palette[k % palette.count], y: c.mean,
                                                   band: zip(c.low, c.high).map { Interval(low: $0, high: $1) })
                                        }, xNames: t.checkpoints).svg(), caption)
        }
        o += chart("chart-groups-paper", "Paper split: C, C+S and S", m.paper,
                   caption: "C = context-critical examples, C+S = examples with a context the model could answer without it (the lowest \(Fmt.number(t.splitPercent, 3))% by criticality), S = examples without a context. Proposition 1 of Goyal, Baek et al. predicts that C dominates the gradient early and the others later. Bands: 95% bootstrap over the group's examples.")
        o += chart("chart-groups-quartiles", "Criticality quartiles (Q1 lowest)", m.quartiles,
                   caption: "Examples with a context, by quartile of criticality at \(esc(m.base)).")
        if !m.categories.isEmpty {
            o += chart("chart-groups-category", "Loss by data category", m.categories,
                       caption: "The most frequent categories of the data (--category-field, or TULU's dataset field), all examples of each.")
        }
        o += "</div>"
        var rowsT: [[String]] = []
        for c in m.paper + m.quartiles + m.categories {
            let half = halfDrop(c.mean).map { t.checkpoints[$0] } ?? "–"
            rowsT.append([c.group, String(c.members), Fmt.number(c.mean.first ?? .nan, 4), Fmt.number(c.mean.last ?? .nan, 4),
                          Fmt.signed((c.mean.last ?? .nan) - (c.mean.first ?? .nan), 4), half])
        }
        o += InterventionReport.table(id: "table-groups", header: ["group", "examples", "first loss", "last loss", "change", "half the drop by"], rows: rowsT)
        o += "</section></main>"
        o += HTMLReport.documentEnd(files: files, toolVersion: t.info["tool_version"] ?? "", definitions: "docs/criticality.md")
        return o
    }

    static func markdown(_ m: Model, files: [String]) -> String {
        var o = "# cpiscope report: context criticality\n\n"
        o += m.headline.map { "- \($0)\n" }.joined()
        o += "\nFiles: " + files.joined(separator: ", ") + "\n"
        return o
    }
}
