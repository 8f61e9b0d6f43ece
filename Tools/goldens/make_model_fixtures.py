#!/usr/bin/env python3
"""Tiny random Hugging Face models + golden forward-pass outputs, for cpiscope's parity tests.

Reference: Hugging Face `transformers` (versions pinned in Tools/requirements-goldens.txt), fp32, CPU,
eager attention. Each fixture folder Tests/Fixtures/models/<name>/ holds what `save_pretrained` wrote
(config.json, model.safetensors or shards) plus:
  golden.json          token sequences and a description of the case
  golden.safetensors   per sequence s:  s{s}.logits [pos, d_vocab]
                                        s{s}.embed [pos, d_model]          (hook_embed (+pos embed))
                                        s{s}.resid_post [layer, pos, d_model] (output of each block)
                                        s{s}.ln_final [pos, d_model]       (final norm output)
                                        s{s}.attn [layer, head, query_pos, key_pos] (attention probs)

Some configs are rewritten into the transformers 4.x field form (rope_theta / rope_scaling / rotary_pct /
rotary_emb_base) so that both config dialects are exercised; the rewrite is semantically identical.

Rerun (from the repository root, ~1 minute on 2 cores):
    python3 -m pip install -r Tools/requirements-goldens.txt
    python3 Tools/goldens/make_model_fixtures.py            # every fixture
    python3 Tools/goldens/make_model_fixtures.py NAME...    # only these (e.g. olmo2 gemma2-softcap)
"""
import json
import os
import shutil
import sys

import torch
import transformers
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures", "models")
SEED = 1234
VOCAB = 96


def sequences(n_ctx_long=12):
    g = torch.Generator().manual_seed(SEED)
    return [torch.randint(0, VOCAB, (7,), generator=g).tolist(),
            torch.randint(0, VOCAB, (n_ctx_long,), generator=g).tolist()]


def capture(model, ids):
    """Runs one sequence and returns the golden tensors (hooks on block outputs, like TransformerLens)."""
    base = model.base_model
    if hasattr(base, "h"):  # GPT-2
        blocks, final_norm = base.h, base.ln_f
    elif hasattr(base, "layers") and hasattr(base, "final_layer_norm"):  # GPT-NeoX
        blocks, final_norm = base.layers, base.final_layer_norm
    else:  # Llama family
        blocks, final_norm = base.layers, base.norm
    outs = {}
    hooks = []
    for i, blk in enumerate(blocks):
        def h(mod, inp, out, i=i):
            outs[("block", i)] = (out[0] if isinstance(out, tuple) else out).detach()
        hooks.append(blk.register_forward_hook(h))
    hooks.append(final_norm.register_forward_hook(lambda m, i, o: outs.__setitem__("ln_final", o.detach())))
    with torch.no_grad():
        res = model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
    for hk in hooks:
        hk.remove()
    L = len(blocks)
    return {
        "logits": res.logits[0].float(),
        "embed": res.hidden_states[0][0].float(),
        "resid_post": torch.stack([outs[("block", i)][0] for i in range(L)]).float(),
        "ln_final": outs["ln_final"][0].float(),
        "attn": torch.stack([a[0] for a in res.attentions]).float(),
    }


def spread(model):
    """Re-initialises weights with larger spread than transformers' default (std 0.02), so that attention
    patterns are far from uniform and a wrong mask, scale or rotary shows up clearly in the goldens."""
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "ln_" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g) if name.endswith("weight")
                        else 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[0] if "c_" in name else p.shape[-1]  # GPT-2 Conv1D is [in, out]
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / fan_in ** 0.5))


def legacy_rope(cfg_path, neox=False):
    """Rewrites a saved transformers-5 config.json into the 4.x field form."""
    cfg = json.load(open(cfg_path))
    rp = cfg.pop("rope_parameters", None) or {}
    if neox:
        cfg["rotary_emb_base"] = rp.get("rope_theta", 10000.0)
        cfg["rotary_pct"] = rp.get("partial_rotary_factor", 0.25)
    else:
        cfg["rope_theta"] = rp.get("rope_theta", 10000.0)
        scaling = {k: v for k, v in rp.items() if k not in ("rope_theta",)}
        if scaling.get("rope_type", "default") != "default":
            scaling["type"] = scaling["rope_type"]
            cfg["rope_scaling"] = scaling
    json.dump(cfg, open(cfg_path, "w"), indent=2)


def build(name, config, description, dtype=None, shard=None, legacy=None, seqs=None):
    torch.manual_seed(SEED)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    model.eval()
    spread(model)
    out = os.path.join(ROOT, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    if dtype is not None:
        # Store in reduced precision, and compute goldens from the rounded weights upcast to fp32.
        model = model.to(dtype)
        model.save_pretrained(out, safe_serialization=True)
        # Reload as a user would (dtype=float32): weights upcast exactly, rotary buffers recomputed in fp32.
        model = transformers.AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager", dtype=torch.float32)
        model.eval()
    elif shard is not None:
        model.save_pretrained(out, safe_serialization=True, max_shard_size=shard)
    else:
        model.save_pretrained(out, safe_serialization=True)
    if os.path.exists(os.path.join(out, "generation_config.json")):
        os.remove(os.path.join(out, "generation_config.json"))
    if legacy:
        legacy_rope(os.path.join(out, "config.json"), neox=(legacy == "neox"))
        # sanity: the rewritten config must give the same model
        reloaded = transformers.AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager", dtype=torch.float32)
        reloaded.eval()
        model = reloaded
    seqs = seqs or sequences()
    tensors = {}
    for s, ids in enumerate(seqs):
        for k, v in capture(model, ids).items():
            tensors[f"s{s}.{k}"] = v.contiguous()
    save_file(tensors, os.path.join(out, "golden.safetensors"))
    json.dump({"description": description, "sequences": seqs, "transformers": transformers.__version__,
               "torch": torch.__version__, "seed": SEED}, open(os.path.join(out, "golden.json"), "w"), indent=1)
    print(f"{name}: {sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))} bytes")


def main():
    torch.set_num_threads(1)
    T = transformers
    common = dict(vocab_size=VOCAB)
    only = set(sys.argv[1:])
    global build
    if only:
        full_build = build
        def build(name, *a, **k):
            if name in only:
                full_build(name, *a, **k)
    build("gpt2-tied", T.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, **common),
          "GPT-2, tied embeddings, gelu_new, Conv1D weights")
    build("gpt2-inverse-layer-scale", T.GPT2Config(n_embd=32, n_layer=3, n_head=2, n_positions=64, n_inner=48,
          scale_attn_by_inverse_layer_idx=True, activation_function="gelu", **common),
          "GPT-2, scale_attn_by_inverse_layer_idx, n_inner, exact gelu")
    build("neox-parallel", T.GPTNeoXConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
          intermediate_size=64, max_position_embeddings=64, rotary_pct=0.25, use_parallel_residual=True, **common),
          "GPT-NeoX, partial rotary (25%), parallel residual, untied", legacy="neox")
    build("neox-sequential", T.GPTNeoXConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
          intermediate_size=64, max_position_embeddings=64, rotary_pct=0.5, rotary_emb_base=500.0,
          use_parallel_residual=False, **common),
          "GPT-NeoX, rotary_pct 0.5, use_parallel_residual=false")
    build("llama-gqa", T.LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
          num_key_value_heads=2, intermediate_size=48, max_position_embeddings=64, tie_word_embeddings=False,
          **common), "Llama, GQA 4 heads / 2 kv heads, untied head", legacy="llama")
    build("llama-rope-llama3", T.LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
          num_key_value_heads=1, head_dim=12, intermediate_size=48, max_position_embeddings=64,
          rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                           "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
          attention_bias=True, mlp_bias=True, **common),
          "Llama, rope llama3 scaling (5.x rope_parameters form), explicit head_dim 12, attention+mlp biases")
    build("llama-rope-linear", T.LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
          intermediate_size=48, max_position_embeddings=64, tie_word_embeddings=True,
          rope_parameters={"rope_type": "linear", "rope_theta": 1000.0, "factor": 2.0}, **common),
          "Llama, rope linear scaling (4.x rope_scaling form), tied embeddings", legacy="llama")
    build("mistral-window", T.MistralConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
          num_key_value_heads=2, intermediate_size=48, max_position_embeddings=64, sliding_window=4, **common),
          "Mistral, sliding window 4 (shorter than the 12-token sequence)")
    build("qwen2-bias", T.Qwen2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
          num_key_value_heads=2, intermediate_size=48, max_position_embeddings=64, tie_word_embeddings=True,
          **common), "Qwen2, q/k/v biases, tied")
    build("llama-bf16", T.LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
          num_key_value_heads=2, intermediate_size=48, max_position_embeddings=64, **common),
          "Llama stored as BF16 (goldens from the BF16 weights upcast to fp32)", dtype=torch.bfloat16)
    build("neox-f16", T.GPTNeoXConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
          intermediate_size=64, max_position_embeddings=64, **common),
          "GPT-NeoX stored as F16 (goldens from the F16 weights upcast to fp32)", dtype=torch.float16)
    build("llama-sharded", T.LlamaConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
          num_key_value_heads=4, intermediate_size=48, max_position_embeddings=64, **common),
          "Llama saved in shards with model.safetensors.index.json", shard="40KB")
    # Families of issue 19.
    build("olmo2", T.Olmo2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
          intermediate_size=48, max_position_embeddings=64, tie_word_embeddings=False, **common),
          "OLMo-2: no pre-norms, RMSNorm after attention and after the MLP inside the residual branch, q/k RMSNorm over the whole projection")
    build("qwen3", T.Qwen3Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
          head_dim=12, intermediate_size=48, max_position_embeddings=64, tie_word_embeddings=True, **common),
          "Qwen3: per-head q/k RMSNorm over head_dim, explicit head_dim 12 (≠ d_model / heads), tied")
    build("gemma2-softcap", T.Gemma2Config(hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
          num_key_value_heads=2, head_dim=8, intermediate_size=48, max_position_embeddings=64, sliding_window=4,
          query_pre_attn_scalar=6, attn_logit_softcapping=2.0, final_logit_softcapping=3.0, **common),
          "Gemma-2: (1+w) RMSNorm, sqrt(d_model) embedding scale, four norms per block, gelu_pytorch_tanh gated MLP, "
          "attention and final-logit soft-capping, sliding window 4 on alternate layers (shorter than 12 tokens), "
          "query_pre_attn_scalar 6")
    build("phi3-longrope", T.Phi3Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
          intermediate_size=48, max_position_embeddings=64, original_max_position_embeddings=8,
          partial_rotary_factor=0.5, pad_token_id=0, bos_token_id=1, eos_token_id=2,
          rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0, "short_factor": [1.0, 1.3],
                           "long_factor": [1.7, 3.1], "original_max_position_embeddings": 8}, **common),
          "Phi-3: fused qkv_proj and gate_up_proj, partial rotary 0.5, LongRoPE (short factors for the 7-token "
          "sequence, long factors for the 12-token one, past original_max_position_embeddings 8)")


if __name__ == "__main__":
    main()
