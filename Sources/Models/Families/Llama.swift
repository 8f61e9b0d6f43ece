// Llama family: Llama, Mistral and Qwen2. Matches transformers/models/llama/modeling_llama.py,
// mistral/modeling_mistral.py and qwen2/modeling_qwen2.py (…ForCausalLM), and their configuration
// classes (configuration_llama.py, configuration_mistral.py, configuration_qwen2.py; transformers 5.24).
//
// Weight table:
//   model.embed_tokens.weight                         [d_vocab, d_model]
//   model.layers.{l}.input_layernorm.weight           [d_model]   RMSNorm before attention
//   model.layers.{l}.post_attention_layernorm.weight  [d_model]   RMSNorm before the MLP
//   model.layers.{l}.self_attn.q_proj.weight          [head·d_head, d_model]     (+ .bias: Qwen2, attention_bias)
//   model.layers.{l}.self_attn.k_proj.weight          [kv_head·d_head, d_model]  (+ .bias: Qwen2, attention_bias)
//   model.layers.{l}.self_attn.v_proj.weight          [kv_head·d_head, d_model]  (+ .bias: Qwen2, attention_bias)
//   model.layers.{l}.self_attn.o_proj.weight          [d_model, head·d_head]     (+ .bias: attention_bias; never Qwen2)
//   model.layers.{l}.mlp.gate_proj.weight             [d_mlp, d_model]           (+ .bias: mlp_bias)
//   model.layers.{l}.mlp.up_proj.weight               [d_mlp, d_model]           (+ .bias: mlp_bias)
//   model.layers.{l}.mlp.down_proj.weight             [d_model, d_mlp]           (+ .bias: mlp_bias)
//   model.norm.weight                                 [d_model]
//   lm_head.weight                                    [d_vocab, d_model]  (absent when tie_word_embeddings)
// Grouped-query attention: query head h reads kv head h / (head / kv_head).
// Mistral (and Qwen2 with use_sliding_window) restrict attention to the last `sliding_window` keys.
// Ignored on purpose: self_attn.rotary_emb.inv_freq (a buffer in old checkpoints).
//
// The helpers below (config fields, the attention projections, the gated MLP) are shared by the families
// built on Llama's layout (OLMo-2, Qwen3, Gemma-2, Phi-3); each of those files says what differs.
import Checkpoints
import Foundation
import TensorCore

enum Llama: ModelFamily {
    static let modelTypes = ["llama", "mistral", "qwen2"]
    static let baseModelPrefix = "model."

    static func config(_ r: FieldReader, modelType: String, raw: String, source: URL) throws -> ModelConfig {
        var c = try commonConfig(r, modelType: modelType, raw: raw, source: source)
        // Sliding windows: Mistral applies `sliding_window` to every layer when set; Qwen2 only with
        // use_sliding_window, to layers whose layer_types entry is "sliding_attention" (else i >= max_window_layers).
        switch modelType {
        case "mistral":
            c.slidingWindow = try r.int("sliding_window").map { w in [Int?](repeating: w, count: max(0, min(c.layers, ModelConfig.maxLayers))) } ?? []
        case "qwen2":
            let maxWindowLayers: Int = try r.int("max_window_layers") ?? 28
            c.slidingWindow = try r.slidingWindows(layers: c.layers, enabled: try r.bool("use_sliding_window") ?? false,
                                                   fallback: { $0 >= maxWindowLayers })
            c.qkvBias = true
            c.attnOutBias = false
        default: break
        }
        return c
    }

    static func load(config c: ModelConfig, store: WeightStore, checkpoint: String, context: LoadContext? = nil) throws -> DecoderModel {
        try build(c, store: store, checkpoint: checkpoint, context: context) { t, b in
            let (qkv, attnOut) = try attention(&t, b, c)
            return BlockWeights(attnNorm: try t.norm(b + "input_layernorm", d: c.dModel, kind: .rmsNorm, eps: c.normEps),
                                mlpNorm: try t.norm(b + "post_attention_layernorm", d: c.dModel, kind: .rmsNorm, eps: c.normEps),
                                qkv: qkv, attnOut: attnOut, mlp: try gatedMLP(&t, b, c))
        }
    }

    static func features(_ c: ModelConfig) -> [String] {
        var f = ["RMSNorm before attention and MLP", "gated MLP (\(c.activation.rawValue))"]
        if c.kvHeads < c.heads { f.append("grouped-query attention (\(c.heads / c.kvHeads) query heads per kv head)") }
        if c.qkvBias { f.append("q/k/v biases") }
        return f
    }

    // MARK: shared by the Llama-layout families

    /// The config fields every Llama-layout family shares (configuration_llama.py names and defaults).
    static func commonConfig(_ r: FieldReader, modelType: String, raw: String, source: URL,
                             defaultEps: Double = 1e-6, activationKey: String = "hidden_act") throws -> ModelConfig {
        let d: Int = try r.require("hidden_size")
        let heads: Int = try r.require("num_attention_heads")
        let dHead: Int = try r.int("head_dim") ?? (heads > 0 ? d / heads : 0)
        let attnBias: Bool = try r.bool("attention_bias") ?? false
        return ModelConfig(
            modelType: modelType, layers: try r.require("num_hidden_layers"), heads: heads,
            kvHeads: try r.int("num_key_value_heads") ?? heads, dModel: d, dHead: dHead,
            dMLP: try r.require("intermediate_size"), vocab: try r.require("vocab_size"),
            maxPositions: try r.int("max_position_embeddings") ?? 2048,
            normEps: Float(try r.double("rms_norm_eps") ?? defaultEps),
            activation: try r.activation(activationKey, default: .silu),
            tiedEmbeddings: try r.bool("tie_word_embeddings") ?? false,
            qkvBias: attnBias, attnOutBias: attnBias, mlpBias: try r.bool("mlp_bias") ?? false,
            rotary: try r.rotary(dHead: dHead), parallelResidual: false, slidingWindow: [],
            scaleAttnWeights: true, scaleAttnByInverseLayerIdx: false,
            bosTokenID: try r.int("bos_token_id"), eosTokenIDs: try r.intOrList("eos_token_id"),
            rawJSON: raw, source: source)
    }

    /// self_attn.{q,k,v}_proj and o_proj of block prefix `b`.
    static func attention(_ t: inout WeightTable, _ b: String, _ c: ModelConfig) throws -> (QKVProjection, Linear) {
        let d = c.dModel, qDim = c.heads * c.dHead, kvDim = c.kvHeads * c.dHead
        let q = try t.linear(b + "self_attn.q_proj", in: d, out: qDim, bias: c.qkvBias)
        let k = try t.linear(b + "self_attn.k_proj", in: d, out: kvDim, bias: c.qkvBias)
        let v = try t.linear(b + "self_attn.v_proj", in: d, out: kvDim, bias: c.qkvBias)
        let o = try t.linear(b + "self_attn.o_proj", in: qDim, out: d, bias: c.attnOutBias)
        return (.separate(q: q, k: k, v: v), o)
    }

    /// mlp.{gate,up,down}_proj of block prefix `b`.
    static func gatedMLP(_ t: inout WeightTable, _ b: String, _ c: ModelConfig) throws -> MLP {
        let d = c.dModel
        return .gated(gate: try t.linear(b + "mlp.gate_proj", in: d, out: c.dMLP, bias: c.mlpBias),
                      up: try t.linear(b + "mlp.up_proj", in: d, out: c.dMLP, bias: c.mlpBias),
                      down: try t.linear(b + "mlp.down_proj", in: c.dMLP, out: d, bias: c.mlpBias),
                      activation: c.activation)
    }

    /// The whole weight table of a Llama-layout model: the embedding, `block(table, "…layers.{l}.")` for
    /// every layer, the final norm (`normOffset` 1 for (1 + w) norms), the unembedding (or the tied
    /// embedding), and the check that no tensor was left unused.
    static func build(_ c: ModelConfig, store: WeightStore, checkpoint: String, context: LoadContext?, normOffset: Float = 0,
                      block: (inout WeightTable, String) throws -> BlockWeights) throws -> DecoderModel {
        var t = WeightTable(store: store, checkpoint: checkpoint, context: context)
        let p = t.has("model.embed_tokens.weight") ? "model." : ""
        let embed = try t.matrix(p + "embed_tokens.weight", shape: [c.vocab, c.dModel])
        var blocks: [BlockWeights] = []
        for l in 0..<c.layers { blocks.append(try block(&t, "\(p)layers.\(l).")) }
        let norm = try t.norm(p + "norm", d: c.dModel, kind: .rmsNorm, eps: c.normEps, offset: normOffset)
        let unembed = c.tiedEmbeddings ? embed : try t.matrix("lm_head.weight", shape: [c.vocab, c.dModel])
        try t.checkAllUsed()
        return DecoderModel(config: c, tokenEmbedding: embed, positionEmbedding: nil, blocks: blocks,
                            finalNorm: norm, unembedding: unembed)
    }
}
