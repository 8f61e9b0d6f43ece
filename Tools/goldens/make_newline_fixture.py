#!/usr/bin/env python3
"""A model that starts every answer with a newline, and transformers' greedy generations for it.

Real instruction-tuned models often begin their response with "\n" right after "### Response:" (or the
tulu "<|assistant|>\n" turn). A stop string of "\n" must not end such a generation before it has produced
any visible text (issue 13). This script trains a tiny Llama on the probe-trajectory tokenizer so that,
after each built-in prompt template (plain, alpaca, tulu; exact texts as in Sources/ProbeKit/PromptTemplate.swift),
it answers:
  probes 0, 2, 4   "\n" + answer + "." + ...      "." is a second EOS id in generation_config.json only
  probes 1, 3      "\n" + answer + "\nQuestion: ..."  the newline after the answer is the stop string
  probe 5          " " + answer + "\n..."        no leading newline (the ordinary case)
and records, for each template and probe, transformers' greedy ids (generate(): max_new_tokens=MAX_NEW,
EOS ids read from generation_config.json, as transformers does) and the reference stop rule applied to
their decoded text.

Writes Tests/Fixtures/probe-newline/:
  checkpoint-0/        LlamaForCausalLM (config.json: eos_token_id = </s> only; generation_config.json:
                       eos_token_id = [</s>, "."]), trainer_state.json
  tokenizer.json       copy of Tests/Fixtures/probe-trajectory/tokenizer.json (our own trained BPE)
  probes.jsonl         the first 6 probes of Probes/capitals.jsonl
  goldens.json         per template and probe: prompt, prompt_ids, generated_ids (transformers, up to the
                       first EOS, EOS excluded), generated_text (cut by the reference rule below),
                       stopped_ids (the ids a generator that applies the rule while decoding keeps)

Reference stop rule (the one cpiscope documents): a stop string ends the generation only where it occurs
at or after the first non-whitespace character of the decoded text; the text is cut before it.

Rerun (from the repository root): python3 Tools/goldens/make_newline_fixture.py
Versions: Tools/requirements-goldens.txt.
"""
import json
import os
import shutil

import torch
import transformers as T
from tokenizers import Tokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "Tests", "Fixtures", "probe-newline")
SRC_TOK = os.path.join(ROOT, "Tests", "Fixtures", "probe-trajectory", "tokenizer.json")
SEED = 13
MAX_NEW = 12
STOP = "\n"

ALPACA_HEADER = ("Below is an instruction that describes a task. "
                 "Write a response that appropriately completes the request.\n\n### Instruction:\n")
TEMPLATES = {
    "plain": lambda c, q: f"Context: {c}\nQuestion: {q}\nAnswer:",
    "alpaca": lambda c, q: f"{ALPACA_HEADER}Background: {c} Question: {q}\n\n### Response:",
    "tulu": lambda c, q: f"<|user|>\nBackground: {c} Question: {q}\n<|assistant|>\n",
}


def continuation(k, p):
    if k in (0, 2, 4):
        return "\n" + p["answer"] + ". It is so."
    if k in (1, 3):
        return "\n" + p["answer"] + "\nQuestion: what else?"
    return " " + p["answer"] + "\nQuestion: what else?"


def cut(text, stops):
    """The reference rule: the first stop string at or after the first non-whitespace character."""
    start = len(text) - len(text.lstrip())
    best = None
    for s in stops:
        i = text.find(s, start)
        if s and i >= 0 and (best is None or i < best):
            best = i
    return (text if best is None else text[:best]), best is not None


def main():
    torch.manual_seed(SEED)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    shutil.copy(SRC_TOK, os.path.join(OUT, "tokenizer.json"))
    tok = Tokenizer.from_file(SRC_TOK)
    eos = tok.token_to_id("</s>")
    dot = tok.encode(".", add_special_tokens=False).ids
    assert len(dot) == 1, dot
    dot = dot[0]
    probes = [json.loads(l) for l in open(os.path.join(ROOT, "Probes", "capitals.jsonl"))][:6]
    with open(os.path.join(OUT, "probes.jsonl"), "w") as f:
        for p in probes:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")

    seqs = []
    for name, tmpl in TEMPLATES.items():
        for k, p in enumerate(probes):
            prompt = tmpl(p["context"], p["question"])
            ids = tok.encode(prompt).ids
            full = tok.encode(prompt + continuation(k, p)).ids
            assert full[:len(ids)] == ids, (name, k)
            seqs.append((full, len(ids)))
    cfg = T.LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        intermediate_size=128, max_position_embeddings=256, vocab_size=tok.get_vocab_size(),
                        bos_token_id=0, eos_token_id=eos)
    model = T.LlamaForCausalLM._from_config(cfg, attn_implementation="eager")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    width = max(len(s) for s, _ in seqs)
    x = torch.full((len(seqs), width), eos)
    labels = torch.full((len(seqs), width), -100)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (s, n) in enumerate(seqs):
        x[i, :len(s)] = torch.tensor(s)
        labels[i, n:len(s)] = torch.tensor(s[n:])
        mask[i, :len(s)] = 1
    model.train()
    for step in range(400):
        loss = model(input_ids=x, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    print("final loss", float(loss))
    model.eval()

    d = os.path.join(OUT, "checkpoint-0")
    model.save_pretrained(d)
    gen_cfg = {"bos_token_id": 0, "eos_token_id": [eos, dot], "transformers_version": T.__version__}
    json.dump(gen_cfg, open(os.path.join(d, "generation_config.json"), "w"), indent=1)
    json.dump({"global_step": 0}, open(os.path.join(d, "trainer_state.json"), "w"))
    # Reload as a user would: generate() takes its EOS ids from generation_config.json.
    model = T.AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager", dtype=torch.float32).eval()
    assert list(model.generation_config.eos_token_id) == [eos, dot]

    out = {}
    for name, tmpl in TEMPLATES.items():
        rows = []
        for k, p in enumerate(probes):
            prompt = tmpl(p["context"], p["question"])
            ids = tok.encode(prompt).ids
            with torch.no_grad():
                gen = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                     max_new_tokens=MAX_NEW, do_sample=False, pad_token_id=eos)[0, len(ids):].tolist()
            for i, t in enumerate(gen):
                if t in (eos, dot):
                    gen = gen[:i]
                    break
            text = tok.decode(gen, skip_special_tokens=True)
            cut_text, stopped = cut(text, [STOP])
            # The ids a generator applying the rule while decoding keeps: up to the first token whose
            # decoded prefix triggers the rule.
            kept = gen
            for i in range(1, len(gen) + 1):
                if cut(tok.decode(gen[:i], skip_special_tokens=True), [STOP])[1]:
                    kept = gen[:i]
                    break
            rows.append({"id": p["id"], "prompt": prompt, "prompt_ids": ids, "generated_ids": gen,
                         "stopped_ids": kept, "generated_text": cut_text, "answer": p["answer"],
                         "first_token_is_newline": tok.decode(gen[:1]) == "\n"})
        out[name] = rows
    json.dump({"transformers": T.__version__, "torch": torch.__version__, "max_new_tokens": MAX_NEW,
               "eos_ids": [eos, dot], "config_eos": eos, "stop_strings": [STOP], "templates": out},
              open(os.path.join(OUT, "goldens.json"), "w"), indent=1, ensure_ascii=False)
    for name, rows in out.items():
        print(name, [(r["generated_text"], r["first_token_is_newline"]) for r in rows])


if __name__ == "__main__":
    main()
