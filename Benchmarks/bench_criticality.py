#!/usr/bin/env python3
"""Issue 18 benchmark: `cpiscope criticality` scoring throughput against `cpiscope bench` prefill on the same
model and sequence length, and against a transformers loop doing the same scoring. Not a test; nothing is
asserted. All three run in one session on this machine, one after the other.

  cpiscope criticality  scored tokens/s = tokens fed through the model / seconds in the passes (the
                        command prints it; loading, tokenization and HDF5 are outside), median of --runs
  cpiscope bench        prefill tokens/s of the plain pass (`none`) at the data's mean sequence length
                        (the acceptance target: criticality ≥ 70% of it)
  transformers          the same rule (docs/criticality.md) in Python: per example, one forward pass per
                        condition (batch 1, eager attention, fp32, torch threads = --threads), log_softmax
                        over the response rows; tokens/s over the passes only

Needs: `swift build -c release`, `python3 Benchmarks/make_models.py` (gpt2-small), the GPT-2 tokenizer at
../shared/tokenizers/gpt2/tokenizer.json (or --tokenizer), Tools/requirements-goldens.txt.

    python3 Benchmarks/bench_criticality.py [--runs 3] [--threads 2] [--template alpaca]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, ".build", "release", "cpiscope")

ALPACA_WITH = ("Below is an instruction that describes a task, paired with an input that provides further context. "
               "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{context}\n\n### Response:")
ALPACA_WITHOUT = ("Below is an instruction that describes a task. "
                  "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:")


def sequences(rows, tok, eos):
    """(ids, n) for every condition of every example, the rule of docs/criticality.md (alpaca template)."""
    out = []
    for r in rows:
        if not r.get("output"):
            continue
        prompts = [ALPACA_WITHOUT.replace("{instruction}", r["instruction"])]
        if r.get("input"):
            prompts.append(ALPACA_WITH.replace("{instruction}", r["instruction"]).replace("{context}", r["input"]))
        for p in prompts:
            n = len(tok.encode(p).ids)
            full = tok.encode(p + r["output"]).ids + [eos]
            out.append((full, n))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "Benchmarks", "models", "gpt2-small"))
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "..", "shared", "tokenizers", "gpt2", "tokenizer.json"))
    ap.add_argument("--data", default=os.path.join(ROOT, "Probes", "ift", "alpaca-sample.json"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()

    import torch
    import transformers as T
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(args.tokenizer)
    eos = tok.token_to_id("<|endoftext|>")
    rows = json.load(open(args.data))
    seqs = sequences(rows, tok, eos)
    tokens = sum(len(f) - 1 for f, _ in seqs)
    mean_len = round(tokens / len(seqs))
    print(f"data: {len(rows)} examples, {len(seqs)} sequences, {tokens} input tokens, mean length {mean_len}", file=sys.stderr)

    # cpiscope criticality
    crit = []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(args.runs):
            r = subprocess.run([BIN, "criticality", args.model, "--data", args.data, "--tokenizer", args.tokenizer,
                                "--template", "alpaca", "-o", os.path.join(d, "c.h5"), "--force", "--quiet",
                                "--threads", str(args.threads)], capture_output=True, text=True, check=True)
            crit.append(float(re.search(r"([0-9.]+) tokens/s scored", r.stdout).group(1)))
    # cpiscope bench (plain prefill at the mean length)
    r = subprocess.run([BIN, "bench", args.model, "--tokens", str(mean_len), "--runs", "5", "--threads", str(args.threads)],
                       capture_output=True, text=True, check=True)
    m = re.search(rf"^\s*{mean_len} \| none\s*\|.*?\|.*?\|.*?\|\s*([0-9.]+) \|", r.stdout, re.M)
    bench = float(m.group(1))
    # transformers loop
    torch.set_num_threads(args.threads)
    model = T.AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="eager").eval()
    hf = []
    for _ in range(args.runs):
        spent = 0.0
        with torch.no_grad():
            for full, n in seqs:
                t0 = time.perf_counter()
                logits = model(torch.tensor([full[:-1]])).logits[0, n - 1:]
                _ = -logits.log_softmax(-1).gather(1, torch.tensor(full[n:]).unsqueeze(1)).sum()
                spent += time.perf_counter() - t0
        hf.append(tokens / spent)

    med = statistics.median
    print(json.dumps({"criticality_tokens_per_s": crit, "bench_prefill_tokens_per_s": bench, "transformers_tokens_per_s": hf,
                      "mean_length": mean_len, "sequences": len(seqs), "threads": args.threads}, indent=1))
    print(f"| scored tokens/s (median of {args.runs}) | cpiscope criticality {med(crit):.0f} | cpiscope bench prefill at {mean_len} tokens "
          f"{bench:.0f} | transformers loop {med(hf):.0f} | criticality / prefill {med(crit) / bench:.2f} | cpiscope / transformers "
          f"{med(crit) / med(hf):.2f} |")


if __name__ == "__main__":
    main()
