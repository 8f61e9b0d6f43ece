// GPT-2. Matches transformers/models/gpt2/modeling_gpt2.py (GPT2LMHeadModel) and configuration_gpt2.py.
//
// Weight table (prefix `transformer.`, absent when saved from GPT2Model):
//   wte.weight                [d_vocab, d_model]       token embedding (also the unembedding when tied)
//   wpe.weight                [n_positions, d_model]   learned position embedding
//   h.{l}.ln_1.{weight,bias}  [d_model]                LayerNorm before attention
//   h.{l}.attn.c_attn.weight  [d_model, 3·d_model]     Conv1D, stored [in, out]; columns are q | k | v
//   h.{l}.attn.c_attn.bias    [3·d_model]
//   h.{l}.attn.c_proj.{weight [d_model, d_model], bias}   Conv1D
//   h.{l}.ln_2.{weight,bias}  [d_model]
//   h.{l}.mlp.c_fc.{weight [d_model, d_mlp], bias}        Conv1D
//   h.{l}.mlp.c_proj.{weight [d_mlp, d_model], bias}      Conv1D
//   ln_f.{weight,bias}        [d_model]
//   lm_head.weight            [d_vocab, d_model]        only when tie_word_embeddings is false
// Ignored on purpose: h.{l}.attn.bias and h.{l}.attn.masked_bias (causal-mask buffers in old checkpoints).
import Checkpoints
import Foundation
import TensorCore

enum GPT2: ModelFamily {
    static let modelTypes = ["gpt2"]
    static let baseModelPrefix = "transformer."

    static func config(_ r: FieldReader, modelType: String, raw: String, source: URL) throws -> ModelConfig {
        let d: Int = try r.require("n_embd")
        let heads: Int = try r.require("n_head")
        var c = ModelConfig(
            modelType: modelType, layers: try r.require("n_layer"), heads: heads, kvHeads: heads, dModel: d,
            dHead: heads > 0 ? d / heads : 0, dMLP: try r.int("n_inner") ?? 4 * d, vocab: try r.require("vocab_size"),
            maxPositions: try r.require("n_positions"), normEps: Float(try r.double("layer_norm_epsilon") ?? 1e-5),
            activation: try r.activation("activation_function", default: .geluNew), tiedEmbeddings: try r.bool("tie_word_embeddings") ?? true,
            qkvBias: true, attnOutBias: true, mlpBias: true, rotary: nil, parallelResidual: false,
            slidingWindow: [], scaleAttnWeights: try r.bool("scale_attn_weights") ?? true,
            scaleAttnByInverseLayerIdx: try r.bool("scale_attn_by_inverse_layer_idx") ?? false,
            bosTokenID: try r.int("bos_token_id"), eosTokenIDs: try r.intOrList("eos_token_id"),
            rawJSON: raw, source: source)
        c.learnedPositions = true
        if heads > 0, d % heads != 0 {
            throw ConfigError.badField(file: r.file, field: "n_embd", reason: "(\(d)) is not divisible by the head count (\(heads))")
        }
        return c
    }

    static func features(_ c: ModelConfig) -> [String] {
        var f = ["LayerNorm before attention and MLP", "learned position embeddings (\(c.maxPositions))", "Conv1D weights stored [in, out]"]
        if c.scaleAttnByInverseLayerIdx { f.append("scores scaled by 1/(layer+1)") }
        return f
    }

    static func load(config c: ModelConfig, store: WeightStore, checkpoint: String, context: LoadContext? = nil) throws -> DecoderModel {
        var t = WeightTable(store: store, checkpoint: checkpoint, context: context)
        let p = t.has("transformer.wte.weight") ? "transformer." : ""
        let d = c.dModel, eps = c.normEps
        let wte = try t.matrix(p + "wte.weight", shape: [c.vocab, d])
        let wpe = try t.take(p + "wpe.weight", shape: [c.maxPositions, d])
        var blocks: [BlockWeights] = []
        for l in 0..<c.layers {
            let b = "\(p)h.\(l)."
            blocks.append(BlockWeights(
                attnNorm: try t.norm(b + "ln_1", d: d, kind: .layerNorm, eps: eps),
                mlpNorm: try t.norm(b + "ln_2", d: d, kind: .layerNorm, eps: eps),
                qkv: .fusedBlocks(try t.linear(b + "attn.c_attn", in: d, out: 3 * d, bias: true, layout: .inOut)),
                attnOut: try t.linear(b + "attn.c_proj", in: d, out: d, bias: true, layout: .inOut),
                mlp: .plain(up: try t.linear(b + "mlp.c_fc", in: d, out: c.dMLP, bias: true, layout: .inOut),
                            down: try t.linear(b + "mlp.c_proj", in: c.dMLP, out: d, bias: true, layout: .inOut),
                            activation: c.activation)))
        }
        let lnf = try t.norm(p + "ln_f", d: d, kind: .layerNorm, eps: eps)
        let unembed = c.tiedEmbeddings ? wte : try t.matrix("lm_head.weight", shape: [c.vocab, d])
        try t.checkAllUsed()
        return DecoderModel(config: c, tokenEmbedding: wte, positionEmbedding: wpe, blocks: blocks,
                            finalNorm: lnf, unembedding: unembed)
    }
}
