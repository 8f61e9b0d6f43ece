// Tolerances derived from floating-point arithmetic, for every test that compares a computed product (or
// a quantity built from products) with a reference. Test support, not public API.
//
// The rule (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., §3.1, eq. 3.5): a dot
// product of length K summed in floating point, in any order and with or without FMA, satisfies
//
//     |fl(Σ x_k·w_k) − Σ x_k·w_k| ≤ γ_K · Σ |x_k·w_k|,    γ_K = K·u / (1 − K·u),
//
// where u is the unit roundoff of the accumulation format (float32: u = 2⁻²⁴). The bound holds for every
// summation order, so it holds for every BLAS kernel (OpenBLAS Prescott, Haswell or SkylakeX; oneDNN;
// cpiscope's direct bf16 kernel), every blocking and every thread split: a test written with it passes on
// every CPU for the right reason. Two float32 results of the same exact sum differ by at most twice the
// bound. Cauchy–Schwarz gives the norm form Σ|x_k·w_k| ≤ ‖x‖₂·‖w‖₂ for when the elementwise sum is not
// at hand. A bias or an earlier value added to the sum adds its own magnitude to Σ|·| (one more term).
//
// The bound is a worst case; real errors are about √K·u·Σ|·| (random rounding). Tests state the bound
// and print the measured worst ratio |Δ| / bound, so a reader sees how far inside it a kernel stays.
import Foundation

public enum Tolerance {
    /// Unit roundoff of float32 (round to nearest): 2⁻²⁴.
    public static let float32: Double = 0x1p-24

    /// γ_K = K·u / (1 − K·u) (Higham eq. 3.5); K·u must be < 1.
    public static func gamma(_ k: Int, unitRoundoff u: Double = float32) -> Double {
        let ku = Double(max(k, 1)) * u
        precondition(ku < 1, "K·u ≥ 1: no bound")
        return ku / (1 - ku)
    }

    /// The largest |computed − exact| of a dot product of `length` terms whose absolute values sum to
    /// `absoluteSum`, accumulated with unit roundoff `u`; `results` computed results compared with each
    /// other (2: two implementations, each within the bound of the exact value) or with an exact
    /// reference (1).
    public static func dotProduct(length: Int, absoluteSum: Double, unitRoundoff u: Double = float32, results: Int = 1) -> Double {
        Double(max(results, 1)) * gamma(length, unitRoundoff: u) * absoluteSum
    }

    /// The norm form: Σ|x_k·w_k| ≤ ‖x‖₂·‖w‖₂.
    public static func dotProduct(length: Int, xNorm: Double, wNorm: Double, unitRoundoff u: Double = float32, results: Int = 1) -> Double {
        dotProduct(length: length, absoluteSum: xNorm * wNorm, unitRoundoff: u, results: results)
    }

    /// The worst ratio |computed − reference| / bound over paired elements, and where it occurred; a
    /// test expects `ratio ≤ 1`. A NaN anywhere gives an infinite ratio.
    public static func worstRatio(_ computed: [Double], _ reference: [Double], bounds: [Double]) -> (ratio: Double, index: Int, difference: Double) {
        precondition(computed.count == reference.count && reference.count == bounds.count, "one bound per element")
        var worst = (ratio: 0.0, index: -1, difference: 0.0)
        for i in computed.indices {
            let d = abs(computed[i] - reference[i])
            let r = d.isNaN ? Double.infinity : (bounds[i] > 0 ? d / bounds[i] : (d == 0 ? 0 : .infinity))
            if r > worst.ratio || worst.index < 0 { worst = (r, i, d) }
        }
        return worst
    }
}

/// A float32 product y[r, o] = Σ_i x[r, i]·w[o, i] + b[o], computed exactly enough in float64, with the
/// bound of each element: the reference that product tests compare with.
public struct ProductReference {
    public let values: [Double]
    /// Σ_i |x·w| + |b| per element.
    public let absoluteSums: [Double]
    public let rows: Int, outFeatures: Int, inFeatures: Int

    /// `x` [rows, in], `w` [out, in] (the nn.Linear layout), `bias` [out] or nil.
    public init(x: [Float], w: [Float], bias: [Float]?, rows: Int, inFeatures: Int, outFeatures: Int) {
        var v = [Double](repeating: 0, count: rows * outFeatures), a = v
        for r in 0..<rows { for o in 0..<outFeatures {
            var s = Double(bias?[o] ?? 0), m = abs(Double(bias?[o] ?? 0))
            for i in 0..<inFeatures {
                let p = Double(x[r * inFeatures + i]) * Double(w[o * inFeatures + i])
                s += p; m += abs(p)
            }
            v[r * outFeatures + o] = s; a[r * outFeatures + o] = m
        } }
        values = v; absoluteSums = a
        self.rows = rows; self.inFeatures = inFeatures; self.outFeatures = outFeatures
    }

    /// The bound per element for a float32 result with `terms` summands (in + 1 with a bias).
    public func bounds(terms: Int? = nil, results: Int = 1) -> [Double] {
        absoluteSums.map { Tolerance.dotProduct(length: terms ?? inFeatures + 1, absoluteSum: $0, results: results) }
    }
}
