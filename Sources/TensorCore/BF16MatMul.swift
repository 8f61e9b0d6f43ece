// bf16 matrix products on oneDNN (Debian libdnnl-dev 2.6: the matmul primitive with bf16 source and
// weights and a float32 destination), and, for the few rows of a decoding step, a direct AVX512-BF16
// kernel (CBF16Kernel). The only file in cpiscope that imports CDNNL or CBF16Kernel.
//
// Why two: oneDNN's brgemm matmul packs the weights into its blocked layout inside every call, which at
// 1-16 rows costs more than reading them; the direct kernel reads each weight byte once, where it lies,
// and keeps the rows' activations in cache (BENCHMARKS.md, issue 15). Both compute the same bf16 × bf16
// products with float32 accumulation; only the order of the float32 sums differs.
//
// Like OpenBLAS in MatMul.swift, oneDNN runs single-threaded inside each call: a product's output
// columns are cut into tiles fixed by the shape (`ProductTiling`), dealt out over the `ComputeContext`'s
// threads, and each tile is one primitive call, so the result does not depend on the thread count. 16-bit weights stored as bf16 are read where they lie in the checkpoint's memory map (a column
// slice of W is a pointer offset with strides); F32 and F16 weights are rounded to bf16 one block of
// `halfBlockRows` output columns at a time. oneDNN picks its kernel for the CPU at hand (AVX-512-BF16
// `brg:avx512_core_bf16`, else an emulation or its reference implementation): the result is the same
// up to the order of the float32 accumulation.
import CBF16Kernel
import CDNNL
import Foundation

/// A weight read by a bf16 product, in its stored form.
public enum BF16Operand {
    /// bfloat16 values (used in place).
    case bf16(UnsafeRawPointer)
    /// IEEE binary16 values (rounded to bf16 per block).
    case f16(UnsafeRawPointer)
    /// float32 values (rounded to bf16 per block).
    case f32(UnsafePointer<Float>)

    /// bf16 bit patterns of elements `offset..<offset+count`; `floats` holds `count` floats of scratch.
    @inline(__always)
    func rounded(_ offset: Int, count: Int, floats: UnsafeMutablePointer<Float>, into dst: UnsafeMutablePointer<UInt16>) {
        switch self {
        case .bf16(let p): dst.update(from: (p + 2 * offset).assumingMemoryBound(to: UInt16.self), count: count)
        case .f16(let p):
            decodeF16(p + 2 * offset, count: count, into: floats)
            encodeBF16(floats, count: count, into: dst)
        case .f32(let p): encodeBF16(p + offset, count: count, into: dst)
        }
    }
}

/// Which implementation runs a bf16 product. Both multiply the same bf16 operands with float32
/// accumulation; they differ in the order of the float32 sums and in speed.
public enum BF16Kernel: String, Sendable, CaseIterable {
    /// The direct kernel for at most `directBF16MaxRows` rows where the CPU has it, else oneDNN.
    case automatic
    /// The direct AVX512-BF16 kernel (CBF16Kernel) at any row count where the CPU has it, else oneDNN.
    case direct
    /// oneDNN's matmul primitive.
    case oneDNN
}

/// The most rows that `BF16Kernel.automatic` sends to the direct kernel. Measured on the development
/// machine (BENCHMARKS.md, issue 15: `cpiscope bench --bf16-kernels`): the direct kernel is faster than
/// oneDNN up to about 32 rows on a 7B MLP product, and slower beyond, where oneDNN's packing pays off.
public let directBF16MaxRows = 32

/// Whether the direct bf16 kernel runs here: the CPU has AVX512F/BW/VL and AVX512_BF16 with OS support for
/// the AVX-512 state (CPUID/XGETBV), and the environment does not switch it off with
/// `CPISCOPE_BF16_DIRECT=0` (then every bf16 product runs on oneDNN; the test suite runs once that way, so
/// the oneDNN path is checked on every machine).
public let directBF16KernelAvailable: Bool =
    cpiscope_bf16_kernel_available() != 0 && ProcessInfo.processInfo.environment["CPISCOPE_BF16_DIRECT"] != "0"

/// Whether this CPU runs OpenBLAS's SkylakeX kernels: AVX512F, DQ, BW and VL, with OS support for the
/// AVX-512 state (CPUID/XGETBV, not /proc/cpuinfo).
public let cpuHasSkylakeXInstructions: Bool = cpiscope_cpu_has_avx512_skylakex() != 0

/// y[rows, out] = bf16(x)[rows, in] · bf16(W) (+ bias), accumulated and returned in float32, for a weight
/// in either layout, in column tiles fixed by the shape and dealt out over `compute`'s threads (its
/// precision is not consulted: this is the bf16 product); the result does not depend on the thread count. `x` rows are `xStride` apart and `y` rows `yStride` apart.
/// `kernel` picks the implementation (by default the direct kernel for few rows, oneDNN otherwise).
public func linearBF16(_ x: UnsafePointer<Float>, rows: Int, inFeatures k: Int, xStride: Int? = nil,
                       weight: BF16Operand, layout: WeightLayout, outFeatures: Int,
                       bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, yStride: Int? = nil,
                       compute: ComputeContext = .serial, kernel: BF16Kernel = .automatic) {
    linearBF16(x, rows: rows, inFeatures: k, xStride: xStride,
               products: [BF16LinearProduct(weight: weight, layout: layout, outFeatures: outFeatures, bias: bias, into: y, yStride: yStride)],
               compute: compute, kernel: kernel)
}

/// One of several products of the same input (`linearBF16(_:rows:inFeatures:xStride:products:compute:kernel:)`):
/// y[rows, out] = bf16(x) · bf16(W) (+ bias), y's rows `yStride` apart (default: dense).
public struct BF16LinearProduct {
    public var weight: BF16Operand
    public var layout: WeightLayout
    public var outFeatures: Int
    public var bias: UnsafePointer<Float>?
    public var y: UnsafeMutablePointer<Float>
    public var yStride: Int?

    public init(weight: BF16Operand, layout: WeightLayout, outFeatures: Int, bias: UnsafePointer<Float>?,
                into y: UnsafeMutablePointer<Float>, yStride: Int? = nil) {
        self.weight = weight; self.layout = layout; self.outFeatures = outFeatures; self.bias = bias
        self.y = y; self.yStride = yStride
    }
}

/// Several bf16 products of one input (a layer's q, k and v; gate and up): x is rounded to bf16 once, and
/// the column tiles of every product (each product's own, fixed by its shape) are dealt out over
/// `compute`'s threads in one parallel region. Every tile is the same call as when its product runs alone,
/// so each result is bit-identical to `linearBF16` on that product alone, for any thread count.
public func linearBF16(_ x: UnsafePointer<Float>, rows: Int, inFeatures k: Int, xStride: Int? = nil,
                       products: [BF16LinearProduct], compute: ComputeContext = .serial, kernel: BF16Kernel = .automatic) {
    guard rows > 0 else { return }
    let ldx = xStride ?? k
    guard k > 0 else {
        for p in products where p.outFeatures > 0 {
            let ldy = p.yStride ?? p.outFeatures
            for r in 0..<rows { (p.y + r * ldy).update(repeating: 0, count: p.outFeatures) }
            if let bias = p.bias { addBias(bias, 0..<p.outFeatures, rows: rows, into: p.y, ldy: ldy) }
        }
        return
    }
    let direct = directBF16KernelAvailable && (kernel == .direct || (kernel == .automatic && rows <= directBF16MaxRows))
    let dnnl = direct ? nil : OneDNN.shared
    if !direct && dnnl == nil { preconditionFailure("oneDNN has no CPU engine: check bf16Available before choosing bf16") }
    // bf16(x) [rows, in]: dense for oneDNN; for the direct kernel rows `directActivationStride(k)` apart, so
    // that rows 4 KiB apart do not share L1 sets. In a buffer reused across calls (no allocation per step).
    let ldxb = direct ? directActivationStride(k) : k
    let product = BF16Product(direct: direct, dnnl: dnnl, ldx: ldxb)
    let scratch = ProductScratch.shared.take(bytes: 2 * rows * ldxb)
    defer { ProductScratch.shared.give(scratch) }
    let xb = scratch.pointer(to: UInt16.self)
    compute.parallelRanges(rows, work: rows * k, minimumPerThread: 1 << 16) { r in
        for row in r { encodeBF16(x + row * ldx, count: k, into: xb + row * ldxb) }
    }
    // Every product's tiles, one after the other.
    var tiles: [(product: Int, cols: Range<Int>)] = []
    var outputs = 0
    for (i, p) in products.enumerated() where p.outFeatures > 0 {
        let tiling = ProductTiling(count: p.outFeatures, align: halfBlockRows, minimumWidth: productTileMinimumWidth)
        tiles += tiling.tiles.map { (i, $0) }
        outputs += p.outFeatures
    }
    compute.parallelTiles(count: tiles.count, work: rows * k * outputs) { t in
        let (pi, cols) = tiles[t]
        let p = products[pi], outFeatures = p.outFeatures, y = p.y, ldy = p.yStride ?? outFeatures
        // Weight element (i, o) of the [in, out] operand lies at i·kStride + o·nStride.
        if case .bf16(let w) = p.weight {
            switch p.layout {
            case .outIn:
                product.multiply(xb, rows: rows, k: k, weights: w + 2 * cols.lowerBound * k, kStride: 1, nStride: k,
                              n: cols.count, into: y + cols.lowerBound, ldc: ldy)
            case .inOut:
                product.multiply(xb, rows: rows, k: k, weights: w + 2 * cols.lowerBound, kStride: outFeatures, nStride: 1,
                              n: cols.count, into: y + cols.lowerBound, ldc: ldy)
            }
        } else {
            let block = UnsafeMutablePointer<UInt16>.allocate(capacity: halfBlockRows * k)
            let floats = UnsafeMutablePointer<Float>.allocate(capacity: halfBlockRows * k)
            defer { block.deallocate(); floats.deallocate() }
            var o0 = cols.lowerBound
            while o0 < cols.upperBound {
                let o1 = min(cols.upperBound, o0 + halfBlockRows), nb = o1 - o0
                switch p.layout {
                case .outIn:   // W [out, in]: rows o0..<o1 are contiguous → block [nb, in]
                    p.weight.rounded(o0 * k, count: nb * k, floats: floats, into: block)
                    product.multiply(xb, rows: rows, k: k, weights: UnsafeRawPointer(block), kStride: 1, nStride: k,
                                  n: nb, into: y + o0, ldc: ldy)
                case .inOut:   // W [in, out]: columns o0..<o1 of every row → block [in, nb]
                    for i in 0..<k { p.weight.rounded(i * outFeatures + o0, count: nb, floats: floats, into: block + i * nb) }
                    product.multiply(xb, rows: rows, k: k, weights: UnsafeRawPointer(block), kStride: nb, nStride: 1,
                                  n: nb, into: y + o0, ldc: ldy)
                }
                o0 = o1
            }
        }
        if let bias = p.bias { addBias(bias, cols, rows: rows, into: y, ldy: ldy) }
    }
}

/// The row stride (elements) of bf16 activations for the direct kernel: `k` rounded up to whole cache
/// lines plus one line, so that no two rows lie a multiple of 4 KiB apart (rows 8 KiB apart at k = 4096
/// all fell into one L1 set with the weight rows; measured 1.1-1.3× slower at 8-16 rows).
func directActivationStride(_ k: Int) -> Int { (k + 31) / 32 * 32 + 32 }

/// Scratch memory of the bf16 products (the activations in bf16, oneDNN's scratchpad, a tile's dense
/// output), kept between calls so that a decoding step or a tile allocates nothing: `take` hands out a free
/// buffer of at least `bytes` bytes, 64-byte aligned (or makes one), `give` returns it. Several products may
/// run at once (threads of one product, two passes in one process); each takes its own buffer.
final class ProductScratch: @unchecked Sendable {
    static let shared = ProductScratch()
    /// Buffers larger than this are freed on return rather than kept (a long prompt's activations).
    static let keepLimit = 32 << 20

    struct Buffer {
        let raw: UnsafeMutableRawPointer
        let bytes: Int
        func pointer<T>(to: T.Type) -> UnsafeMutablePointer<T> { raw.assumingMemoryBound(to: T.self) }
    }
    private let lock = NSLock()
    private var free: [Buffer] = []

    func take(bytes: Int) -> Buffer {
        lock.lock()
        if let i = free.firstIndex(where: { $0.bytes >= bytes }) {
            let b = free.remove(at: i)
            lock.unlock()
            return b
        }
        lock.unlock()
        let capacity = max(bytes, 1 << 17)
        return Buffer(raw: .allocate(byteCount: capacity, alignment: 64), bytes: capacity)
    }

    func give(_ b: Buffer) {
        if b.bytes > Self.keepLimit { b.raw.deallocate(); return }
        lock.lock()
        if free.count < 16 { free.append(b); lock.unlock() } else { lock.unlock(); b.raw.deallocate() }
    }
}

/// One thread's bf16 products: the direct kernel or a oneDNN primitive, same operands and arguments.
struct BF16Product {
    let direct: Bool
    let dnnl: OneDNN?
    /// Row stride of the bf16 activations `a` (elements): k for oneDNN (dense), `directActivationStride(k)`
    /// for the direct kernel.
    var ldx: Int = 0

    /// c[m, n] (rows `ldc` apart) = a[m, k] · B[k, n], with a bf16 (rows `ldx` apart) and B bf16 at `weights`
    /// with element (i, j) at i·kStride + j·nStride, where one of the two strides is 1. On the calling thread only.
    @inline(__always)
    func multiply(_ a: UnsafePointer<UInt16>, rows m: Int, k: Int, weights: UnsafeRawPointer, kStride: Int, nStride: Int,
                  n: Int, into c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard direct else {
            dnnl!.multiply(a, rows: m, k: k, weights: weights, kStride: kStride, nStride: nStride, n: n, into: c, ldc: ldc)
            return
        }
        let w = weights.assumingMemoryBound(to: UInt16.self)
        let lda = ldx > 0 ? ldx : k
        if kStride == 1 {   // W [n, k]: rows nStride apart (nn.Linear)
            cpiscope_bf16_linear_outin(a, lda, m, w, nStride, k, n, c, ldc, 0)
        } else {            // W [k, n]: rows kStride apart (Conv1D)
            precondition(nStride == 1, "bf16 weights need one unit stride")
            cpiscope_bf16_linear_inout(a, lda, m, w, kStride, k, n, c, ldc, 0)
        }
    }
}

/// Whether bf16 products can run here (oneDNN made a CPU engine and a bf16 matmul primitive).
public var bf16Available: Bool { bf16Implementation != nil }

/// The oneDNN implementation chosen for a bf16 [128 × 4096] · [4096 × 11008] product on this CPU
/// (e.g. "brg:avx512_core_bf16"), or nil when none could be made.
public var bf16Implementation: String? {
    OneDNN.shared?.primitive(MatmulKey(m: 128, n: 11008, k: 4096, kStride: 1, nStride: 4096))?.implementation
}

/// The shape of one primitive: src bf16 [m, k] dense, weights bf16 [k, n] with element strides, dst f32
/// [m, n] dense (see `OneDNN.multiply`).
struct MatmulKey: Hashable {
    let m, n, k, kStride, nStride: Int
    /// OpenMP threads inside the primitive: 1 for every product of a pass; more only for the roofline's
    /// whole-product measurement (`bf16WholeProduct`).
    var threads = 1
}

/// A matmul primitive made for one shape, with its memory descriptors. Immutable once made, and run with
/// a scratchpad of the caller's (`dnnl_scratchpad_mode_user`), so several threads may execute it at once.
final class MatmulPrimitive: @unchecked Sendable {
    let primitive: dnnl_primitive_t
    var src = dnnl_memory_desc_t(), weights = dnnl_memory_desc_t(), dst = dnnl_memory_desc_t()
    let scratchpad: dnnl_memory_desc_t
    let scratchpadBytes: Int
    let implementation: String

    init?(_ key: MatmulKey, engine: dnnl_engine_t) {
        guard cpiscope_dnnl_md_2d(&src, Int64(key.m), Int64(key.k), Int64(key.k), 1, dnnl_bf16) == dnnl_success,
              cpiscope_dnnl_md_2d(&weights, Int64(key.k), Int64(key.n), Int64(key.kStride), Int64(key.nStride), dnnl_bf16) == dnnl_success,
              cpiscope_dnnl_md_2d(&dst, Int64(key.m), Int64(key.n), Int64(key.n), 1, dnnl_f32) == dnnl_success
        else { return nil }
        var desc = dnnl_matmul_desc_t()
        guard dnnl_matmul_desc_init(&desc, &src, &weights, nil, &dst) == dnnl_success else { return nil }
        var attr: dnnl_primitive_attr_t?
        guard dnnl_primitive_attr_create(&attr) == dnnl_success else { return nil }
        defer { dnnl_primitive_attr_destroy(attr) }
        guard dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success else { return nil }
        // oneDNN sizes its work split by the calling thread's OpenMP thread count: the one it runs with.
        omp_set_num_threads(Int32(key.threads))
        defer { omp_set_num_threads(1) }
        var pd: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&pd, &desc, attr, engine, nil) == dnnl_success, let pd else { return nil }
        defer { dnnl_primitive_desc_destroy(pd) }
        var name: UnsafePointer<CChar>?
        implementation = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success && name != nil
            ? String(cString: name!) : "?"
        guard let sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) else { return nil }
        scratchpad = sp.pointee
        scratchpadBytes = dnnl_memory_desc_get_size(sp)
        var p: dnnl_primitive_t?
        guard dnnl_primitive_create(&p, pd) == dnnl_success, let p else { return nil }
        primitive = p
    }

    deinit { dnnl_primitive_destroy(primitive) }
}

/// The CPU engine and the primitives made so far, one per shape (at most `capacity`; beyond that the
/// cache starts afresh, and primitives still running stay alive until their calls return).
final class OneDNN: @unchecked Sendable {
    static let shared: OneDNN? = OneDNN()
    static let capacity = 1024

    let engine: dnnl_engine_t
    private let lock = NSLock()
    private var primitives: [MatmulKey: MatmulPrimitive] = [:]

    private init?() {
        var e: dnnl_engine_t?
        guard dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success, let e else { return nil }
        engine = e
    }

    func primitive(_ key: MatmulKey) -> MatmulPrimitive? {
        lock.lock()
        defer { lock.unlock() }
        if let p = primitives[key] { return p }
        guard let p = MatmulPrimitive(key, engine: engine) else { return nil }
        if primitives.count >= OneDNN.capacity { primitives.removeAll() }
        primitives[key] = p
        return p
    }

    /// c[m, n] (rows `ldc` apart) = a[m, k] · B[k, n], with a dense bf16 and B bf16 at `weights` with
    /// element (i, j) at i·kStride + j·nStride. On the calling thread only.
    ///
    /// A tile of a wider product (ldc > n) is computed into a dense buffer and copied out: oneDNN 2.6
    /// runs its brgemm kernel (`brg:avx512_core_bf16`) only for a dense destination and falls back to
    /// `gemm:jit` for rows `ldc` apart, measured 15-25% slower on a 7B tile at 128-512 rows
    /// (BENCHMARKS.md, issue 26, "The ceiling"). The copy is m·n floats against 2·m·n·k FLOPs.
    func multiply(_ a: UnsafePointer<UInt16>, rows m: Int, k: Int, weights: UnsafeRawPointer, kStride: Int, nStride: Int,
                  n: Int, into c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int = 1) {
        let dense = ldc == n
        let key = MatmulKey(m: m, n: n, k: k, kStride: kStride, nStride: nStride, threads: threads)
        guard let p = primitive(key) else { preconditionFailure("oneDNN could not make a bf16 matmul for \(key)") }
        omp_set_num_threads(Int32(threads))
        defer { if threads != 1 { omp_set_num_threads(1) } }
        let padBytes = (max(p.scratchpadBytes, 1) + 63) / 64 * 64
        let scratch = ProductScratch.shared.take(bytes: padBytes + (dense ? 0 : 4 * m * n))
        defer { ProductScratch.shared.give(scratch) }
        let out = dense ? c : (scratch.raw + padBytes).assumingMemoryBound(to: Float.self)
        var stream: dnnl_stream_t?
        var mems: [dnnl_memory_t?] = [nil, nil, nil, nil]
        defer {
            for mem in mems where mem != nil { dnnl_memory_destroy(mem) }
            if stream != nil { dnnl_stream_destroy(stream) }
        }
        var status = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue)
        // oneDNN takes non-const handles; it only reads the source and the weights.
        let handles: [UnsafeMutableRawPointer] = [UnsafeMutableRawPointer(mutating: a), UnsafeMutableRawPointer(mutating: weights),
                                                  UnsafeMutableRawPointer(out), scratch.raw]
        var descs = [p.src, p.weights, p.dst, p.scratchpad]
        for i in 0..<4 where status == dnnl_success { status = dnnl_memory_create(&mems[i], &descs[i], engine, handles[i]) }
        var args = [dnnl_exec_arg_t(arg: cpiscope_dnnl_arg_src, memory: mems[0]),
                    dnnl_exec_arg_t(arg: cpiscope_dnnl_arg_weights, memory: mems[1]),
                    dnnl_exec_arg_t(arg: cpiscope_dnnl_arg_dst, memory: mems[2]),
                    dnnl_exec_arg_t(arg: cpiscope_dnnl_arg_scratchpad, memory: mems[3])]
        if status == dnnl_success { status = dnnl_primitive_execute(p.primitive, stream, Int32(args.count), &args) }
        if status == dnnl_success { status = dnnl_stream_wait(stream) }
        precondition(status == dnnl_success, "oneDNN bf16 matmul \(key) failed with status \(status.rawValue)")
        if !dense { for r in 0..<m { (c + r * ldc).update(from: out + r * n, count: n) } }
    }
}

/// Whether oneDNN can make the whole-product primitive of `bf16WholeProduct` for this shape.
public func bf16WholeProductAvailable(rows: Int, k: Int, n: Int, threads: Int) -> Bool {
    OneDNN.shared?.primitive(MatmulKey(m: rows, n: n, k: k, kStride: 1, nStride: k, threads: max(1, threads))) != nil
}

/// y[rows, n] = bf16(x)[rows, k] · W with W bf16 [n, k] (a checkpoint's layout), as ONE oneDNN matmul
/// running `threads` OpenMP threads of its own: the library's multi-threaded product, as torch's
/// F.linear runs it. Only for the roofline's ceiling (Roofline.swift): its float32 sums follow oneDNN's
/// split of the work over its threads, so a pass never uses it (results would depend on the thread count).
public func bf16WholeProduct(_ x: UnsafePointer<Float>, rows: Int, k: Int, weights: UnsafePointer<UInt16>, n: Int,
                             into y: UnsafeMutablePointer<Float>, threads: Int) {
    guard let dnnl = OneDNN.shared, rows > 0, n > 0, k > 0 else { return }
    let xb = UnsafeMutablePointer<UInt16>.allocate(capacity: rows * k)
    defer { xb.deallocate() }
    encodeBF16(x, count: rows * k, into: xb)
    dnnl.multiply(xb, rows: rows, k: k, weights: UnsafeRawPointer(weights), kStride: 1, nStride: k, n: n, into: y, ldc: n,
                  threads: max(1, threads))
}

/// Reads `count` bytes at `p` once, front to back (wide loads), and returns a value that depends on every
/// byte: the streaming read of the roofline's bandwidth (Roofline.swift).
public func streamRead(_ p: UnsafeRawPointer, count: Int) -> UInt64 {
    cpiscope_bf16_stream_read(p, count)
}
