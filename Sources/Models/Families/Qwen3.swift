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
        var t = WeightTable(store: store, checkpoint: checkpoint, context: context)
        let d = c.dModel, eps = c.normEps
        let embed = try t.matrix("model.embed_tokens.weight", shape: [c.vocab, d])
        var blocks: [BlockWeights] = []
        for l in 0..<c.layers {
            let b = "model.layers.\(l)."
            let (qkv, attnOut) = try Llama.attention(&t, b, c)
            blocks.append(BlockWeights(
                attnNorm: try t.norm(b + "input_layernorm", d: d, kind: .rmsNorm, eps: eps),
                mlpNorm: try t.norm(b + "post_attention_layernorm", d: d, kind: .rmsNorm, eps: eps),
                qkv: qkv, attnOut: attnOut, mlp: try Llama.gatedMLP(&t, b, c),
                qNorm: QKNorm(norm: try t.norm(b + "self_attn.q_norm", d: c.dHead, kind: .rmsNorm, eps: eps), perHead: true),
                kNorm: QKNorm(norm: try t.norm(b + "self_attn.k_norm", d: c.dHead, kind: .rmsNorm, eps: eps), perHead: true)))
        }
        return try Llama.finish(&t, c, prefix: "model.", embed: embed, blocks: blocks)
    }

    static func features(_ c: ModelConfig) -> [String] {
        var f = Llama.features(c)
        f.append("q/k RMSNorm per head over d_head \(c.dHead)")
        return f
    }
}
