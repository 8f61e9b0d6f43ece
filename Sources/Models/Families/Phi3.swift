// Phi-3. Matches transformers/models/phi3/modeling_phi3.py (Phi3ForCausalLM) and configuration_phi3.py.
// The Llama layout (Llama.swift) with fused projections, read as stored (one product each, and LoRA
// adapters on them apply as PEFT made them):
//   model.layers.{l}.self_attn.qkv_proj.weight   [(head + 2·kv_head)·d_head, d_model]  rows q | k | v
//   model.layers.{l}.mlp.gate_up_proj.weight     [2·d_mlp, d_model]                     rows gate | up
//   model.layers.{l}.self_attn.o_proj.weight, mlp.down_proj.weight, the norms, model.norm, lm_head as Llama.
// Partial rotary (`partial_rotary_factor`), and LongRoPE (`rope_type: longrope`): inverse frequencies
// divided by `short_factor` when the pass's sequence ends within original_max_position_embeddings, by
// `long_factor` past it, and cos/sin multiplied by the attention factor √(1 + ln(factor)/ln(original))
// (transformers _compute_longrope_parameters and its per-call frequency update).
// Sliding window (`sliding_window`) on every layer when set.
import Checkpoints
import Foundation
import TensorCore

enum Phi3: ModelFamily {
    static let modelTypes = ["phi3"]
    static let baseModelPrefix = "model."

    static func config(_ r: FieldReader, modelType: String, raw: String, source: URL) throws -> ModelConfig {
        var c = try Llama.commonConfig(r, modelType: modelType, raw: raw, source: source, defaultEps: 1e-5)
        c.slidingWindow = try r.int("sliding_window").map { w in [Int?](repeating: w, count: max(0, min(c.layers, ModelConfig.maxLayers))) } ?? []
        return c
    }

    static func load(config c: ModelConfig, store: WeightStore, checkpoint: String, context: LoadContext?) throws -> DecoderModel {
        try Llama.build(c, store: store, checkpoint: checkpoint, context: context) { t, b in
            let d = c.dModel
            let qkv = try t.linear(b + "self_attn.qkv_proj", in: d, out: (c.heads + 2 * c.kvHeads) * c.dHead, bias: c.qkvBias)
            return BlockWeights(
                attnNorm: try t.norm(b + "input_layernorm", d: d, kind: .rmsNorm, eps: c.normEps),
                mlpNorm: try t.norm(b + "post_attention_layernorm", d: d, kind: .rmsNorm, eps: c.normEps),
                qkv: .fusedBlocks(qkv),
                attnOut: try t.linear(b + "self_attn.o_proj", in: c.heads * c.dHead, out: d, bias: c.attnOutBias),
                mlp: .gatedFused(gateUp: try t.linear(b + "mlp.gate_up_proj", in: d, out: 2 * c.dMLP, bias: c.mlpBias),
                                 down: try t.linear(b + "mlp.down_proj", in: c.dMLP, out: d, bias: c.mlpBias),
                                 activation: c.activation))
        }
    }

    static func features(_ c: ModelConfig) -> [String] {
        var f = ["fused qkv_proj and gate_up_proj", "partial rotary (\(c.rotary?.dims ?? 0) of \(c.dHead) dims)"]
        if case let .longrope(_, _, original, attention)? = c.rotary?.scaling {
            f.append("LongRoPE (short factors up to \(original) positions, long past; attention factor \(String(format: "%.4f", attention)))")
        }
        return f
    }
}
