// Weight transplant across checkpoints: a model whose chosen components in chosen layers come from
// another checkpoint of the same model (the paper's §4 separates the key-query weights, which move
// attention, from the value / MLP weights, which store facts). Everything not transplanted is the
// target's own weights, shared, never copied.
//
// Components:
//   attn.qk   query and key projections with their biases, and the q/k norms (OLMo-2, Qwen3)
//   attn.ov   value and output projections with their biases
//   attn      both of the above
//   mlp       every MLP projection with its biases
//   norms     the block's norms: pre-norms and post-norms (q/k norms belong to attn.qk)
// Fused projections (GPT-2 c_attn, GPT-NeoX query_key_value, Phi-3 qkv_proj) are split by output
// feature: the q and k features come from one model, the v features from the other (GQA: per kv group,
// as the weights store them). LoRA trajectories transplant merged weights.
import Checkpoints
import TensorCore

/// A part of a block that can be transplanted.
public enum TransplantComponent: String, Sendable, CaseIterable, Codable {
    case attnQK = "attn.qk"
    case attnOV = "attn.ov"
    case attn
    case mlp
    case norms
}

/// Why two models cannot exchange weights.
public enum TransplantError: Error, CustomStringConvertible, Sendable {
    case incompatible(target: String, source: String)
    case layerOutOfRange(layer: Int, layers: Int)

    public var description: String {
        switch self {
        case let .incompatible(t, s): return "cannot transplant between \(s) (source) and \(t) (target): the models differ in shape"
        case let .layerOutOfRange(l, n): return "transplant layer \(l) is outside the model's layers 0–\(n - 1)"
        }
    }
}

extension ModelConfig {
    /// A one-line shape description, for messages and compatibility checks: two checkpoints of one
    /// model have the same.
    public var shapeDescription: String {
        "\(modelType) (\(layers) layers, \(heads) heads / \(kvHeads) kv, d_model \(dModel), d_head \(dHead), d_mlp \(dMLP), vocab \(vocab))"
    }
}

extension DecoderModel {
    public var shapeDescription: String { config.shapeDescription }

    /// This model with `components` of `layers` taken from `source` (the same model at another
    /// checkpoint). Interventions of this model are kept.
    public func transplanted(from source: DecoderModel, components: [TransplantComponent], layers: [Int]) throws -> DecoderModel {
        guard source.shapeDescription == shapeDescription else {
            throw TransplantError.incompatible(target: shapeDescription, source: source.shapeDescription)
        }
        var blocks = self.blocks
        let set = Set(components.flatMap { $0 == .attn ? [.attnQK, .attnOV] : [$0] })
        for l in layers {
            guard l >= 0, l < config.layers else { throw TransplantError.layerOutOfRange(layer: l, layers: config.layers) }
            let from = source.blocks[l]
            var b = blocks[l]
            if set.contains(.attnQK) || set.contains(.attnOV) {
                b.qkv = mixQKV(target: b.qkv, source: from.qkv, qk: set.contains(.attnQK), v: set.contains(.attnOV))
            }
            if set.contains(.attnQK) {
                b.qNorm = from.qNorm
                b.kNorm = from.kNorm
            }
            if set.contains(.attnOV) { b.attnOut = from.attnOut }
            if set.contains(.mlp) { b.mlp = from.mlp }
            if set.contains(.norms) {
                b.attnNorm = from.attnNorm
                b.mlpNorm = from.mlpNorm
                b.attnPostNorm = from.attnPostNorm
                b.mlpPostNorm = from.mlpPostNorm
            }
            blocks[l] = b
        }
        return DecoderModel(config: config, tokenEmbedding: tokenEmbedding, positionEmbedding: positionEmbedding, blocks: blocks,
                            finalNorm: finalNorm, unembedding: unembedding, interventions: interventions)
    }

    /// The q/k/v projection with the q and k features from `source` when `qk`, the v features when `v`.
    private func mixQKV(target: QKVProjection, source: QKVProjection, qk: Bool, v: Bool) -> QKVProjection {
        let H = config.heads, KV = config.kvHeads, dh = config.dHead
        switch (target, source) {
        case let (.separate(tq, tk, tv), .separate(sq, sk, sv)):
            return .separate(q: qk ? sq : tq, k: qk ? sk : tk, v: v ? sv : tv)
        case let (.fusedBlocks(t), .fusedBlocks(s)):
            // output features [q: H·dh | k: KV·dh | v: KV·dh]
            let fromSource: (Int) -> Bool = { o in o < (H + KV) * dh ? qk : v }
            return .fusedBlocks(Linear.mixingOutputs(target: t, source: s, fromSource: fromSource))
        case let (.fusedPerHead(t), .fusedPerHead(s)):
            // output features [q_h | k_h | v_h] per head
            let fromSource: (Int) -> Bool = { o in (o / dh) % 3 == 2 ? v : qk }
            return .fusedPerHead(Linear.mixingOutputs(target: t, source: s, fromSource: fromSource))
        default:
            preconditionFailure("models of one shape have one projection layout")
        }
    }
}

extension Linear {
    /// This layer as float32 with any LoRA update merged (W + scale·B·A, the layout kept).
    func merged() -> (weight: [Float], bias: [Float]?) {
        let count = inFeatures * outFeatures
        var w = [Float](repeating: 0, count: count)
        if let half {
            w.withUnsafeMutableBufferPointer { half.format.decode(half.bytes, count: count, into: $0.baseAddress!) }
        } else {
            w.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: weight.pointer, count: count) }
        }
        if let lora {
            // ΔW[out, in] = scale · B[out, r] · A[r, in]; stored transposed for the [in, out] layout.
            let r = lora.rank
            for o in 0..<outFeatures {
                for i in 0..<inFeatures {
                    var s: Float = 0
                    for k in 0..<r { s += lora.b.pointer[o * r + k] * lora.a.pointer[k * inFeatures + i] }
                    let idx = layout == .outIn ? o * inFeatures + i : i * outFeatures + o
                    w[idx] += lora.scale * s
                }
            }
        }
        return (w, bias.map { Array(UnsafeBufferPointer(start: $0.pointer, count: outFeatures)) })
    }

    /// A float32 layer whose output feature o comes from `source` when `fromSource(o)`, else from `target`.
    static func mixingOutputs(target: Linear, source: Linear, fromSource: (Int) -> Bool) -> Linear {
        let (tw, tb) = target.merged(), (sw, sb) = source.merged()
        let inF = target.inFeatures, outF = target.outFeatures
        var w = tw
        var b = tb
        for o in 0..<outF where fromSource(o) {
            for i in 0..<inF {
                let idx = target.layout == .outIn ? o * inF + i : i * outF + o
                w[idx] = sw[idx]
            }
            if b != nil, let sb { b![o] = sb[o] }
        }
        let shape = target.layout == .outIn ? [outF, inF] : [inF, outF]
        return Linear(weight: Tensor(shape: shape, values: w), layout: target.layout,
                      bias: b.map { Tensor(shape: [outF], values: $0) }, inFeatures: inF, outFeatures: outF)
    }
}
