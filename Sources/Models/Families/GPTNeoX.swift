// GPT-NeoX / Pythia. Matches transformers/models/gpt_neox/modeling_gpt_neox.py (GPTNeoXForCausalLM) and
// configuration_gpt_neox.py.
//
// Weight table:
//   gpt_neox.embed_in.weight                         [d_vocab, d_model]
//   gpt_neox.layers.{l}.input_layernorm.{weight,bias}           [d_model]   LayerNorm before attention
//   gpt_neox.layers.{l}.post_attention_layernorm.{weight,bias}  [d_model]   LayerNorm before the MLP
//   gpt_neox.layers.{l}.attention.query_key_value.{weight [3·d_model, d_model], bias}
//        Linear; output INTERLEAVED PER HEAD: for head h, channels [q_h | k_h | v_h] of d_head each
//   gpt_neox.layers.{l}.attention.dense.{weight [d_model, d_model], bias}
//   gpt_neox.layers.{l}.mlp.dense_h_to_4h.{weight [d_mlp, d_model], bias}
//   gpt_neox.layers.{l}.mlp.dense_4h_to_h.{weight [d_model, d_mlp], bias}
//   gpt_neox.final_layer_norm.{weight,bias}          [d_model]
//   embed_out.weight                                 [d_vocab, d_model]  (untied unless tie_word_embeddings)
// Partial rotary: only the first `rotary_pct · d_head` channels of q and k rotate.
// Residual: parallel (x + attn(ln1 x) + mlp(ln2 x)) or sequential per `use_parallel_residual`.
// Ignored on purpose: attention.bias, attention.masked_bias, attention.rotary_emb.inv_freq (buffers).
import Checkpoints
import Foundation
import TensorCore

enum GPTNeoX: ModelFamily {
    static let modelTypes = ["gpt_neox"]
    static let baseModelPrefix = "gpt_neox."

    static func config(_ r: FieldReader, modelType: String, raw: String, source: URL) throws -> ModelConfig {
        let d: Int = try r.require("hidden_size")
        let heads: Int = try r.require("num_attention_heads")
        let dHead = heads > 0 ? d / heads : 0
        let bias: Bool = try r.bool("attention_bias") ?? true
        if heads > 0, d % heads != 0 {
            throw ConfigError.badField(file: r.file, field: "hidden_size", reason: "(\(d)) is not divisible by the head count (\(heads))")
        }
        // transformers 5: rope_parameters.partial_rotary_factor / rope_theta; 4.x: rotary_pct / rotary_emb_base.
        return ModelConfig(
            modelType: modelType, layers: try r.require("num_hidden_layers"), heads: heads, kvHeads: heads,
            dModel: d, dHead: dHead, dMLP: try r.require("intermediate_size"), vocab: try r.require("vocab_size"),
            maxPositions: try r.int("max_position_embeddings") ?? 2048,
            normEps: Float(try r.double("layer_norm_eps") ?? 1e-5),
            activation: try r.activation("hidden_act", default: .gelu),
            tiedEmbeddings: try r.bool("tie_word_embeddings") ?? false,
            qkvBias: bias, attnOutBias: bias, mlpBias: true,
            rotary: try r.rotary(dHead: dHead, defaultFraction: 0.25, thetaKeys: ["rotary_emb_base"], fractionKeys: ["rotary_pct"]),
            parallelResidual: try r.bool("use_parallel_residual") ?? true, slidingWindow: [],
            scaleAttnWeights: true, scaleAttnByInverseLayerIdx: false,
            bosTokenID: try r.int("bos_token_id"), eosTokenIDs: try r.intOrList("eos_token_id"),
            rawJSON: raw, source: source)
    }

    static func features(_ c: ModelConfig) -> [String] {
        ["LayerNorm before attention and MLP", c.parallelResidual ? "parallel residual" : "sequential residual",
         "q/k/v fused and interleaved per head", "partial rotary (\(c.rotary?.dims ?? 0) of \(c.dHead) dims)"]
    }

    static func load(config c: ModelConfig, store: WeightStore, checkpoint: String, context: LoadContext? = nil) throws -> DecoderModel {
        var t = WeightTable(store: store, checkpoint: checkpoint, context: context)
        let d = c.dModel, eps = c.normEps
        let p = t.has("gpt_neox.embed_in.weight") ? "gpt_neox." : ""
        let embed = try t.matrix(p + "embed_in.weight", shape: [c.vocab, d])
        var blocks: [BlockWeights] = []
        for l in 0..<c.layers {
            let b = "\(p)layers.\(l)."
            blocks.append(BlockWeights(
                attnNorm: try t.norm(b + "input_layernorm", d: d, kind: .layerNorm, eps: eps),
                mlpNorm: try t.norm(b + "post_attention_layernorm", d: d, kind: .layerNorm, eps: eps),
                qkv: .fusedPerHead(try t.linear(b + "attention.query_key_value", in: d, out: 3 * c.heads * c.dHead, bias: c.qkvBias)),
                attnOut: try t.linear(b + "attention.dense", in: c.heads * c.dHead, out: d, bias: c.attnOutBias),
                mlp: .plain(up: try t.linear(b + "mlp.dense_h_to_4h", in: d, out: c.dMLP, bias: c.mlpBias),
                            down: try t.linear(b + "mlp.dense_4h_to_h", in: c.dMLP, out: d, bias: c.mlpBias),
                            activation: c.activation)))
        }
        let norm = try t.norm(p + "final_layer_norm", d: d, kind: .layerNorm, eps: eps)
        let unembed = c.tiedEmbeddings ? embed : try t.matrix("embed_out.weight", shape: [c.vocab, d])
        try t.checkAllUsed()
        return DecoderModel(config: c, tokenEmbedding: embed, positionEmbedding: nil, blocks: blocks,
                            finalNorm: norm, unembedding: unembed)
    }
}
