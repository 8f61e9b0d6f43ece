#!/usr/bin/env python3
"""Direct logit attribution (DLA) and an intervention that reaches generation, computed with transformers.

Nothing here comes from cpiscope. Hooks, as TransformerLens users write them by hand:
  - a forward pre-hook on each attention output projection (o_proj / c_proj / dense) records its input z
    at the last position (the per-head attention outputs before the projection, `hook_z`);
  - a forward pre-hook on the final norm records the final residual x at the last position;
  - forward hooks on the value projections (v_proj / c_attn / query_key_value) give v at every position,
    output_attentions the attention pattern, forward hooks on each block's MLP its output, and
    hidden_states[0] the embedding (+ learned positions for GPT-2).
Each component c is put through the final norm frozen at x's scale, as TransformerLens's
`apply_ln_to_stack` does — RMSNorm: c · s with s = 1/sqrt(mean(x²)+eps); LayerNorm: (c − mean(c)) · s with
s = 1/sqrt(var(x)+eps) — then multiplied by the norm weight and dotted with W_U[a] − W_U[b]
(`logit_attrs`). Heads: z_h · W_O[:, h-slice]ᵀ per query head (GQA: its kv group's values). By span: the
head's output split over key positions j as A[h, last, j] · v_j · W_O[:, h-slice]ᵀ, summed over the span.
The constant of a LayerNorm's bias is β·(W_U[a] − W_U[b]). The script asserts that Σ_j A v_j = z and
that every component plus that constant sums to the model's logit difference (≤ 1e-4).

Writes Tests/Fixtures/dla/goldens.json with cases:
  fixture models (Tests/Fixtures/models/*): GPT-2 (LayerNorm, biases), GPT-NeoX parallel and sequential
      residual, Llama with GQA, Qwen2 with q/k/v biases: ids = golden sequence 1, answers (a, b) = two ids,
      spans = fixed position sets;
  probe-trajectory checkpoint-10 and the demo (Demo/full-ft checkpoint-50 and checkpoint-500): per probe,
      the prompt ids and spans (context, question, BOS by the offset-overlap rule) as the probe job makes
      them, answers = first tokens of " " + answer after the prompt;
  "intervention": probe-trajectory checkpoint-10, every head of the last layer zeroed (a pre-hook that
      zeroes the last o_proj's input at every position), greedy generation (max_new_tokens 8, EOS stops),
      clean and intervened ids per probe;
  "knockout": the same checkpoint, attention from the last prompt position to the context's tokens blocked
      in every layer and head (−inf added to the pre-softmax scores by wrapping transformers'
      eager_attention_forward), the last position's logits per probe.

Rerun (from the repository root): python3 Tools/goldens/make_dla_goldens.py
Versions: Tools/requirements-goldens.txt.
"""
import json
import os

import torch
import transformers as T
from tokenizers import Tokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIX = os.path.join(ROOT, "Tests", "Fixtures")
OUT = os.path.join(FIX, "dla", "goldens.json")


def parts(model):
    """(blocks, final norm, lm_head weight [V, d], embed-is-gpt2, kind) of a causal LM."""
    mt = model.config.model_type
    if mt == "gpt2":
        return model.transformer.h, model.transformer.ln_f, model.lm_head.weight, mt
    if mt == "gpt_neox":
        return model.gpt_neox.layers, model.gpt_neox.final_layer_norm, model.get_output_embeddings().weight, mt
    return model.model.layers, model.model.norm, model.lm_head.weight, mt


def attn_modules(block, mt):
    """(output projection, value source module, mlp) of one block."""
    if mt == "gpt2":
        return block.attn.c_proj, block.attn.c_attn, block.mlp
    if mt == "gpt_neox":
        return block.attention.dense, block.attention.query_key_value, block.mlp
    return block.self_attn.o_proj, block.self_attn.v_proj, block.mlp


def head_weight(o_proj, mt, h, dh):
    """W_O restricted to head h as a [dh, d_model] matrix (z_h @ it = the head's output)."""
    if mt == "gpt2":  # Conv1D weight [in, out]
        return o_proj.weight[h * dh:(h + 1) * dh, :]
    return o_proj.weight[:, h * dh:(h + 1) * dh].T


def values(raw, mt, cfg, n):
    """v per kv head at every position: [kv_head, pos, dh], from the value source's output [pos, ...]."""
    H = cfg.num_attention_heads
    d = cfg.hidden_size
    dh = d // H if mt in ("gpt2", "gpt_neox") else getattr(cfg, "head_dim", None) or d // H
    if mt == "gpt2":
        v = raw[:, 2 * d:3 * d].reshape(n, H, dh)
    elif mt == "gpt_neox":
        v = raw.reshape(n, H, 3 * dh)[:, :, 2 * dh:3 * dh]
    else:
        v = raw.reshape(n, -1, dh)
    return v.permute(1, 0, 2), dh


def dla(model, ids, a, b, spans):
    blocks, norm, W_U, mt = parts(model)
    cfg = model.config
    H = cfg.num_attention_heads
    rec = {"z": {}, "v": {}, "mlp": {}}
    hooks = []
    for l, blk in enumerate(blocks):
        o_proj, vsrc, mlp = attn_modules(blk, mt)
        hooks.append(o_proj.register_forward_pre_hook(lambda m, args, l=l: rec["z"].__setitem__(l, args[0][0, -1].detach().clone())))
        hooks.append(vsrc.register_forward_hook(lambda m, i, o, l=l: rec["v"].__setitem__(l, o[0].detach().clone())))
        hooks.append(mlp.register_forward_hook(lambda m, i, o, l=l: rec["mlp"].__setitem__(l, (o[0] if isinstance(o, tuple) else o)[0, -1].detach().clone())))
    hooks.append(norm.register_forward_pre_hook(lambda m, args: rec.__setitem__("x", args[0][0, -1].detach().clone())))
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
    for h in hooks:
        h.remove()
    x = rec["x"].double()
    is_ln = isinstance(norm, torch.nn.LayerNorm)
    eps = norm.eps if hasattr(norm, "eps") else norm.variance_epsilon
    if is_ln:
        s = 1 / torch.sqrt(x.var(unbiased=False) + eps)
    else:
        s = 1 / torch.sqrt((x * x).mean() + eps)
    w = norm.weight.double()
    delta = (W_U[a] - W_U[b]).double()

    def attr(c):
        c = c.double()
        if is_ln:
            c = c - c.mean()
        return float(((c * s) * w) @ delta)

    n = len(ids)
    L = len(blocks)
    head, by_span, mlp_dla = [], {k: [] for k in spans}, []
    bias = 0.0
    for l, blk in enumerate(blocks):
        o_proj, _, _ = attn_modules(blk, mt)
        v, dh = values(rec["v"][l], mt, cfg, n)
        KV = v.shape[0]
        A = out.attentions[l][0, :, -1, :]  # [H, keys]
        z = rec["z"][l]
        row, spans_row = [], {k: [] for k in spans}
        for h in range(H):
            g = h // (H // KV)
            z_h = z[h * dh:(h + 1) * dh]
            recon = (A[h][:, None] * v[g]).sum(0)
            assert torch.allclose(recon, z_h, atol=1e-5), ("z reconstruction", l, h, float((recon - z_h).abs().max()))
            Wh = head_weight(o_proj, mt, h, dh)
            row.append(attr(z_h @ Wh))
            per_key = [attr(A[h, j] * v[g][j] @ Wh) for j in range(n)]
            for k, pos in spans.items():
                spans_row[k].append(sum(per_key[j] for j in pos))
        head.append(row)
        for k in spans:
            by_span[k].append(spans_row[k])
        if o_proj.bias is not None:
            bias += attr(o_proj.bias)
        mlp_dla.append(attr(rec["mlp"][l]))
    embed = attr(out.hidden_states[0][0, -1])
    norm_bias = float(norm.bias.double() @ delta) if is_ln and norm.bias is not None else 0.0
    logits = out.logits[0, -1].double()
    diff = float(logits[a] - logits[b])
    total = embed + bias + norm_bias + sum(map(sum, head)) + sum(mlp_dla)
    assert abs(total - diff) < 1e-4, ("sum check", total, diff)
    return {"ids": ids, "answers": [a, b], "spans": spans, "logit_diff": diff, "head_dla": head,
            "head_dla_by_span": by_span, "mlp_dla": mlp_dla, "embed_dla": embed, "bias_dla": bias,
            "norm_bias_dla": norm_bias, "component_sum": total}


def load(path):
    return T.AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=torch.float32).eval()


def probe_cases(model, tok, probes, template, bos_in_post_processor=True):
    rows = []
    for p in probes:
        prompt = template.format(context=p["context"], question=p["question"])
        enc = tok.encode(prompt)
        ids, offsets = enc.ids, enc.offsets
        ctx = (prompt.index(p["context"]), prompt.index(p["context"]) + len(p["context"]))
        qs = prompt.index(p["question"], ctx[1])
        def positions(r):
            return [i for i, (s, e) in enumerate(offsets) if e > s and s < r[1] and r[0] < e]
        spans = {"context": positions(ctx), "question": positions((qs, qs + len(p["question"]))),
                 "bos": [0] if offsets[0] == (0, 0) else []}
        def first(ans):
            full = tok.encode(prompt + " " + ans).ids
            assert full[:len(ids)] == ids
            return full[len(ids)]
        mem = p.get("memory_answer", p.get("parametric_answer"))
        row = dla(model, ids, first(p["answer"]), first(mem), spans)
        row["id"] = p["id"]
        rows.append(row)
    return rows


def main():
    torch.manual_seed(0)
    cases = {}
    for name in ["gpt2-tied", "neox-parallel", "neox-sequential", "llama-gqa", "qwen2-bias"]:
        d = os.path.join(FIX, "models", name)
        model = load(d)
        ids = json.load(open(os.path.join(d, "golden.json")))["sequences"][1]
        n = len(ids)
        spans = {"context": list(range(1, n // 2)), "question": list(range(n // 2, n - 1)), "bos": [0]}
        cases[name] = [dla(model, ids, 3, 7, spans)]

    traj = os.path.join(FIX, "probe-trajectory")
    tok = Tokenizer.from_file(os.path.join(traj, "tokenizer.json"))
    probes = [json.loads(l) for l in open(os.path.join(traj, "probes.jsonl"))]
    plain = "Context: {context}\nQuestion: {question}\nAnswer:"
    model = load(os.path.join(traj, "checkpoint-10"))
    cases["probe-trajectory/checkpoint-10"] = probe_cases(model, tok, probes, plain)

    # An intervention that must reach generation: every head of the last layer zeroed.
    eos = tok.token_to_id("</s>")
    blocks, _, _, mt = parts(model)
    last_o = attn_modules(blocks[-1], mt)[0]
    gens = []
    for p in probes:
        ids = tok.encode(plain.format(context=p["context"], question=p["question"])).ids
        def generate():
            with torch.no_grad():
                g = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                   max_new_tokens=8, do_sample=False, eos_token_id=eos, pad_token_id=eos)[0, len(ids):].tolist()
            return g[:g.index(eos)] if eos in g else g
        clean = generate()
        hook = last_o.register_forward_pre_hook(lambda m, args: (torch.zeros_like(args[0]),))
        zeroed = generate()
        hook.remove()
        gens.append({"id": p["id"], "prompt_ids": ids, "clean_ids": clean, "zeroed_ids": zeroed})
    assert any(g["clean_ids"] != g["zeroed_ids"] for g in gens), "the intervention changes nothing; pick another"

    # Attention knockout: wrap the eager attention function to add −inf at (last query, context keys).
    import transformers.models.llama.modeling_llama as ML
    original = ML.eager_attention_forward
    knock = []
    for p, row in zip(probes, cases["probe-trajectory/checkpoint-10"]):
        keys = row["spans"]["context"]
        def wrapped(module, query, key, value, attention_mask, scaling, dropout=0.0, **kw):
            n = key.shape[-2]
            extra = torch.zeros(1, 1, query.shape[-2], n)
            extra[..., -1, keys] = float("-inf")
            mask = extra if attention_mask is None else attention_mask + extra
            return original(module, query, key, value, mask, scaling, dropout, **kw)
        ML.eager_attention_forward = wrapped
        with torch.no_grad():
            knocked = model(torch.tensor([row["ids"]])).logits[0, -1].tolist()
        ML.eager_attention_forward = original
        with torch.no_grad():
            clean = model(torch.tensor([row["ids"]])).logits[0, -1].tolist()
        assert max(abs(x - y) for x, y in zip(knocked, clean)) > 1e-3, "knockout had no effect"
        knock.append({"id": p["id"], "ids": row["ids"], "keys": keys, "logits": knocked})

    demo = os.path.join(ROOT, "Demo")
    if os.path.exists(os.path.join(demo, "base", "tokenizer.json")):
        dtok = Tokenizer.from_file(os.path.join(demo, "base", "tokenizer.json"))
        dprobes = [json.loads(l) for l in open(os.path.join(ROOT, "Probes", "demo_heldout.jsonl"))][:4]
        for ck in ["checkpoint-50", "checkpoint-500"]:
            cases[f"demo/full-ft/{ck}"] = probe_cases(load(os.path.join(demo, "full-ft", ck)), dtok, dprobes, plain)

    json.dump({"transformers": T.__version__, "torch": torch.__version__, "cases": cases,
               "intervention": {"checkpoint": "probe-trajectory/checkpoint-10", "zeroed": "every head of the last layer",
                                "max_new_tokens": 8, "eos": eos, "generations": gens},
               "knockout": {"checkpoint": "probe-trajectory/checkpoint-10", "layers": "all", "query": "last prompt position",
                            "keys": "context", "probes": knock}},
              open(OUT, "w"), indent=0)
    print("cases", {k: len(v) for k, v in cases.items()})


if __name__ == "__main__":
    main()
