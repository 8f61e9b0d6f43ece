// The report of an attribution file (`cpiscope attribute`, docs/attribution.md), in the page style of the
// probe report:
//   atp-headline  the baseline and metric, the top head and MLP at each checkpoint, the estimate-vs-true
//                 correlation of the verified components, the head that changed most
//   atp-heads     per checkpoint: the heads with the largest mean estimate, 95% bootstrap intervals over
//                 probes (chart-atp-heads-K), and the layer × head map of the mean estimate at --checkpoint
//                 (heatmap-atp-heads)
//   atp-change    the heads whose estimate changed most from --from (default: the counterfactual-accuracy
//                 peak with --generate, else the peak of the clean logit difference) to the last checkpoint,
//                 paired over probes (chart-atp-change)
//   atp-verify    with --verify-top: each verified (component, probe)'s estimate against its true effect
//                 (chart-atp-verify), with the correlation
// CSV: atp_components.csv (every head and MLP at every checkpoint) and atp_verified.csv.
import Analysis
import Foundation

enum AttributionReport {
    static let sectionIDs = ["atp-headline", "atp-heads", "atp-change", "atp-verify"]

    static func headline(_ run: AttributionRun, _ a: AttributionAnalysis) -> [String] {
        var out = ["attribution file \(run.path): baseline \(run.baseline), metric \(run.metric), \(run.checkpoints.count) complete checkpoint\(run.checkpoints.count == 1 ? "" : "s"), \(run.probes.count) probes"]
        for (c, name) in run.checkpoints.enumerated() {
            var line = "\(name):"
            if let h = a.heads[c].first { line += " top head \(h.name) \(Fmt.signed(h.estimate.value)) \(Fmt.interval(h.estimate.interval))" }
            if let m = a.mlps[c].first { line += "; top MLP \(m.name) \(Fmt.signed(m.estimate.value)) \(Fmt.interval(m.estimate.interval))" }
            if !a.verifiedPairs[c].isEmpty {
                line += String(format: "; estimate vs true effect over %d verified pairs: Pearson %.2f", a.verifiedPairs[c].count, a.verifiedPearson[c])
            }
            out.append(line)
        }
        if let h = a.headChange.first {
            out.append("largest change \(run.checkpoints[a.from]) → \(run.checkpoints[a.to]): \(h.name) \(Fmt.signed(h.estimate.value)) \(Fmt.interval(h.estimate.interval))")
        }
        return out
    }

    static func write(run url: URL, to dir: URL, options: ReportOptions) throws -> ReportSummary {
        let run = try AttributionRun(url: url)
        let a = try AttributionAnalysis(run, from: options.from, bootstrap: try Bootstrap(seed: options.seed, resamples: options.resamples))
        try ReportWriter.makeDirectory(dir)
        let csvs = [("atp_components.csv", componentsCSV(run, a)), ("atp_verified.csv", verifiedCSV(run, a))]
        let files = ["index.html", "report.md"] + csvs.map(\.0)
        let lines = headline(run, a)
        try ReportWriter.save(page(run, a, options: options, files: files, lines: lines), dir.appendingPathComponent("index.html"))
        try ReportWriter.save("# cpiscope report: attribution patching\n\n" + lines.map { "- \($0)\n" }.joined() + "\nFiles: " + files.joined(separator: ", ") + "\n",
                              dir.appendingPathComponent("report.md"))
        for (name, text) in csvs { try ReportWriter.save(text, dir.appendingPathComponent(name)) }
        return ReportSummary(directory: dir, files: files, lines: lines)
    }

    static func componentsCSV(_ run: AttributionRun, _ a: AttributionAnalysis) -> String {
        var t = CSVTable(["checkpoint", "step", "component", "mean_estimate", "ci_low", "ci_high", "probes"])
        for (c, name) in run.checkpoints.enumerated() {
            for r in a.heads[c] + a.mlps[c] {
                t.add([.text(name), .int(Int(run.steps[c])), .text(r.name), .number(r.estimate.value), .number(r.estimate.interval.low),
                       .number(r.estimate.interval.high), .int(r.estimate.n)])
            }
        }
        return t.text
    }

    static func verifiedCSV(_ run: AttributionRun, _ a: AttributionAnalysis) -> String {
        var t = CSVTable(["checkpoint", "component", "probe", "estimate", "true_effect"])
        for (c, name) in run.checkpoints.enumerated() {
            for v in run.verified[c] {
                for (p, probe) in run.probes.enumerated() {
                    t.add([.text(name), .text(v.name), .text(probe), .number(Double(v.estimate[p])), .number(Double(v.effect[p]))])
                }
            }
        }
        return t.text
    }

    static func page(_ run: AttributionRun, _ a: AttributionAnalysis, options: ReportOptions, files: [String], lines: [String]) -> String {
        let unit = run.metric == "mc" ? "change in M_C" : "change in logit difference"
        var o = HTMLReport.documentStart(file: run.path)
        o += HTMLReport.header(title: "cpiscope report: attribution patching", fileLabel: "File", path: run.path, info: [:],
                               facts: "\(run.checkpoints.count) checkpoints · \(run.probes.count) probes · \(run.layers) layers × \(run.heads) heads",
                               options: options, incomplete: [])
        o += "<nav><a href=\"#atp-headline\">Headline</a><a href=\"#atp-heads\">Heads</a><a href=\"#atp-change\">Change</a><a href=\"#atp-verify\">Estimate vs true</a></nav></header><main>"
        o += "<section id=\"atp-headline\"><h2>Headline</h2><div class=\"headline\">" + lines.dropFirst().map { "<p>\(esc($0))</p>" }.joined() + "</div>"
        o += "<p class=\"meta\">Estimate of component c = Σ over prompt positions of (a_baseline − a_clean) · ∂metric/∂a_clean (attribution patching, Nanda 2023; Kramár et al. 2024): the first-order change of the metric at the answer position when c takes its baseline value (\(esc(run.baseline))). Means over probes with 95% bootstrap intervals.</p></section>"

        o += "<section id=\"atp-heads\"><h2>Heads and MLPs by estimated effect</h2><div class=\"grid2\">"
        for (c, name) in run.checkpoints.enumerated() {
            let top = Array((a.heads[c].prefix(10) + a.mlps[c].prefix(3)))
            o += HTMLReport.figure(BarChart(id: "chart-atp-heads-\(c)", title: "\(name): largest estimated effects", labels: top.map(\.name),
                                            values: top.map(\.estimate.value), intervals: top.map(\.estimate.interval), xLabel: unit).svg(),
                                   "The ten heads and three MLPs of largest |mean estimate| at \(esc(name)); whiskers: 95% bootstrap interval over probes.")
        }
        let ci = options.checkpoint.flatMap { k in run.checkpoints.firstIndex(of: k) ?? run.steps.firstIndex { String($0) == k } } ?? run.checkpoints.count - 1
        if !a.heads[ci].isEmpty {
            var byName: [String: Double] = [:]
            for r in a.heads[ci] { byName[r.name] = r.estimate.value }
            let values = (0..<run.layers).flatMap { l in (0..<run.heads).map { h in byName["L\(l)H\(h)"] ?? .nan } }
            let m = values.filter(\.isFinite).map(abs).max() ?? 1
            o += HTMLReport.figure(Heatmap(id: "heatmap-atp-heads", title: "Mean estimate per head at \(run.checkpoints[ci])",
                                           rowLabels: (0..<run.layers).map(String.init), columnLabels: (0..<run.heads).map(String.init),
                                           rowAxis: "layer", columnAxis: "head", values: values, scale: .diverging(max(m, 1e-9)), unit: unit).svg(),
                                   "Positive: setting the head to its baseline raises the metric (the head works against the context answer); negative: the head supports it.")
        }
        o += "</div></section>"

        o += "<section id=\"atp-change\"><h2>Change between checkpoints</h2>"
        if a.headChange.isEmpty {
            o += "<p class=\"meta\">One complete checkpoint (or --from is the last one): no change to show.</p>"
        } else {
            let top = Array(a.headChange.prefix(12))
            o += HTMLReport.figure(BarChart(id: "chart-atp-change", title: "Heads whose estimate changed most, \(run.checkpoints[a.from]) → \(run.checkpoints[a.to])",
                                            labels: top.map(\.name), values: top.map(\.estimate.value), intervals: top.map(\.estimate.interval),
                                            xLabel: "estimate at \(run.checkpoints[a.to]) − at \(run.checkpoints[a.from])").svg(),
                                   "Paired over probes. --from defaults to the counterfactual-accuracy peak (files written with attribute --generate), else to the checkpoint with the highest mean clean logit difference.")
        }
        o += "</section>"

        o += "<section id=\"atp-verify\"><h2>Estimate against the true effect</h2>"
        let pairs = a.verifiedPairs.enumerated().flatMap { c, ps in ps.map { (run.checkpoints[c] + " " + $0.component, $0.estimate, $0.effect) } }
        if pairs.isEmpty {
            o += "<p class=\"meta\">No verified components: run `cpiscope attribute … --verify-top K` to measure the true effect of the K largest estimates.</p>"
        } else {
            o += HTMLReport.figure(ScatterChart(id: "chart-atp-verify", title: "Attribution-patching estimate vs true effect",
                                                x: pairs.map(\.1), y: pairs.map(\.2), names: pairs.map(\.0),
                                                xLabel: "estimate (\(unit))", yLabel: "true \(unit)").svg(),
                                   "One point per verified (component, probe). Points off the diagonal are where the linear estimate fails, e.g. saturated attention (Kramár et al. 2024, §3).")
            o += InterventionReport.table(id: "table-atp-verify", header: ["checkpoint", "pairs", "Pearson", "Spearman"],
                                          rows: run.checkpoints.indices.map { c in
                                              [run.checkpoints[c], String(a.verifiedPairs[c].count), Fmt.number(a.verifiedPearson[c], 3), Fmt.number(a.verifiedSpearman[c], 3)]
                                          })
        }
        o += "</section></main>"
        o += HTMLReport.documentEnd(files: files, toolVersion: "", definitions: "docs/attribution.md")
        return o
    }
}
