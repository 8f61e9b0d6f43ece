// InterventionEffects on synthetic intervention files (Tests/SyntheticRuns/SyntheticInterventions.swift)
// with planted effects: every estimate equals the naive paired bootstrap of the raw arrays (docs/analysis.md;
// tolerance 1e-12), the planted effects come out on top, and a malformed file is refused with an error
// that names the field at fault.
import Analysis
import Foundation
import Testing

@Suite("Intervention effects")
struct InterventionAnalysisTests {
    func write(_ s: SyntheticInterventions = SyntheticInterventions(), label: String = #function) throws -> (URL, URL) {
        let dir = try tempDir(label)
        let url = dir.appendingPathComponent("iv.h5")
        try s.write(to: url)
        return (dir, url)
    }

    @Test("every estimate equals the naive paired bootstrap of the raw arrays (max |Δ| ≤ 1e-12)")
    func recomputed() throws {
        let (dir, url) = try write()
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = try RawInterventions(url)
        let effects = try InterventionEffects.analyze(url, seed: 7, resamples: 200)
        #expect(effects.count == raw.C * raw.I)
        var worst = 0.0
        for (k, e) in effects.enumerated() {
            let c = k / raw.I, i = k % raw.I
            #expect(e.checkpoint == raw.checkpoints[c] && e.name == raw.names[i] && e.kind == raw.kinds[i])
            let measures: [(String, Estimate)] = [("logit_diff", e.logitDiffChange), ("mc", e.mcChange), ("cf", try #require(e.counterfactualChange))]
            for (name, got) in measures {
                let (a, b) = raw.pair(name, c, i)
                let want = naivePairedBootstrap(from: a, to: b, seed: 7, resamples: 200)
                worst = max(worst, gap(got.value, want.0), gap(got.interval.low, want.1), gap(got.interval.high, want.2))
                #expect(got.n == want.3, "\(e.name) \(name) n")
            }
            if e.kind == "patch" {
                let (num, den) = raw.recoveryTerms(c, i)
                let want = naiveRatioBootstrap(num, den, seed: 7, resamples: 200)
                worst = max(worst, gap(e.recovery.value, want.0), gap(e.recovery.interval.low, want.1), gap(e.recovery.interval.high, want.2))
                #expect(e.recovery.n == want.3, "\(e.name) recovery n")
            }
            if e.kind != "patch" { #expect(e.recovery.n == 0 && e.recovery.value.isNaN) }
        }
        #expect(worst <= 1e-12, "max |Δ| = \(worst)")
    }

    @Test("the planted effects rank first; the subject knockout leaves out the probe missing the span")
    func planted() throws {
        let (dir, url) = try write()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try InterventionRun(url: url)
        let r = try InterventionRanking(run: run, seed: 1, resamples: 200)
        #expect(r.checkpoint == "checkpoint-200" && r.step == 200)
        #expect(r.ranked.first?.name == "knockout context L1", "largest |Δ logit diff|")
        #expect(r.ranked.count == run.names.count)
        let ablate = try InterventionRanking(run: run, checkpoint: "100", kind: "ablate", seed: 1, resamples: 200)
        #expect(ablate.checkpoint == "checkpoint-100" && ablate.ranked.prefix(2).map(\.name) == ["ablate L2H1 zero", "ablate L1H3 zero"])
        #expect(ablate.ranked[0].logitDiffChange.interval.high < 0 && ablate.ranked[1].logitDiffChange.interval.low > 0)
        let patch = try InterventionRanking(run: run, by: .recovery, kind: "patch", seed: 1, resamples: 200)
        #expect(patch.ranked.prefix(2).map(\.name) == ["patch resid_post L2 answer from checkpoint-50", "patch z L2H1 answer from checkpoint-50"])
        #expect(patch.ranked[0].recovery.n == run.probes.count, "probe 0, where source and target tie, counts in both sums")
        let subject = try #require(r.ranked.first { $0.name == "knockout subject L0-2" })
        #expect(subject.logitDiffChange.n == run.probes.count - 1 && subject.knockoutLayers == [0, 1, 2])
        let line = try #require(InterventionEffects.transplantHeadline(r.ranked))
        #expect(line.hasPrefix("At checkpoint-200, transplanting attn.ov of layer 1 from checkpoint-50 restores the most context reliance: counterfactual accuracy changes by +"), "\(line)")
        #expect(r.headline.first == line && r.headline.contains { $0.hasPrefix("knockout: strongest at checkpoint-200 is knockout context L1") })
    }

    @Test("patch recovery is the ratio of means Σ(patched − target) / Σ(source − target), equal to a hand computation from the stored logit differences (relative |Δ| ≤ 1e-12)")
    func recoveryByHand() throws {
        let (dir, url) = try write()
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = try RawInterventions(url)
        let effects = try InterventionEffects.analyze(url, seed: 3, resamples: 100)
        var worst = 0.0, checked = 0
        for (k, e) in effects.enumerated() where e.kind == "patch" {
            let c = k / raw.I, i = k % raw.I, base = (c * raw.I + i) * raw.P
            var gained = 0.0, gap = 0.0
            for p in 0..<raw.P {
                gained += Double(raw.diff[base + p]) - Double(raw.clean[c * raw.P + p])
                gap += Double(raw.source[base + p]) - Double(raw.clean[c * raw.P + p])
            }
            worst = max(worst, abs(e.recovery.value - gained / gap) / max(1, abs(gained / gap)))
            checked += 1
        }
        #expect(checked == raw.C * raw.kinds.filter { $0 == "patch" }.count && worst <= 1e-12, "\(checked) patches; max relative |Δ| = \(worst)")
        let top = try #require(effects.first { $0.checkpoint == "checkpoint-200" && $0.name == "patch z L2H1 answer from checkpoint-50" })
        #expect(abs(top.recovery.value - 0.8) < 0.05 && top.recovery.interval.low < top.recovery.value && top.recovery.value < top.recovery.interval.high,
                "planted 0.8: \(top.recovery)")
    }

    @Test("a probe whose source and target nearly tie no longer dominates the recovery (the mean of per-probe ratios would be > 100)")
    func nearTie() throws {
        var s = SyntheticInterventions(); s.nearTie = 4
        let (dir, url) = try write(s)
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = try RawInterventions(url)
        let run = try InterventionRun(url: url)
        let effects = try InterventionEffects.analyze(run, bootstrap: Bootstrap(seed: 0, resamples: 300))
        for name in ["patch z L2H1 answer from checkpoint-50", "patch resid_post L2 answer from checkpoint-50"] {
            let e = try #require(effects.first { $0.checkpoint == "checkpoint-200" && $0.name == name })
            let i = try #require(raw.names.firstIndex(of: name)), base = (1 * raw.I + i) * raw.P
            // The old estimator: the mean of the stored per-probe ratios, dominated by probe 4's 0.5 / 1e-4.
            let perProbe = (0..<raw.P).map { Double(raw.recovery[base + $0]) }.filter(\.isFinite)
            let meanOfRatios = perProbe.reduce(0, +) / Double(perProbe.count)
            #expect(meanOfRatios > 100, "\(name): mean of ratios \(meanOfRatios)")
            #expect(e.recovery.value > 0.7 && e.recovery.value < 1.1, "\(name): ratio of means \(e.recovery.value)")
            #expect(e.recovery.interval.high - e.recovery.interval.low < 0.5, "\(name): interval \(e.recovery.interval)")
        }
    }

    @Test("the transplant headline flags the interval that includes 0 right after that interval, not after the other")
    func transplantWording() {
        func transplant(cf: Estimate?, mc: Estimate) -> InterventionEffect {
            InterventionEffect(checkpoint: "checkpoint-0", name: "transplant attn.ov L0 from checkpoint-20", kind: "transplant", layer: 0, head: -1,
                               component: "attn.ov", source: "checkpoint-20", logitDiffChange: .undefined, mcChange: mc,
                               counterfactualChange: cf, recovery: .undefined)
        }
        let e = { (v: Double, lo: Double, hi: Double) in Estimate(value: v, interval: Interval(low: lo, high: hi), n: 6) }
        // The issue's case: accuracy unchanged ([0, 0] includes 0), M_C up with an interval above 0.
        let a = InterventionEffects.transplantHeadline([transplant(cf: e(0, 0, 0), mc: e(0.117, 0.020, 0.266))]) ?? ""
        #expect(a.contains("counterfactual accuracy changes by +0.000 [+0.000, +0.000] (this 95% interval includes 0) and M_C by +0.117 [+0.020, +0.266] — the largest"), "\(a)")
        // The reverse: accuracy up (interval above 0), M_C's interval includes 0.
        let b = InterventionEffects.transplantHeadline([transplant(cf: e(0.2, 0.1, 0.3), mc: e(0.05, -0.01, 0.1))]) ?? ""
        #expect(b.contains("changes by +0.200 [+0.100, +0.300] and M_C by +0.050 [-0.010, +0.100] (this 95% interval includes 0) — the largest"), "\(b)")
        #expect(b.components(separatedBy: "includes 0").count == 2, "one flag, for M_C only")
        // Without generations the restoration is M_C itself: said once, flagged once.
        let c = InterventionEffects.transplantHeadline([transplant(cf: nil, mc: e(0.05, -0.01, 0.1))]) ?? ""
        #expect(c.contains("M_C changes by +0.050 [-0.010, +0.100] (this 95% interval includes 0) — the largest") && !c.contains("and M_C by"), "\(c)")
    }

    @Test("names: knockout layers, patch positions and ablation modes are read from the intervention's name")
    func names() {
        func effect(_ name: String, layer: Int = -1) -> InterventionEffect {
            InterventionEffect(checkpoint: "c", name: name, kind: "knockout", layer: layer, head: -1, component: "", source: "",
                               logitDiffChange: .undefined, mcChange: .undefined, counterfactualChange: nil, recovery: .undefined)
        }
        #expect(effect("knockout context L0-3").knockoutLayers == [0, 1, 2, 3])
        #expect(effect("knockout subject L1,L4").knockoutLayers == [1, 4])
        #expect(effect("knockout subject L2").knockoutLayers == [2])
        #expect(effect("knockout odd name", layer: 5).knockoutLayers == [5] && effect("knockout odd name").knockoutLayers.isEmpty)
        #expect(effect("knockout context L3-1").knockoutLayers.isEmpty, "a reversed range is not a layer list")
        #expect(effect("patch z L3H5 all from checkpoint-50").patchPositions == "all" && effect("ablate L0H1 mean").ablationMode == "mean")
    }

    @Test("a malformed intervention file is refused with the field named")
    func malformed() throws {
        func refused(_ change: (inout SyntheticInterventions) -> Void, _ field: String) throws {
            var s = SyntheticInterventions()
            change(&s)
            let (dir, url) = try write(s, label: "malformed\(field)")
            defer { try? FileManager.default.removeItem(at: dir) }
            do {
                _ = try InterventionRun(url: url)
                Issue.record("\(field): accepted")
            } catch let e as AnalysisError {
                #expect(e.description.contains(field), "\(field): \(e.description)")
            }
        }
        try refused({ $0.omit = ["intervened_mc"] }, "field 'intervened_mc': missing")
        try refused({ $0.misshapen = "intervened_logit_diff" }, "field 'intervened_logit_diff'")
        try refused({ $0.misshapen = "intervention_layer" }, "field 'intervention_layer'")
        try refused({ $0.badKind = "swap" }, "field 'intervention_kind': unknown kind 'swap'")
        try refused({ $0.omit = ["intervened_counterfactual_correct"] }, "field 'intervened_counterfactual_correct'")
        try refused({ $0.omit = ["checkpoint_complete"] }, "field 'checkpoint_complete'")
        try refused({ $0.schemaVersion = 2 }, "cpiscope_schema_version is 2")
        try refused({ $0.schemaVersion = nil }, "no cpiscope_intervention_schema_version attribute")
        // A probe run opened as an intervention file, and the reverse.
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let probe = dir.appendingPathComponent("run.h5"), iv = dir.appendingPathComponent("iv.h5")
        try SyntheticRun().write(to: probe)
        try SyntheticInterventions().write(to: iv)
        #expect(!InterventionRun.isInterventionFile(probe) && InterventionRun.isInterventionFile(iv))
        #expect(throws: AnalysisError.self) { try InterventionRun(url: probe) }
        do { _ = try RunData(url: iv); Issue.record("intervention file read as a probe run") } catch let e as AnalysisError {
            #expect(e.description.contains("it is an intervention file"))
        }
    }

    @Test("incomplete checkpoints are left out; options the file cannot answer are refused")
    func options() throws {
        var s = SyntheticInterventions()
        s.complete = [1, 0]
        s.generate = false
        s.kinds = ["ablate", "knockout"]
        let (dir, url) = try write(s)
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try InterventionRun(url: url)
        #expect(run.checkpoints == ["checkpoint-100"] && run.incompleteCheckpoints == ["checkpoint-200"] && !run.generated)
        let r = try InterventionRanking(run: run, resamples: 100)
        #expect(r.checkpoint == "checkpoint-100" && r.ranked.allSatisfy { $0.counterfactualChange == nil })
        #expect(InterventionEffects.transplantHeadline(r.ranked) == nil)
        #expect(throws: AnalysisError.self) { try InterventionRanking(run: run, checkpoint: "checkpoint-200") }
        #expect(throws: AnalysisError.self) { try InterventionRanking(run: run, kind: "transplant") }
        #expect(throws: AnalysisError.self) { try InterventionRanking(run: run, by: .counterfactual) }
    }
}
