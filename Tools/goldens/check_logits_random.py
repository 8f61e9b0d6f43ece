#!/usr/bin/env python3
"""Cross-checks `cpiscope logits` against transformers on randomly drawn configurations.

For each model type (gpt2, gpt_neox, llama, mistral, qwen2, olmo2, qwen3, gemma2, phi3) it draws N random
configurations (layers, heads, kv heads, head_dim, rotary fraction and base, rope scaling including LongRoPE,
biases, tying, residual style, sliding windows and layer types, soft-capping, query_pre_attn_scalar,
activation), builds the model with transformers (eager attention, fp32), saves it, runs
`cpiscope logits DIR --ids ... --top 5 --format json`, and compares the top-5 log-probabilities with
torch.log_softmax of transformers' last-position logits. Acceptance (issue #2): max |Δ| ≤ 1e-4.

Not run in CI (needs torch). Rerun:
    swift build -c release
    python3 Tools/goldens/check_logits_random.py --binary .build/release/cpiscope --per-type 4   # 36 configurations
"""
import argparse
import json
import random
import subprocess
import sys
import tempfile

import torch
import transformers as T


def draw(kind, rng):
    heads = rng.choice([1, 2, 4, 6])
    d_head = rng.choice([4, 8, 16])
    d = heads * d_head
    layers = rng.randint(1, 3)
    vocab = rng.randint(40, 300)
    common = dict(vocab_size=vocab)
    if kind == "gpt2":
        return T.GPT2Config(n_embd=d, n_layer=layers, n_head=heads, n_positions=128,
                            n_inner=rng.choice([None, 2 * d, 3 * d]),
                            activation_function=rng.choice(["gelu_new", "gelu", "relu", "silu"]),
                            scale_attn_by_inverse_layer_idx=rng.random() < 0.3,
                            tie_word_embeddings=rng.random() < 0.7, **common)
    if kind == "gpt_neox":
        return T.GPTNeoXConfig(hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
                               intermediate_size=rng.choice([2 * d, 4 * d]), max_position_embeddings=128,
                               rotary_pct=rng.choice([p for p in (0.25, 0.5, 1.0) if int(d_head * p) % 2 == 0]), rotary_emb_base=rng.choice([10000.0, 500.0]),
                               use_parallel_residual=rng.random() < 0.5, hidden_act=rng.choice(["gelu", "gelu_new"]),
                               tie_word_embeddings=rng.random() < 0.3, attention_bias=rng.random() < 0.8, **common)
    kv = rng.choice([k for k in range(1, heads + 1) if heads % k == 0])
    hd = rng.choice([d_head, d_head * 2])
    rope = rng.choice([
        {"rope_type": "default", "rope_theta": rng.choice([10000.0, 1e6])},
        {"rope_type": "linear", "rope_theta": 10000.0, "factor": rng.choice([2.0, 4.0])},
        {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
         "high_freq_factor": 4.0, "original_max_position_embeddings": rng.choice([16, 64])},
    ])
    args = dict(hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
                head_dim=hd, intermediate_size=rng.choice([d, 2 * d, 3 * d]), max_position_embeddings=128,
                tie_word_embeddings=rng.random() < 0.4, **common)
    if kind == "llama":
        return T.LlamaConfig(rope_parameters=rope, attention_bias=rng.random() < 0.3, mlp_bias=rng.random() < 0.3, **args)
    if kind == "mistral":
        return T.MistralConfig(sliding_window=rng.choice([None, 3, 5, 64]), **args)
    if kind == "olmo2":
        return T.Olmo2Config(rope_parameters=rope, attention_bias=False, **args)
    if kind == "qwen3":
        window = rng.choice([None, 4])
        return T.Qwen3Config(use_sliding_window=window is not None, sliding_window=window,
                             max_window_layers=rng.randint(0, layers), attention_bias=rng.random() < 0.3, **args)
    if kind == "gemma2":
        return T.Gemma2Config(query_pre_attn_scalar=rng.choice([hd, 2 * hd, 6]), sliding_window=rng.choice([3, 5, 64]),
                              attn_logit_softcapping=rng.choice([None, 2.0, 50.0]),
                              final_logit_softcapping=rng.choice([None, 3.0, 30.0]),
                              hidden_activation=rng.choice(["gelu_pytorch_tanh", "gelu"]), **args)
    # phi3: fused projections, partial rotary, LongRoPE or default rope
    hd = d_head
    frac = rng.choice([f for f in (0.5, 1.0) if int(hd * f) % 2 == 0])
    half = int(hd * frac) // 2
    orig = rng.choice([4, 8, 64])
    rope3 = rng.choice([
        {"rope_type": "default", "rope_theta": 10000.0},
        {"rope_type": "longrope", "rope_theta": 10000.0, "original_max_position_embeddings": orig,
         "short_factor": [round(1 + rng.random(), 3) for _ in range(half)],
         "long_factor": [round(1 + 4 * rng.random(), 3) for _ in range(half)]},
    ])
    extra = {"original_max_position_embeddings": orig} if rope3["rope_type"] == "longrope" else {}
    args.update(head_dim=hd)
    args.pop("head_dim")
    return T.Phi3Config(partial_rotary_factor=frac, rope_parameters=rope3, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                        sliding_window=rng.choice([None, 5]), **extra, **args)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/cpiscope")
    ap.add_argument("--per-type", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    torch.manual_seed(a.seed)
    worst = 0.0
    for kind in ["gpt2", "gpt_neox", "llama", "mistral", "qwen2", "olmo2", "qwen3", "gemma2", "phi3"]:
        for i in range(a.per_type):
            cfg = draw(kind, rng)
            model = T.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager").eval()
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(rng.choice([1.0, 4.0, 8.0]))  # std 0.02·k: peaky attention, realistic logit scale
            ids = [rng.randrange(cfg.vocab_size) for _ in range(rng.randint(1, 20))]
            with tempfile.TemporaryDirectory() as tmp:
                model.save_pretrained(tmp)
                with torch.no_grad():
                    ref = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].double(), -1)
                out = subprocess.run([a.binary, "logits", tmp, "--ids", ",".join(map(str, ids)), "--top", "5",
                                      "--format", "json"], capture_output=True, text=True)
                if out.returncode != 0:
                    print(f"{kind} #{i}: cpiscope failed: {out.stderr.strip()}")
                    sys.exit(1)
                top = json.loads(out.stdout)["top"]
                diff = max(abs(t["logprob"] - ref[t["id"]].item()) for t in top)
                ref_top = torch.topk(ref, 5).values
                diff = max(diff, max(abs(t["logprob"] - r.item()) for t, r in zip(top, ref_top)))
                worst = max(worst, diff)
                print(f"{kind} #{i}: layers={cfg.num_hidden_layers if hasattr(cfg, 'num_hidden_layers') else cfg.n_layer} "
                      f"len={len(ids)} max|Δ top-5 logprob|={diff:.2e}")
    print(f"worst max|Δ| = {worst:.2e} (tolerance 1e-4): {'PASS' if worst <= 1e-4 else 'FAIL'}")
    sys.exit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
