// Two matched runs compared: probes are paired by id (not position), and each difference B − A
// per measure and checkpoint equals a naive paired bootstrap on the HDF5 arrays (tolerance 1e-12).
import Analysis
import Foundation
import Testing

@Suite("Run comparison")
struct ComparisonTests {
    @Test("differences B − A per checkpoint pair probes by id and match naive loops")
    func comparison() throws {
        let (dir, urlA) = try makeRun()
        defer { try? FileManager.default.removeItem(at: dir) }
        // B: the same probes in reverse order, more context attention and a different accuracy curve.
        var b = SyntheticRun()
        b.probes = b.probes.reversed()
        let base = b.mass
        b.mass = { c, p, s, l, h in s == 0 ? min(1, base(c, 15 - p, s, l, h) + 0.05) : base(c, 15 - p, s, l, h) }
        b.accuracy = [0.125, 0.25, 0.375, 0.5, 0.625, 0.75]
        b.spanFound = { p, s in SyntheticRun().spanFound(15 - p, s) }
        let urlB = dir.appendingPathComponent("b.h5")
        try b.write(to: urlB)
        var o = DiffOptions(); o.seed = 17; o.resamples = 300
        let r = try DiffAnalysis.run(urlA, options: o, against: urlB)
        let cmp = try #require(r.comparison)
        let ra = try Raw(urlA), rb = try Raw(urlB)
        let order = ra.probes.map { id in rb.probes.firstIndex(of: id)! }
        var worst = 0.0
        for m in cmp.measures {
            for c in 0..<ra.C {
                let xa: [Double], xb: [Double]
                switch m.measure {
                case .counterfactualAccuracy:
                    xa = (0..<ra.P).map { Double(ra.cf[c * ra.P + $0]) }; xb = order.map { Double(rb.cf[c * rb.P + $0]) }
                case .parametricAccuracy:
                    xa = (0..<ra.P).map { Double(ra.pf[c * ra.P + $0]) }; xb = order.map { Double(rb.pf[c * rb.P + $0]) }
                case .contextAttention:
                    xa = (0..<ra.P).map { ra.overall(c, $0, 0) }; xb = order.map { rb.overall(c, $0, 0) }
                case .subjectAttention:
                    xa = (0..<ra.P).map { ra.overall(c, $0, 1) }; xb = order.map { rb.overall(c, $0, 1) }
                case .mcLastLayer:
                    xa = (0..<ra.P).map { Double(ra.mc[(c * ra.P + $0) * ra.LL + ra.LL - 1]) }
                    xb = order.map { Double(rb.mc[(c * rb.P + $0) * rb.LL + rb.LL - 1]) }
                }
                let want = naivePairedBootstrap(from: xa, to: xb, seed: 17, resamples: 300)
                let got = m.difference[c]
                worst = max(worst, gap(got.value, want.0), gap(got.interval.low, want.1), gap(got.interval.high, want.2))
                #expect(got.n == want.3, "\(m.measure) checkpoint \(c): n")
            }
        }
        #expect(worst <= tol, "max |Δ| = \(worst)")
        // Paired by id, the context-attention shift is exactly +0.05 per probe where nothing clipped.
        let ctx = try #require(cmp.measures.first { $0.measure == .contextAttention })
        #expect(ctx.difference.allSatisfy { abs($0.value - 0.05) < 1e-3 })
        #expect(ctx.trajectoryA.verdict == .inversion)
        #expect(try #require(cmp.measures.first { $0.measure == .counterfactualAccuracy }).trajectoryB.verdict == .rising)
    }
}
