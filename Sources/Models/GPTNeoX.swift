// GPT-NeoX / Pythia. Matches transformers/models/gpt_neox/modeling_gpt_neox.py (GPTNeoXForCausalLM).
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
import TensorCore

enum GPTNeoX {
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
