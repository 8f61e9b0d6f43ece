// Llama family: Llama, Mistral and Qwen2. Matches transformers/models/llama/modeling_llama.py,
// mistral/modeling_mistral.py and qwen2/modeling_qwen2.py (…ForCausalLM).
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
import Checkpoints
import TensorCore

enum Llama {
    static func load(config c: ModelConfig, store: WeightStore, checkpoint: String, context: LoadContext? = nil) throws -> DecoderModel {
        var t = WeightTable(store: store, checkpoint: checkpoint, context: context)
        let d = c.dModel, eps = c.normEps
        let qDim = c.heads * c.dHead, kvDim = c.kvHeads * c.dHead
        let p = t.has("model.embed_tokens.weight") ? "model." : ""
        let embed = try t.matrix(p + "embed_tokens.weight", shape: [c.vocab, d])
        var blocks: [BlockWeights] = []
        for l in 0..<c.layers {
            let b = "\(p)layers.\(l)."
            let q = try t.linear(b + "self_attn.q_proj", in: d, out: qDim, bias: c.qkvBias)
            let k = try t.linear(b + "self_attn.k_proj", in: d, out: kvDim, bias: c.qkvBias)
            let v = try t.linear(b + "self_attn.v_proj", in: d, out: kvDim, bias: c.qkvBias)
            blocks.append(BlockWeights(
                attnNorm: try t.norm(b + "input_layernorm", d: d, kind: .rmsNorm, eps: eps),
                mlpNorm: try t.norm(b + "post_attention_layernorm", d: d, kind: .rmsNorm, eps: eps),
                qkv: .separate(q: q, k: k, v: v),
                attnOut: try t.linear(b + "self_attn.o_proj", in: qDim, out: d, bias: c.attnOutBias),
                mlp: .gated(gate: try t.linear(b + "mlp.gate_proj", in: d, out: c.dMLP, bias: c.mlpBias),
                            up: try t.linear(b + "mlp.up_proj", in: d, out: c.dMLP, bias: c.mlpBias),
                            down: try t.linear(b + "mlp.down_proj", in: c.dMLP, out: d, bias: c.mlpBias),
                            activation: c.activation)))
        }
        let norm = try t.norm(p + "norm", d: d, kind: .rmsNorm, eps: eps)
        let unembed = c.tiedEmbeddings ? embed : try t.matrix("lm_head.weight", shape: [c.vocab, d])
        try t.checkAllUsed()
        return DecoderModel(config: c, tokenEmbedding: embed, positionEmbedding: nil, blocks: blocks,
                            finalNorm: norm, unembedding: unembed)
    }
}
