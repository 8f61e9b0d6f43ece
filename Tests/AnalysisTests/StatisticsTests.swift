// The statistics against goldens made by an independent implementation (Tools/analysis_goldens.py:
// Python re-implementations of the reference C generators, numpy percentiles, scipy ranks and
// Spearman) and against naive loops written in these tests.
import Analysis
import Foundation
import Testing

@Suite("Statistics")
struct StatisticsTests {
    @Test("SplitMix64 and xoshiro256** match the reference algorithms bit for bit")
    func generatorsMatchReference() throws {
        let g = try Goldens.load()
        for s in g.splitmix64 {
            var r = SplitMix64(seed: s.seed)
            let got = (0..<s.outputs.count).map { _ in String(r.next()) }
            #expect(got == s.outputs, "SplitMix64 seed \(s.seed)")
        }
        // The first SplitMix64 output for seed 0 is the widely published 0xE220A8397B1DCDAF.
        var zero = SplitMix64(seed: 0)
        #expect(zero.next() == 0xE220_A839_7B1D_CDAF)
        for s in g.xoshiro256starstar {
            var r = Xoshiro256StarStar(seed: try #require(UInt64(s.seed)))
            let got = (0..<s.outputs.count).map { _ in String(r.next()) }
            #expect(got == s.outputs, "xoshiro256** seed \(s.seed)")
        }
        var r = Xoshiro256StarStar(seed: g.index_below.seed)
        #expect((0..<g.index_below.outputs.count).map { _ in r.index(below: g.index_below.n) } == g.index_below.outputs)
    }

    @Test("percentiles equal numpy's linear method (tolerance 1e-12)")
    func percentiles() throws {
        let g = try Goldens.load().percentile
        let sorted = g.data.sorted()
        for (q, want) in zip(g.q, g.values) {
            let got = Stats.quantile(sorted: sorted, q)
            #expect(abs(got - want) <= 1e-12, "q = \(q): got \(got), numpy \(want), |Δ| = \(abs(got - want))")
        }
    }

    @Test("average ranks give ties the mean rank (scipy rankdata, exact)")
    func ranks() throws {
        let g = try Goldens.load().ranks
        #expect(Stats.averageRanks(g.data) == g.ranks)
        #expect(countingRanks(g.data) == g.ranks)  // the tests' own rank rule agrees too
    }

    @Test("Spearman's rho equals scipy.stats.spearmanr, ties included (tolerance 1e-12)")
    func spearman() throws {
        for c in try Goldens.load().spearman {
            let got = Stats.spearman(c.x, c.y)
            #expect(abs(got.rho - c.rho) <= 1e-12, "x = \(c.x): got \(got.rho), scipy \(c.rho), |Δ| = \(abs(got.rho - c.rho))")
            #expect(got.n == c.x.count)
        }
        // Undefined when one side is constant; non-finite pairs are dropped.
        #expect(Stats.spearman([1, 2, 3], [5, 5, 5]).rho.isNaN)
        let dropped = Stats.spearman([1, .nan, 2, 3], [1, 9, 2, 3])
        #expect(dropped.n == 3 && abs(dropped.rho - 1) < 1e-12)
    }

    @Test("the paired bootstrap equals the independent Python implementation (tolerance 1e-12)")
    func bootstrapGoldens() throws {
        for b in try Goldens.load().bootstrap {
            let est = try Bootstrap(seed: b.seed, resamples: b.resamples).estimate(b.d)
            let gaps = [abs(est.value - b.mean), abs(est.interval.low - b.low), abs(est.interval.high - b.high)]
            #expect(gaps.max()! <= 1e-12, "d = \(b.d): got \(est.value) \(est.interval), Python \(b.mean) [\(b.low), \(b.high)], max |Δ| = \(gaps.max()!)")
            #expect(est.n == b.d.count)
        }
    }

    @Test("the bootstrap is reproducible with a seed and changes with it")
    func bootstrapSeeded() throws {
        let a = (0..<40).map { noise($0, 1) }, b = (0..<40).map { noise($0, 2) }
        let x = try Bootstrap(seed: 7, resamples: 300).paired(from: a, to: b)
        let y = try Bootstrap(seed: 7, resamples: 300).paired(from: a, to: b)
        let z = try Bootstrap(seed: 8, resamples: 300).paired(from: a, to: b)
        #expect(x == y)
        #expect(x.interval != z.interval)
        #expect(x.value == z.value)  // the point estimate does not depend on the seed
        let naive = naivePairedBootstrap(from: a, to: b, seed: 7, resamples: 300)
        let d = max(abs(x.value - naive.0), abs(x.interval.low - naive.1), abs(x.interval.high - naive.2))
        #expect(d <= 1e-12, "library vs naive loops: max |Δ| = \(d)")
    }

    @Test("the matrix bootstrap gives each column what the one-column bootstrap gives, NaN pairs dropped per column")
    func matrixEqualsColumns() throws {
        let P = 9, m = 4
        var a = (0..<(P * m)).map { noise($0, 3) }, b = (0..<(P * m)).map { noise($0, 4) }
        a[2 * m + 1] = .nan           // column 1 loses probe 2
        for j in 0..<m { b[5 * m + j] = .nan }  // every column loses probe 5
        let boot = try Bootstrap(seed: 99, resamples: 200)
        let all = try boot.paired(from: a, to: b, probes: P, columns: m)
        for j in 0..<m {
            let col = try boot.paired(from: (0..<P).map { a[$0 * m + j] }, to: (0..<P).map { b[$0 * m + j] })
            let naive = naivePairedBootstrap(from: (0..<P).map { a[$0 * m + j] }, to: (0..<P).map { b[$0 * m + j] },
                                             seed: 99, resamples: 200)
            #expect(all[j] == col, "column \(j)")
            #expect(all[j].n == (j == 1 ? 7 : 8))
            let d = max(abs(all[j].value - naive.0), abs(all[j].interval.low - naive.1), abs(all[j].interval.high - naive.2))
            #expect(d <= 1e-12, "column \(j) vs naive: max |Δ| = \(d)")
        }
    }

    @Test("no data gives NaN, one probe a zero-width interval, and resample counts are checked")
    func edgeCases() throws {
        let boot = try Bootstrap(seed: 1, resamples: 10)
        let none = try boot.paired(from: [.nan, 1], to: [2, .nan])
        #expect(none.n == 0 && none.value.isNaN && none.interval.low.isNaN)
        let one = try boot.estimate([0.5])
        #expect(one.value == 0.5 && one.interval == Interval(low: 0.5, high: 0.5))
        #expect(throws: AnalysisError.self) { try Bootstrap(seed: 0, resamples: 0) }
        #expect(throws: AnalysisError.self) { try Bootstrap(seed: 0, resamples: 2_000_000) }
        #expect(Stats.nanMean([1, .nan, 3]).mean == 2 && Stats.nanMean([1, .nan, 3]).count == 2)
        #expect(Stats.nanMean([Double.nan]).mean.isNaN)
    }

    @Test("the ratio of means and its paired bootstrap equal plain loops (max |Δ| ≤ 1e-12); NaN pairs dropped; Σ b = 0 is undefined")
    func ratioOfMeans() throws {
        let boot = try Bootstrap(seed: 13, resamples: 400)
        let a = (0..<25).map { $0 == 3 ? .nan : 0.8 * Double($0 % 7) + noise($0, 1) }
        let b = (0..<25).map { $0 == 9 ? .nan : Double($0 % 7) + 0.5 + noise($0, 2) }
        let got = try boot.ratio(a, b)
        let want = naiveRatioBootstrap(a, b, seed: 13, resamples: 400)
        let worst = max(gap(got.value, want.0), gap(got.interval.low, want.1), gap(got.interval.high, want.2))
        #expect(worst <= 1e-12 && got.n == 23, "max |Δ| = \(worst), n = \(got.n)")
        // The value is Σ a / Σ b over the 23 complete pairs, not the mean of the ratios.
        let keep = (0..<25).filter { a[$0].isFinite && b[$0].isFinite }
        let byHand = keep.reduce(0.0) { $0 + a[$1] } / keep.reduce(0.0) { $0 + b[$1] }
        let meanOfRatios = keep.reduce(0.0) { $0 + a[$1] / b[$1] } / Double(keep.count)
        #expect(abs(got.value - byHand) <= 1e-12 * abs(byHand) && abs(got.value - meanOfRatios) > 1e-3, "\(got.value) vs \(byHand), mean of ratios \(meanOfRatios)")
        #expect(got.interval.low < got.value && got.value < got.interval.high)
        let zero = try boot.ratio([1, 2], [1, -1])
        #expect(zero.value.isNaN && zero.interval.low.isNaN && zero.n == 2)
    }
}
