// The report's and diff's direct-logit-attribution parts on a schema-version-2 synthetic run with
// planted heads (SyntheticRuns: L2H1 context head, L1H3 memory head, L0H2 context → memory): every
// chart and table is present, the CSV numbers equal naive recomputations from the HDF5 arrays
// (tolerance 1e-12), and a version-1 run's report and diff have no DLA parts.
import Analysis
import Foundation
import Reports
import Testing

func indexHTML(_ report: URL) throws -> String {
    try String(contentsOf: report.appendingPathComponent("index.html"), encoding: .utf8)
}

@Suite("Report: direct logit attribution")
struct DLAReportTests {
    @Test("a version-2 run gets the DLA heatmaps, head trajectories, role-change and span tables; CSVs recomputed")
    func dlaSections() throws {
        var o = ReportOptions(); o.seed = 5; o.resamples = 300
        let (dir, url, out) = try writeReport(SyntheticRun().withDLA(), options: o)
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = try Raw(url)
        let html = try indexHTML(out)
        for id in ReportWriter.chartIDs + ReportWriter.tableIDs + ReportWriter.dlaChartIDs + ReportWriter.dlaTableIDs + ["heatmap-dla-peak", "heatmap-dla-final"] {
            #expect(html.contains("id=\"\(id)\""), "missing \(id)")
        }
        #expect(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"))
        #expect(html.components(separatedBy: "linearGradient id=").count - 1 == 5 + 3 + 1, "a legend for every heatmap (3 key checkpoints, spans)")
        // The head trajectory sits right after the attention trajectory.
        let attention = try #require(html.range(of: "id=\"chart-attention\"")), heads = try #require(html.range(of: "id=\"chart-dla-heads\""))
        let mc = try #require(html.range(of: "id=\"chart-mc\""))
        #expect(attention.lowerBound < heads.lowerBound && heads.lowerBound < mc.lowerBound)

        var worst = 0.0
        let P = raw.P, zeros = [Double](repeating: 0, count: raw.P)
        let ranking = try parseCSV(out.appendingPathComponent("dla_ranking.csv"))
        let firstContext = try #require(ranking.first)
        #expect(firstContext["checkpoint"] == "checkpoint-0" && firstContext["layer"] == "0" && firstContext["head"] == "2", "L0H2 starts as the top context head")
        let peakContext = try #require(ranking.first { $0["checkpoint"] == "checkpoint-200" && $0["role"] == "context" && $0["rank"] == "1" })
        #expect(peakContext["layer"] == "2" && peakContext["head"] == "1", "the planted context head tops the peak's ranking")
        let peakMemory = try #require(ranking.first { $0["checkpoint"] == "checkpoint-200" && $0["role"] == "memory" && $0["rank"] == "1" })
        #expect(peakMemory["layer"] == "1" && peakMemory["head"] == "3")
        for r in ranking {
            let c = try #require(raw.names.firstIndex(of: r["checkpoint"] ?? "")), l = try #require(Int(r["layer"] ?? "")), h = try #require(Int(r["head"] ?? ""))
            let e = naivePairedBootstrap(from: zeros, to: (0..<P).map { raw.dla(c, $0, l, h) }, seed: 5, resamples: 300)
            worst = max(worst, gap(num(r["mean_dla"]), e.0), gap(num(r["ci_low"]), e.1), gap(num(r["ci_high"]), e.2))
            #expect(Int(r["n"] ?? "") == e.3)
        }
        let map = try parseCSV(out.appendingPathComponent("dla_heads_at_checkpoints.csv"))
        #expect(map.count == 3 * raw.L * raw.H)
        for r in map {
            let c = try #require(raw.names.firstIndex(of: r["checkpoint"] ?? "")), l = try #require(Int(r["layer"] ?? "")), h = try #require(Int(r["head"] ?? ""))
            worst = max(worst, gap(num(r["mean_dla"]), naiveMean((0..<P).map { raw.dla(c, $0, l, h) })))
        }
        let roles = try parseCSV(out.appendingPathComponent("dla_role_changes.csv"))
        #expect(roles.prefix(3).map { $0["role"] ?? "" } == ["context", "context", "memory"] && roles.first?["layer"] == "0" && roles.first?["head"] == "2",
                "L0H2 turns from context to memory and heads the table")
        for r in try parseCSV(out.appendingPathComponent("dla_by_span.csv")) {
            let c = try #require(raw.names.firstIndex(of: r["checkpoint"] ?? "")), l = try #require(Int(r["layer"] ?? "")), h = try #require(Int(r["head"] ?? ""))
            let s = try #require(["context", "subject", "question", "context_answer", "memory_mention", "bos", "other"].firstIndex(of: r["span"] ?? ""))
            worst = max(worst, gap(num(r["mean_dla"]), naiveMean((0..<P).map { raw.dlaSpan(c, $0, s, l, h) })))
        }
        let traj = try parseCSV(out.appendingPathComponent("dla_trajectory.csv"))
        for r in traj where r["series"] == "logit_diff" {
            let c = try #require(raw.names.firstIndex(of: r["checkpoint"] ?? ""))
            let xs = (0..<P).map { Double(raw.logitDiff[c * P + $0]) }
            let e = naivePairedBootstrap(from: zeros, to: xs, seed: 5, resamples: 300)
            worst = max(worst, gap(num(r["mean"]), e.0), gap(num(r["ci_low"]), e.1), gap(num(r["ci_high"]), e.2))
        }
        #expect(traj.count == raw.C * (6 + 7), "6 tracked heads and 7 components per checkpoint")
        #expect(worst <= tol, "max |Δ| = \(worst)")

        let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        #expect(md.contains("## Direct logit attribution") && md.contains("### Heads that changed role") && md.contains("| L0H2 |"))
        #expect(md.contains("context heads at checkpoint-200 (peak) (mean DLA, logits): L2H1 +"))
    }

    @Test("a version-1 run's report and diff have no DLA parts; a version-2 diff has them in every format")
    func versions() throws {
        var o = ReportOptions(); o.resamples = 100
        let (dir, url, out) = try writeReport(options: o)
        defer { try? FileManager.default.removeItem(at: dir) }
        let html = try indexHTML(out)
        for id in ReportWriter.dlaChartIDs + ReportWriter.dlaTableIDs { #expect(!html.contains("id=\"\(id)\"")) }
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("dla_ranking.csv").path))
        var d = DiffOptions(); d.resamples = 100
        let v1 = try DiffAnalysis.run(url, options: d)
        #expect(!DiffText.table(v1, top: 5).contains("direct logit attribution") && !DiffText.csv(v1, top: nil).contains("dla_"))

        let v2url = dir.appendingPathComponent("v2.h5")
        try SyntheticRun().withDLA().write(to: v2url)
        d.dlaTop = 2
        let v2 = try DiffAnalysis.run(v2url, options: d)
        let table = DiffText.table(v2, top: 5)
        #expect(table.contains("== direct logit attribution by head at checkpoint-0") && table.contains("== direct logit attribution by head at checkpoint-500"))
        #expect(table.contains("== head DLA trajectories") && table.contains("head_dla_L2H1") && table.contains("== logit difference and its components"))
        let csvURL = dir.appendingPathComponent("diff.csv")
        try Data(DiffText.csv(v2, top: nil).utf8).write(to: csvURL)
        let rows = try parseCSV(csvURL)
        let heads = rows.filter { $0["section"] == "dla_head" }
        #expect(heads.count == 2 * 2 * 2, "2 checkpoints × (2 context + 2 memory heads)")
        #expect(heads.contains { $0["measure"] == "memory_head" && $0["from"] == "checkpoint-500" && $0["layer"] == "1" && $0["head"] == "3" && $0["rank"] == "12" }, "rank among all 12 heads: last")
        #expect(rows.filter { $0["section"] == "dla_component" }.count == 7 * 6 && rows.allSatisfy { $0.count == 16 })
    }
}
