// Every number of diff and trajectory analysis, recomputed in the test from the HDF5 arrays
// (read with HDF5Store only) with plain loops, and compared. Reference: the definitions in
// docs/analysis.md. Tolerance 1e-12 (both sides sum Doubles; the order of additions may differ).
import Analysis
import Foundation
import HDF5Store
import Testing

let tol = 1e-12
let seed: UInt64 = 2024, resamples = 400

/// Writes the default synthetic run into a fresh directory.
func makeRun(_ run: SyntheticRun = SyntheticRun(), name: String = "run.h5", label: String = #function) throws -> (URL, URL) {
    let dir = try tempDir(label)
    let url = dir.appendingPathComponent(name)
    try run.write(to: url)
    return (dir, url)
}

@Suite("Run analysis")
struct RunAnalysisTests {
    @Test("headline measures equal per-probe means recomputed from the HDF5 arrays")
    func measuresRecomputed() throws {
        let (dir, url) = try makeRun()
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = try Raw(url)
        let run = try RunData(url: url)
        let m = try RunMeasures(run: run)
        var worst = 0.0
        for c in 0..<raw.C {
            let want: [Measure: Double] = [
                .counterfactualAccuracy: naiveMean((0..<raw.P).map { Double(raw.cf[c * raw.P + $0]) }),
                .parametricAccuracy: naiveMean((0..<raw.P).map { Double(raw.pf[c * raw.P + $0]) }),
                .contextAttention: naiveMean((0..<raw.P).map { raw.overall(c, $0, 0) }),
                .subjectAttention: naiveMean((0..<raw.P).map { raw.overall(c, $0, 1) }),
                .mcLastLayer: naiveMean((0..<raw.P).map { Double(raw.mc[(c * raw.P + $0) * raw.LL + raw.LL - 1]) }),
            ]
            for (measure, w) in want { worst = max(worst, gap(m.curve(measure)[c], w)) }
            for l in 0..<raw.L {
                worst = max(worst, gap(m.layerHeatmap(m.layerContext)[l * raw.C + c], naiveMean((0..<raw.P).map { raw.layerMean(c, $0, 0, l) })))
                worst = max(worst, gap(m.layerHeatmap(m.layerSubject)[l * raw.C + c], naiveMean((0..<raw.P).map { raw.layerMean(c, $0, 1, l) })))
            }
        }
        #expect(worst <= tol, "max |Δ| = \(worst)")
        // The missing spans really are skipped: 15 probes have context data, 13 subject data.
        let t = try RunTrajectories(run: run, measures: m, bootstrap: Bootstrap(seed: seed, resamples: resamples))
        #expect(t.trajectory(.contextAttention).counts.allSatisfy { $0 == 15 })
        #expect(t.trajectory(.subjectAttention).counts.allSatisfy { $0 == 13 })
    }

    @Test("peak, rise, drop, net and their intervals match naive loops; the designed inversion is found")
    func trajectoriesRecomputed() throws {
        let (dir, url) = try makeRun()
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = try Raw(url)
        let run = try RunData(url: url)
        let t = try RunTrajectories(run: run, measures: RunMeasures(run: run), bootstrap: Bootstrap(seed: seed, resamples: resamples))
        typealias Source = (String, (Int, Int) -> Double)
        var perProbe: [Source] = []
        perProbe.append(("counterfactual_accuracy", { c, p in Double(raw.cf[c * raw.P + p]) }))
        perProbe.append(("parametric_accuracy", { c, p in Double(raw.pf[c * raw.P + p]) }))
        perProbe.append(("context_attention", { c, p in raw.overall(c, p, 0) }))
        perProbe.append(("subject_attention", { c, p in raw.overall(c, p, 1) }))
        perProbe.append(("mc_last_layer", { c, p in Double(raw.mc[(c * raw.P + p) * raw.LL + raw.LL - 1]) }))
        for l in 0..<raw.L {
            perProbe.append(("context_attention_layer_\(l)", { c, p in raw.layerMean(c, p, 0, l) }))
        }
        var worst = 0.0
        for (id, x) in perProbe {
            let traj = try #require((t.measures + t.layers).first { $0.id == id })
            let curve = (0..<raw.C).map { c in naiveMean((0..<raw.P).map { x(c, $0) }) }
            var k = 0
            for c in 1..<raw.C where curve[c] > curve[k] { k = c }
            #expect(traj.peak == k, "\(id): peak")
            let row = { (c: Int) in (0..<raw.P).map { x(c, $0) } }
            let rise = naivePairedBootstrap(from: row(0), to: row(k), seed: seed, resamples: resamples)
            let drop = naivePairedBootstrap(from: row(raw.C - 1), to: row(k), seed: seed, resamples: resamples)
            let net = naivePairedBootstrap(from: row(0), to: row(raw.C - 1), seed: seed, resamples: resamples)
            for (got, want) in [(traj.rise, rise), (traj.drop, drop), (traj.net, net)] {
                worst = max(worst, gap(got.value, want.0), gap(got.interval.low, want.1), gap(got.interval.high, want.2))
                #expect(got.n == want.3, "\(id): n")
            }
            for c in 0..<raw.C { worst = max(worst, gap(traj.values[c], curve[c])) }
            // The verdict rule, applied to the naive numbers: a change counts above its half-width and the
            // minimum effect, max(the measure's floor, 0.1 × the curve's range) (docs/analysis.md).
            let floor = id.hasSuffix("accuracy") ? 0.05 : id == "mc_last_layer" ? 0.02 : 0.01
            let m = max(floor, 0.1 * ((curve.max() ?? 0) - (curve.min() ?? 0)))
            #expect(abs(traj.minimumEffect - m) <= tol, "\(id): minimum effect \(traj.minimumEffect) vs \(m)")
            let counts = { (v: Double, e: (Double, Double, Double, Int)) in v > 0 && v > (e.2 - e.1) / 2 && v >= m }
            let expected: Verdict = (k > 0 && k < raw.C - 1 && counts(rise.0, rise) && counts(drop.0, drop)) ? .inversion
                : counts(net.0, net) ? .rising : counts(-net.0, net) ? .falling : .flat
            #expect(traj.verdict == expected, "\(id): verdict \(traj.verdict) vs \(expected)")
        }
        #expect(worst <= tol, "max |Δ| = \(worst)")
        let cf = t.trajectory(.counterfactualAccuracy)
        #expect(cf.verdict == .inversion && cf.peak == 2)
        #expect(abs(cf.drop.value - (0.875 - 0.25)) <= tol)
        #expect(t.trajectory(.contextAttention).verdict == .inversion)
    }

    @Test("Spearman per layer equals a counting-rank Spearman of the recomputed curves")
    func correlationsRecomputed() throws {
        let (dir, url) = try makeRun()
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = try Raw(url)
        let run = try RunData(url: url)
        let t = try RunTrajectories(run: run, measures: RunMeasures(run: run), bootstrap: Bootstrap(seed: seed, resamples: 10))
        let acc = (0..<raw.C).map { c in naiveMean((0..<raw.P).map { Double(raw.cf[c * raw.P + $0]) }) }
        #expect(t.correlations.count == raw.L + 1)
        for l in 0..<raw.L {
            let x = (0..<raw.C).map { c in naiveMean((0..<raw.P).map { raw.layerMean(c, $0, 0, l) }) }
            let want = naiveSpearman(x, acc)
            #expect(t.correlations[l].layer == l)
            #expect(gap(t.correlations[l].correlation.rho, want) <= tol, "layer \(l): \(t.correlations[l].correlation.rho) vs \(want)")
        }
        let all = (0..<raw.C).map { c in naiveMean((0..<raw.P).map { raw.overall(c, $0, 0) }) }
        #expect(t.correlations[raw.L].layer == nil)
        #expect(gap(t.correlations[raw.L].correlation.rho, naiveSpearman(all, acc)) <= tol)
    }

    @Test("every head, layer, lens layer and measure change between two checkpoints matches naive loops; heads are ranked by |change|")
    func diffRecomputed() throws {
        let (dir, url) = try makeRun()
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = try Raw(url)
        var o = DiffOptions(); o.from = "100"; o.to = "checkpoint-500"; o.seed = seed; o.resamples = resamples
        let result = try DiffAnalysis.run(url, options: o)
        let d = try #require(result.diffs.first)
        #expect(result.diffs.count == 1 && d.from == 1 && d.to == 5 && d.fromStep == 100 && d.toStep == 500)
        var worst = 0.0
        func check(_ got: Change, _ a: [Double], _ b: [Double], _ what: String) {
            let want = naivePairedBootstrap(from: a, to: b, seed: seed, resamples: resamples)
            var sa = 0.0, sb = 0.0
            for i in 0..<a.count where a[i].isFinite && b[i].isFinite { sa += a[i]; sb += b[i] }
            worst = max(worst, gap(got.estimate.value, want.0), gap(got.estimate.interval.low, want.1),
                        gap(got.estimate.interval.high, want.2),
                        gap(got.meanFrom, want.3 > 0 ? sa / Double(want.3) : .nan), gap(got.meanTo, want.3 > 0 ? sb / Double(want.3) : .nan))
            #expect(got.estimate.n == want.3, "\(what): n")
        }
        #expect(d.heads.count == raw.L * raw.H)
        for hc in d.heads {
            check(hc.change, (0..<raw.P).map { raw.m(1, $0, 0, hc.layer, hc.head) }, (0..<raw.P).map { raw.m(5, $0, 0, hc.layer, hc.head) },
                  "head \(hc.layer).\(hc.head)")
        }
        for (i, pair) in zip(d.heads, d.heads.dropFirst()).enumerated() {
            #expect(abs(pair.0.change.estimate.value) >= abs(pair.1.change.estimate.value), "rank \(i)")
        }
        // By design layer 2 loses the most context attention (−0.15 per head) except head 1, which also
        // gains 0.3 × (5 − 1) / 5 and is the only head that rises.
        #expect(d.heads.prefix(3).allSatisfy { $0.layer == 2 && $0.head != 1 })
        let riser = try #require(d.heads.max { $0.change.estimate.value < $1.change.estimate.value })
        #expect(riser.layer == 2 && riser.head == 1 && riser.change.estimate.value > 0.05)
        for lc in d.layers {
            check(lc.change, (0..<raw.P).map { raw.layerMean(1, $0, 0, lc.layer) }, (0..<raw.P).map { raw.layerMean(5, $0, 0, lc.layer) }, "layer \(lc.layer)")
        }
        for lc in d.lens {
            check(lc.change, (0..<raw.P).map { Double(raw.mc[(1 * raw.P + $0) * raw.LL + lc.layer]) },
                  (0..<raw.P).map { Double(raw.mc[(5 * raw.P + $0) * raw.LL + lc.layer]) }, "lens \(lc.layer)")
        }
        #expect(d.lens[0].change.estimate.n == raw.P - 1, "the NaN M_C at checkpoint 1, probe 2 is dropped")
        let cf = try #require(d.measures.first { $0.measure == .counterfactualAccuracy })
        check(cf.change, (0..<raw.P).map { Double(raw.cf[1 * raw.P + $0]) }, (0..<raw.P).map { Double(raw.cf[5 * raw.P + $0]) }, "cf")
        let pf = try #require(d.measures.first { $0.measure == .parametricAccuracy })
        check(pf.change, (0..<raw.P).map { Double(raw.pf[1 * raw.P + $0]) }, (0..<raw.P).map { Double(raw.pf[5 * raw.P + $0]) }, "pf")
        #expect(worst <= tol, "max |Δ| = \(worst)")
    }

    @Test("--each compares every checkpoint with the reference; --span picks the span")
    func eachAndSpan() throws {
        let (dir, url) = try makeRun()
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = try Raw(url)
        var o = DiffOptions(); o.each = true; o.span = "subject"; o.resamples = 50
        let r = try DiffAnalysis.run(url, options: o)
        #expect(r.diffs.map(\.to) == [1, 2, 3, 4, 5] && r.diffs.allSatisfy { $0.from == 0 && $0.span == "subject" })
        let h = try #require(r.diffs[2].heads.first { $0.layer == 1 && $0.head == 3 })
        let want = naivePairedBootstrap(from: (0..<raw.P).map { raw.m(0, $0, 1, 1, 3) }, to: (0..<raw.P).map { raw.m(3, $0, 1, 1, 3) },
                                        seed: 0, resamples: 50)
        #expect(gap(h.change.estimate.value, want.0) <= tol && h.change.estimate.n == 13)
    }

    @Test("the whole diff is reproducible with a seed: same seed, same JSON; another seed, other intervals")
    func reproducible() throws {
        let (dir, url) = try makeRun()
        defer { try? FileManager.default.removeItem(at: dir) }
        var o = DiffOptions(); o.seed = 5; o.resamples = 200
        let a = AnalysisJSON.string(AnalysisJSON.result(try DiffAnalysis.run(url, options: o)))
        let b = AnalysisJSON.string(AnalysisJSON.result(try DiffAnalysis.run(url, options: o)))
        o.seed = 6
        let c = AnalysisJSON.string(AnalysisJSON.result(try DiffAnalysis.run(url, options: o)))
        #expect(a == b)
        #expect(a != c)
    }

    @Test("the headline gives the primary peak, its drop and the heads moving from the peak to the end")
    func headline() throws {
        let (dir, url) = try makeRun()
        defer { try? FileManager.default.removeItem(at: dir) }
        let h = try TrajectoryAnalysis.analyze(run: url, seed: 3, resamples: 100)
        #expect(h.peakCheckpoint == "checkpoint-200" && h.peakStep == 200 && h.verdict == .inversion)
        #expect(h.diff?.fromName == "checkpoint-200" && h.diff?.toName == "checkpoint-500" && h.levels == nil)
        #expect(h.topHeads.count == 5 && h.topLayers.count == 3)
        let direct = try CheckpointDiff(run: RunData(url: url), measures: RunMeasures(run: RunData(url: url)), span: "context",
                                        from: 2, to: 5, bootstrap: Bootstrap(seed: 3, resamples: 100))
        #expect(zip(h.topHeads, direct.heads).allSatisfy { $0.layer == $1.layer && $0.head == $1.head && $0.change.estimate == $1.change.estimate })
        #expect(h.lines().contains { $0.contains("→ inversion") })
    }

    @Test("incomplete checkpoints are left out; a run with no complete checkpoint is refused")
    func incomplete() throws {
        var s = SyntheticRun(); s.complete = [1, 1, 0, 1, 1, 1]
        let (dir, url) = try makeRun(s)
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try RunData(url: url)
        #expect(run.checkpoints == ["checkpoint-0", "checkpoint-100", "checkpoint-300", "checkpoint-400", "checkpoint-500"])
        #expect(run.incompleteCheckpoints == ["checkpoint-200"] && !run.runComplete)
        let raw = try Raw(url)
        let t = try RunTrajectories(run: run, measures: RunMeasures(run: run), bootstrap: Bootstrap(seed: 0, resamples: 10))
        let want = [0, 1, 3, 4, 5].map { c in naiveMean((0..<raw.P).map { raw.overall(c, $0, 0) }) }
        let got = t.trajectory(.contextAttention).values
        #expect(zip(got, want).map { gap($0, $1) }.max()! <= tol)
        #expect(throws: AnalysisError.self) { try run.checkpointIndex("checkpoint-200") }

        var none = SyntheticRun(); none.complete = [0, 0, 0, 0, 0, 0]
        let (dir2, url2) = try makeRun(none)
        defer { try? FileManager.default.removeItem(at: dir2) }
        #expect { try DiffAnalysis.run(url2, options: DiffOptions()) } throws: { e in
            guard case AnalysisError.incompleteRun(_, 0, 1) = e else { return false }
            return (e as? AnalysisError)?.description.contains("no checkpoint is complete yet") == true
        }
    }

    @Test("verdict rules: rising, falling, flat, a fall inside the interval, peak at the end, too few probes")
    func verdictRules() throws {
        let boot = try Bootstrap(seed: 11, resamples: 300)
        func trajectory(_ rows: [[Double]], floor: Double = 0.01) throws -> MeasureTrajectory {
            try MeasureTrajectory(id: "x", label: "x", unit: "u", perProbe: rows.flatMap { $0 }, checkpoints: rows.count,
                                  probes: rows[0].count, minimumEffect: floor, bootstrap: boot)
        }
        func verdict(_ rows: [[Double]], floor: Double = 0.01) throws -> Verdict { try trajectory(rows, floor: floor).verdict }
        let P = 20
        let j = (0..<P).map { noise($0, 9) * 0.02 }  // small per-probe jitter
        #expect(try verdict([0.1, 0.3, 0.5, 0.7].map { v in j.map { v + $0 } }) == .rising)
        #expect(try verdict([0.7, 0.5, 0.3, 0.1].map { v in j.map { v + $0 } }) == .falling)
        #expect(try verdict([0.2, 0.8, 0.3].map { v in j.map { v + $0 } }) == .inversion)
        #expect(try verdict([0.2, 0.5, 0.9].map { v in j.map { v + $0 } }) == .rising, "peak at the end is not an inversion")
        // A rise then a fall both well inside the per-probe noise: flat.
        let wide = (0..<P).map { (noise($0, 10) - 0.5) * 2 }
        let wide2 = (0..<P).map { (noise($0, 11) - 0.5) * 2 }
        let wide3 = (0..<P).map { (noise($0, 12) - 0.5) * 2 }
        #expect(try verdict([wide, wide2.map { $0 + 0.01 }, wide3]) == .flat)
        #expect(try verdict([[0.1], [0.9], [0.1]]) == .insufficient, "one probe")
        #expect(try verdict([[0.1, 0.2]]) == .insufficient, "one checkpoint")
        // The rule itself at its boundary: a drop equal to the half-width is not enough.
        let e = { (v: Double, lo: Double, hi: Double) in Estimate(value: v, interval: Interval(low: lo, high: hi), n: 5) }
        #expect(MeasureTrajectory.verdict(peak: 1, checkpoints: 3, rise: e(0.5, 0.3, 0.7), drop: e(0.2, 0.0, 0.4), net: e(0.3, 0.1, 0.5), minimumEffect: 0) == .rising)
        #expect(MeasureTrajectory.verdict(peak: 1, checkpoints: 3, rise: e(0.5, 0.3, 0.7), drop: e(0.21, 0.0, 0.4), net: e(0.3, 0.1, 0.5), minimumEffect: 0) == .inversion)
        // ... and at the minimum effect: a drop equal to it counts, one just below does not.
        #expect(MeasureTrajectory.verdict(peak: 1, checkpoints: 3, rise: e(0.5, 0.4, 0.6), drop: e(0.05, 0.045, 0.055), net: e(0.45, 0.4, 0.5), minimumEffect: 0.05) == .inversion)
        #expect(MeasureTrajectory.verdict(peak: 1, checkpoints: 3, rise: e(0.5, 0.4, 0.6), drop: e(0.0499, 0.045, 0.055), net: e(0.45, 0.4, 0.5), minimumEffect: 0.05) == .rising)
    }

    @Test("verdict floors: a drop of 0.005 in attention mass with a tight interval is flat, not an inversion; a small dip after a large rise is a rise")
    func verdictFloors() throws {
        let boot = try Bootstrap(seed: 11, resamples: 300)
        func trajectory(_ rows: [[Double]], floor: Double) throws -> MeasureTrajectory {
            try MeasureTrajectory(id: "x", label: "Subject attention", unit: "attention mass (0–1)", perProbe: rows.flatMap { $0 }, checkpoints: rows.count,
                                  probes: rows[0].count, minimumEffect: floor, bootstrap: boot)
        }
        let P = 30
        let j = (0..<P).map { noise($0, 21) * 0.001 }  // tiny per-probe jitter: intervals far narrower than the changes
        // The case: peak 0.268, final 0.263 (drop 0.005), tight intervals.
        let tiny = [0.262, 0.268, 0.263].map { v in j.map { v + $0 } }
        let without = try trajectory(tiny, floor: 0)
        #expect(without.verdict == .inversion && without.drop.interval.low > 0, "control: without a floor the interval alone calls it an inversion")
        let with = try trajectory(tiny, floor: VerdictFloor.attention)
        #expect(with.verdict == .flat && abs(with.minimumEffect - 0.01) < 1e-15, "\(with.verdict), minimum effect \(with.minimumEffect)")
        #expect(Headline.describe(with, checkpoints: ["a", "b", "c"], steps: [0, 1, 2]).hasSuffix("minimum effect 0.010) → flat"))
        // Relative floor: rise 0.8, then a dip of 0.03 (above the absolute 0.01, below 0.1 × range = 0.08).
        let dip = try trajectory([0.1, 0.9, 0.87].map { v in j.map { v + $0 } }, floor: VerdictFloor.attention)
        #expect(dip.verdict == .rising && abs(dip.minimumEffect - 0.08) < 1e-9, "\(dip.verdict), minimum effect \(dip.minimumEffect)")
        #expect(abs(dip.drop.value - 0.03) < 1e-9 && dip.drop.interval.low > 0, "the dip is outside its interval, so only the floor stops it")
    }

    @Test("a constant series names no peak: counterfactual accuracy 0 at every checkpoint is flat, with no checkpoint called its peak")
    func constantSeries() throws {
        var s = SyntheticRun(); s.accuracy = [0, 0, 0, 0, 0, 0]
        let (dir, url) = try makeRun(s)
        defer { try? FileManager.default.removeItem(at: dir) }
        let h = try TrajectoryAnalysis.analyze(run: url, seed: 1, resamples: 100)
        #expect(h.primary.constant && h.primary.peak == nil && h.peakCheckpoint == nil && h.verdict == .flat)
        #expect(h.primary.rise.n == 0 && h.primary.drop.n == 0 && h.primary.net.value == 0)
        let line = Headline.describe(h.primary, checkpoints: h.checkpoints, steps: h.steps)
        #expect(line == "Counterfactual accuracy: 0.000 at every checkpoint (constant, no peak) → flat", "\(line)")
        #expect(!h.lines().contains { $0.contains("peak 0.000 at checkpoint-0") })
        // The head change runs from the first checkpoint when there is no peak.
        #expect(h.diff?.fromName == "checkpoint-0" && h.diff?.toName == "checkpoint-500")
        // A varying measure of the same run still has its peak.
        #expect(h.trajectories.trajectory(.contextAttention).peak != nil)
    }
}
