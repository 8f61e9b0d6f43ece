#!/usr/bin/env python3
"""Gradients of a logit difference with respect to activations, computed with torch autograd (not cpiscope).

The reference for cpiscope's reverse-mode pass over activations (Sources/Models/ActivationGradients.swift),
the backward half of attribution patching (AtP; Nanda 2023, Kramár et al. 2024). For each fixture model
(Tests/Fixtures/models/<name>, transformers, float32, eager attention, CPU) and token sequence ids (golden
sequence 1 of the fixture, 12 tokens), the metric

    M = logits[last, a] − logits[last, b]        (a, b) = (3, 7)

is differentiated by `M.backward()` with `retain_grad()` on the activations at the hook points that
TransformerLens names, registered as a TransformerLens user would by hand:

  blocks.l.hook_resid_pre   the decoder layer's input hidden states (a forward pre-hook on the layer)
  blocks.l.attn.hook_z      the input of the attention output projection (o_proj / c_proj / dense; a forward
                            pre-hook), [pos, head·d_head], stored as [pos, head, d_head]
  blocks.l.hook_mlp_out     what the MLP branch adds to the residual: the MLP module's output, or for the
                            families with a post-norm inside the branch (OLMo-2, Gemma-2) the output of
                            post_feedforward_layernorm (which is what cpiscope's `.mlpOut` holds)

Stored per case (gradients and activations exactly as float32, in attribution.safetensors):
  <case>.l<l>.z / .z_grad               [pos, head, d_head]
  <case>.l<l>.mlp_out / .mlp_out_grad   [pos, d_model]
  <case>.l<l>.resid_pre / .resid_pre_grad [pos, d_model]
  <case>.logits                         [d_vocab] at the last position
and in attribution.json: ids, answers, the metric, and for intervention cases what was done.

Cases: every fixture listed in FIXTURES (the 7 families: GPT-2, GPT-NeoX parallel and sequential, Llama with
GQA, linear and llama3 rope scaling, Mistral sliding window, Qwen2 biases, OLMo-2 post-norms and q/k norms,
Qwen3 q/k norms, Gemma-2 (1+w) norms, soft-capping and sliding layers, Phi-3 LongRoPE past its original
context), plus interventions, which must be honoured by the backward pass:
  llama-gqa/knockout       attention knockout in layer 1, heads 0 and 2, from the last position to keys 1, 4, 5
                           (−inf added to the pre-softmax scores by wrapping the family's
                           eager_attention_forward, as make_dla_goldens.py and make_intervention_goldens.py do)
  gemma2-softcap/knockout  the same in layer 1 (all heads, after the attention soft-capping as transformers
                           adds its mask), from the last position to keys 0, 3, 8
  llama-gqa/zero-head      hook_z of layer 0, head 1 set to zero at every position (the pre-hook returns a
                           copy with that slice zeroed; the gradient recorded is of the copy, as cpiscope
                           reports the gradient of the written value)

Rerun (from the repository root, a few seconds): python3 Tools/goldens/make_attribution_goldens.py
Versions: Tools/requirements-goldens.txt; the versions actually used are recorded in attribution.json.
"""
import importlib
import json
import os

import torch
import transformers as T
from hf_fixture_models import MODULE, blocks_of, load, o_proj_of
from hf_fixture_models import geometry as _geometry


def geometry(cfg):
    H, _, dh = _geometry(cfg)
    return H, dh
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIX = os.path.join(ROOT, "Tests", "Fixtures")
OUT = os.path.join(FIX, "attribution")
FIXTURES = ["gpt2-tied", "gpt2-inverse-layer-scale", "neox-parallel", "neox-sequential", "llama-gqa",
            "llama-rope-linear", "llama-rope-llama3", "mistral-window", "qwen2-bias", "olmo2", "qwen3",
            "gemma2-softcap", "phi3-longrope"]
ANSWERS = (3, 7)








def mlp_out_module(block, mt):
    """The module whose output is what the MLP branch adds to the residual stream."""
    if mt in ("gemma2", "olmo2"):
        return block.post_feedforward_layernorm
    return block.mlp




class Knockout:
    """Wraps the family's eager attention: −inf from the last query to `keys`, in `layer`, for `heads` (None: all)."""
    def __init__(self, model, layer, heads, keys):
        name = MODULE[model.config.model_type]
        self.mod = importlib.import_module(f"transformers.models.{name}.modeling_{name}")
        self.layer, self.heads, self.keys = layer, heads, keys

    def __enter__(self):
        self.original = original = self.mod.eager_attention_forward
        layer, heads, keys = self.layer, self.heads, self.keys

        def wrapped(module, query, key, value, attention_mask, *args, **kw):
            if module.layer_idx == layer:
                H, q, n = query.shape[1], query.shape[-2], key.shape[-2]
                extra = torch.zeros(1, H, q, n)
                for h in (heads if heads is not None else range(H)):
                    extra[0, h, -1, keys] = float("-inf")
                if attention_mask is None:
                    attention_mask = torch.triu(torch.full((q, n), float("-inf")), 1)[None, None]
                attention_mask = attention_mask[..., :n] + extra
            return original(module, query, key, value, attention_mask, *args, **kw)
        self.mod.eager_attention_forward = wrapped
        return self

    def __exit__(self, *exc):
        self.mod.eager_attention_forward = self.original


def gradients(model, ids, zero_head=None):
    """Runs the model on ids and back-propagates M; returns (tensors, metric). zero_head: (layer, head) or None."""
    mt = model.config.model_type
    H, dh = geometry(model.config)
    rec = {}
    hooks = []
    for l, blk in enumerate(blocks_of(model)):
        def pre_block(m, args, kwargs, l=l):
            hs = args[0] if args else kwargs["hidden_states"]
            hs.retain_grad()
            rec[f"l{l}.resid_pre"] = hs

        def pre_o(m, args, l=l):
            z = args[0]
            if zero_head is not None and zero_head[0] == l:
                z = z.clone()
                z[..., zero_head[1] * dh:(zero_head[1] + 1) * dh] = 0
            z.retain_grad()
            rec[f"l{l}.z"] = z
            return (z,) + tuple(args[1:])

        def post_mlp(m, i, o, l=l):
            out = o[0] if isinstance(o, tuple) else o
            out.retain_grad()
            rec[f"l{l}.mlp_out"] = out
        hooks.append(blk.register_forward_pre_hook(pre_block, with_kwargs=True))
        hooks.append(o_proj_of(blk, mt).register_forward_pre_hook(pre_o))
        hooks.append(mlp_out_module(blk, mt).register_forward_hook(post_mlp))
    try:
        logits = model(torch.tensor([ids])).logits[0, -1]
    finally:
        for h in hooks:
            h.remove()
    a, b = ANSWERS
    metric = logits[a] - logits[b]
    metric.backward()
    n = len(ids)
    out = {"logits": logits.detach().clone()}
    for key, t in rec.items():
        value, grad = t.detach()[0], t.grad[0]
        if key.endswith(".z"):
            value, grad = value.reshape(n, H, dh), grad.reshape(n, H, dh)
        out[key] = value.clone().contiguous()
        out[key + "_grad"] = grad.clone().contiguous()
    return out, float(metric.detach())


def main():
    torch.manual_seed(0)
    tensors, cases = {}, {}

    def add(case, fixture, ids, grads, metric, **extra):
        for k, v in grads.items():
            tensors[f"{case}.{k}"] = v
        cases[case] = {"fixture": fixture, "ids": ids, "answers": list(ANSWERS), "position": len(ids) - 1,
                       "metric": metric, **extra}

    for name in FIXTURES:
        d = os.path.join(FIX, "models", name)
        model = load(d)
        ids = json.load(open(os.path.join(d, "golden.json")))["sequences"][1]
        g, m = gradients(model, ids)
        add(name, name, ids, g, m)
        if name == "llama-gqa":
            with Knockout(model, 1, [0, 2], [1, 4, 5]):
                gk, mk = gradients(model, ids)
            assert abs(mk - m) > 1e-4, "knockout changes nothing"
            add("llama-gqa/knockout", name, ids, gk, mk,
                knockout={"layer": 1, "heads": [0, 2], "queries": [len(ids) - 1], "keys": [1, 4, 5]})
            gz, mz = gradients(model, ids, zero_head=(0, 1))
            assert abs(mz - m) > 1e-4, "zero write changes nothing"
            add("llama-gqa/zero-head", name, ids, gz, mz, zero_head={"layer": 0, "head": 1, "positions": "all"})
        if name == "gemma2-softcap":
            with Knockout(model, 1, None, [0, 3, 8]):
                gk, mk = gradients(model, ids)
            assert abs(mk - m) > 1e-4, "knockout changes nothing"
            add("gemma2-softcap/knockout", name, ids, gk, mk,
                knockout={"layer": 1, "heads": None, "queries": [len(ids) - 1], "keys": [0, 3, 8]})

    os.makedirs(OUT, exist_ok=True)
    save_file(tensors, os.path.join(OUT, "attribution.safetensors"))
    json.dump({"generator": "Tools/goldens/make_attribution_goldens.py", "torch": torch.__version__,
               "transformers": T.__version__, "metric": "logits[position, a] - logits[position, b]",
               "cases": cases}, open(os.path.join(OUT, "attribution.json"), "w"), indent=1)
    print({k: round(v["metric"], 4) for k, v in cases.items()})


if __name__ == "__main__":
    main()
