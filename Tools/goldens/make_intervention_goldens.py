#!/usr/bin/env python3
"""Interventions computed with transformers (not cpiscope): ablation, attention knockout, weight transplant
and activation patching, as a TransformerLens user would write them with hooks.

  zero ablation of a head     a forward pre-hook on the output projection (o_proj / c_proj / dense) zeroes
                              the head's slice of its input (hook_z) at every position
  mean ablation of a head     the same slice replaced by its mean over a probe set, per position counted from
                              the end of each sequence
  zero ablation of an MLP     a forward hook returns zeros for the block's MLP output
  attention knockout          transformers' eager_attention_forward of the family is wrapped to add −inf to the
                              pre-softmax scores from the last position to the chosen keys, every layer and head
  weight transplant           state_dict surgery: the component's tensors copied from the source checkpoint
                              (attn.qk = q and k projections, biases and q/k norms; attn.ov = v and o; mlp; norms:
                              every norm of the block); fused projections (GPT-2 c_attn, GPT-NeoX
                              query_key_value, Phi-3 qkv_proj) are split by output feature (q, k | v)
  activation patching         the source's hook_z slice of one head at the last position, or a block's whole
                              output at every position, written into the target's pass

Writes Tests/Fixtures/interventions/:
  <fixture>-source/           a perturbed copy of each fixture model (config.json, model.safetensors): the
                              "other checkpoint" of transplants and patches
  goldens.json                per fixture (GPT-2, GPT-NeoX parallel, Llama GQA, Qwen2, OLMo-2, Gemma-2, Phi-3):
                              ids (golden sequence 1), answers (3, 7), and for each case the last position's
                              logit difference and M_C; the mean-ablation probe set is both golden sequences;
                              and per probe of the probe-trajectory fixture (checkpoint-10, source checkpoint-20)
                              and of the demo (target checkpoint-500, source checkpoint-50), the same measures
                              for a set of named interventions as `cpiscope intervene` names them.

Rerun (from the repository root): python3 Tools/goldens/make_intervention_goldens.py
Versions: Tools/requirements-goldens.txt.
"""
import importlib
import json
import os
import shutil

import torch
import transformers as T
from tokenizers import Tokenizer

from hf_fixture_models import MODULE, attn_of, blocks_of, geometry, load, o_proj_of

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIX = os.path.join(ROOT, "Tests", "Fixtures")
OUT = os.path.join(FIX, "interventions")












def measure(model, ids, a, b, hooks=()):
    handles = [h() for h in hooks]
    try:
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1].double()
    finally:
        for h in handles:
            h.remove()
    pa, pb = torch.softmax(logits, -1)[a], torch.softmax(logits, -1)[b]
    return {"logit_diff": float(logits[a] - logits[b]), "mc": float(pa / (pa + pb))}


def zero_head(model, layer, head):
    mt = model.config.model_type
    _, _, dh = geometry(model.config)
    o = o_proj_of(blocks_of(model)[layer], mt)
    def pre(m, args):
        z = args[0].clone()
        z[..., head * dh:(head + 1) * dh] = 0
        return (z,)
    return lambda: o.register_forward_pre_hook(pre)


def set_head(model, layer, head, values):
    """values: {position: tensor[dh]}"""
    mt = model.config.model_type
    _, _, dh = geometry(model.config)
    o = o_proj_of(blocks_of(model)[layer], mt)
    def pre(m, args):
        z = args[0].clone()
        for pos, v in values.items():
            z[0, pos, head * dh:(head + 1) * dh] = v
        return (z,)
    return lambda: o.register_forward_pre_hook(pre)


def zero_mlp(model, layer):
    mlp = blocks_of(model)[layer].mlp
    return lambda: mlp.register_forward_hook(lambda m, i, o: torch.zeros_like(o))


def set_block_output(model, layer, hidden):
    blk = blocks_of(model)[layer]
    def hook(m, i, o):
        return (hidden.clone(),) + tuple(o[1:]) if isinstance(o, tuple) else hidden.clone()
    return lambda: blk.register_forward_hook(hook)


class Knockout:
    """Wraps the family's eager attention: −inf from the last query to `keys` in every layer."""
    def __init__(self, model, keys):
        self.mod = importlib.import_module(f"transformers.models.{MODULE[model.config.model_type]}.modeling_{MODULE[model.config.model_type]}")
        self.keys = keys

    def __call__(self):
        original = self.mod.eager_attention_forward
        keys = self.keys
        def wrapped(module, query, key, value, attention_mask, *args, **kw):
            q, n = query.shape[-2], key.shape[-2]
            extra = torch.zeros(1, 1, q, n)
            extra[..., -1, keys] = float("-inf")
            if attention_mask is None:
                attention_mask = torch.triu(torch.full((q, n), float("-inf")), 1)[None, None]
            return original(module, query, key, value, attention_mask[..., :n] + extra, *args, **kw)
        self.mod.eager_attention_forward = wrapped
        mod = self.mod
        class Handle:
            def remove(self_inner):
                mod.eager_attention_forward = original
        return Handle()


def z_at(model, ids, layer):
    """hook_z of `layer` at every position: the o_proj input [pos, H*dh]."""
    mt = model.config.model_type
    o = o_proj_of(blocks_of(model)[layer], mt)
    got = {}
    h = o.register_forward_pre_hook(lambda m, args: got.__setitem__("z", args[0][0].detach().clone()))
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True)
    h.remove()
    return got["z"], out.hidden_states


def transplant(target_dir, source_dir, component, layer):
    """A model: the target with `component` of `layer` copied from the source (state_dict surgery)."""
    target, source = load(target_dir), load(source_dir)
    mt = target.config.model_type
    H, KV, dh = geometry(target.config)
    sd, src = target.state_dict(), source.state_dict()
    prefix = {"gpt2": f"transformer.h.{layer}.", "gpt_neox": f"gpt_neox.layers.{layer}."}.get(mt, f"model.layers.{layer}.")
    def copy(name):
        sd[prefix + name] = src[prefix + name].clone()
    names = [k[len(prefix):] for k in sd if k.startswith(prefix)]
    def rows_from_source(name, take, dim):
        w = sd[prefix + name].clone()
        s = src[prefix + name]
        idx = torch.tensor([o for o in range(w.shape[dim]) if take(o)], dtype=torch.long)
        if dim == 0:
            w[idx] = s[idx]
        else:
            w[:, idx] = s[:, idx]
        sd[prefix + name] = w
    if component in ("attn.qk", "attn.ov"):
        qk = component == "attn.qk"
        if mt == "gpt2":        # c_attn Conv1D weight [in, 3d] (columns q|k|v), bias [3d]
            take = lambda o: (o < 2 * H * dh) == qk
            rows_from_source("attn.c_attn.weight", take, 1)
            rows_from_source("attn.c_attn.bias", take, 0)
            if not qk:
                copy("attn.c_proj.weight"); copy("attn.c_proj.bias")
        elif mt == "gpt_neox":  # query_key_value rows interleaved per head [q_h k_h v_h]
            take = lambda o: ((o // dh) % 3 != 2) == qk
            rows_from_source("attention.query_key_value.weight", take, 0)
            rows_from_source("attention.query_key_value.bias", take, 0)
            if not qk:
                copy("attention.dense.weight"); copy("attention.dense.bias")
        elif mt == "phi3":      # qkv_proj rows q | k | v
            take = lambda o: (o < (H + KV) * dh) == qk
            rows_from_source("self_attn.qkv_proj.weight", take, 0)
            if not qk:
                copy("self_attn.o_proj.weight")
        else:
            wanted = ("q_proj", "k_proj", "q_norm", "k_norm") if qk else ("v_proj", "o_proj")
            for n in names:
                if n.startswith("self_attn.") and n.split(".")[1] in wanted:
                    copy(n)
    elif component == "mlp":
        for n in names:
            if n.startswith("mlp."):
                copy(n)
    elif component == "norms":
        for n in names:
            if ("norm" in n or n.startswith("ln_")) and "q_norm" not in n and "k_norm" not in n:
                copy(n)
    target.load_state_dict(sd)
    return target.eval()


def perturbed_source(name):
    src = os.path.join(OUT, f"{name}-source")
    shutil.rmtree(src, ignore_errors=True)
    model = load(os.path.join(FIX, "models", name))
    g = torch.Generator().manual_seed(sum(map(ord, name)))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g) * p.std())
    model.save_pretrained(src)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(src, extra)):
            os.remove(os.path.join(src, extra))
    return src


def fixture_cases(name):
    d = os.path.join(FIX, "models", name)
    src = perturbed_source(name)
    target, source = load(d), load(src)
    seqs = json.load(open(os.path.join(d, "golden.json")))["sequences"]
    ids, a, b = seqs[1], 3, 7
    L = len(blocks_of(target))
    n = len(ids)
    keys = list(range(1, n // 2))
    cases = {"clean": measure(target, ids, a, b)}
    cases["ablate L0H1 zero"] = measure(target, ids, a, b, [zero_head(target, 0, 1)])
    cases["ablate mlp_out L0 zero"] = measure(target, ids, a, b, [zero_mlp(target, 0)])
    # mean of hook_z of the last layer's head 0 over both sequences, per position from the end
    sums, counts = {}, {}
    H, KV, dh = geometry(target.config)
    for s in seqs:
        z, _ = z_at(target, s, L - 1)
        for pos in range(len(s)):
            e = len(s) - 1 - pos
            sums[e] = sums.get(e, 0) + z[pos, 0:dh].double()
            counts[e] = counts.get(e, 0) + 1
    means = {pos: (sums[n - 1 - pos] / counts[n - 1 - pos]).float() for pos in range(n)}
    cases[f"ablate L{L - 1}H0 mean"] = measure(target, ids, a, b, [set_head(target, L - 1, 0, means)])
    cases["knockout context all layers"] = measure(target, ids, a, b, [Knockout(target, keys)])
    for comp, layer in [("attn.qk", 0), ("attn.ov", L - 1), ("mlp", 0), ("norms", 0)]:
        cases[f"transplant {comp} L{layer}"] = measure(transplant(d, src, comp, layer), ids, a, b)
    zs, hs = z_at(source, ids, 0)
    cases["patch z L0H0 answer"] = measure(target, ids, a, b, [set_head(target, 0, 0, {n - 1: zs[n - 1, 0:dh]})])
    cases["patch resid_post L0 all"] = measure(target, ids, a, b, [set_block_output(target, 0, hs[1])])
    cases["source"] = measure(source, ids, a, b)
    return {"ids": ids, "answers": [a, b], "knockout_keys": keys, "mean_probe_set": seqs, "cases": cases}


def probe_rows(tok, probes, target_dir, source_dir, template):
    """Named interventions of `cpiscope intervene` on a probe set (first tokens of ' ' + answer)."""
    target, source = load(target_dir), load(source_dir)
    L = len(blocks_of(target))
    rows = []
    for p in probes:
        prompt = template.format(context=p["context"], question=p["question"])
        enc = tok.encode(prompt)
        ids = enc.ids
        cs = prompt.index(p["context"])
        ctx = [i for i, (s, e) in enumerate(enc.offsets) if e > s and s < cs + len(p["context"]) and cs < e]
        def first(ans):
            return tok.encode(prompt + " " + ans).ids[len(ids)]
        a, b = first(p["answer"]), first(p.get("memory_answer", p.get("parametric_answer")))
        r = {"id": p["id"], "ids": ids, "clean": measure(target, ids, a, b)}
        r[f"ablate L{L - 1}H1 zero"] = measure(target, ids, a, b, [zero_head(target, L - 1, 1)])
        r[f"knockout context L0-{L - 1}"] = measure(target, ids, a, b, [Knockout(target, ctx)])
        for comp in ("attn.qk", "attn.ov", "mlp"):
            for layer in range(L):
                r[f"transplant {comp} L{layer} from SOURCE"] = measure(transplant(target_dir, source_dir, comp, layer), ids, a, b)
        zs, _ = z_at(source, ids, 0)
        n = len(ids)
        _, _, dh = geometry(target.config)
        r["patch z L0H0 answer from SOURCE"] = measure(target, ids, a, b, [set_head(target, 0, 0, {n - 1: zs[n - 1, 0:dh]})])
        r["source"] = measure(source, ids, a, b)
        rows.append(r)
    return rows


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    fixtures = {name: fixture_cases(name) for name in
                ["gpt2-tied", "neox-parallel", "llama-gqa", "qwen2-bias", "olmo2", "gemma2-softcap", "phi3-longrope"]}
    plain = "Context: {context}\nQuestion: {question}\nAnswer:"
    traj = os.path.join(FIX, "probe-trajectory")
    tok = Tokenizer.from_file(os.path.join(traj, "tokenizer.json"))
    probes = [json.loads(l) for l in open(os.path.join(traj, "probes.jsonl"))]
    runs = {"probe-trajectory": {"target": "checkpoint-10", "source": "checkpoint-20",
                                 "probes": probe_rows(tok, probes, os.path.join(traj, "checkpoint-10"),
                                                      os.path.join(traj, "checkpoint-20"), plain)}}
    demo = os.path.join(ROOT, "Demo")
    if os.path.exists(os.path.join(demo, "base", "tokenizer.json")):
        dtok = Tokenizer.from_file(os.path.join(demo, "base", "tokenizer.json"))
        dprobes = [json.loads(l) for l in open(os.path.join(ROOT, "Probes", "demo_heldout.jsonl"))][:4]
        runs["demo"] = {"target": "checkpoint-500", "source": "checkpoint-50",
                        "probes": probe_rows(dtok, dprobes, os.path.join(demo, "full-ft", "checkpoint-500"),
                                             os.path.join(demo, "full-ft", "checkpoint-50"), plain)}
    json.dump({"transformers": T.__version__, "torch": torch.__version__, "fixtures": fixtures, "runs": runs},
              open(os.path.join(OUT, "goldens.json"), "w"), indent=0)
    for name, f in fixtures.items():
        print(name, {k: round(v["logit_diff"], 3) for k, v in f["cases"].items()})


if __name__ == "__main__":
    main()
