// Qwen3. Matches transformers/models/qwen3/modeling_qwen3.py (Qwen3ForCausalLM) and configuration_qwen3.py.
// The Llama layout (Llama.swift) plus per-head q/k RMSNorm over d_head before rotary, an explicit
// head_dim (not d_model / heads), optional biases (attention_bias) and Qwen2-style sliding windows.
// Weight table, besides Llama's:
//   model.layers.{l}.self_attn.q_norm.weight   [d_head]
//   model.layers.{l}.self_attn.k_norm.weight   [d_head]
import Checkpoints
import Foundation
import TensorCore

enum Qwen3: ModelFamily {
    static let modelTypes = ["qwen3"]
    static let baseModelPrefix = "model."

    static func config(_ r: FieldReader, modelType: String, raw: String, source: URL) throws -> ModelConfig {
        var c = try Llama.commonConfig(r, modelType: modelType, raw: raw, source: source)
        let maxWindowLayers: Int = try r.int("max_window_layers") ?? 28
        c.slidingWindow = try r.slidingWindows(layers: c.layers, enabled: try r.bool("use_sliding_window") ?? false,
                                               fallback: { $0 >= maxWindowLayers })
        return c
    }

    static func load(config c: ModelConfig, store: WeightStore, checkpoint: String, context: LoadContext?) throws -> DecoderModel {
        try Llama.build(c, store: store, checkpoint: checkpoint, context: context) { t, b in
            let (qkv, attnOut) = try Llama.attention(&t, b, c)
            func norm(_ name: String, _ d: Int) throws -> Norm { try t.norm(b + name, d: d, kind: .rmsNorm, eps: c.normEps) }
            return BlockWeights(
                attnNorm: try norm("input_layernorm", c.dModel), mlpNorm: try norm("post_attention_layernorm", c.dModel),
                qkv: qkv, attnOut: attnOut, mlp: try Llama.gatedMLP(&t, b, c),
                qNorm: QKNorm(norm: try norm("self_attn.q_norm", c.dHead), perHead: true),
                kNorm: QKNorm(norm: try norm("self_attn.k_norm", c.dHead), perHead: true))
        }
    }

    static func features(_ c: ModelConfig) -> [String] {
        var f = Llama.features(c)
        f.append("q/k RMSNorm per head over d_head \(c.dHead)")
        return f
    }
}
