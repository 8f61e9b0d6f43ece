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

Also Tests/Fixtures/probe-trajectory/chat-criticality-goldens.json: `criticality --template chat` on the first
6 rows of Tests/Fixtures/criticality/golden-data.jsonl at checkpoint-0: for each row with and without its
context, the conversation [user: instruction (+ "\n\n" + input), assistant: output]; the prompt is
apply_chat_template([user], add_generation_prompt=True, tokenize=True), the full sequence
apply_chat_template([user, assistant], tokenize=True), and the scored tokens every token after the
prompt's (the response and the template's end-of-turn tokens, as TRL's completion-only loss labels them);
the mean negative log-likelihood per scored token (float32 log_softmax, summed in float64).

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

    data = [json.loads(l) for l in open(os.path.join(ROOT, "Tests", "Fixtures", "criticality", "golden-data.jsonl")) if l.strip()][:6]
    model = models["checkpoint-0"]
    crit = []
    for i, row in enumerate(data):
        out = {"index": i}
        for key, with_ctx in [("with_context", True), ("without_context", False)]:
            if with_ctx and not row.get("input"):
                out[key] = None
                continue
            user = row["instruction"] + ("\n\n" + row["input"] if with_ctx else "")
            prompt = ids_of(tok.apply_chat_template([{"role": "user", "content": user}], tokenize=True, add_generation_prompt=True))
            full = ids_of(tok.apply_chat_template([{"role": "user", "content": user}, {"role": "assistant", "content": row["output"]}],
                                                  tokenize=True, add_generation_prompt=False))
            assert full[:len(prompt)] == prompt, "the prompt's ids are not a prefix of the full conversation's"
            with torch.no_grad():
                logits = model(torch.tensor([full])).logits[0].float()
            logp = torch.log_softmax(logits, dim=-1)
            nll = sum(-float(logp[t - 1, full[t]]) for t in range(len(prompt), len(full)))
            out[key] = {"ids": full, "prompt_tokens": len(prompt), "scored": len(full) - len(prompt), "nll": nll / (len(full) - len(prompt))}
        crit.append(out)
    json.dump({"generator": "Tools/goldens/make_chat_probe_goldens.py",
               "versions": {"torch": torch.__version__, "transformers": T.__version__, "tokenizers": tokenizers.__version__},
               "checkpoint": "checkpoint-0", "examples": crit},
              open(os.path.join(DIR, "chat-criticality-goldens.json"), "w"), indent=1)
    print("wrote", os.path.join(DIR, "chat-criticality-goldens.json"), len(crit), "examples")


if __name__ == "__main__":
    main()
