// OLMo-2 (AI2). Matches transformers/models/olmo2/modeling_olmo2.py (Olmo2ForCausalLM) and
// configuration_olmo2.py. The Llama layout (Llama.swift) with a different block:
//   no norm before attention or the MLP; RMSNorm of each branch's output inside the residual branch:
//     x = x + post_attention_layernorm(attn(x));  x = x + post_feedforward_layernorm(mlp(x))
//   q/k RMSNorm over the whole projection (before splitting into heads and before rotary).
// Weight table, besides Llama's attention and MLP projections (no biases) and model.norm / lm_head:
//   model.layers.{l}.post_attention_layernorm.weight   [d_model]
//   model.layers.{l}.post_feedforward_layernorm.weight [d_model]
//   model.layers.{l}.self_attn.q_norm.weight           [head·d_head]
//   model.layers.{l}.self_attn.k_norm.weight           [kv_head·d_head]
import Checkpoints
import Foundation
import TensorCore

enum OLMo2: ModelFamily {
    static let modelTypes = ["olmo2"]
    static let baseModelPrefix = "model."

    static func config(_ r: FieldReader, modelType: String, raw: String, source: URL) throws -> ModelConfig {
        try Llama.commonConfig(r, modelType: modelType, raw: raw, source: source, defaultEps: 1e-5)
    }

    static func load(config c: ModelConfig, store: WeightStore, checkpoint: String, context: LoadContext?) throws -> DecoderModel {
        var t = WeightTable(store: store, checkpoint: checkpoint, context: context)
        let d = c.dModel, eps = c.normEps
        let embed = try t.matrix("model.embed_tokens.weight", shape: [c.vocab, d])
        var blocks: [BlockWeights] = []
        for l in 0..<c.layers {
            let b = "model.layers.\(l)."
            let (qkv, attnOut) = try Llama.attention(&t, b, c)
            blocks.append(BlockWeights(
                attnNorm: nil, mlpNorm: nil, qkv: qkv, attnOut: attnOut, mlp: try Llama.gatedMLP(&t, b, c),
                attnPostNorm: try t.norm(b + "post_attention_layernorm", d: d, kind: .rmsNorm, eps: eps),
                mlpPostNorm: try t.norm(b + "post_feedforward_layernorm", d: d, kind: .rmsNorm, eps: eps),
                qNorm: QKNorm(norm: try t.norm(b + "self_attn.q_norm", d: c.heads * c.dHead, kind: .rmsNorm, eps: eps), perHead: false),
                kNorm: QKNorm(norm: try t.norm(b + "self_attn.k_norm", d: c.kvHeads * c.dHead, kind: .rmsNorm, eps: eps), perHead: false)))
        }
        return try Llama.finish(&t, c, prefix: "model.", embed: embed, blocks: blocks)
    }

    static func features(_ c: ModelConfig) -> [String] {
        ["no pre-norms; RMSNorm of the attention and MLP outputs inside the residual branch",
         "q/k RMSNorm over the whole projection", "gated MLP (\(c.activation.rawValue))"]
    }
}
