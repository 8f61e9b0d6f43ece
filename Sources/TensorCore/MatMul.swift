// Matrix products. The only file in cpiscope that imports CBLAS (OpenBLAS).
import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// Row-major C[m, n] = alpha * op(A)[m, k] · op(B)[k, n] + beta * C, with explicit leading dimensions.
/// `transA`/`transB` mean A is stored [k, m] / B is stored [n, k].
@inline(__always)
public func sgemm(m: Int, n: Int, k: Int,
                  a: UnsafePointer<Float>, lda: Int, transA: Bool = false,
                  b: UnsafePointer<Float>, ldb: Int, transB: Bool = false,
                  c: UnsafeMutablePointer<Float>, ldc: Int,
                  alpha: Float = 1, beta: Float = 0) {
    guard m > 0, n > 0 else { return }
    if k == 0 {
        // C = beta * C
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
}

/// How a weight matrix is stored.
public enum WeightLayout: Sendable {
    /// torch.nn.Linear: [out, in]; y = x · Wᵀ
    case outIn
    /// GPT-2 Conv1D: [in, out]; y = x · W
    case inOut
}

/// y[rows, out] = x[rows, in] · W (+ bias), for a weight in either layout.
/// `x` rows are `xStride` apart and `y` rows `yStride` apart (defaults: dense).
public func linear(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, xStride: Int? = nil,
                   weight: UnsafePointer<Float>, layout: WeightLayout, outFeatures: Int,
                   bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, yStride: Int? = nil,
                   accumulate: Bool = false) {
    let ldy = yStride ?? outFeatures
    switch layout {
    case .outIn:
        sgemm(m: rows, n: outFeatures, k: inFeatures, a: x, lda: xStride ?? inFeatures,
              b: weight, ldb: inFeatures, transB: true, c: y, ldc: ldy, beta: accumulate ? 1 : 0)
    case .inOut:
        sgemm(m: rows, n: outFeatures, k: inFeatures, a: x, lda: xStride ?? inFeatures,
              b: weight, ldb: outFeatures, c: y, ldc: ldy, beta: accumulate ? 1 : 0)
    }
    if let bias {
        for r in 0..<rows {
            let row = y + r * ldy
            for j in 0..<outFeatures { row[j] += bias[j] }
        }
    }
}

/// Sets the number of OpenBLAS threads (0 or less leaves it unchanged).
public func setBLASThreads(_ n: Int) {
    if n > 0 { openblas_set_num_threads(Int32(n)) }
}

/// The number of OpenBLAS threads in use.
public func blasThreads() -> Int { Int(openblas_get_num_threads()) }

/// A 16-bit float format stored in a checkpoint.
public enum HalfFormat: Sendable {
    case bf16, f16

    /// Decodes `count` values at `src` into `dst`.
    @inline(__always)
    public func decode(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        switch self {
        case .bf16: decodeBF16(src, count: count, into: dst)
        case .f16: decodeF16(src, count: count, into: dst)
        }
    }
}

/// Rows of a 16-bit weight converted to float32 per block inside each product.
public let halfBlockRows = 128

/// y[rows, out] = x[rows, in] · W (+ bias) for a weight stored in 16 bits, without materialising a
/// float32 copy of W: blocks of `halfBlockRows` weight rows are decoded into `scratch`
/// (≥ halfBlockRows · max(in, out) floats) and multiplied in turn.
public func linearHalf(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                       weight: UnsafeRawPointer, format: HalfFormat, layout: WeightLayout, outFeatures: Int,
                       bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, yStride: Int? = nil,
                       scratch: UnsafeMutablePointer<Float>) {
    let ldy = yStride ?? outFeatures
    switch layout {
    case .outIn:
        // W is [out, in]: a block of output features at a time → y[:, o0..<o1].
        var o0 = 0
        while o0 < outFeatures {
            let o1 = min(outFeatures, o0 + halfBlockRows)
            format.decode(weight + 2 * o0 * inFeatures, count: (o1 - o0) * inFeatures, into: scratch)
            sgemm(m: rows, n: o1 - o0, k: inFeatures, a: x, lda: inFeatures, b: scratch, ldb: inFeatures, transB: true,
                  c: y + o0, ldc: ldy)
            o0 = o1
        }
    case .inOut:
        // W is [in, out]: a block of input features at a time, accumulated into y.
        var i0 = 0
        while i0 < inFeatures {
            let i1 = min(inFeatures, i0 + halfBlockRows)
            format.decode(weight + 2 * i0 * outFeatures, count: (i1 - i0) * outFeatures, into: scratch)
            sgemm(m: rows, n: outFeatures, k: i1 - i0, a: x + i0, lda: inFeatures, b: scratch, ldb: outFeatures,
                  c: y, ldc: ldy, beta: i0 == 0 ? 0 : 1)
            i0 = i1
        }
    }
    if let bias {
        for r in 0..<rows {
            let row = y + r * ldy
            for j in 0..<outFeatures { row[j] += bias[j] }
        }
    }
}

/// Whether the loaded OpenBLAS exports `cblas_sbgemm` (bfloat16 GEMM). Debian 12's OpenBLAS 0.3.21 is
/// built without BUILD_BFLOAT16 and does not, so 16-bit weights go through `linearHalf`.
public var openBLASHasSBGEMM: Bool {
    dlsym(UnsafeMutableRawPointer(bitPattern: 0), "cblas_sbgemm") != nil
}
