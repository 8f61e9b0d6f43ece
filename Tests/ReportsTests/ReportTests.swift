// The report's numbers, recomputed in the test from the HDF5 arrays with plain loops (reference:
// docs/analysis.md; tolerance 1e-12, CSV numbers are printed in Swift's round-trip form), and the
// page's structure: every chart id, no scripts, no network references, readable label density
// with 100 checkpoints and 32 × 32 heads.
import Analysis
import Foundation
import HDF5Store
import Reports
import Testing

let tol = 1e-12

/// RFC 4180 rows → dictionaries keyed by the header.
func parseCSV(_ url: URL) throws -> [[String: String]] {
    let text = try String(contentsOf: url, encoding: .utf8)
    var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
    var it = Array(text).makeIterator()
    var pending: Character? = nil
    while let ch = pending ?? it.next() {
        pending = nil
        if quoted {
            if ch == "\"" {
                if let next = it.next() {
                    if next == "\"" { field.append("\"") } else { quoted = false; pending = next }
                } else { quoted = false }
            } else { field.append(ch) }
        } else if ch == "\"" { quoted = true }
        else if ch == "," { row.append(field); field = "" }
        else if ch == "\n" { row.append(field); rows.append(row); row = []; field = "" }
        else { field.append(ch) }
    }
    guard let header = rows.first else { return [] }
    return rows.dropFirst().map { r in Dictionary(uniqueKeysWithValues: zip(header, r)) }
}

func num(_ s: String?) -> Double { s.flatMap { $0.isEmpty ? .nan : Double($0) } ?? .infinity }

func writeReport(_ run: SyntheticRun = SyntheticRun(), options: ReportOptions = ReportOptions(), label: String = #function) throws -> (URL, URL, URL) {
    let dir = try tempDir(label)
    let url = dir.appendingPathComponent("run.h5")
    try run.write(to: url)
    let out = dir.appendingPathComponent("report")
    try ReportWriter.write(run: url, to: out, options: options)
    return (dir, url, out)
}

@Suite("Report")
struct ReportTests {
    @Test("every CSV behind the charts equals a recomputation from the HDF5 arrays")
    func csvsRecomputed() throws {
        var o = ReportOptions(); o.seed = 31; o.resamples = 300; o.checkpoint = "300"
        let (dir, url, out) = try writeReport(options: o)
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = try Raw(url)
        let (C, P, L, H, LL) = (raw.C, raw.P, raw.L, raw.H, raw.LL)
        var worst = 0.0
        func cmp(_ got: String?, _ want: Double, _ what: String) {
            let g = gap(num(got), want)
            if g > tol { Issue.record("\(what): file \(got ?? "nil") vs recomputed \(want) (|Δ| = \(g))") }
            worst = max(worst, g)
        }
        let zeros = [Double](repeating: 0, count: P)

        // trajectory.csv: means with the 95% bootstrap band of the mean over probes.
        let perProbe: [String: (Int, Int) -> Double] = [
            "counterfactual_accuracy": { c, p in Double(raw.cf[c * P + p]) },
            "parametric_accuracy": { c, p in Double(raw.pf[c * P + p]) },
            "context_attention": { c, p in raw.overall(c, p, 0) },
            "subject_attention": { c, p in raw.overall(c, p, 1) },
            "mc_last_layer": { c, p in Double(raw.mc[(c * P + p) * LL + LL - 1]) },
        ]
        let traj = try parseCSV(out.appendingPathComponent("trajectory.csv"))
        #expect(traj.count == 5 * C)
        for r in traj {
            let f = try #require(perProbe[r["measure"] ?? ""]), c = try #require(raw.names.firstIndex(of: r["checkpoint"] ?? ""))
            let xs = (0..<P).map { f(c, $0) }
            let band = naivePairedBootstrap(from: zeros, to: xs, seed: 31, resamples: 300)
            cmp(r["mean"], naiveMean(xs), "trajectory mean \(r)")
            cmp(r["ci_low"], band.1, "trajectory ci_low"); cmp(r["ci_high"], band.2, "trajectory ci_high")
            #expect(Int(r["n"] ?? "") == band.3)
        }

        // verdicts.csv: peak, rise, drop, net and verdict.
        for r in try parseCSV(out.appendingPathComponent("verdicts.csv")) {
            let id = r["measure"] ?? ""
            let f: (Int, Int) -> Double
            if let g = perProbe[id] { f = g } else {
                let l = try #require(Int(id.replacingOccurrences(of: "context_attention_layer_", with: "")))
                f = { c, p in raw.layerMean(c, p, 0, l) }
            }
            let row = { (c: Int) in (0..<P).map { f(c, $0) } }
            let curve = (0..<C).map { naiveMean(row($0)) }
            var k = 0
            for c in 1..<C where curve[c] > curve[k] { k = c }
            #expect(r["peak_checkpoint"] == raw.names[k], "\(id) peak")
            cmp(r["peak"], curve[k], "\(id) peak value"); cmp(r["first"], curve[0], "\(id) first"); cmp(r["final"], curve[C - 1], "\(id) final")
            let rise = naivePairedBootstrap(from: row(0), to: row(k), seed: 31, resamples: 300)
            let drop = naivePairedBootstrap(from: row(C - 1), to: row(k), seed: 31, resamples: 300)
            let net = naivePairedBootstrap(from: row(0), to: row(C - 1), seed: 31, resamples: 300)
            for (name, e) in [("rise", rise), ("drop", drop), ("net", net)] {
                cmp(r[name], e.0, "\(id) \(name)"); cmp(r["\(name)_ci_low"], e.1, "\(id) \(name) low"); cmp(r["\(name)_ci_high"], e.2, "\(id) \(name) high")
            }
            // Verdict floors (docs/analysis.md): max(the measure's floor, 0.1 × the curve's range).
            let m = max(id.hasSuffix("accuracy") ? 0.05 : id == "mc_last_layer" ? 0.02 : 0.01, 0.1 * ((curve.max() ?? 0) - (curve.min() ?? 0)))
            cmp(r["minimum_effect"], m, "\(id) minimum effect")
            let counts = { (x: Double, e: (Double, Double, Double, Int)) in x > 0 && x > (e.2 - e.1) / 2 && x >= m }
            let v = (k > 0 && k < C - 1 && counts(rise.0, rise) && counts(drop.0, drop)) ? "inversion"
                : counts(net.0, net) ? "rising" : counts(-net.0, net) ? "falling" : "flat"
            #expect(r["verdict"] == v, "\(id) verdict")
        }

        // Layer × checkpoint heatmaps.
        for (file, s) in [("context_attention_by_layer.csv", 0), ("subject_attention_by_layer.csv", 1)] {
            let rows = try parseCSV(out.appendingPathComponent(file))
            #expect(rows.count == L * C)
            for r in rows {
                let l = try #require(Int(r["layer"] ?? "")), c = try #require(raw.names.firstIndex(of: r["checkpoint"] ?? ""))
                cmp(r["mean_attention"], naiveMean((0..<P).map { raw.layerMean(c, $0, s, l) }), "\(file) L\(l) c\(c)")
            }
        }

        // Layer × head at the chosen checkpoint (step 300 = index 3).
        let heads = try parseCSV(out.appendingPathComponent("heads_at_checkpoint.csv"))
        #expect(heads.count == L * H && heads.allSatisfy { $0["checkpoint"] == "checkpoint-300" })
        for r in heads {
            let l = try #require(Int(r["layer"] ?? "")), h = try #require(Int(r["head"] ?? ""))
            cmp(r["mean_attention"], naiveMean((0..<P).map { raw.m(3, $0, 0, l, h) }), "head \(l).\(h)")
        }

        // Head change: default ends are the counterfactual-accuracy peak (index 2) → final.
        let change = try parseCSV(out.appendingPathComponent("heads_change.csv"))
        #expect(change.count == L * H && change.allSatisfy { $0["from"] == "checkpoint-200" && $0["to"] == "checkpoint-500" })
        var previous = Double.infinity
        for (i, r) in change.enumerated() {
            let l = try #require(Int(r["layer"] ?? "")), h = try #require(Int(r["head"] ?? ""))
            let e = naivePairedBootstrap(from: (0..<P).map { raw.m(2, $0, 0, l, h) }, to: (0..<P).map { raw.m(5, $0, 0, l, h) }, seed: 31, resamples: 300)
            cmp(r["change"], e.0, "change \(l).\(h)"); cmp(r["ci_low"], e.1, "low \(l).\(h)"); cmp(r["ci_high"], e.2, "high \(l).\(h)")
            #expect(Int(r["rank"] ?? "") == i + 1 && Int(r["n"] ?? "") == e.3)
            #expect(abs(e.0) <= previous + tol, "ranked by |change|")
            previous = abs(e.0)
        }

        // Logit lens and M_C per lens layer.
        for r in try parseCSV(out.appendingPathComponent("logit_lens.csv")) {
            let c = try #require(raw.names.firstIndex(of: r["checkpoint"] ?? "")), ll = try #require(Int(r["lens_layer"] ?? ""))
            let a = r["answer"] == "context" ? 0 : 1
            cmp(r["mean_logprob"], naiveMean((0..<P).map { Double(raw.logprob[((c * P + $0) * 2 + a) * LL + ll]) }), "lens c\(c) a\(a) ll\(ll)")
        }
        let mcRows = try parseCSV(out.appendingPathComponent("mc_by_lens_layer.csv"))
        #expect(mcRows.count == C * LL)
        for r in mcRows {
            let c = try #require(raw.names.firstIndex(of: r["checkpoint"] ?? "")), ll = try #require(Int(r["lens_layer"] ?? ""))
            cmp(r["mean_mc"], naiveMean((0..<P).map { Double(raw.mc[(c * P + $0) * LL + ll]) }), "mc c\(c) ll\(ll)")
        }

        // Spearman per layer.
        let acc = (0..<C).map { c in naiveMean((0..<P).map { Double(raw.cf[c * P + $0]) }) }
        for r in try parseCSV(out.appendingPathComponent("spearman.csv")) {
            let x: [Double]
            if let l = Int(r["layer"] ?? "") { x = (0..<C).map { c in naiveMean((0..<P).map { raw.layerMean(c, $0, 0, l) }) } }
            else { x = (0..<C).map { c in naiveMean((0..<P).map { raw.overall(c, $0, 0) }) } }
            cmp(r["rho"], naiveSpearman(x, acc), "spearman \(r["layer"] ?? "")")
        }

        // Per-probe facts and each probe's top moving heads (peak → final).
        let probes = try parseCSV(out.appendingPathComponent("probes.csv"))
        #expect(probes.count == P * C)
        for r in probes {
            let p = try #require(raw.probes.firstIndex(of: r["probe"] ?? "")), c = try #require(raw.names.firstIndex(of: r["checkpoint"] ?? ""))
            #expect(Int(r["counterfactual_correct"] ?? "") == Int(raw.cf[c * P + p]) && Int(r["parametric_correct"] ?? "") == Int(raw.pf[c * P + p]))
            #expect(r["generated"] == raw.generated[c * P + p])
        }
        for r in try parseCSV(out.appendingPathComponent("probe_top_heads.csv")) {
            let p = try #require(raw.probes.firstIndex(of: r["probe"] ?? "")), rank = try #require(Int(r["rank"] ?? ""))
            var moves: [(Int, Int, Double)] = []
            for l in 0..<L { for h in 0..<H {
                let d = raw.m(5, p, 0, l, h) - raw.m(2, p, 0, l, h)
                if !d.isNaN { moves.append((l, h, d)) }
            } }
            moves.sort { abs($0.2) != abs($1.2) ? abs($0.2) > abs($1.2) : ($0.0 * 1000 + $0.1) < ($1.0 * 1000 + $1.1) }
            let want = moves[rank - 1]
            #expect(Int(r["layer"] ?? "") == want.0 && Int(r["head"] ?? "") == want.1, "probe \(p) rank \(rank)")
            cmp(r["change"], want.2, "probe \(p) rank \(rank) change")
        }
        #expect(worst <= tol, "max |Δ| over all CSV numbers = \(worst)")
    }

    @Test("index.html is self-contained with every chart, report.md carries the headline numbers")
    func pageAndMarkdown() throws {
        var o = ReportOptions(); o.resamples = 200
        let (dir, url, out) = try writeReport(options: o)
        defer { try? FileManager.default.removeItem(at: dir) }
        let html = try String(contentsOf: out.appendingPathComponent("index.html"), encoding: .utf8)
        for id in ReportWriter.chartIDs + ReportWriter.tableIDs { #expect(html.contains("id=\"\(id)\""), "missing \(id)") }
        #expect(!html.contains("<script") && !html.contains("http://") && !html.contains("https://") && !html.contains("src="),
                "no scripts and no network references")
        #expect(html.contains("inversion"))
        // Colour legends and axis units are present for every heatmap.
        #expect(html.components(separatedBy: "linearGradient id=").count - 1 == 5)
        #expect(html.contains("attention mass on context (0–1)") && html.contains("log-prob of first token (nats)") && html.contains("training step"))
        let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        let raw = try Raw(url)
        // Recompute the headline drop: counterfactual accuracy at the peak (index 2) minus the final.
        let acc = (0..<raw.C).map { c in naiveMean((0..<raw.P).map { Double(raw.cf[c * raw.P + $0]) }) }
        let drop = naivePairedBootstrap(from: (0..<raw.P).map { Double(raw.cf[5 * raw.P + $0]) },
                                        to: (0..<raw.P).map { Double(raw.cf[2 * raw.P + $0]) }, seed: 0, resamples: 200)
        let dropText = "\(String(format: "%.3f", drop.0)) [\(String(format: "%+.3f", drop.1)), \(String(format: "%+.3f", drop.2))]"
        #expect(md.contains("**Counterfactual accuracy: inversion**"))
        #expect(md.contains(dropText), "report.md should carry the drop \(dropText)")
        #expect(md.contains(String(format: "%.3f (200)", acc[2])))
        #expect(html.contains(dropText.replacingOccurrences(of: " [", with: " (95% CI [")))
    }

    @Test("100 checkpoints and 32 layers × 32 heads stay readable: cells fit, labels are thinned, tables scroll")
    func largeRun() throws {
        var s = SyntheticRun()
        s.checkpoints = (0..<100).map { "checkpoint-\($0 * 50)" }
        s.steps = (0..<100).map { Int64($0 * 50) }
        s.probes = (0..<3).map { "probe-\($0)" }
        s.layers = 32; s.heads = 32
        let levels: [Double] = [0, 1.0 / 3, 2.0 / 3, 1]
        s.accuracy = (0..<100).map { (c: Int) -> Double in
            let k: Int = c < 50 ? c / 13 : (99 - c) / 17
            return levels[min(3, k)]
        }
        var o = ReportOptions(); o.resamples = 50
        let (dir, _, out) = try writeReport(s, options: o)
        defer { try? FileManager.default.removeItem(at: dir) }
        let html = try String(contentsOf: out.appendingPathComponent("index.html"), encoding: .utf8)
        func svg(_ id: String) throws -> String {
            let start = try #require(html.range(of: "<svg id=\"\(id)\""))
            let end = try #require(html.range(of: "</svg>", range: start.upperBound..<html.endIndex))
            return String(html[start.lowerBound..<end.upperBound])
        }
        func ticks(_ s: String) -> Int { s.components(separatedBy: "class=\"tick\"").count - 1 }
        func width(_ s: String) -> Double { Double(s.components(separatedBy: "width=\"")[1].prefix { $0 != "\"" }) ?? .infinity }
        let layers = try svg("heatmap-context-layers")
        #expect(layers.components(separatedBy: "<rect x=").count - 1 == 32 * 100 + 2, "one cell per layer × checkpoint (+ the legend bar and the no-data swatch)")
        #expect(ticks(layers) < 32 + 100, "axis labels are thinned (\(ticks(layers)) labels)")
        #expect(width(layers) <= 900, "fits the page width")
        let heads = try svg("heatmap-heads")
        #expect(heads.components(separatedBy: "<rect x=").count - 1 == 32 * 32 + 2)
        #expect(width(heads) <= 900)
        #expect(html.contains("class=\"tablewrap\""))
        for id in ReportWriter.chartIDs { #expect(html.contains("id=\"\(id)\"")) }
        let traj = try parseCSV(out.appendingPathComponent("trajectory.csv"))
        #expect(traj.count == 500)
        if let keep = ProcessInfo.processInfo.environment["CPISCOPE_LARGE_REPORT_OUT"] {  // for looking at it
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(at: out, to: URL(fileURLWithPath: keep))
        }
    }

    @Test("bad output paths and non-runs are refused with a clear error")
    func errors() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("run.h5")
        try SyntheticRun().write(to: url)
        let file = dir.appendingPathComponent("taken")
        try Data("x".utf8).write(to: file)
        #expect { try ReportWriter.write(run: url, to: file) } throws: { e in
            guard let r = e as? ReportError, case .cannotCreateDirectory = r else { return false }
            return !r.hint.isEmpty
        }
        #expect { try ReportWriter.write(run: file, to: dir.appendingPathComponent("out")) } throws: { e in
            guard case AnalysisError.notARun = e else { return false }
            return true
        }
        var o = ReportOptions(); o.from = "500"; o.to = "checkpoint-500"
        #expect(throws: AnalysisError.self) { try ReportWriter.write(run: url, to: dir.appendingPathComponent("out2"), options: o) }
    }
}
