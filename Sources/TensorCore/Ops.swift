// Elementwise and row-wise operations on raw row-major buffers. Formulas follow the
// Hugging Face transformers modules they replace (cited per function).
import Foundation

/// LayerNorm over the last dimension of x[rows, d] (torch.nn.LayerNorm: biased variance, eps inside sqrt).
public func layerNorm(_ x: UnsafePointer<Float>, rows: Int, d: Int, weight: UnsafePointer<Float>,
                      bias: UnsafePointer<Float>?, eps: Float, into y: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        let xr = x + r * d, yr = y + r * d
        var mean: Double = 0
        for j in 0..<d { mean += Double(xr[j]) }
        mean /= Double(d)
        var v: Double = 0
        for j in 0..<d { let c = Double(xr[j]) - mean; v += c * c }
        v /= Double(d)
        let inv = Float(1.0 / (v + Double(eps)).squareRoot())
        let m = Float(mean)
        if let bias {
            for j in 0..<d { yr[j] = (xr[j] - m) * inv * weight[j] + bias[j] }
        } else {
            for j in 0..<d { yr[j] = (xr[j] - m) * inv * weight[j] }
        }
    }
}

/// RMSNorm over the last dimension of x[rows, d]: w * x / sqrt(mean(x²) + eps)
/// (transformers LlamaRMSNorm, which computes in float32).
public func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, d: Int, weight: UnsafePointer<Float>, eps: Float,
                    into y: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        let xr = x + r * d, yr = y + r * d
        var ss: Double = 0
        for j in 0..<d { ss += Double(xr[j]) * Double(xr[j]) }
        let inv = Float(1.0 / (ss / Double(d) + Double(eps)).squareRoot())
        for j in 0..<d { yr[j] = weight[j] * (xr[j] * inv) }
    }
}

/// In-place softmax of `n` values; entries at index ≥ `valid` or < `firstValid` get probability 0.
/// The exponentials are computed eight at a time (`exp8`, VectorMath.swift).
@inline(__always)
public func softmaxInPlace(_ x: UnsafeMutablePointer<Float>, count n: Int, firstValid: Int = 0, valid: Int) {
    let live = valid - firstValid
    if live > 0 {
        let row = x + firstValid
        let mx = max8(row, count: live)
        let inv = 1 / expShiftedInPlace(row, count: live, shift: mx)
        for j in 0..<live { row[j] *= inv }
    }
    if firstValid > 0 { x.update(repeating: 0, count: firstValid) }
    if valid < n { (x + max(valid, 0)).update(repeating: 0, count: n - max(valid, 0)) }
}

/// Log-softmax of `n` logits into `out` (max-shifted log-sum-exp, `logSumExp`).
public func logSoftmax(_ x: UnsafePointer<Float>, count n: Int, into out: UnsafeMutablePointer<Float>) {
    let lse = logSumExp(x, count: n)
    for j in 0..<n { out[j] = x[j] - lse }
}

/// Soft-capping in place: x ← cap · tanh(x / cap) (Gemma-2's attention and final logits,
/// transformers modeling_gemma2.py: divide, tanh, multiply, in float32).
public func softcapInPlace(_ x: UnsafeMutablePointer<Float>, count n: Int, cap: Float) {
    for i in 0..<n { x[i] = Foundation.tanh(x[i] / cap) * cap }
}

/// Adds b into a elementwise.
@inline(__always)
public func addInPlace(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) {
    for i in 0..<n { a[i] += b[i] }
}
