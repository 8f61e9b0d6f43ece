// Matrix products. The only file in cpiscope that imports CBLAS (OpenBLAS).
import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS runs single-threaded in every call: cpiscope parallelises around it (`ComputeContext`), and
/// BLAS threads nested inside those loops would oversubscribe the cores (measured 2× slower on 2 cores).
/// Set once, before the first product; never changed afterwards.
private let singleThreadedBLAS: Void = { openblas_set_num_threads(1) }()

/// Row-major C[m, n] = alpha * op(A)[m, k] · op(B)[k, n] + beta * C, with explicit leading dimensions.
/// `transA`/`transB` mean A is stored [k, m] / B is stored [n, k]. Single-threaded.
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
    _ = singleThreadedBLAS
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
}

/// Output column tiles of float32 products start at multiples of this (whole cache lines of y, and
/// BLAS-friendly widths).
let columnAlign = 64

/// The narrowest column tile a product is split into (`ProductTiling`): below this, repacking the rows
/// of x for each tile costs more than a second thread gains.
public let productTileMinimumWidth = 256

/// How a weight matrix is stored.
public enum WeightLayout: Sendable {
    /// torch.nn.Linear: [out, in]; y = x · Wᵀ
    case outIn
    /// GPT-2 Conv1D: [in, out]; y = x · W
    case inOut
}

/// y[rows, out] = x[rows, in] · W (+ bias), for a weight in either layout, in column tiles fixed by the
/// shape (`ProductTiling`) dealt out over `compute`'s threads: the result does not depend on the thread
/// count. `x` rows are `xStride` apart and `y` rows `yStride` apart (defaults: dense).
public func linear(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, xStride: Int? = nil,
                   weight: UnsafePointer<Float>, layout: WeightLayout, outFeatures: Int,
                   bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, yStride: Int? = nil,
                   accumulate: Bool = false, compute: ComputeContext = .serial) {
    let ldy = yStride ?? outFeatures, ldx = xStride ?? inFeatures
    let tiling = ProductTiling(count: outFeatures, align: columnAlign, minimumWidth: productTileMinimumWidth)
    compute.parallelTiles(tiling, work: rows * inFeatures * outFeatures) { cols in
        switch layout {
        case .outIn:
            sgemm(m: rows, n: cols.count, k: inFeatures, a: x, lda: ldx,
                  b: weight + cols.lowerBound * inFeatures, ldb: inFeatures, transB: true,
                  c: y + cols.lowerBound, ldc: ldy, beta: accumulate ? 1 : 0)
        case .inOut:
            sgemm(m: rows, n: cols.count, k: inFeatures, a: x, lda: ldx,
                  b: weight + cols.lowerBound, ldb: outFeatures, c: y + cols.lowerBound, ldc: ldy, beta: accumulate ? 1 : 0)
        }
        if let bias { addBias(bias, cols, rows: rows, into: y, ldy: ldy) }
    }
}

@inline(__always)
func addBias(_ bias: UnsafePointer<Float>, _ cols: Range<Int>, rows: Int, into y: UnsafeMutablePointer<Float>, ldy: Int) {
    for r in 0..<rows {
        let row = y + r * ldy
        for j in cols { row[j] += bias[j] }
    }
}

/// Runs `body` with OpenBLAS using `n` threads of its own, then returns it to one. Only for measuring
/// the hardware's ceiling (multi-threaded OpenBLAS sgemm in `cpiscope bench`); nothing else in cpiscope
/// changes OpenBLAS's thread count, and no pass may run meanwhile.
public func withBLASThreads<T>(_ n: Int, _ body: () throws -> T) rethrows -> T {
    _ = singleThreadedBLAS
    openblas_set_num_threads(Int32(max(1, n)))
    defer { openblas_set_num_threads(1) }
    return try body()
}

/// The kernel family OpenBLAS chose for this CPU (e.g. "SkylakeX", "Haswell", "Zen"). On a VM whose CPU
/// model it does not know it may fall back to "Prescott" (SSE3; 4-5× slower sgemm here): then set
/// OPENBLAS_CORETYPE (e.g. SkylakeX) in the environment before starting cpiscope.
public var blasCoreName: String { openblas_get_corename().map { String(cString: $0) } ?? "?" }

/// The OpenBLAS core type to force when OpenBLAS fell back to its generic "Prescott" kernels (SSE3) on a
/// CPU that has the AVX-512 subset of its SkylakeX kernels: "SkylakeX". This happens where the CPU model
/// is masked or newer than the library (a VM reporting "Intel(R) Xeon(R) Processor", Sapphire Rapids under
/// OpenBLAS 0.3.21), and costs 4-5× in every float32 product (BENCHMARKS.md, issue 24: sgemm at the GPT-2
/// shapes under each core type). nil when OpenBLAS chose a real kernel family (Haswell on AMD EPYC Zen 4,
/// SkylakeX on recognised Xeons), when OPENBLAS_CORETYPE is already set, or when the CPU lacks those
/// instructions. OpenBLAS reads the variable once, when it is loaded, so only a new process can use it
/// (the executable restarts itself). A pure function of its arguments: `openBLASCore` is `blasCoreName`
/// and `hasSkylakeXInstructions` is `cpuHasSkylakeXInstructions` (CPUID) in the executable.
public func blasCoreTypeOverride(environment: [String: String], openBLASCore: String, hasSkylakeXInstructions: Bool) -> String? {
    guard environment["OPENBLAS_CORETYPE"] == nil, environment["CPISCOPE_KEEP_BLAS_CORE"] == nil else { return nil }
    return openBLASCore == "Prescott" && hasSkylakeXInstructions ? "SkylakeX" : nil
}

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
/// float32 copy of W: each column tile (fixed by the shape, `ProductTiling`) decodes blocks of
/// `halfBlockRows` weight rows of its output columns into a scratch buffer of its own and multiplies them
/// in turn. The result does not depend on the thread count.
public func linearHalf(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                       weight: UnsafeRawPointer, format: HalfFormat, layout: WeightLayout, outFeatures: Int,
                       bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, yStride: Int? = nil,
                       compute: ComputeContext = .serial) {
    let ldy = yStride ?? outFeatures
    let tiling = ProductTiling(count: outFeatures, align: halfBlockRows, minimumWidth: productTileMinimumWidth)
    compute.parallelTiles(tiling, work: rows * inFeatures * outFeatures) { cols in
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: halfBlockRows * max(inFeatures, cols.count, 1))
        defer { scratch.deallocate() }
        switch layout {
        case .outIn:
            // W is [out, in]: a block of output features at a time → y[:, o0..<o1].
            var o0 = cols.lowerBound
            while o0 < cols.upperBound {
                let o1 = min(cols.upperBound, o0 + halfBlockRows)
                format.decode(weight + 2 * o0 * inFeatures, count: (o1 - o0) * inFeatures, into: scratch)
                sgemm(m: rows, n: o1 - o0, k: inFeatures, a: x, lda: inFeatures, b: scratch, ldb: inFeatures, transB: true,
                      c: y + o0, ldc: ldy)
                o0 = o1
            }
        case .inOut:
            // W is [in, out]: a block of input features at a time (this thread's columns only), accumulated into y.
            let width = cols.count
            var i0 = 0
            while i0 < inFeatures {
                let i1 = min(inFeatures, i0 + halfBlockRows)
                if width == outFeatures {
                    format.decode(weight + 2 * i0 * outFeatures, count: (i1 - i0) * outFeatures, into: scratch)
                } else {
                    for i in i0..<i1 {
                        format.decode(weight + 2 * (i * outFeatures + cols.lowerBound), count: width, into: scratch + (i - i0) * width)
                    }
                }
                sgemm(m: rows, n: width, k: i1 - i0, a: x + i0, lda: inFeatures, b: scratch, ldb: width,
                      c: y + cols.lowerBound, ldc: ldy, beta: i0 == 0 ? 0 : 1)
                i0 = i1
            }
        }
        if let bias { addBias(bias, cols, rows: rows, into: y, ldy: ldy) }
    }
}

/// Whether the loaded OpenBLAS exports `cblas_sbgemm` (bfloat16 GEMM). Debian 12's OpenBLAS 0.3.21 is
/// built without BUILD_BFLOAT16 and does not, so 16-bit weights go through `linearHalf`.
public var openBLASHasSBGEMM: Bool {
    dlsym(UnsafeMutableRawPointer(bitPattern: 0), "cblas_sbgemm") != nil
}
