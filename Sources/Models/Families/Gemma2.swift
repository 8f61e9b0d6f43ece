// Gemma-2. Matches transformers/models/gemma2/modeling_gemma2.py (Gemma2ForCausalLM) and
// configuration_gemma2.py. The Llama layout (Llama.swift) with:
//   RMSNorm multiplying by (1 + w) (Gemma2RMSNorm; the weight table adds 1 in float32, as transformers);
//   token embeddings × √d_model (Gemma2TextScaledWordEmbedding);
//   four norms per block: input_layernorm → attention → post_attention_layernorm, added to the residual;
//     pre_feedforward_layernorm → MLP → post_feedforward_layernorm, added to the residual;
//   gated MLP with `hidden_activation` (gelu_pytorch_tanh);
//   scores scaled by query_pre_attn_scalar^-0.5, then soft-capped: cap · tanh(scores / cap) (attn_logit_softcapping);
//   final logits soft-capped the same way (final_logit_softcapping);
//   sliding-window attention on the layers that `layer_types` marks "sliding_attention" (by default
//   layers 0, 2, 4, …), global attention on the others.
// Weight table, besides Llama's projections and model.norm (tied embeddings by default):
//   model.layers.{l}.pre_feedforward_layernorm.weight    [d_model]
//   model.layers.{l}.post_feedforward_layernorm.weight   [d_model]
import Checkpoints
import Foundation
import TensorCore

enum Gemma2: ModelFamily {
    static let modelTypes = ["gemma2"]
    static let baseModelPrefix = "model."

    static func config(_ r: FieldReader, modelType: String, raw: String, source: URL) throws -> ModelConfig {
        var c = try Llama.commonConfig(r, modelType: modelType, raw: raw, source: source, activationKey: "hidden_activation")
        if r.obj["hidden_activation"] == nil { c.activation = .geluPytorchTanh }
        if r.obj["tie_word_embeddings"] == nil { c.tiedEmbeddings = true }
        let scalar: Double = try r.double("query_pre_attn_scalar") ?? 256
        c.attentionScale = Float(1 / scalar.squareRoot())
        c.attnLogitSoftcap = try r.double("attn_logit_softcapping").map(Float.init)
        c.finalLogitSoftcap = try r.double("final_logit_softcapping").map(Float.init)
        c.embeddingScale = Float(Double(c.dModel).squareRoot())
        c.slidingWindow = try r.slidingWindows(layers: c.layers, fallback: { ($0 + 1) % 2 == 1 })
        return c
    }

    static func load(config c: ModelConfig, store: WeightStore, checkpoint: String, context: LoadContext?) throws -> DecoderModel {
        try Llama.build(c, store: store, checkpoint: checkpoint, context: context, normOffset: 1) { t, b in
            let (qkv, attnOut) = try Llama.attention(&t, b, c)
            func norm(_ name: String) throws -> Norm { try t.norm(b + name, d: c.dModel, kind: .rmsNorm, eps: c.normEps, offset: 1) }
            return BlockWeights(
                attnNorm: try norm("input_layernorm"), mlpNorm: try norm("pre_feedforward_layernorm"),
                qkv: qkv, attnOut: attnOut, mlp: try Llama.gatedMLP(&t, b, c),
                attnPostNorm: try norm("post_attention_layernorm"), mlpPostNorm: try norm("post_feedforward_layernorm"))
        }
    }

    static func features(_ c: ModelConfig) -> [String] {
        var f = ["(1 + w) RMSNorm, four per block (pre and post attention, pre and post MLP)",
                 "embeddings × √d_model", "gated MLP (\(c.activation.rawValue))",
                 "scores × query_pre_attn_scalar^-0.5 (\(c.attentionScale ?? 0))"]
        if let cap = c.attnLogitSoftcap { f.append("attention-logit soft-capping \(cap)") }
        if let cap = c.finalLogitSoftcap { f.append("final-logit soft-capping \(cap)") }
        let sliding = c.slidingWindow.enumerated().filter { $0.element != nil }.map(\.offset)
        if !sliding.isEmpty { f.append("sliding window \(c.slidingWindow.compactMap { $0 }.first ?? 0) on layers \(sliding.map(String.init).joined(separator: ","))") }
        return f
    }
}
