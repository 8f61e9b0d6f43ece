#!/usr/bin/env python3
"""The Python baseline for cpiscope's benchmarks: the same work with Hugging Face transformers on the CPU.

Settings (issue #8): torch threads = cores, fp32, eager attention, output_attentions=True and
output_hidden_states=True, logit lens at every layer with the model's final norm and LM head.

  prefill  MODEL --tokens 128,512,2048 --runs 5
      Prefill passes of random ids; per length: median/min/max seconds and tokens/s. Each pass also
      computes the span-attention capture (mass from the last position to a fixed span) and the logit
      lens at every layer, as cpiscope does.
  job      TRAJECTORY --probes FILE --tokenizer TOKENIZER.json --out OUT.h5 [--max-new-tokens 12]
      The whole probe job: for every checkpoint and probe (plain template), one pass with attentions and
      hidden states, span masses for context/question/BOS, logit lens + M_C for both answers' first
      tokens, teacher-forced log-likelihood of both answers, greedy generation with a KV cache; results
      written to HDF5 with h5py. Time it from outside (`/usr/bin/time -v`) to include process start.

--dtype bfloat16 (issue 15) loads the weights in bf16 and runs the same work in bf16 (torch's oneDNN
kernels); the default is float32. A job's TRAJECTORY may also be a single checkpoint folder.

Versions: Tools/requirements-goldens.txt (torch 2.13.0 CPU, transformers 5.24.0).
"""
import argparse
import glob
import json
import os
import statistics
import time

import torch
import transformers as T


def lens_scores(model, stream, targets):
    norm = model.base_model.ln_f if hasattr(model.base_model, "ln_f") else (
        model.base_model.final_layer_norm if hasattr(model.base_model, "final_layer_norm") else model.base_model.norm)
    head = model.get_output_embeddings()
    logits = head(norm(stream))                       # [lens_layer, vocab]
    lp = torch.log_softmax(logits, -1)
    out = lp[:, targets]                              # [lens_layer, targets]
    ranks = (logits[:, None, :] > logits[:, targets][:, :, None]).sum(-1) + 1
    p = out.exp()
    mc = p[:, 0] / (p[:, 0] + p[:, 1])
    return out, ranks, mc


def prefill(a):
    torch.set_num_threads(os.cpu_count())
    model = T.AutoModelForCausalLM.from_pretrained(a.model, attn_implementation="eager", dtype=getattr(torch, a.dtype)).eval()
    V = model.config.vocab_size
    print(f"model {a.model}: threads {torch.get_num_threads()}, dtype {a.dtype}")
    for n in [int(x) for x in a.tokens.split(",")]:
        ids = torch.randint(0, V, (1, n))
        times = []
        for r in range(a.runs + 1):
            t0 = time.perf_counter()
            with torch.no_grad():
                out = model(ids, output_attentions=True, output_hidden_states=True)
                span = torch.arange(1, n // 2)
                _ = [att[0, :, -1, span].sum(-1) for att in out.attentions]
                stream = torch.stack([h[0, -1] for h in out.hidden_states])
                _ = lens_scores(model, stream, [1, 2])
            if r:
                times.append(time.perf_counter() - t0)
        times.sort()
        med = statistics.median(times)
        print(f"{n:6d} tokens  median {med * 1000:9.1f} ms  min {times[0] * 1000:9.1f}  max {times[-1] * 1000:9.1f}  {n / med:8.0f} tokens/s")


def job(a):
    import h5py
    torch.set_num_threads(a.threads or os.cpu_count())
    tok = T.PreTrainedTokenizerFast(tokenizer_file=a.tokenizer)
    probes = [json.loads(l) for l in open(a.probes) if l.strip()] if a.probes.endswith(".jsonl") else json.load(open(a.probes))
    ckpts = sorted(glob.glob(os.path.join(a.trajectory, "checkpoint-*")), key=lambda p: int(p.rsplit("-", 1)[1])) or [a.trajectory]
    L = None
    results = []
    for ck in ckpts:
        model = T.AutoModelForCausalLM.from_pretrained(ck, attn_implementation="eager", dtype=getattr(torch, a.dtype)).eval()
        L = model.config.num_hidden_layers if hasattr(model.config, "num_hidden_layers") else model.config.n_layer
        eos = model.config.eos_token_id
        rows = []
        for p in probes:
            prompt = f"Context: {p['context']}\nQuestion: {p['question']}\nAnswer:"
            enc = tok(prompt, return_offsets_mapping=True)
            ids, offs = enc["input_ids"], enc["offset_mapping"]
            cs = len("Context: "); ce = cs + len(p["context"])
            qs = prompt.index("\nQuestion: ") + len("\nQuestion: "); qe = qs + len(p["question"])
            spans = [[i for i, (s, e) in enumerate(offs) if e > s and s < ce and cs < e],
                     [i for i, (s, e) in enumerate(offs) if e > s and s < qe and qs < e], [0]]
            mem = p.get("memory_answer", p.get("parametric_answer"))
            answers = [tok(prompt + " " + x)["input_ids"][len(ids):] for x in (p["answer"], mem)]
            with torch.no_grad():
                out = model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True, use_cache=True)
                mass = torch.stack([torch.stack([att[0, :, -1, s].sum(-1) for s in spans]) for att in out.attentions])
                stream = torch.stack([h[0, -1] for h in out.hidden_states[:-1]] + [out.hidden_states[-1][0, -1]])
                lp, ranks, mc = lens_scores(model, stream, [answers[0][0], answers[1][0]])
                lp, mc = lp.float(), mc.float()
                lls = []
                for ans in answers:
                    full = torch.tensor([ids + ans])
                    l2 = torch.log_softmax(model(full).logits[0], -1)
                    lls.append(float(sum(l2[len(ids) - 1 + i, t] for i, t in enumerate(ans))))
                gen = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                     max_new_tokens=a.max_new_tokens, do_sample=False, eos_token_id=eos, pad_token_id=eos)
                text = tok.decode(gen[0, len(ids):], skip_special_tokens=True).split("\n")[0]
            rows.append((mass.float().numpy(), lp.numpy(), mc.numpy(), lls, text,
                         p["answer"].lower() in text.lower(), mem.lower() in text.lower()))
        results.append(rows)
    with h5py.File(a.out, "w") as f:
        import numpy as np
        f["attention_mass"] = np.array([[r[0] for r in rows] for rows in results], dtype=np.float32)
        f["lens_logprob"] = np.array([[r[1] for r in rows] for rows in results], dtype=np.float32)
        f["mc_ratio"] = np.array([[r[2] for r in rows] for rows in results], dtype=np.float32)
        f["answer_loglik"] = np.array([[r[3] for r in rows] for rows in results], dtype=np.float32)
        f["generated"] = np.array([[r[4] for r in rows] for rows in results], dtype=h5py.string_dtype())
        f["counterfactual_correct"] = np.array([[r[5] for r in rows] for rows in results], dtype=np.uint8)
    print(f"wrote {a.out}: {len(ckpts)} checkpoints x {len(probes)} probes, {L} layers")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("prefill"); p.add_argument("model"); p.add_argument("--tokens", default="128,512,2048"); p.add_argument("--runs", type=int, default=5)
    j = sub.add_parser("job"); j.add_argument("trajectory"); j.add_argument("--probes", required=True); j.add_argument("--tokenizer", required=True)
    j.add_argument("--out", required=True); j.add_argument("--max-new-tokens", type=int, default=12)
    j.add_argument("--threads", type=int, default=0, help="torch threads (default: cores)")
    for q in (p, j):
        q.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="weights and compute dtype")
    a = ap.parse_args()
    prefill(a) if a.mode == "prefill" else job(a)


if __name__ == "__main__":
    main()
