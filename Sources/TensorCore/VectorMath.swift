// Vectorised elementwise math for the forward pass: exp, softmax and the MLP activations over whole
// buffers, eight lanes at a time. glibc's scalar expf/tanhf/erff cost 20–40 cycles per element; in a
// GPT-2 prefill the GELU alone was a third of the wall time (perf, BENCHMARKS.md). These kernels keep the
// results within a few float32 ulps of the scalar functions (Tests/TensorCoreTests: ≤ 4e-7 relative for
// exp, ≤ 1e-6 absolute for the activations), far inside the 1e-4 parity tolerance with transformers.
import Foundation

public typealias Float8 = SIMD8<Float>

/// e^x for eight lanes. Cephes `expf` scheme (S. L. Moshier, Cephes Math Library, expf.c): x = n·ln2 + r
/// with |r| ≤ ln2/2, ln2 split into a high and a low part so that r is exact, e^r by a degree-6
/// minimax polynomial, 2^n put into the exponent bits. Inputs are clamped to [−87.3, 88.3], so the
/// result is finite and positive (≈ 1.2e−38 … 2.1e38; exp of a large negative number is ≈ 1e−38, not 0);
/// NaN propagates.
@inline(__always)
public func exp8(_ input: Float8) -> Float8 {
    let lo = Float8(repeating: -87.33654), hi = Float8(repeating: 88.37626)
    var x = input.replacing(with: lo, where: input .< lo)
    x.replace(with: hi, where: x .> hi)
    // n = round(x / ln2), by adding 1.5·2²³: the float's low mantissa bits then hold n (|n| < 2²²),
    // which avoids a float→int conversion per lane.
    let magic: Float = 12582912
    let t = x * 1.44269504088896341 + magic
    let n = t - magic
    // r = x − n·ln2 (Cody–Waite: ln2 = C1 − C2, C1 exact in float), |r| ≤ ln2/2
    var r = x - n * 0.693359375
    r = r + n * 2.12194440e-4
    // e^r ≈ 1 + r + r²·P(r) (Cephes expf coefficients)
    var p = Float8(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let er = p * (r * r) + r + 1
    // 2^n as float bits (n + 127) << 23; the clamp keeps n in [−126, 127].
    let nInt = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let scale = unsafeBitCast((nInt &+ 127) &<< 23, to: Float8.self)
    return (er * scale).replacing(with: input, where: .!(input .== input))  // NaN in, NaN out
}

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> Float8 {
    UnsafeRawPointer(p).loadUnaligned(as: Float8.self)
}

@inline(__always)
func store8(_ v: Float8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float8.self)
}

/// Applies `f` to x[0..<n] in place: eight lanes at a time, the tail padded with zeros.
@inline(__always)
func map8InPlace(_ x: UnsafeMutablePointer<Float>, count n: Int, _ f: (Float8) -> Float8) {
    var i = 0
    while i + 8 <= n {
        store8(f(load8(x + i)), x + i)
        i += 8
    }
    if i < n {
        var v = Float8()
        for k in 0..<(n - i) { v[k] = x[i + k] }
        let y = f(v)
        for k in 0..<(n - i) { x[i + k] = y[k] }
    }
}

/// gelu_new / gelu_pytorch_tanh (transformers NewGELUActivation): 0.5·x·(1 + tanh(u)) with
/// u = √(2/π)·(x + 0.044715·x³). Since 0.5·(1 + tanh(u)) = σ(2u) = 1 / (1 + e^(−2u)), this is
/// x / (1 + e^(−2u)), which needs one exp and no cancellation.
@inline(__always)
public func geluTanh8(_ x: Float8) -> Float8 {
    let u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
    return x / (1 + exp8(-2 * u))
}

/// silu (transformers SiLUActivation / torch.nn.functional.silu): x·σ(x) = x / (1 + e^(−x)).
@inline(__always)
public func silu8(_ x: Float8) -> Float8 { x / (1 + exp8(-x)) }

/// gelu with the exact erf (torch.nn.functional.gelu): 0.5·x·(1 + erf(x/√2)). erf by Abramowitz &
/// Stegun 7.1.26 (|error| ≤ 1.5e−7): erf(z) = 1 − (a₁t + a₂t² + a₃t³ + a₄t⁴ + a₅t⁵)·e^(−z²),
/// t = 1 / (1 + p·z) for z ≥ 0, odd in z.
@inline(__always)
public func geluErf8(_ x: Float8) -> Float8 {
    0.5 * x * (1 + erfWithGaussian8(x * 0.7071067811865476).erf)
}

/// erf(z) by Abramowitz & Stegun 7.1.26 (the formula above), and the factor e^(−z²) it computes on the way
/// (the GELU derivative's φ needs it: ActivationGradients.swift). The one definition of both.
@inline(__always)
public func erfWithGaussian8(_ z: Float8) -> (erf: Float8, gaussian: Float8) {
    let az = z.replacing(with: -z, where: z .< 0)
    let t = 1 / (1 + 0.3275911 * az)
    var poly = Float8(repeating: 1.061405429)
    poly = poly * t - 1.453152027
    poly = poly * t + 1.421413741
    poly = poly * t - 0.284496736
    poly = poly * t + 0.254829592
    poly = poly * t
    let e = exp8(-az * az)
    let erfAbs = 1 - poly * e
    return (erfAbs.replacing(with: -erfAbs, where: z .< 0), e)
}

/// GELU (tanh form) over a buffer, in place.
public func geluTanhInPlace(_ x: UnsafeMutablePointer<Float>, count n: Int) { map8InPlace(x, count: n, geluTanh8) }
/// GELU (exact erf form) over a buffer, in place.
public func geluErfInPlace(_ x: UnsafeMutablePointer<Float>, count n: Int) { map8InPlace(x, count: n, geluErf8) }
/// SiLU over a buffer, in place.
public func siluInPlace(_ x: UnsafeMutablePointer<Float>, count n: Int) { map8InPlace(x, count: n, silu8) }

/// Sum of e^(x[j] − shift) for j in 0..<n, storing each term back into x.
@inline(__always)
func expShiftedInPlace(_ x: UnsafeMutablePointer<Float>, count n: Int, shift: Float) -> Float {
    var acc = Float8()
    var i = 0
    let s = Float8(repeating: shift)
    while i + 8 <= n {
        let e = exp8(load8(x + i) - s)
        store8(e, x + i)
        acc += e
        i += 8
    }
    var sum = acc.sum()
    while i < n {
        let e = expf(x[i] - shift)
        x[i] = e
        sum += e
        i += 1
    }
    return sum
}

/// Max of x[0..<n] (n ≥ 1).
@inline(__always)
func max8(_ x: UnsafePointer<Float>, count n: Int) -> Float {
    var i = 0
    var m = -Float.infinity
    if n >= 8 {
        var acc = load8(x)
        i = 8
        while i + 8 <= n {
            let v = load8(x + i)
            acc.replace(with: v, where: v .> acc)
            i += 8
        }
        m = acc.max()
    }
    while i < n { m = Swift.max(m, x[i]); i += 1 }
    return m
}

/// log Σ e^(x[j]) over x[0..<n] (n ≥ 1), max-shifted. Eight-lane float partial sums are folded into a
/// Double every 256 elements, so the sum keeps float64-like accuracy over a 150k-token vocabulary.
public func logSumExp(_ x: UnsafePointer<Float>, count n: Int) -> Float {
    let mx = max8(x, count: n)
    guard mx.isFinite else { return mx }  // +inf, or all −inf
    let s = Float8(repeating: mx)
    var total: Double = 0
    var i = 0
    while i + 8 <= n {
        var acc = Float8()
        let end = min(n, i + 256)
        while i + 8 <= end {
            acc += exp8(load8(x + i) - s)
            i += 8
        }
        total += Double(acc.sum())
    }
    while i < n { total += Double(expf(x[i] - mx)); i += 1 }
    return mx + Float(log(total))
}
