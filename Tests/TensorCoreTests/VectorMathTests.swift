// The vectorised elementwise kernels (VectorMath.swift) against double-precision formulas.
// Tolerances: exp ≤ 4e-7 relative; activations ≤ 1e-6 absolute + 1e-6 relative (the erf approximation
// of Abramowitz & Stegun 7.1.26 is good to 1.5e-7); log-sum-exp ≤ 1e-5 absolute over 150k entries.
import Foundation
import Testing
import TensorCore

/// Floats spread over [-range, range], plus the edges that matter.
func sweep(_ range: Double, count n: Int) -> [Float] {
    (0..<n).map { Float(-range + 2 * range * Double($0) / Double(n - 1)) } + [0, -0, 1e-30, -1e-30, 1e-8, -1e-8]
}

func apply(_ xs: [Float], _ f: (UnsafeMutablePointer<Float>, Int) -> Void) -> [Float] {
    var y = xs
    y.withUnsafeMutableBufferPointer { f($0.baseAddress!, $0.count) }
    return y
}

@Suite("Vectorised math")
struct VectorMathTests {
    @Test("exp8 equals exp to 4e-7 relative over [-87, 88]; NaN stays NaN; no overflow")
    func exponential() {
        let xs = sweep(87, count: 20_001)
        var worst: Double = 0, at: Float = 0
        for i in stride(from: 0, to: xs.count - 7, by: 8) {
            var v = Float8()
            for k in 0..<8 { v[k] = xs[i + k] }
            let e = exp8(v)
            for k in 0..<8 {
                let ref = Foundation.exp(Double(xs[i + k]))
                let rel = abs(Double(e[k]) - ref) / ref
                if rel > worst { worst = rel; at = xs[i + k] }
            }
        }
        #expect(worst <= 4e-7, "max relative error \(worst) at x = \(at)")
        let edge = exp8(Float8(.nan, .infinity, -.infinity, 100, -100, 88.3, -87.3, 0))
        #expect(edge[0].isNaN)
        #expect(edge[1].isFinite && edge[1] > 1e38, "exp(+inf) = \(edge[1])")
        #expect(edge[2] >= 0 && edge[2] < 1e-37, "exp(-inf) = \(edge[2])")
        #expect(edge[3].isFinite && edge[4] < 1e-37 && edge[7] == 1)
    }

    @Test("activations over a buffer equal the double-precision formulas", arguments: ["gelu_new", "gelu", "silu"])
    func activations(name: String) {
        // Lengths that are not multiples of 8 exercise the tail.
        for n in [1, 7, 8, 9, 4099] {
            let xs = Array(sweep(12, count: n + 5).prefix(n))
            let got: [Float]
            let ref: (Double) -> Double
            switch name {
            case "gelu_new":
                got = apply(xs) { geluTanhInPlace($0, count: $1) }
                ref = { x in 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) }
            case "gelu":
                got = apply(xs) { geluErfInPlace($0, count: $1) }
                ref = { x in 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }
            default:
                got = apply(xs) { siluInPlace($0, count: $1) }
                ref = { x in x / (1 + Foundation.exp(-x)) }
            }
            var worst: Double = 0, at: Float = 0
            for (x, y) in zip(xs, got) {
                let r = ref(Double(x))
                let err = abs(Double(y) - r) / (1 + abs(r))
                if err > worst { worst = err; at = x }
            }
            #expect(worst <= 1e-6, "\(name), n = \(n): max error \(worst) at x = \(at)")
        }
    }

    @Test("logSumExp and logSoftmax over a 150k vocabulary equal double precision to 1e-5")
    func logSumExpLarge() {
        var xs = randomFloats(150_001, seed: 7).map { $0 * 30 }
        xs[12_345] = 41
        let ref: Double = {
            let m = Double(xs.max()!)
            return m + Foundation.log(xs.reduce(0) { $0 + Foundation.exp(Double($1) - m) })
        }()
        let got = xs.withUnsafeBufferPointer { logSumExp($0.baseAddress!, count: $0.count) }
        #expect(abs(Double(got) - ref) <= 1e-5, "logSumExp \(got) vs \(ref)")
        var out = [Float](repeating: 0, count: xs.count)
        xs.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { logSoftmax(x.baseAddress!, count: x.count, into: $0.baseAddress!) } }
        #expect(abs(Double(out[12_345]) - (41 - ref)) <= 1e-5)
        let minusInf = [Float](repeating: -.infinity, count: 9)
        #expect(minusInf.withUnsafeBufferPointer { logSumExp($0.baseAddress!, count: 9) } == -.infinity)
    }

    @Test("softmax over rows of every length to 300 equals double precision to 1e-6")
    func softmaxRows() {
        var worst: Double = 0
        for n in 1...300 {
            var xs = randomFloats(n, seed: UInt64(n)).map { $0 * 20 }
            let m = Double(xs.max()!)
            let z = xs.reduce(0) { $0 + Foundation.exp(Double($1) - m) }
            let ref = xs.map { Foundation.exp(Double($0) - m) / z }
            xs.withUnsafeMutableBufferPointer { softmaxInPlace($0.baseAddress!, count: n, valid: n) }
            for (a, b) in zip(xs, ref) { worst = max(worst, abs(Double(a) - b)) }
        }
        #expect(worst <= 1e-6, "max |Δ| = \(worst)")
    }
}
