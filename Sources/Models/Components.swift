// Building blocks shared by every architecture: a linear layer, a norm, an MLP, a
// q/k/v projection, and the strict weight table that loads them.
import Checkpoints
import TensorCore

/// A linear map y = x·W (+ b), with W in either storage layout.
public struct Linear: Sendable {
    public var weight: Tensor
    public var layout: WeightLayout
    public var bias: Tensor?
    public let inFeatures: Int
    public let outFeatures: Int

    /// y[rows, out] = x[rows, in] · W (+ b)
    @inline(__always)
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        linear(x, rows: rows, inFeatures: inFeatures, weight: weight.pointer, layout: layout, outFeatures: outFeatures,
               bias: bias.map { UnsafePointer($0.pointer) }, into: y, accumulate: accumulate)
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
    /// GPT-2 `c_attn`: one projection whose output columns are [q (all heads) | k | v].
    case fusedBlocks(Linear)
    /// GPT-NeoX `query_key_value`: output columns interleaved per head: [q_h k_h v_h] for each head h.
    case fusedPerHead(Linear)
}

/// The MLP of a block.
public enum MLP: Sendable {
    /// act(x·W_in + b)·W_out + b (GPT-2, GPT-NeoX)
    case plain(up: Linear, down: Linear, activation: Activation)
    /// (act(x·W_gate) ⊙ x·W_up)·W_down (Llama family)
    case gated(gate: Linear, up: Linear, down: Linear, activation: Activation)

    public var hiddenWidth: Int {
        switch self {
        case .plain(let up, _, _): return up.outFeatures
        case .gated(_, let up, _, _): return up.outFeatures
        }
    }
}

/// One transformer block's weights.
public struct BlockWeights: Sendable {
    public var attnNorm: Norm
    public var mlpNorm: Norm
    public var qkv: QKVProjection
    public var attnOut: Linear
    public var mlp: MLP
}

/// Strict access to a checkpoint's tensors: every tensor taken is checked for shape, and at the end
/// every tensor nobody took (other than the known, deliberately ignored buffers) is an error.
struct WeightTable {
    let store: WeightStore
    let checkpoint: String
    private(set) var used: Set<String> = []

    /// Buffers that Hugging Face checkpoints may carry but that hold no parameters:
    /// GPT-2 `attn.bias` / `attn.masked_bias` (causal-mask buffers), `rotary_emb.inv_freq` (recomputed from config).
    static let ignoredSuffixes = [".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq"]

    init(store: WeightStore, checkpoint: String) {
        self.store = store
        self.checkpoint = checkpoint
    }

    func has(_ name: String) -> Bool { store.contains(name) }

    mutating func take(_ name: String, shape: [Int]) throws -> Tensor {
        guard let info = store.info(name) else { throw ModelError.missingTensor(checkpoint: checkpoint, tensor: name) }
        guard info.shape == shape else {
            throw ModelError.wrongShape(checkpoint: checkpoint, tensor: name, expected: shape, found: info.shape)
        }
        used.insert(name)
        return try store.tensor(name)
    }

    mutating func linear(_ prefix: String, in i: Int, out o: Int, bias: Bool, layout: WeightLayout = .outIn) throws -> Linear {
        let shape = layout == .outIn ? [o, i] : [i, o]
        let w = try take(prefix + ".weight", shape: shape)
        let b = bias ? try take(prefix + ".bias", shape: [o]) : nil
        return Linear(weight: w, layout: layout, bias: b, inFeatures: i, outFeatures: o)
    }

    mutating func norm(_ prefix: String, d: Int, kind: Norm.Kind, eps: Float) throws -> Norm {
        let w = try take(prefix + ".weight", shape: [d])
        let b = kind == .layerNorm ? try take(prefix + ".bias", shape: [d]) : nil
        return Norm(kind: kind, weight: w, bias: b, eps: eps)
    }

    /// Fails naming the tensors that no part of the model used.
    func checkAllUsed() throws {
        let unused = store.names.filter { name in
            !used.contains(name) && !WeightTable.ignoredSuffixes.contains(where: { name.hasSuffix($0) })
        }
        if !unused.isEmpty { throw ModelError.unusedTensors(checkpoint: checkpoint, tensors: unused) }
    }
}
