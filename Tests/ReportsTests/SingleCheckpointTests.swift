// `diff` on a run with one complete checkpoint (issue 29.2): no pair and no trajectory, but every
// measure, head, layer and lens layer as a mean over probes with its interval, recomputed here with the
// naive bootstrap of Tests/SyntheticRuns from the HDF5 arrays (tolerance 1e-12); DLA rankings at the
// checkpoint; and `--against` between two runs of the same single checkpoint (two templates), its
// B − A equal to the naive paired bootstrap of the raw arrays.
import Analysis
import Foundation
import Reports
import Testing

/// A complete one-checkpoint run (schema version 2, with DLA), `accuracy` its counterfactual accuracy.
func singleCheckpointRun(accuracy: Double = 0.5, massShift: Float = 0) -> SyntheticRun {
    var s = SyntheticRun().withDLA()
    s.checkpoints = ["checkpoint-500"]
    s.steps = [500]
    s.accuracy = [accuracy]
    let base = s.mass
    s.mass = { c, p, sp, l, h in min(1, base(c, p, sp, l, h) + (sp == 0 ? massShift : 0)) }
    return s
}

/// Writes `run` into a fresh directory: (directory, file).
func makeSingleRun(_ run: SyntheticRun, label: String = #function) throws -> (URL, URL) {
    let dir = try tempDir(label)
    let url = dir.appendingPathComponent("run.h5")
    try run.write(to: url)
    return (dir, url)
}

@Suite("One-checkpoint runs")
struct SingleCheckpointTests {
    @Test("diff of a one-checkpoint run: every mean and interval equals the naive bootstrap of the raw arrays (max |Δ| ≤ 1e-12)")
    func levels() throws {
        let (dir, url) = try makeSingleRun(singleCheckpointRun())
        defer { try? FileManager.default.removeItem(at: dir) }
        var o = DiffOptions(); o.seed = 5; o.resamples = 300
        let r = try DiffAnalysis.run(url, options: o)
        #expect(r.diffs.isEmpty && r.headline.diff == nil && r.headline.single)
        let x = try #require(r.headline.levels)
        #expect(x.name == "checkpoint-500" && x.step == 500 && x.span == "context")
        let raw = try Raw(url)
        let zeros = [Double](repeating: 0, count: raw.P)
        var worst = 0.0
        func check(_ got: Estimate, _ values: [Double], _ what: String) {
            let want = naivePairedBootstrap(from: zeros, to: values, seed: 5, resamples: 300)
            let g = max(gap(got.value, want.0), gap(got.interval.low, want.1), gap(got.interval.high, want.2))
            if g > 1e-12 { Issue.record("\(what): |Δ| = \(g)") }
            worst = max(worst, g)
            #expect(got.n == want.3, "\(what): n \(got.n) vs \(want.3)")
        }
        check(x.level(.counterfactualAccuracy), (0..<raw.P).map { Double(raw.cf[$0]) }, "counterfactual accuracy")
        check(x.level(.contextAttention), (0..<raw.P).map { raw.overall(0, $0, 0) }, "context attention")
        check(x.level(.mcLastLayer), (0..<raw.P).map { Double(raw.mc[$0 * raw.LL + raw.LL - 1]) }, "M_C last layer")
        #expect(x.heads.count == raw.L * raw.H)
        for h in x.heads { check(h.estimate, (0..<raw.P).map { raw.m(0, $0, 0, h.layer, h.head) }, "head L\(h.layer)H\(h.head)") }
        for l in x.layers { check(l.estimate, (0..<raw.P).map { raw.layerMean(0, $0, 0, l.layer) }, "layer \(l.layer)") }
        for l in x.lens { check(l.estimate, (0..<raw.P).map { Double(raw.mc[$0 * raw.LL + l.layer]) }, "lens layer \(l.layer)") }
        #expect(worst <= 1e-12, "max |Δ| = \(worst)")
        // Heads ranked by mean, largest first; probe 7 has no context span, so n = P − 1.
        #expect(zip(x.heads, x.heads.dropFirst()).allSatisfy { $0.estimate.value >= $1.estimate.value })
        #expect(x.heads[0].estimate.n == raw.P - 1)
        // DLA: rankings at the one checkpoint: at checkpoint index 0 the planted L0H2 (+1.5) leads, L1H3 (−1) is the memory head.
        #expect(r.dlaRankings.count == 1 && r.dlaRankings[0].checkpoint == 0)
        #expect(r.dlaRankings[0].contextHeads.first?.name == "L0H2" && r.dlaRankings[0].memoryHeads.first?.name == "L1H3")
    }

    @Test("the headline and the tables of a one-checkpoint run say so, with no trajectory, verdict or 'finish the run' hint")
    func wording() throws {
        let (dir, url) = try makeSingleRun(singleCheckpointRun())
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try DiffAnalysis.run(url, options: DiffOptions())
        let lines = r.headline.lines()
        #expect(lines[0].contains("1 checkpoint (checkpoint-500, step 500)") && lines[0].contains("no trajectory, peak or verdict"), "\(lines[0])")
        #expect(lines.contains { $0.hasPrefix("Counterfactual accuracy at checkpoint-500: 0.500 [") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("context heads at checkpoint-500 (mean DLA, logits): L0H2 +") }, "\(lines)")
        #expect(!lines.contains { $0.contains("→ insufficient") || $0.contains("peak") && $0.contains("drop") })
        let table = DiffText.table(r, top: 5)
        #expect(table.contains("== one complete checkpoint, checkpoint-500 (step 500)"))
        #expect(table.contains("== context attention by head at checkpoint-500 (step 500): top 5 of 12 by mean =="))
        #expect(!table.contains("== trajectories") && !table.contains("Spearman") && !table.contains("head DLA trajectories"))
        #expect(table.contains("headline: one checkpoint (checkpoint-500): counterfactual accuracy 0.500 ["))
        let csv = DiffText.csv(r, top: nil)
        #expect(csv.split(separator: "\n").filter { $0.hasPrefix("level_head,") }.count == 12)
        #expect(!csv.contains("\ntrajectory,") && !csv.contains("\nspearman,"))
        let json = AnalysisJSON.string(AnalysisJSON.result(r))
        #expect(json.contains("\"levels\"") && json.contains("\"top_heads\" : null"))
        // --from / --to / --each have no second checkpoint.
        var each = DiffOptions(); each.each = true
        #expect { try DiffAnalysis.run(url, options: each) } throws: { e in
            guard case AnalysisError.invalidOption("--each", let detail) = e else { return false }
            return detail.contains("one complete checkpoint (checkpoint-500)")
        }
    }

    @Test("--against compares two runs of one checkpoint: B − A equals the naive paired bootstrap (max |Δ| ≤ 1e-12)")
    func against() throws {
        let (dirA, a) = try makeSingleRun(singleCheckpointRun(accuracy: 0.25), label: "singleA")
        let (dirB, b) = try makeSingleRun(singleCheckpointRun(accuracy: 0.75, massShift: 0.1), label: "singleB")
        defer { try? FileManager.default.removeItem(at: dirA); try? FileManager.default.removeItem(at: dirB) }
        var o = DiffOptions(); o.seed = 9; o.resamples = 250
        let r = try DiffAnalysis.run(a, options: o, against: b)
        let c = try #require(r.comparison)
        #expect(c.checkpoints == ["checkpoint-500"])
        let ra = try Raw(a), rb = try Raw(b)
        var worst = 0.0
        for (measure, va, vb) in [(Measure.counterfactualAccuracy, (0..<ra.P).map { Double(ra.cf[$0]) }, (0..<rb.P).map { Double(rb.cf[$0]) }),
                                  (.contextAttention, (0..<ra.P).map { ra.overall(0, $0, 0) }, (0..<rb.P).map { rb.overall(0, $0, 0) })] {
            let got = try #require(c.measures.first { $0.measure == measure }).difference[0]
            let want = naivePairedBootstrap(from: va, to: vb, seed: 9, resamples: 250)
            worst = max(worst, gap(got.value, want.0), gap(got.interval.low, want.1), gap(got.interval.high, want.2))
            #expect(got.n == want.3)
        }
        #expect(worst <= 1e-12, "max |Δ| = \(worst)")
        let cf = try #require(c.measures.first { $0.measure == .counterfactualAccuracy }).difference[0]
        #expect(abs(cf.value - 0.5) < 1e-12 && cf.interval.low > 0, "B − A = 0.75 − 0.25")
        let table = DiffText.table(r, top: 5)
        #expect(table.contains("== comparison: B − A per checkpoint") && !table.contains("verdicts:"), "no trajectory verdicts for one checkpoint")
    }
}

@Suite("One-checkpoint report")
struct SingleCheckpointReportTests {
    @Test("the report of a one-checkpoint run renders its per-layer, per-head and DLA views and no trajectory section; its CSV equals the naive bootstrap")
    func report() throws {
        let (dir, url) = try makeSingleRun(singleCheckpointRun())
        defer { try? FileManager.default.removeItem(at: dir) }
        var o = ReportOptions(); o.seed = 4; o.resamples = 200
        let out = dir.appendingPathComponent("report")
        let summary = try ReportWriter.write(file: url, to: out, options: o)
        let html = try String(contentsOf: out.appendingPathComponent("index.html"), encoding: .utf8)
        for id in ReportWriter.singleCheckpointChartIDs + ReportWriter.singleCheckpointTableIDs
            + ["heatmap-dla-first", "heatmap-dla-spans", "dla-heads", "dla-components"] {
            #expect(html.contains("id=\"\(id)\""), "missing \(id)")
        }
        for id in ["chart-accuracy", "verdicts", "heatmap-context-layers", "heatmap-heads-change", "spearman", "chart-dla-heads",
                   "chart-dla-components", "dla-role-changes", "heatmap-dla-peak", "heatmap-dla-final", "heatmap-mc-lens"] {
            #expect(!html.contains("id=\"\(id)\""), "\(id) needs two checkpoints")
        }
        #expect(!html.contains("Finish the run") && html.contains("One complete checkpoint, checkpoint-500 (step 500)"))
        // The components table has one column, not three copies of the same checkpoint.
        let components = try #require(html.range(of: "<table id=\"dla-components\">"))
        let head = html[components.upperBound...].prefix { $0 != "/" }
        #expect(html[components.upperBound...].components(separatedBy: "</thead>")[0].components(separatedBy: "<th>").count - 1 == 2, "\(head)")
        #expect(summary.lines.first?.contains("1 checkpoint (checkpoint-500, step 500)") == true)
        #expect(!summary.files.contains("verdicts.csv") && !summary.files.contains("heads_change.csv") && summary.files.contains("checkpoint_levels.csv"))

        let raw = try Raw(url)
        let zeros = [Double](repeating: 0, count: raw.P)
        var worst = 0.0
        let rows = try parseCSV(out.appendingPathComponent("checkpoint_levels.csv"))
        #expect(rows.filter { $0["kind"] == "head" }.count == raw.L * raw.H)
        for r in rows {
            let values: [Double]
            switch (r["kind"], r["name"]) {
            case ("head", _): values = (0..<raw.P).map { raw.m(0, $0, 0, Int(r["layer"]!)!, Int(r["head"]!)!) }
            case ("layer", "context_attention"): values = (0..<raw.P).map { raw.layerMean(0, $0, 0, Int(r["layer"]!)!) }
            case ("layer", "subject_attention"): values = (0..<raw.P).map { raw.layerMean(0, $0, 1, Int(r["layer"]!)!) }
            case ("lens_mc", _): values = (0..<raw.P).map { Double(raw.mc[$0 * raw.LL + Int(r["layer"]!)!]) }
            case ("measure", "counterfactual_accuracy"): values = (0..<raw.P).map { Double(raw.cf[$0]) }
            case ("measure", "subject_attention"): values = (0..<raw.P).map { raw.overall(0, $0, 1) }
            default: continue
            }
            let want = naivePairedBootstrap(from: zeros, to: values, seed: 4, resamples: 200)
            worst = max(worst, gap(num(r["mean"]), want.0), gap(num(r["ci_low"]), want.1), gap(num(r["ci_high"]), want.2))
            #expect(Int(r["n"] ?? "") == want.3, "\(r)")
        }
        #expect(worst <= 1e-12, "max |Δ| = \(worst)")
        let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        #expect(md.contains("## One checkpoint: checkpoint-500") && !md.contains("## Verdict") && md.contains("### Logit difference and its components"))
        #expect(!md.contains("### Heads that changed role"))
    }
}
