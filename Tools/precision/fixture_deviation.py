#!/usr/bin/env python3
"""transformers' own bf16 deviation on the model fixtures (issue 15): the fixture models run in
transformers with dtype=bfloat16 (eager attention, CPU), compared with the fp32 goldens of
Tools/goldens/make_model_fixtures.py (Tests/Fixtures/models/*/golden.safetensors). Prints max |Δ| of
the logits and the attention probabilities per fixture and sequence, the figures that
Tests/ModelsTests/PrecisionTests.swift prints for cpiscope's bf16 pass.

    python3 Tools/precision/fixture_deviation.py [fixture ...]
"""
import json
import os
import sys

import torch
import transformers as T
from safetensors.torch import load_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures", "models")
DEFAULT = ["llama-bf16", "neox-f16", "gpt2-tied", "llama-gqa", "qwen2-bias"]


def main():
    for name in sys.argv[1:] or DEFAULT:
        path = os.path.join(ROOT, name)
        meta = json.load(open(os.path.join(path, "golden.json")))
        golden = load_file(os.path.join(path, "golden.safetensors"))
        model = T.AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=torch.bfloat16).eval()
        for s, ids in enumerate(meta["sequences"]):
            with torch.no_grad():
                out = model(torch.tensor([ids]), output_attentions=True)
            logits = out.logits[0].float()
            attn = torch.stack([a[0].float() for a in out.attentions])
            dl = (logits - golden[f"s{s}.logits"]).abs().max().item()
            da = (attn - golden[f"s{s}.attn"]).abs().max().item()
            print(f"{name} seq {s}: transformers bf16 vs fp32 logits {dl:.4f} attn {da:.4f}")


if __name__ == "__main__":
    main()
