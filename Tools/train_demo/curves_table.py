#!/usr/bin/env python3
"""Prints the Markdown curve tables of Demo/README.md from Demo/goldens/<run>.json (the transformers
evaluation of the saved checkpoints) and Demo/training_curves.json (the diagnostics logged while training).

Rerun (from the repository root, after train_demo.py and goldens.py):  python3 Tools/train_demo/curves_table.py
"""
import json
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def distractor_answer(p):
    """The last word of the context sentence that does not mention the probe's subject."""
    others = [x.strip() for x in p["context"].split(".") if x.strip() and p["subject"] not in x]
    return others[0].split()[-1] if others else None


def outcome_counts(probes, texts):
    """Greedy outputs sorted into: context answer / memorised answer / the distractor sentence's answer /
    anything else (in that order of precedence)."""
    n = [0, 0, 0, 0]
    for p, t in zip(probes, texts):
        t, d = t.lower(), distractor_answer(p)
        if p["answer"].lower() in t:
            n[0] += 1
        elif p["memory_answer"].lower() in t:
            n[1] += 1
        elif d and d.lower() in t:
            n[2] += 1
        else:
            n[3] += 1
    return "/".join(map(str, n))


def main():
    with open(os.path.join(ROOT, "Probes", "demo_heldout.jsonl")) as f:
        probes = [json.loads(line) for line in f if line.strip()]
    with open(os.path.join(ROOT, "Demo", "training_curves.json")) as f:
        train = json.load(f)["curves"]
    for run in ("full-ft", "lora"):
        path = os.path.join(ROOT, "Demo", "goldens", f"{run}.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            g = json.load(f)
        diag = {r["step"]: r for r in train.get(run, [])}
        n_layers = len(g["checkpoints"][0]["ctx_attn_per_layer"])
        print(f"\n**{run}** ({g['n_probes']} held-out conflict probes)\n")
        head = ["step", "cf_acc", "mem_acc", "mean M_C", "ctx/mem/distr/other"] + [f"ctx attn L{i}" for i in range(n_layers)] + \
               ["C_train", "C_mem", "C_fresh", "S_probe"]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in g["checkpoints"]:
            d = diag.get(r["step"], {})
            cells = [str(r["step"]), f"{r['cf_acc']:.3f}", f"{r['mem_acc']:.3f}", f"{r['mean_M_C']:.3f}",
                     outcome_counts(probes, r["generated_text"])]
            cells += [f"{x:.3f}" for x in r["ctx_attn_per_layer"]]
            cells += [f"{d[k]:.3f}" if k in d else "" for k in ("C_train", "C_mem", "C_fresh", "S_probe")]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
