#!/usr/bin/env python3
"""Writes the demo trajectory's own instruction-finetuning data as an instruction dataset,
Demo/ift-data.jsonl: every C point of an epoch (50) and the first 125 C+S and 125 S points in training
order (300 rows: a sample that keeps `cpiscope demo` quick; --all writes the whole epoch, 1650 points):

    {"instruction": question, "input": context ("" for S points), "output": answer, "category": "C" | "C+S" | "S"}

The points are those train_demo.py trained on (build_data with the same arguments and seed: pure Python,
no torch, bit-reproducible). Under cpiscope's `plain` criticality template (with context
"Context: {context}\\nQuestion: {instruction}\\nAnswer:", without "Question: {instruction}\\nAnswer:", separator
" ", EOS appended) each row is scored on exactly the sequence the demo was finetuned on (common.ift_example:
BOS + prompt, then " answer" + EOS, loss on the answer and EOS). `cpiscope demo` scores it over the
full-finetuning checkpoints, so the report shows the loss of each category on the model's own training
data (the paper's Proposition 1 setting).

Rerun (from the repository root): python3 Tools/train_demo/ift_data.py [--all]
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_demo import ROOT, args_parser, build_data  # noqa: E402


def split(prompt):
    """(context, question) of a `plain` prompt; context "" for a recall (S) prompt."""
    body = prompt[:-len("\nAnswer:")]
    if body.startswith("Context: "):
        context, question = body[len("Context: "):].split("\nQuestion: ", 1)
        return context, question
    return "", body[len("Question: "):]


SAMPLE = {"C": None, "C+S": 125, "S": 125}   # None: every point of the category


def main():
    every = "--all" in sys.argv[1:]
    a = args_parser().parse_args([])
    _, points, _ = build_data(a)
    if not every:
        kept, seen = [], {k: 0 for k in SAMPLE}
        for p in points:
            if SAMPLE[p[0]] is None or seen[p[0]] < SAMPLE[p[0]]:
                kept.append(p)
                seen[p[0]] += 1
        points = kept
    out = os.path.join(ROOT, "Demo", "ift-data.jsonl")
    with open(out, "w") as f:
        for kind, prompt, answer in points:
            context, question = split(prompt)
            f.write(json.dumps({"instruction": question, "input": context, "output": answer, "category": kind}) + "\n")
    print("wrote", out, len(points), "rows")


if __name__ == "__main__":
    main()
