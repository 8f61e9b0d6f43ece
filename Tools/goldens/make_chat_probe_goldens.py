#!/usr/bin/env python3
"""Goldens for `--template chat` (issue 28): prompts built with the checkpoint's own chat template, as
transformers' apply_chat_template builds them, and greedy generation from them.

Reads Tests/Fixtures/probe-trajectory/ (tokenizer.json, tokenizer_config.json, and chat_template.jinja: the
real Llama-2-chat template, copied from Tests/Fixtures/chat-templates/llama-2-chat, whose source is listed in
Tests/Fixtures/chat-templates/SOURCES.md) and writes Tests/Fixtures/probe-trajectory/chat-goldens.json: for
each probe and each conversation (with and without a system message), the rendered prompt
(apply_chat_template(tokenize=False, add_generation_prompt=True)), its ids (tokenize=True: the special
tokens the template writes, none added by the tokenizer), and for checkpoint-0 and checkpoint-20 the greedy
ids of model.generate (fp32, eager, do_sample=False, max_new_tokens=8, stops at EOS).

The user message is "Background: {context} Question: {question}" (the paper's wording, Appendix B.3).

Rerun (from the repository root): python3 Tools/goldens/make_chat_probe_goldens.py
Versions: Tools/requirements-goldens.txt (torch, transformers, tokenizers); the versions used are recorded.
"""
import json
import os

import tokenizers
import torch
import transformers as T

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DIR = os.path.join(ROOT, "Tests", "Fixtures", "probe-trajectory")
SYSTEM = "Answer briefly."
MAX_NEW = 8


def ids_of(out):
    # transformers 5 returns a BatchEncoding (dict) from tokenize=True; 4.x returned a list.
    if isinstance(out, dict) or hasattr(out, "keys"):
        out = out["input_ids"]
    if out and isinstance(out[0], list):
        out = out[0]
    return [int(i) for i in out]


def main():
    tok = T.AutoTokenizer.from_pretrained(DIR)
    probes = [json.loads(l) for l in open(os.path.join(DIR, "probes.jsonl")) if l.strip()]
    models = {c: T.AutoModelForCausalLM.from_pretrained(os.path.join(DIR, c), attn_implementation="eager").eval()
              for c in ["checkpoint-0", "checkpoint-20"]}
    rows = []
    for p in probes:
        user = f"Background: {p['context']} Question: {p['question']}"
        for system in [None, SYSTEM]:
            messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            ids = ids_of(tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True))
            gen = {}
            for name, model in models.items():
                with torch.no_grad():
                    out = model.generate(torch.tensor([ids]), max_new_tokens=MAX_NEW, do_sample=False,
                                         eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
                new = out[0, len(ids):].tolist()
                if tok.eos_token_id in new:
                    new = new[:new.index(tok.eos_token_id)]
                gen[name] = new
            rows.append({"id": p.get("id"), "system": system, "prompt": text, "prompt_ids": ids, "generated_ids": gen})
    json.dump({"generator": "Tools/goldens/make_chat_probe_goldens.py",
               "versions": {"torch": torch.__version__, "transformers": T.__version__, "tokenizers": tokenizers.__version__},
               "max_new_tokens": MAX_NEW, "user_template": "Background: {context} Question: {question}", "system": SYSTEM,
               "probes": rows}, open(os.path.join(DIR, "chat-goldens.json"), "w"), indent=1)
    print("wrote", os.path.join(DIR, "chat-goldens.json"), len(rows), "rows")


if __name__ == "__main__":
    main()
