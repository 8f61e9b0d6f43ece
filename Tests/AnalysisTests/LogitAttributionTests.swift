// Direct logit attribution across checkpoints (schema version 2), checked against the synthetic
// run's planted heads (SyntheticRuns: L2H1 a context head following counterfactual accuracy, L1H3 a
// memory head growing more negative, L0H2 turning from context to memory) and against naive loops
// over the HDF5 arrays (reference: docs/analysis.md, "Direct logit attribution"; tolerance 1e-12
// for means and intervals, 1e-4 logits for the float32 sum identity).
import Analysis
import Foundation
import HDF5Store
import Testing

@Suite("Direct logit attribution")
struct LogitAttributionTests {
    @Test("planted context and memory heads are ranked; means and intervals match naive loops")
    func rankingAndIntervals() throws {
        let (dir, url) = try makeRun(SyntheticRun().withDLA())
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = try Raw(url)
        var o = DiffOptions(); o.seed = seed; o.resamples = resamples
        let r = try DiffAnalysis.run(url, options: o)
        let d = try #require(r.headline.dla)
        #expect(r.run.dla?.definition == "synthetic direct logit attribution")
        #expect((d.first, d.peak, d.final) == (0, 2, 5), "key checkpoints: first, accuracy peak, final")
        let names = { (heads: [HeadDLA]) in heads.map(\.name) }
        let atPeak = d.keyRankings[1], atFinal = d.keyRankings[2]
        #expect(names(atPeak.contextHeads).prefix(2) == ["L2H1", "L0H2"], "\(names(atPeak.contextHeads))")
        #expect(names(atPeak.memoryHeads).first == "L1H3")
        #expect(names(atFinal.memoryHeads).prefix(2) == ["L1H3", "L0H2"], "L0H2 has become a memory head")
        #expect(atPeak.contextHeads.first?.rank == 1 && atPeak.memoryHeads.first?.rank == raw.L * raw.H)
        #expect(atPeak.contextHeads.allSatisfy { $0.estimate.value > 0 } && atPeak.memoryHeads.allSatisfy { $0.estimate.value < 0 })
        #expect(atPeak.contextHeads.first?.role == .context && atPeak.memoryHeads.first?.role == .memory)

        // Every listed head: mean and interval = the bootstrap of the per-probe values (probe 5 has none).
        var worst = 0.0
        let zeros = [Double](repeating: 0, count: raw.P)
        for k in d.keyRankings + r.dlaRankings {
            for x in k.contextHeads + k.memoryHeads {
                let want = naivePairedBootstrap(from: zeros, to: (0..<raw.P).map { raw.dla(k.checkpoint, $0, x.layer, x.head) },
                                                seed: seed, resamples: resamples)
                worst = max(worst, gap(x.estimate.value, want.0), gap(x.estimate.interval.low, want.1), gap(x.estimate.interval.high, want.2))
                #expect(x.estimate.n == raw.P - 1)
            }
        }
        #expect(r.dlaRankings.map(\.checkpoint) == [0, 5], "diff ranks at both ends of the pair")
        #expect(r.dlaRankings.allSatisfy { $0.contextHeads.count <= 5 && $0.memoryHeads.count <= 5 })

        // Tracked heads (top 3 of each role at the peak) with a band per checkpoint.
        #expect(d.tracked.filter { $0.role == .context }.first?.name == "L2H1" && d.tracked.filter { $0.role == .memory }.first?.name == "L1H3")
        for t in d.tracked {
            #expect(t.bands.count == raw.C)
            for c in 0..<raw.C {
                let xs = (0..<raw.P).map { raw.dla(c, $0, t.layer, t.head) }
                let want = naivePairedBootstrap(from: zeros, to: xs, seed: seed, resamples: resamples)
                worst = max(worst, gap(t.trajectory.values[c], naiveMean(xs)), gap(t.bands[c].low, want.1), gap(t.bands[c].high, want.2))
            }
        }
        let contextHead = try #require(d.tracked.first { $0.name == "L2H1" })
        #expect(contextHead.trajectory.peak == 2 && contextHead.trajectory.verdict == .inversion, "the context head rises and falls with accuracy")
        #expect(worst <= tol, "max |Δ| = \(worst)")
    }

    @Test("role changes, components summing to the logit difference, and the split by source span")
    func rolesComponentsSpans() throws {
        let (dir, url) = try makeRun(SyntheticRun().withDLA())
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = try Raw(url)
        let run = try RunData(url: url)
        let d = try #require(try LogitAttributionAnalysis(run: run, peak: 2, bootstrap: Bootstrap(seed: seed, resamples: resamples)))

        let flip = try #require(d.roleChanges.first)
        #expect(flip.name == "L0H2" && flip.flips, "the head turning from context to memory heads the table: \(d.roleChanges.map(\.name))")
        #expect(flip.at.map(\.role) == [.context, .context, .memory] && flip.at.map(\.estimate.n) == [15, 15, 15])
        #expect(d.roleChanges.count <= LogitAttributionAnalysis.roleChangeRows)

        // Components: the logit difference equals the sum of the other components (float32 rounding).
        let C = raw.C, P = raw.P
        let ld = try #require(d.component("logit_diff")), heads = try #require(d.component("attention_heads")), mlp = try #require(d.component("mlp"))
        var worst = 0.0
        for c in 0..<C {
            let sum = d.components.dropFirst().reduce(0.0) { $0 + $1.trajectory.values[c] }
            #expect(abs(sum - ld.trajectory.values[c]) < 1e-4, "checkpoint \(c): Σ components \(sum) vs logit_diff \(ld.trajectory.values[c])")
            worst = max(worst, gap(ld.trajectory.values[c], naiveMean((0..<P).map { Double(raw.logitDiff[c * P + $0]) })))
            worst = max(worst, gap(heads.trajectory.values[c], naiveMean((0..<P).map { p in
                (0..<raw.L).reduce(0.0) { t, l in (0..<raw.H).reduce(t) { $0 + raw.dla(c, p, l, $1) } } })))
            worst = max(worst, gap(mlp.trajectory.values[c], naiveMean((0..<P).map { p in
                (0..<raw.L).reduce(0.0) { $0 + Double(raw.mlpDLA[(c * P + p) * raw.L + $1]) } })))
        }
        #expect(ld.bands.count == C && ld.trajectory.counts.allSatisfy { $0 == P - 1 })

        // By span: one row per tracked head and distinct key checkpoint; L2H1's DLA comes from the context.
        #expect(d.spanSplits.count == d.tracked.count * 3)
        for x in d.spanSplits {
            for s in 0..<raw.S {
                worst = max(worst, gap(x.perSpan[s], naiveMean((0..<P).map { raw.dlaSpan(x.checkpoint, $0, s, x.layer, x.head) })))
            }
        }
        let ctx = try #require(d.spanSplits.first { $0.name == "L2H1" && $0.checkpoint == 2 })
        #expect(ctx.perSpan.indices.max { ctx.perSpan[$0] < ctx.perSpan[$1] } == 0, "largest share from the context span")
        let mem = try #require(d.spanSplits.first { $0.name == "L1H3" && $0.checkpoint == 5 })
        #expect(mem.perSpan.indices.min { mem.perSpan[$0] < mem.perSpan[$1] } == 1, "the memory head's DLA comes from the subject")
        #expect(worst <= tol, "max |Δ| = \(worst)")
    }

    @Test("version-1 runs have no DLA and still analyse; --no-dla leaves it out")
    func versionOne() throws {
        let (dir, url) = try makeRun()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try RunData(url: url)
        #expect(run.dla == nil)
        #expect(try LogitAttributionAnalysis(run: run, peak: 2, bootstrap: Bootstrap(seed: 0, resamples: 10)) == nil)
        let r = try DiffAnalysis.run(url, options: DiffOptions())
        #expect(r.headline.dla == nil && r.dlaRankings.isEmpty)
        let json = AnalysisJSON.string(AnalysisJSON.result(r))
        #expect(!json.contains("\"dla") && !r.headline.lines().joined().contains("context heads"))
        #expect(throws: AnalysisError.self) { try run.headDLABySpan(checkpoint: 0) }

        let (dir2, url2) = try makeRun(SyntheticRun().withDLA(), label: "v2")
        defer { try? FileManager.default.removeItem(at: dir2) }
        var o = DiffOptions(); o.dla = false
        let off = try DiffAnalysis.run(url2, options: o)
        #expect(off.headline.dla == nil && off.dlaRankings.isEmpty)
        let on = try DiffAnalysis.run(url2, options: DiffOptions())
        #expect(on.headline.lines().contains { $0.hasPrefix("context heads at checkpoint-200 (peak)") && $0.contains("L2H1 +") })
        let obj = AnalysisJSON.result(on)
        #expect(obj["dla_rankings"] != nil && (obj["headline"] as? [String: Any])?["dla"] != nil)
        o = DiffOptions(); o.dlaTop = 0
        expectError({ _ = try DiffAnalysis.run(url2, options: o) }, { if case .invalidOption("--dla-top", _) = $0 { return true }; return false }, "dla-top 0")
    }

    @Test("missing and misshapen DLA variables of a version-2 run are named")
    func malformed() throws {
        for (omit, misshapen, field) in [("logit_diff", nil, "logit_diff"), (nil, "head_dla", "head_dla"), (nil, "head_dla_by_span", "head_dla_by_span"),
                                         ("mlp_dla", nil, "mlp_dla"), (nil, "dla_remainder", "dla_remainder"), ("bias_dla", nil, "bias_dla")] as [(String?, String?, String)] {
            var s = SyntheticRun().withDLA()
            if let omit { s.omit = [omit] }
            s.misshapen = misshapen
            let (dir, url) = try makeRun(s, label: field)
            defer { try? FileManager.default.removeItem(at: dir) }
            expectError({ _ = try RunData(url: url) }, { if case .malformedRun(_, let f, _) = $0 { return f == field }; return false }, field)
        }
    }
}
