// `report` and `diff` on synthetic intervention files (SyntheticInterventions, planted effects): the page
// has a section per kind present and only those, every CSV number equals the naive paired bootstrap of
// the raw arrays (tolerance 1e-12), diff's three formats agree, a probe run still gets the probe report,
// a malformed file names its field, and Chromium renders the page without console messages.
import Analysis
import Foundation
import Reports
import Testing

func writeInterventionReport(_ s: SyntheticInterventions = SyntheticInterventions(), options: ReportOptions,
                             label: String = #function) throws -> (URL, URL, URL, ReportSummary) {
    let dir = try tempDir(label)
    let url = dir.appendingPathComponent("iv.h5")
    try s.write(to: url)
    let out = dir.appendingPathComponent("report")
    let summary = try ReportWriter.write(file: url, to: out, options: options)
    return (dir, url, out, summary)
}

@Suite("Report and diff: intervention files")
struct InterventionReportTests {
    @Test("every section and chart is there; the CSVs equal a naive recomputation; report.md has the headline")
    func sections() throws {
        var o = ReportOptions(); o.seed = 3; o.resamples = 200
        let (dir, url, out, summary) = try writeInterventionReport(options: o)
        defer { try? FileManager.default.removeItem(at: dir) }
        let html = try indexHTML(out)
        for id in ReportWriter.interventionSectionIDs + ["heatmap-ablation-heads-1", "heatmap-ablation-heads-2", "heatmap-ablation-layers-1",
                                                         "table-transplant-1", "table-transplant-2", "heatmap-transplant-1", "chart-knockout-1",
                                                         "chart-knockout-2", "table-knockout", "heatmap-patching-heads-1", "heatmap-patching-layers-1",
                                                         "table-ranking"] {
            #expect(html.contains("id=\"\(id)\""), "missing \(id)")
        }
        #expect(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"))
        #expect(html.contains("At checkpoint-200, transplanting attn.ov of layer 1 from checkpoint-50 restores the most context reliance"))
        #expect(summary.files.first == "index.html" && summary.files.contains("transplant.csv") && summary.files.contains("ranking.csv"))
        #expect(summary.lines.contains { $0.hasPrefix("At checkpoint-200, transplanting attn.ov of layer 1") })

        let raw = try RawInterventions(url)
        var worst = 0.0
        let rows = try parseCSV(out.appendingPathComponent("intervention_effects.csv"))
        #expect(rows.count == raw.C * raw.I)
        for r in rows {
            let c = try #require(raw.checkpoints.firstIndex(of: r["checkpoint"] ?? "")), i = try #require(raw.names.firstIndex(of: r["intervention"] ?? ""))
            for (measure, column) in [("logit_diff", "logit_diff"), ("mc", "mc"), ("cf", "cf"), ("recovery", "recovery")] {
                if measure == "recovery" && raw.kinds[i] != "patch" { #expect(r["recovery"] == "" && r["recovery_n"] == "0"); continue }
                let want: (Double, Double, Double, Int)
                if measure == "recovery" {
                    let (num, den) = raw.recoveryTerms(c, i)
                    want = naiveRatioBootstrap(num, den, seed: 3, resamples: 200)
                } else {
                    let (a, b) = raw.pair(measure, c, i)
                    want = naivePairedBootstrap(from: a, to: b, seed: 3, resamples: 200)
                }
                let value = measure == "recovery" ? "recovery" : "\(column)_change"
                worst = max(worst, gap(num(r[value]), want.0), gap(num(r["\(column)_ci_low"]), want.1), gap(num(r["\(column)_ci_high"]), want.2))
                #expect(Int(r["\(column)_n"] ?? "") == want.3)
            }
        }
        #expect(worst <= tol, "max |Δ| = \(worst)")
        let transplant = try parseCSV(out.appendingPathComponent("transplant.csv"))
        #expect(transplant.count == raw.C * 9 && transplant.allSatisfy { $0["kind"] == "transplant" })
        let ranking = try parseCSV(out.appendingPathComponent("ranking.csv"))
        #expect(ranking.first?["intervention"] == "knockout context L1" && ranking.first?["rank"] == "1" && ranking.allSatisfy { $0["checkpoint"] == "checkpoint-200" })
        let knock = try parseCSV(out.appendingPathComponent("knockout.csv"))
        #expect(knock.contains { $0["intervention"] == "knockout subject L0-2" && $0["detail"] == "0 1 2" && $0["logit_diff_n"] == "11" })

        let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        #expect(md.contains("# cpiscope report: interventions") && md.contains("## Transplant into checkpoint-200 from checkpoint-50"))
        #expect(md.contains("| 1 | knockout context L1 |") && md.contains("- iv-patching"))
    }

    @Test("sections appear only for the kinds in the file; --checkpoint picks the headline's checkpoint")
    func onlyPresentKinds() throws {
        var s = SyntheticInterventions(); s.kinds = ["knockout"]; s.generate = false
        var o = ReportOptions(); o.resamples = 100; o.checkpoint = "checkpoint-100"
        let (dir, _, out, summary) = try writeInterventionReport(s, options: o)
        defer { try? FileManager.default.removeItem(at: dir) }
        let html = try indexHTML(out)
        #expect(html.contains("id=\"iv-knockout\"") && html.contains("id=\"chart-knockout-1\""))
        for id in ["iv-ablation", "iv-transplant", "iv-patching", "heatmap-ablation-heads-1", "table-transplant-1"] { #expect(!html.contains("id=\"\(id)\""), "\(id)") }
        #expect(!summary.files.contains("transplant.csv") && summary.files.contains("knockout.csv"))
        #expect(summary.lines.contains { $0.hasPrefix("knockout: strongest at checkpoint-100 is knockout context L1") })
        #expect(!summary.lines.contains { $0.contains("transplanting") })
    }

    @Test("a probe run still gets the probe report; a malformed intervention file names the field")
    func dispatch() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run.h5")
        try SyntheticRun().write(to: run)
        var o = ReportOptions(); o.resamples = 100
        let summary = try ReportWriter.write(file: run, to: dir.appendingPathComponent("probe"), options: o)
        let html = try indexHTML(summary.directory)
        for id in ReportWriter.chartIDs + ReportWriter.tableIDs { #expect(html.contains("id=\"\(id)\""), "probe report lacks \(id)") }
        #expect(!html.contains("id=\"iv-headline\"") && summary.files.contains("trajectory.csv"))

        var bad = SyntheticInterventions(); bad.misshapen = "patch_recovery"
        let badURL = dir.appendingPathComponent("bad.h5")
        try bad.write(to: badURL)
        do {
            try ReportWriter.write(file: badURL, to: dir.appendingPathComponent("bad"), options: o)
            Issue.record("malformed file accepted")
        } catch let e as AnalysisError {
            #expect(e.description.contains("field 'patch_recovery'"), "\(e.description)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("bad").path), "nothing written for a refused file")
    }

    @Test("diff: table, CSV and JSON rank the same interventions with the same intervals; --top limits them")
    func diffFormats() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("iv.h5")
        try SyntheticInterventions().write(to: url)
        let r = try InterventionRanking(run: try InterventionRun(url: url), checkpoint: "200", kind: "ablate", seed: 9, resamples: 150)
        let table = DiffText.table(r, top: 3)
        #expect(table.contains("== interventions at checkpoint-200 (step 200), kind ablate, ranked by |Δ logit diff|: top 3 of 15 =="))
        let lines = table.split(separator: "\n").map(String.init)
        let first = try #require(lines.firstIndex { $0.hasPrefix("ablate L2H1 zero") })
        #expect(lines[first + 1].hasPrefix("ablate L1H3 zero") && lines[first + 3].hasPrefix("headline:"))
        let e = r.ranked[0]
        #expect(lines[first].contains(Fmt.signed(e.logitDiffChange.value)) && lines[first].contains(Fmt.interval(e.logitDiffChange.interval)))

        let csvURL = dir.appendingPathComponent("diff.csv")
        try Data(DiffText.csv(r, top: nil).utf8).write(to: csvURL)
        let rows = try parseCSV(csvURL)
        #expect(rows.count == 15 && rows.map { $0["rank"] ?? "" } == (1...15).map(String.init))
        #expect(rows.map { $0["intervention"] ?? "" } == r.ranked.map(\.name))
        let magnitudes = rows.map { abs(num($0["logit_diff_change"])) }
        #expect(zip(magnitudes, magnitudes.dropFirst()).allSatisfy { $0 >= $1 }, "ranked by |Δ logit diff|")
        #expect(num(rows[0]["logit_diff_ci_low"]) == e.logitDiffChange.interval.low)
        #expect(DiffText.csv(r, top: 2).split(separator: "\n").count == 3)

        let json = try #require(JSONSerialization.jsonObject(with: Data(AnalysisJSON.string(AnalysisJSON.interventions(r, top: 4)).utf8)) as? [String: Any])
        let list = try #require(json["interventions"] as? [[String: Any]])
        #expect(list.count == 4 && json["total"] as? Int == 15 && json["ranked_by"] as? String == "logit-diff")
        #expect(list.map { $0["intervention"] as? String ?? "" } == r.ranked.prefix(4).map(\.name))
        let change = try #require(list[0]["logit_diff_change"] as? [String: Any])
        #expect(change["value"] as? Double == e.logitDiffChange.value && change["ci_high"] as? Double == e.logitDiffChange.interval.high)
        #expect((list[0]["recovery"] as? [String: Any])?["value"] is NSNull, "no recovery for an ablation")
    }

    @Test("the intervention report renders in headless Chromium: every section in the DOM, no console messages",
          .enabled(if: chromium != nil, "chromium is not installed"))
    func chromiumRender() throws {
        var o = ReportOptions(); o.resamples = 100
        let (dir, _, out, _) = try writeInterventionReport(options: o)
        defer { try? FileManager.default.removeItem(at: dir) }
        let page = out.appendingPathComponent("index.html")
        let dom = try browse(page, ["--dump-dom"])
        #expect(dom.status == 0)
        for id in ReportWriter.interventionSectionIDs { #expect(dom.stdout.contains("id=\"\(id)\""), "\(id) missing from Chromium's DOM") }
        #expect(dom.stdout.contains("<svg id=\"chart-knockout-1\"") && dom.stdout.contains("<svg id=\"heatmap-patching-heads-1\""))
        #expect(dom.consoleLines.isEmpty, "console: \(dom.consoleLines)")
        let (img, shot) = try screenshot(page, to: dir.appendingPathComponent("iv.png"), window: (1280, 3000))
        #expect(shot.consoleLines.isEmpty && img.nonWhiteFraction > 0.03, "non-white share \(img.nonWhiteFraction)")
    }
}
