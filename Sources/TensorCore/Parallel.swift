// Threads and precision: cpiscope runs its own data-parallel loops, sized by a `ComputeContext` that
// travels with each call, together with the precision of the matrix products. There is no
// process-global compute state: OpenBLAS and oneDNN are single-threaded in every call (MatMul.swift,
// BF16MatMul.swift), and two passes with different contexts can run at the same time in one process
// (two models of a patching experiment, say).
//
// Reproducible by construction: the thread count never changes a result bit. Work is split only across
// outputs (attention heads, sequences, elements), never inside a sum, and a matrix product is split into
// column tiles chosen from its shape alone (`ProductTiling`): every tile is one library call of the same
// shape whatever the thread count, and threads only decide who computes which tiles. (OpenBLAS's and
// oneDNN's kernels sum in an order that depends on the slice they are given — measured: splitting the
// columns or the rows of one sgemm changes results by a few ulps on OpenBLAS's Haswell, SkylakeX and
// Prescott kernels — so a split that followed the thread count made run files depend on `--threads`.)
import Dispatch
import Foundation

/// A value handed to worker threads whose safety the caller guarantees (disjoint writes).
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

/// The inputs of a pass's weight products (linear layers and the unembedding).
public enum Precision: String, Sendable, CaseIterable {
    /// float32 activations and weights (16-bit weights decoded exactly), OpenBLAS sgemm.
    case fp32
    /// Activations rounded to bfloat16 (nearest even) and bf16 weights, float32 accumulation and output
    /// (oneDNN matmul; F32/F16 weights are rounded to bf16 block by block). Norms, softmax, attention
    /// scores and mixing, the residual stream and LoRA factors stay float32.
    case bf16
}

/// How many threads a pass may use, and the precision of its weight products. Passed to every
/// parallel operation; never stored globally.
public struct ComputeContext: Sendable, Equatable, CustomStringConvertible {
    /// Threads for the pass's parallel loops (matrix products split by output columns, attention
    /// heads, activations); at least 1.
    public let threads: Int
    /// The precision of the weight products.
    public var precision: Precision

    public init(threads: Int, precision: Precision = .fp32) {
        self.threads = max(1, threads)
        self.precision = precision
    }

    /// The same threads with another precision.
    public func with(_ precision: Precision) -> ComputeContext { ComputeContext(threads: threads, precision: precision) }

    /// One thread per core of this machine.
    public static var allCores: ComputeContext { ComputeContext(threads: ProcessInfo.processInfo.activeProcessorCount) }
    /// One thread: strictly sequential.
    public static let serial = ComputeContext(threads: 1)

    public var description: String { "\(threads) thread\(threads == 1 ? "" : "s"), \(precision.rawValue)" }

    /// Runs `body(i)` for i in 0..<n on up to `threads` threads and waits. `body` must only touch
    /// disjoint memory per i.
    public func parallel(_ n: Int, _ body: (Int) -> Void) {
        if n <= 1 || threads <= 1 { for i in 0..<n { body(i) }; return }
        parallelFor(n, body)
    }

    /// Splits 0..<count into at most `threads` contiguous ranges whose bounds are multiples of `align`
    /// (except the last), and runs them in parallel. The bounds follow the thread count: use this only
    /// where each index's result is computed alone (elementwise work), never for a product or a sum
    /// (those use `parallelTiles`). Work below `minimumPerThread` units per extra
    /// thread stays on one thread.
    public func parallelRanges(_ count: Int, align: Int = 1, work: Int = .max, minimumPerThread: Int = 1 << 16,
                               _ body: (Range<Int>) -> Void) {
        let byWork = work == .max ? threads : max(1, work / max(minimumPerThread, 1))
        let byCount = (count + align - 1) / max(align, 1)
        let parts = max(1, min(threads, byWork, byCount))
        if parts == 1 { if count > 0 { body(0..<count) }; return }
        var per = (count + parts - 1) / parts
        per = (per + align - 1) / align * align
        let chunks = (count + per - 1) / per
        parallelFor(chunks) { c in
            let lo = c * per, hi = min(count, lo + per)
            if lo < hi { body(lo..<hi) }
        }
    }
}

/// The column tiles of a matrix product with `count` output columns: bounds that depend on the shape
/// alone, never on the thread count, so that every tile is computed by one library call of the same
/// shape on any machine configuration (the products' results are then independent of `--threads`).
///
/// The tile count is the largest power of two ≤ `maximumTiles` that keeps tiles at least `minimumWidth`
/// wide (1 for narrow products); bounds are i·count/tiles rounded down to a multiple of `align`, so
/// tiles differ in width by at most `align` and a power-of-two thread count gets equal shares.
/// `maximumTiles` caps a single product's parallelism (16: enough for 16 cores; wider machines still
/// parallelise attention and the other loops, and more tiles would cost more per-call overhead).
public struct ProductTiling: Sendable, Equatable {
    public let tiles: [Range<Int>]

    public init(count: Int, align: Int, minimumWidth: Int, maximumTiles: Int = 16) {
        guard count > 0 else { tiles = []; return }
        let align = max(1, align)
        var t = 1
        while t * 2 <= maximumTiles && count / (t * 2) >= max(minimumWidth, align) { t *= 2 }
        var bounds = [0]
        for i in 1..<t {
            let b = (i * count / t) / align * align
            if b > bounds.last! && b < count { bounds.append(b) }
        }
        bounds.append(count)
        tiles = zip(bounds, bounds.dropFirst()).map { $0..<$1 }
    }
}

extension ComputeContext {
    /// Runs `body(tile)` for every tile of `tiling`, the tiles dealt out over up to `threads` threads in
    /// contiguous runs, and waits. The tile bounds never depend on the thread count (`ProductTiling`),
    /// so neither do the results. Work below `minimumPerThread` units per extra thread stays on one
    /// thread. `body` must only touch disjoint memory per tile.
    public func parallelTiles(_ tiling: ProductTiling, work: Int = .max, minimumPerThread: Int = 1 << 16,
                              _ body: (Range<Int>) -> Void) {
        let tiles = tiling.tiles
        parallelTiles(count: tiles.count, work: work, minimumPerThread: minimumPerThread) { body(tiles[$0]) }
    }

    /// Runs `body(i)` for the tiles i in 0..<count (of one product, or of several products listed one after
    /// the other), dealt out over up to `threads` threads in contiguous runs, and waits. As above: the
    /// tiles are fixed by the shapes, the threads only decide who computes which.
    public func parallelTiles(count: Int, work: Int = .max, minimumPerThread: Int = 1 << 16, _ body: (Int) -> Void) {
        let byWork = work == .max ? threads : max(1, work / max(minimumPerThread, 1))
        let parts = max(1, min(threads, byWork, count))
        if parts == 1 { for i in 0..<count { body(i) }; return }
        parallelFor(parts) { p in
            for i in (p * count / parts)..<((p + 1) * count / parts) { body(i) }
        }
    }
}

/// Runs `body(i)` for i in 0..<n on up to n threads and waits. `body` must only touch disjoint memory per i.
public func parallelFor(_ n: Int, _ body: (Int) -> Void) {
    if n <= 1 { for i in 0..<n { body(i) }; return }
    withoutActuallyEscaping(body) { escapable in
        let box = UncheckedSendable(escapable)
        DispatchQueue.concurrentPerform(iterations: n) { box.value($0) }
    }
}
