// Matrix products. The only file in cpiscope that imports CBLAS (OpenBLAS).
import CBLAS

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
