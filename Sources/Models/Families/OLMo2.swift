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
        try Llama.build(c, store: store, checkpoint: checkpoint, context: context) { t, b in
            let (qkv, attnOut) = try Llama.attention(&t, b, c)
            func norm(_ name: String, _ d: Int) throws -> Norm { try t.norm(b + name, d: d, kind: .rmsNorm, eps: c.normEps) }
            return BlockWeights(
                attnNorm: nil, mlpNorm: nil, qkv: qkv, attnOut: attnOut, mlp: try Llama.gatedMLP(&t, b, c),
                attnPostNorm: try norm("post_attention_layernorm", c.dModel), mlpPostNorm: try norm("post_feedforward_layernorm", c.dModel),
                qNorm: QKNorm(norm: try norm("self_attn.q_norm", c.heads * c.dHead), perHead: false),
                kNorm: QKNorm(norm: try norm("self_attn.k_norm", c.kvHeads * c.dHead), perHead: false))
        }
    }

    static func features(_ c: ModelConfig) -> [String] {
        ["no pre-norms; RMSNorm of the attention and MLP outputs inside the residual branch",
         "q/k RMSNorm over the whole projection", "gated MLP (\(c.activation.rawValue))"]
    }
}
