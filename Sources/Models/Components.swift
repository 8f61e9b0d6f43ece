// Building blocks shared by every architecture: a linear layer, a norm, an MLP, a
// q/k/v projection, and the strict weight table that loads them.
import Checkpoints
import TensorCore

/// A weight kept in the checkpoint's 16-bit format (BF16 or F16) inside the memory-mapped file, decoded
/// block by block inside each product (`linearHalf`), so that no float32 copy of the model exists.
public struct HalfMatrix: @unchecked Sendable {
    public let bytes: UnsafeRawPointer
    public let format: HalfFormat
    /// [rows, cols] as stored.
    public let shape: [Int]
    /// Keeps the mapping alive.
    let owner: AnyObject

    /// The weight as a bf16 product reads it: in place when stored bf16.
    var bf16Operand: BF16Operand { format == .bf16 ? .bf16(bytes) : .f16(bytes) }

    /// Decodes row `r` into `out` (cols floats).
    @inline(__always)
    func decodeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        format.decode(bytes + 2 * r * shape[1], count: shape[1], into: out)
    }
}

/// A matrix weight: float32 (owned, or borrowed from the mapping) or 16-bit in the mapping.
public struct WeightMatrix: Sendable {
    public let float: Tensor?
    public let half: HalfMatrix?

    public init(_ t: Tensor) { float = t; half = nil }
    public init(half h: HalfMatrix) { float = nil; half = h }

    /// Copies row `r` (as float32) into `out`.
    @inline(__always)
    func row(_ r: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
        if let f = float { out.update(from: f.pointer + r * cols, count: cols) } else { half!.decodeRow(r, into: out) }
    }

    /// y[rows, n] = h[rows, k] · Mᵀ for M stored [n, k], split over `compute`'s threads by columns of y,
    /// in `compute`'s precision.
    func multiplyTransposed(_ h: UnsafePointer<Float>, rows: Int, n: Int, k: Int, into y: UnsafeMutablePointer<Float>,
                            compute: ComputeContext) {
        product(h, rows: rows, inFeatures: k, outFeatures: n, layout: .outIn, into: y, compute: compute)
    }

    /// y[rows, outFeatures] = x[rows, inFeatures] · the matrix read in `layout`, through the product entry point
    /// of its storage and `compute`'s precision (the forward's Mᵀ and the reverse pass's M share it).
    func product(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int, layout: WeightLayout,
                 into y: UnsafeMutablePointer<Float>, compute: ComputeContext) {
        if compute.precision == .bf16 {
            linearBF16(x, rows: rows, inFeatures: inFeatures, weight: half?.bf16Operand ?? .f32(float!.pointer), layout: layout,
                       outFeatures: outFeatures, bias: nil, into: y, compute: compute)
        } else if let f = float {
            linear(x, rows: rows, inFeatures: inFeatures, weight: f.pointer, layout: layout, outFeatures: outFeatures, bias: nil,
                   into: y, compute: compute)
        } else {
            let half = half!
            linearHalf(x, rows: rows, inFeatures: inFeatures, weight: half.bytes, format: half.format, layout: layout,
                       outFeatures: outFeatures, bias: nil, into: y, compute: compute)
        }
    }
}

/// A linear map y = x·W (+ b), with W in either storage layout, plus an optional LoRA update kept as factors.
/// W is float32 (`weight`), or 16-bit in the mapping (`half`, with `weight` an empty placeholder).
public struct Linear: Sendable {
    public var weight: Tensor
    public var layout: WeightLayout
    public var bias: Tensor?
    public let inFeatures: Int
    public let outFeatures: Int
    /// A LoRA update applied in the forward pass (`AdapterMode.factors`); nil when the weight is final.
    public var lora: LoRAFactors? = nil
    /// The weight in its stored 16-bit form, when it is kept that way.
    public var half: HalfMatrix? = nil

    /// y[rows, out] = x[rows, in] · W (+ b) (+ scale·(x·Aᵀ)·Bᵀ); rows of y are `yStride` apart (default: dense).
    /// The product's output columns are split over `compute`'s threads; it runs in `compute`'s precision
    /// (the LoRA update stays float32).
    @inline(__always)
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, yStride: Int? = nil,
                      accumulate: Bool = false, compute: ComputeContext = .serial) {
        if compute.precision == .bf16 {
            precondition(!accumulate, "accumulate is not supported for bf16 products")
            linearBF16(x, rows: rows, inFeatures: inFeatures, weight: half?.bf16Operand ?? .f32(weight.pointer), layout: layout,
                       outFeatures: outFeatures, bias: bias.map { UnsafePointer($0.pointer) }, into: y, yStride: yStride,
                       compute: compute)
        } else if let half {
            precondition(!accumulate, "accumulate is not supported for 16-bit weights")
            linearHalf(x, rows: rows, inFeatures: inFeatures, weight: half.bytes, format: half.format, layout: layout,
                       outFeatures: outFeatures, bias: bias.map { UnsafePointer($0.pointer) }, into: y, yStride: yStride,
                       compute: compute)
        } else {
            linear(x, rows: rows, inFeatures: inFeatures, weight: weight.pointer, layout: layout, outFeatures: outFeatures,
                   bias: bias.map { UnsafePointer($0.pointer) }, into: y, yStride: yStride, accumulate: accumulate, compute: compute)
        }
        lora?.add(x, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, into: y, yStride: yStride ?? outFeatures)
    }
}

extension Linear {
    /// y_i = x · W_i (+ b_i) for maps of the same input (a layer's q, k and v; gate and up), each into its
    /// own output (rows `yStride` apart, default dense). In bf16 the input is rounded once and the products'
    /// tiles share one parallel region (`linearBF16(_:rows:inFeatures:xStride:products:compute:kernel:)`);
    /// otherwise the maps run one after the other. Either way each output is bit-identical to `apply` on
    /// its map alone. One region keeps more threads busy than one product can (at most 16 tiles each:
    /// `ProductTiling`), and a pass waits at 4 barriers per layer instead of 7.
    public static func apply(_ maps: [(map: Linear, y: UnsafeMutablePointer<Float>, yStride: Int?)], to x: UnsafePointer<Float>,
                             rows: Int, compute: ComputeContext = .serial) {
        guard compute.precision == .bf16, maps.count > 1, let k = maps.first?.map.inFeatures,
              maps.allSatisfy({ $0.map.inFeatures == k }) else {
            for m in maps { m.map.apply(x, rows: rows, into: m.y, yStride: m.yStride, compute: compute) }
            return
        }
        linearBF16(x, rows: rows, inFeatures: k, products: maps.map { m in
            BF16LinearProduct(weight: m.map.half?.bf16Operand ?? .f32(m.map.weight.pointer), layout: m.map.layout,
                              outFeatures: m.map.outFeatures, bias: m.map.bias.map { UnsafePointer($0.pointer) },
                              into: m.y, yStride: m.yStride)
        }, compute: compute)
        for m in maps {
            m.map.lora?.add(x, rows: rows, inFeatures: k, outFeatures: m.map.outFeatures, into: m.y, yStride: m.yStride ?? m.map.outFeatures)
        }
    }

    /// The transpose of the map on row vectors: r[rows, in] = u[rows, out] · Wᵀ-of-the-map, so that for
    /// every input x, (x·W)·u = x·r (bias excluded; a LoRA update included). Used to project a direction
    /// in the output space back onto the input (direct logit attribution through o_proj).
    public func pullBack(_ u: UnsafePointer<Float>, rows: Int, into r: UnsafeMutablePointer<Float>) {
        let i = inFeatures, o = outFeatures
        if let half {
            // Decode blocks of stored rows and accumulate.
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: halfBlockRows * max(i, o))
            defer { scratch.deallocate() }
            switch layout {
            case .outIn:   // W [out, in]: r += u[:, o0..<o1] · W[o0..<o1, :]
                var o0 = 0
                while o0 < o {
                    let o1 = min(o, o0 + halfBlockRows)
                    half.format.decode(half.bytes + 2 * o0 * i, count: (o1 - o0) * i, into: scratch)
                    sgemm(m: rows, n: i, k: o1 - o0, a: u + o0, lda: o, b: scratch, ldb: i, c: r, ldc: i, beta: o0 == 0 ? 0 : 1)
                    o0 = o1
                }
            case .inOut:   // W [in, out]: r[:, i0..<i1] = u · W[i0..<i1, :]ᵀ
                var i0 = 0
                while i0 < i {
                    let i1 = min(i, i0 + halfBlockRows)
                    half.format.decode(half.bytes + 2 * i0 * o, count: (i1 - i0) * o, into: scratch)
                    sgemm(m: rows, n: i1 - i0, k: o, a: u, lda: o, b: scratch, ldb: o, transB: true, c: r + i0, ldc: i)
                    i0 = i1
                }
            }
        } else {
            switch layout {
            case .outIn: sgemm(m: rows, n: i, k: o, a: u, lda: o, b: weight.pointer, ldb: i, c: r, ldc: i)
            case .inOut: sgemm(m: rows, n: i, k: o, a: u, lda: o, b: weight.pointer, ldb: o, transB: true, c: r, ldc: i)
            }
        }
        if let lora {
            // y += s·(x·Aᵀ)·Bᵀ  ⇒  r += s·(u·B)·A
            let k = lora.rank
            let t = UnsafeMutablePointer<Float>.allocate(capacity: max(rows * k, 1))
            defer { t.deallocate() }
            sgemm(m: rows, n: k, k: o, a: u, lda: o, b: lora.b.pointer, ldb: k, c: t, ldc: k)
            sgemm(m: rows, n: i, k: k, a: t, lda: k, b: lora.a.pointer, ldb: i, c: r, ldc: i, alpha: lora.scale, beta: 1)
        }
    }
}

/// A LoRA update kept as its factors (PEFT `lora.Linear.forward`): y += scale · (x·Aᵀ)·Bᵀ.
public struct LoRAFactors: Sendable {
    /// lora_A [r, in]
    public let a: Tensor
    /// lora_B [out, r]
    public let b: Tensor
    /// alpha / r, or alpha / √r with rsLoRA.
    public let scale: Float

    public init(a: Tensor, b: Tensor, scale: Float) {
        precondition(a.rank == 2 && b.rank == 2 && a.shape[0] == b.shape[1], "LoRA factors A \(a.shape), B \(b.shape)")
        self.a = a
        self.b = b
        self.scale = scale
    }

    public var rank: Int { a.shape[0] }

    /// y[rows, out] (rows `yStride` apart) += scale · (x[rows, in] · Aᵀ) · Bᵀ
    func add(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int,
             into y: UnsafeMutablePointer<Float>, yStride: Int) {
        let r = rank
        let t = UnsafeMutablePointer<Float>.allocate(capacity: max(rows * r, 1))  // [rows, r]
        defer { t.deallocate() }
        sgemm(m: rows, n: r, k: inFeatures, a: x, lda: inFeatures, b: a.pointer, ldb: inFeatures, transB: true, c: t, ldc: r)
        sgemm(m: rows, n: outFeatures, k: r, a: t, lda: r, b: b.pointer, ldb: r, transB: true, c: y, ldc: yStride,
              alpha: scale, beta: 1)
    }
}

/// LayerNorm (weight + bias) or RMSNorm (weight only).
public struct Norm: Sendable {
    public enum Kind: Sendable { case layerNorm, rmsNorm }
    public var kind: Kind
    public var weight: Tensor
    public var bias: Tensor?
    public var eps: Float

    /// y[rows, d] = norm(x[rows, d])
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        let d = weight.count
        switch kind {
        case .layerNorm: layerNorm(x, rows: rows, d: d, weight: weight.pointer, bias: bias.map { UnsafePointer($0.pointer) }, eps: eps, into: y)
        case .rmsNorm: rmsNorm(x, rows: rows, d: d, weight: weight.pointer, eps: eps, into: y)
        }
    }
}

/// How q, k and v come out of the block's input.
public enum QKVProjection: Sendable {
    /// Llama family: three separate projections.
    case separate(q: Linear, k: Linear, v: Linear)
    /// One projection whose output columns are [q (all heads) | k (all kv heads) | v (all kv heads)]:
    /// GPT-2 `c_attn`, Phi-3 `qkv_proj`.
    case fusedBlocks(Linear)
    /// GPT-NeoX `query_key_value`: output columns interleaved per head: [q_h k_h v_h] for each head h.
    case fusedPerHead(Linear)
}

/// RMSNorm of queries or keys before rotary: over each head's d_head values (Qwen3 `q_norm`/`k_norm`,
/// weight [d_head]) or over the whole projection (OLMo-2, weight [head·d_head]).
public struct QKNorm: Sendable {
    public var norm: Norm
    public var perHead: Bool
}

/// The MLP of a block.
public enum MLP: Sendable {
    /// act(x·W_in + b)·W_out + b (GPT-2, GPT-NeoX)
    case plain(up: Linear, down: Linear, activation: Activation)
    /// (act(x·W_gate) ⊙ x·W_up)·W_down (Llama family)
    case gated(gate: Linear, up: Linear, down: Linear, activation: Activation)
    /// The gated MLP with gate and up fused in one projection whose output is [gate | up] (Phi-3 `gate_up_proj`).
    case gatedFused(gateUp: Linear, down: Linear, activation: Activation)

    public var hiddenWidth: Int {
        switch self {
        case .plain(let up, _, _): return up.outFeatures
        case .gated(_, let up, _, _): return up.outFeatures
        case .gatedFused(let gateUp, _, _): return gateUp.outFeatures / 2
        }
    }
}

/// One transformer block's weights. Optional norms say which structure the block has:
///   pre-norms (`attnNorm`, `mlpNorm`; absent in OLMo-2), post-norms inside the residual branch
///   (`attnPostNorm`, `mlpPostNorm`: OLMo-2, Gemma-2), q/k norms (OLMo-2, Qwen3).
public struct BlockWeights: Sendable {
    public var attnNorm: Norm?
    public var mlpNorm: Norm?
    public var qkv: QKVProjection
    public var attnOut: Linear
    public var mlp: MLP
    public var attnPostNorm: Norm? = nil
    public var mlpPostNorm: Norm? = nil
    public var qNorm: QKNorm? = nil
    public var kNorm: QKNorm? = nil

    /// Every linear layer of the block, in reading order: q/k/v (or the fused projection), o_proj, the MLP's.
    public var linears: [Linear] {
        var out: [Linear] = []
        switch qkv {
        case let .separate(q, k, v): out += [q, k, v]
        case let .fusedBlocks(p), let .fusedPerHead(p): out.append(p)
        }
        out.append(attnOut)
        switch mlp {
        case let .plain(up, down, _): out += [up, down]
        case let .gated(gate, up, down, _): out += [gate, up, down]
        case let .gatedFused(gateUp, down, _): out += [gateUp, down]
        }
        return out
    }

    /// Every norm of the block that it has (pre, post and q/k norms).
    public var norms: [Norm] {
        [attnNorm, mlpNorm, attnPostNorm, mlpPostNorm, qNorm?.norm, kNorm?.norm].compactMap { $0 }
    }

    public init(attnNorm: Norm?, mlpNorm: Norm?, qkv: QKVProjection, attnOut: Linear, mlp: MLP,
                attnPostNorm: Norm? = nil, mlpPostNorm: Norm? = nil, qNorm: QKNorm? = nil, kNorm: QKNorm? = nil) {
        self.attnNorm = attnNorm
        self.mlpNorm = mlpNorm
        self.qkv = qkv
        self.attnOut = attnOut
        self.mlp = mlp
        self.attnPostNorm = attnPostNorm
        self.mlpPostNorm = mlpPostNorm
        self.qNorm = qNorm
        self.kNorm = kNorm
    }
}

/// Geometry of a linear layer as its weight table read it.
struct LinearShape: Sendable, Equatable {
    let layout: WeightLayout
    let inFeatures: Int
    let outFeatures: Int
}

/// Changes tensors as a weight table takes them: LoRA updates and modules_to_save replacements (LoRA.swift).
/// `base` has already been checked against the checkpoint's declared shape.
protocol WeightOverlay: AnyObject {
    /// The tensor to use for `name` instead of the base tensor.
    func tensor(_ name: String, base: Tensor) throws -> Tensor
    /// The weight (and optional factors) to use for the linear layer whose tensors start with `prefix`.
    func linear(_ prefix: String, weight: Tensor, shape: LinearShape) throws -> (weight: Tensor, lora: LoRAFactors?)
}

/// State shared by the weight tables that read one store several times (one base model, many adapters;
/// CheckpointLoader.swift): tensors decoded once, the linear layers seen, and the overlay of the current adapter.
final class LoadContext {
    /// Tensors already taken from the store, by name (borrowed from the mapping when aligned F32).
    var decoded: [String: Tensor] = [:]
    /// Every linear layer read, by tensor-name prefix (e.g. "model.layers.0.self_attn.q_proj"), in reading order.
    private(set) var linearOrder: [String] = []
    private(set) var linears: [String: LinearShape] = [:]
    /// Applied to every tensor taken while set.
    var overlay: (any WeightOverlay)?
    /// Keep BF16/F16 weights 16-bit in the mapping (the default) rather than decoding them to float32 up front.
    var keepHalfWeights = true
    /// When set, the weight table only checks names and shapes against the config, decodes nothing and
    /// collects every problem here instead of stopping at the first (`DecoderModel.checkWeights`).
    var audit: WeightAudit?

    func recordLinear(_ prefix: String, _ shape: LinearShape) {
        if linears.updateValue(shape, forKey: prefix) == nil { linearOrder.append(prefix) }
    }
}

/// Every mismatch between a checkpoint's tensors and what its config implies, collected in one pass.
final class WeightAudit {
    var missing: [String] = []
    var wrongShapes: [(tensor: String, expected: [Int], found: [Int])] = []
}

/// Strict access to a checkpoint's tensors: every tensor taken is checked for shape, and at the end
/// every tensor nobody took (other than the known, deliberately ignored buffers) is an error.
struct WeightTable {
    let store: WeightStore
    let checkpoint: String
    let context: LoadContext?
    private(set) var used: Set<String> = []

    /// Buffers that Hugging Face checkpoints may carry but that hold no parameters:
    /// GPT-2 `attn.bias` / `attn.masked_bias` (causal-mask buffers), `rotary_emb.inv_freq` (recomputed from config).
    static let ignoredSuffixes = [".attn.bias", ".attn.masked_bias", ".attention.bias", ".attention.masked_bias", "rotary_emb.inv_freq"]

    /// True for a checkpoint tensor that holds no parameters (a buffer the weight table ignores).
    static func isBuffer(_ name: String) -> Bool { ignoredSuffixes.contains { name.hasSuffix($0) } }

    /// Keep BF16/F16 weights in their stored form (decoded per block in each product) instead of float32 copies.
    var keepHalf: Bool { context?.keepHalfWeights ?? true }

    init(store: WeightStore, checkpoint: String, context: LoadContext? = nil) {
        self.store = store
        self.checkpoint = checkpoint
        self.context = context
    }

    func has(_ name: String) -> Bool { store.contains(name) }

    mutating func take(_ name: String, shape: [Int]) throws -> Tensor {
        let base = try takeBase(name, shape: shape)
        return try context?.overlay?.tensor(name, base: base) ?? base
    }

    /// The store's tensor, shape-checked, decoded once per context.
    private mutating func takeBase(_ name: String, shape: [Int]) throws -> Tensor {
        if let audit = context?.audit {
            // Names and shapes only: nothing is decoded, and every problem is collected.
            if let info = store.info(name) {
                used.insert(name)
                if info.shape != shape { audit.wrongShapes.append((name, shape, info.shape)) }
            } else {
                audit.missing.append(name)
            }
            return Tensor(zeros: [0])
        }
        guard let info = store.info(name) else { throw ModelError.missingTensor(checkpoint: checkpoint, tensor: name) }
        guard info.shape == shape else {
            throw ModelError.wrongShape(checkpoint: checkpoint, tensor: name, expected: shape, found: info.shape)
        }
        used.insert(name)
        if let t = context?.decoded[name] { return t }
        let t = try store.tensor(name)
        context?.decoded[name] = t
        return t
    }

    /// A 16-bit weight left in the mapping, when `keepHalf` allows it and no adapter overlay needs float32.
    private mutating func takeHalf(_ name: String, shape: [Int]) throws -> HalfMatrix? {
        guard keepHalf, context?.audit == nil, context?.overlay == nil, context?.decoded[name] == nil, let info = store.info(name),
              info.dtype == .BF16 || info.dtype == .F16, let file = store.file(of: name) else { return nil }
        guard info.shape == shape else {
            throw ModelError.wrongShape(checkpoint: checkpoint, tensor: name, expected: shape, found: info.shape)
        }
        used.insert(name)
        let (_, raw) = try store.rawBytes(name)
        guard let base = raw.baseAddress else { return nil }
        return HalfMatrix(bytes: base, format: info.dtype == .BF16 ? .bf16 : .f16, shape: shape, owner: file)
    }

    /// A matrix (embedding, unembedding) as stored: 16-bit kept in the mapping when possible, else float32.
    mutating func matrix(_ name: String, shape: [Int]) throws -> WeightMatrix {
        if let h = try takeHalf(name, shape: shape) { return WeightMatrix(half: h) }
        return WeightMatrix(try take(name, shape: shape))
    }

    mutating func linear(_ prefix: String, in i: Int, out o: Int, bias: Bool, layout: WeightLayout = .outIn) throws -> Linear {
        let shape = layout == .outIn ? [o, i] : [i, o]
        let geometryHalf = LinearShape(layout: layout, inFeatures: i, outFeatures: o)
        if let h = try takeHalf(prefix + ".weight", shape: shape) {
            context?.recordLinear(prefix, geometryHalf)
            let b = bias ? try take(prefix + ".bias", shape: [o]) : nil
            return Linear(weight: Tensor(zeros: [0]), layout: layout, bias: b, inFeatures: i, outFeatures: o, half: h)
        }
        var w = try takeBase(prefix + ".weight", shape: shape)
        var factors: LoRAFactors? = nil
        let geometry = LinearShape(layout: layout, inFeatures: i, outFeatures: o)
        context?.recordLinear(prefix, geometry)
        if let overlay = context?.overlay { (w, factors) = try overlay.linear(prefix, weight: w, shape: geometry) }
        let b = bias ? try take(prefix + ".bias", shape: [o]) : nil
        return Linear(weight: w, layout: layout, bias: b, inFeatures: i, outFeatures: o, lora: factors)
    }

    /// A norm's weight (and LayerNorm's bias). `offset` is added to the stored weight: Gemma's RMSNorm
    /// multiplies by (1 + w), computed in float32 as transformers does (Gemma2RMSNorm).
    mutating func norm(_ prefix: String, d: Int, kind: Norm.Kind, eps: Float, offset: Float = 0) throws -> Norm {
        var w = try take(prefix + ".weight", shape: [d])
        if offset != 0, w.count == d {
            let shifted = Tensor(zeros: [d])
            for i in 0..<d { shifted.pointer[i] = w.pointer[i] + offset }
            w = shifted
        }
        let b = kind == .layerNorm ? try take(prefix + ".bias", shape: [d]) : nil
        return Norm(kind: kind, weight: w, bias: b, eps: eps)
    }

    /// Fails naming the tensors that no part of the model used (and, when auditing, every missing or
    /// misshapen tensor first).
    func checkAllUsed() throws {
        if let audit = context?.audit {
            if !audit.missing.isEmpty { throw ModelError.missingTensors(checkpoint: checkpoint, tensors: audit.missing) }
            if let w = audit.wrongShapes.first {
                throw ModelError.wrongShape(checkpoint: checkpoint, tensor: w.tensor, expected: w.expected, found: w.found)
            }
        }
        // A tensor that is another name of used bytes (tied weights a torch checkpoint saved twice) counts as used.
        let unused = store.names.filter { name in
            !used.contains(name) && !WeightTable.isBuffer(name)
                && !store.aliases(of: name).contains(where: used.contains)
        }
        if !unused.isEmpty { throw ModelError.unusedTensors(checkpoint: checkpoint, tensors: unused) }
    }
}
