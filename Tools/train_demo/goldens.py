#!/usr/bin/env python3
"""transformers goldens over every checkpoint of the demo trajectory (Demo/full-ft, Demo/lora).

Reference: Hugging Face transformers 5.24.0 + peft 0.21.2 (Tools/requirements-train.txt), fp32, CPU, eager
attention, one thread. Every checkpoint is loaded back from disk exactly as a user would load it:
  full-ft:  LlamaForCausalLM.from_pretrained(checkpoint-N)
  lora:     LlamaForCausalLM.from_pretrained(<adapter_config.base_model_name_or_path resolved against the
            checkpoint-N folder>) wrapped by PeftModel.from_pretrained(base, checkpoint-N) (unmerged)
Tokenizer: PreTrainedTokenizerFast.from_pretrained(checkpoint-N) (the tokenizer.json stored there).

Prompt: the `plain` template  "Context: {context}\\nQuestion: {question}\\nAnswer:"  encoded with special
tokens, i.e. the post-processor prepends BOS (<|bos|>, id 0); no EOS is appended.

Writes Demo/goldens/<run>.json with, per checkpoint (step N):
  cf_acc             counterfactual accuracy over all held-out probes: the probe's `answer` (the context's
                     answer) occurs, case-insensitively, in the greedy continuation decoded with
                     skip_special_tokens=True
  mem_acc            the same for `memory_answer`
  generated_ids      per probe, the greedy new token ids: argmax of the last position's logits (first index
                     on ties), full recompute without a KV cache, stop after EOS (<|eos|>, id 1, kept in the
                     list) or after 8 new tokens
  M_C, mean_M_C      per probe p_ctx / (p_ctx + p_mem), where p = softmax of the logits at the last prompt
                     position and ctx/mem are the first tokens of " {answer}" / " {memory_answer}"
                     (encoded without special tokens); the mean over probes
  ctx_attn_per_layer [layer]: attention mass from the last prompt position to the context tokens, summed
                     over context tokens, averaged over heads, then over probes. Context tokens are the
                     tokens whose character offsets (return_offsets_mapping) [start, end) satisfy
                     end > start and start < ctx_end and end > ctx_start, where [ctx_start, ctx_end) is the
                     context's character range in the prompt (ctx_start = len("Context: ")). BOS has the
                     empty offset (0, 0) and is never a context token. With the ByteLevel pre-tokenizer the
                     offsets of a token include its leading space (e.g. " Tarmun" starts at the space).
  ctx_token_mask     per golden probe, the 0/1 context mask over prompt positions
and Demo/goldens/<run>/checkpoint-N.safetensors with, for the two golden probes g in {0, 1} (the first two
lines of Probes/demo_heldout.jsonl):
  probe{g}.input_ids  int64 [pos]                              the prompt's token ids (BOS first)
  probe{g}.logits     f32   [d_vocab]                          logits at the last prompt position
  probe{g}.attention  f32   [layer, head, query_pos, key_pos]  attention probabilities of the prompt

Rerun (from the repository root, after train_demo.py):  python3 Tools/train_demo/goldens.py
"""
import json
import os
import re
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import first_answer_token, greedy, write_json  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEMO = os.path.join(ROOT, "Demo")
PROBES = os.path.join(ROOT, "Probes", "demo_heldout.jsonl")
CONTEXT_PREFIX = "Context: "
GOLDEN_PROBES = 2


def prompt_of(p):
    return f"{CONTEXT_PREFIX}{p['context']}\nQuestion: {p['question']}\nAnswer:"


def context_mask(offsets, ctx_start, ctx_end):
    return [1 if (e > s and s < ctx_end and e > ctx_start) else 0 for s, e in offsets]


def checkpoints(run_dir):
    found = []
    for name in os.listdir(run_dir):
        m = re.fullmatch(r"checkpoint-(\d+)", name)
        if m:
            found.append((int(m.group(1)), os.path.join(run_dir, name)))
    return sorted(found)


def load(kind, ckpt):
    if kind == "lora":
        from peft import PeftModel
        with open(os.path.join(ckpt, "adapter_config.json")) as f:
            base_rel = json.load(f)["base_model_name_or_path"]
        base = LlamaForCausalLM.from_pretrained(os.path.normpath(os.path.join(ckpt, base_rel)),
                                                dtype=torch.float32, attn_implementation="eager")
        model = PeftModel.from_pretrained(base, ckpt)
    else:
        model = LlamaForCausalLM.from_pretrained(ckpt, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    return model


@torch.no_grad()
def evaluate(model, tok, probes):
    res = {"cf_correct": [], "mem_correct": [], "generated_ids": [], "generated_text": [], "M_C": []}
    ctx_mass, goldens, masks = None, {}, []
    for i, p in enumerate(probes):
        prompt = prompt_of(p)
        enc = tok(prompt, add_special_tokens=True, return_offsets_mapping=True)
        ids = enc["input_ids"]
        ctx_start = len(CONTEXT_PREFIX)
        mask = context_mask(enc["offset_mapping"], ctx_start, ctx_start + len(p["context"]))
        out = model(input_ids=torch.tensor([ids]), output_attentions=True)
        logits = out.logits[0, -1].float()
        att = torch.stack([a[0] for a in out.attentions]).float()  # [layer, head, query_pos, key_pos]
        m = torch.tensor(mask, dtype=torch.float32)
        per_layer = (att[:, :, -1, :] * m).sum(-1).mean(-1)  # [layer]
        ctx_mass = per_layer if ctx_mass is None else ctx_mass + per_layer
        probs = torch.softmax(logits, -1)
        pc = probs[first_answer_token(tok, p["answer"])].item()
        pm = probs[first_answer_token(tok, p["memory_answer"])].item()
        res["M_C"].append(pc / (pc + pm))
        gen, first = greedy(model, ids)
        # The greedy loop's first step is the same forward pass (without output_attentions).
        assert torch.allclose(first, out.logits[0, -1], atol=1e-5, rtol=0), "greedy first step differs"
        text = tok.decode(gen, skip_special_tokens=True)
        res["generated_ids"].append(gen)
        res["generated_text"].append(text)
        res["cf_correct"].append(p["answer"].lower() in text.lower())
        res["mem_correct"].append(p["memory_answer"].lower() in text.lower())
        if i < GOLDEN_PROBES:
            goldens[f"probe{i}.input_ids"] = torch.tensor(ids, dtype=torch.int64)
            goldens[f"probe{i}.logits"] = logits.contiguous()
            goldens[f"probe{i}.attention"] = att.contiguous()
            masks.append(mask)
    n = len(probes)
    res["cf_acc"] = sum(res["cf_correct"]) / n
    res["mem_acc"] = sum(res["mem_correct"]) / n
    res["mean_M_C"] = sum(res["M_C"]) / n
    res["ctx_attn_per_layer"] = (ctx_mass / n).tolist()
    res["ctx_token_mask"] = masks
    return res, goldens


def main():
    import transformers
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(1)
    with open(PROBES) as f:
        probes = [json.loads(line) for line in f if line.strip()]
    out_dir = os.path.join(DEMO, "goldens")
    os.makedirs(out_dir, exist_ok=True)
    summary = {}
    for run, kind in (("full-ft", "full"), ("lora", "lora")):
        run_dir = os.path.join(DEMO, run)
        if not os.path.isdir(run_dir):
            continue
        os.makedirs(os.path.join(out_dir, run), exist_ok=True)
        rows = []
        for step, ckpt in checkpoints(run_dir):
            tok = PreTrainedTokenizerFast.from_pretrained(ckpt)
            model = load(kind, ckpt)
            res, g = evaluate(model, tok, probes)
            save_file(g, os.path.join(out_dir, run, f"checkpoint-{step}.safetensors"))
            res = {"step": step, "checkpoint": os.path.relpath(ckpt, ROOT), **res}
            rows.append(res)
            print(f"{run} step {step:4d}  cf_acc {res['cf_acc']:.3f}  mem_acc {res['mem_acc']:.3f}  "
                  f"M_C {res['mean_M_C']:.3f}  ctx_attn " + " ".join(f"{x:.3f}" for x in res["ctx_attn_per_layer"]),
                  flush=True)
        write_json(os.path.join(out_dir, f"{run}.json"), {
            "run": run, "probes": os.path.relpath(PROBES, ROOT), "n_probes": len(probes),
            "golden_probe_ids": [p["id"] for p in probes[:GOLDEN_PROBES]],
            "prompt_template": "Context: {context}\nQuestion: {question}\nAnswer:",
            "bos_prepended": True, "bos_id": tok.bos_token_id, "eos_id": tok.eos_token_id,
            "max_new_tokens": 8, "dtype": "float32", "attn_implementation": "eager",
            "context_token_rule": "end > start and start < ctx_end and end > ctx_start over offset_mapping; "
                                  "ctx_start = len('Context: '), ctx_end = ctx_start + len(context)",
            "checkpoints": rows})
        summary[run] = [(r["step"], r["cf_acc"], r["mean_M_C"]) for r in rows]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
