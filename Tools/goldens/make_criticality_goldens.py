#!/usr/bin/env python3
"""transformers goldens for `cpiscope criticality` (docs/criticality.md), and the reference --filter-lowest.

What: Tests/Fixtures/criticality/
  golden-data.jsonl        24 Alpaca rows, one JSON object per line: 15 rows copied from
                           Probes/ift/alpaca-sample.json (6 context-critical, 6 context-redundant, 3 without
                           context; the indices are SAMPLE_ROWS below, chosen short enough for the tiny
                           tokenizers) and 8 edge cases (EDGE_ROWS): an "input" key missing entirely, an
                           empty input, non-ASCII text (東京 as raw UTF-8; Zürich written with \\u escapes and the
                           keys in another order, so that a filter must copy line text byte for byte, not
                           re-serialise it), a multi-line output, an output that starts with a quote mark
                           (the prompt/response token boundary), an empty output (skipped), one long row
                           (skipped: longer than MAX_TOKENS and every position limit) and an exact copy of
                           row 5 (equal criticalities: ties are broken by index; in the demo-plain filter the
                           two copies fall on either side of the cut, so row 5 is removed and row 23 kept).
                           An example's index is its 0-based line number.
  goldens.json             the scores, computed with transformers and the Hugging Face tokenizers, never with
                           cpiscope (format below)
  golden-data.filtered-25.jsonl, golden-data.filtered-25.removed.json
                           the reference `--filter-lowest 25%` from the Demo/base alpaca case
  golden-data.plain.filtered-25.jsonl, golden-data.plain.filtered-25.removed.json
                           the same from the Demo/base plain case (see "Demo and alpaca" below)

Cases (goldens.json "cases", each over every row of golden-data.jsonl):
  demo-alpaca          Demo/base, Demo/full-ft/checkpoint-{0,250,500}   template alpaca, eos on
  demo-tulu            Demo/base                                         template tulu,   eos on
  demo-plain           Demo/base, Demo/full-ft/checkpoint-{0,250,500}   template plain,  eos on
  demo-plain-no-eos    Demo/base                                         template plain,  eos off (--no-eos)
  probe-trajectory-alpaca  Tests/Fixtures/probe-trajectory/checkpoint-0 (LlamaForCausalLM per its config.json,
                       not GPT-2) with the trajectory's tokenizer.json one folder up (the checkpoint has
                       none), template alpaca, eos on
  probe-gpt2-alpaca    Tests/Fixtures/probe-gpt2 (GPT2LMHeadModel, its own tokenizer.json), alpaca, eos on
Every case uses --max-tokens MAX_TOKENS (240). The demo models' position limit is 128
(max_position_embeddings), the two others' 256 (max_position_embeddings / n_positions).

The rule, exactly as docs/criticality.md states it, for each example and condition (with context, without):
  prompt   = the template's text with {instruction} and {context} substituted (Python str.replace of the two
             placeholders; no row contains "{" or "}", so the {{ }} escapes never matter here)
  full     = encode(prompt + separator + output, add_special_tokens=True)
  n        = len(encode(prompt, add_special_tokens=True))
  response = full[n:] + [eos_id]  (full[n:] with eos off)
  nll_sum  = -sum over the response positions t of log p(ids[t] | ids[:t]), ids = full + [eos_id] (or full),
             one forward pass of the whole sequence, no padding, no attention mask
  nll      = nll_sum / response_tokens
  criticality = exp(nll of the without-context condition); gain = nll_without - nll_with (null: no context)
Tokenizer: transformers AutoTokenizer (TokenizersBackend) from the folder holding tokenizer.json
(PreTrainedTokenizerFast(tokenizer_file=...) for probe-gpt2, which has no tokenizer_config.json); every
encoding is checked against tokenizers.Tokenizer.from_file(...).encode(text).ids. eos_id is the tokenizer's
eos_token (tokenizer_config.json) or, without one, config.json's eos_token_id; both are 1 here and agree.
Model: AutoModelForCausalLM.from_pretrained(dtype=torch.float32, attn_implementation="eager"), eval mode.
Precision: logits and log_softmax in float32 (torch), the selected log-probabilities converted to float64
and summed in float64; nll, criticality (math.exp) and gain in float64. A float32 reimplementation should
agree on nll to about 1e-4 relative; criticality = exp(nll) then to about nll * 1e-4 relative (the demo
models' nll on this English text is 8 to 17 nats, so criticalities are in the thousands to millions).
"reason" is a code of this file ("empty_response", "empty_prompt", "too_long"), not cpiscope's wording.

Interpretation choices (the most literal reading of docs/criticality.md, written down here):
  - "no context" = the "input" key is missing or is exactly "" (a whitespace-only input would count as a
    context; no row has one).
  - Skipping is per example: the example is skipped when ANY of its conditions trips a rule, and then both
    conditions' scores are null. Rules, in this order (the first that applies is the reason): the output is
    exactly "" -> "empty_response"; full[:n] is empty -> "empty_prompt" (cannot happen here: every tokenizer
    adds a BOS); len(full) + (1 if eos else 0) > max_tokens or > the position limit -> "too_long" (checked
    with context first). "Exceeds" is strictly greater: a sequence of exactly the limit is scored.
  - For a skipped example the prompts, n, full_len and response ids are still recorded (they show why), only
    nll_sum / nll / criticality / gain are null. NaN is written as null (JSON has no NaN).
  - The n of the rule is used even when full[:n] != encode(prompt) (the tokenizer merged across the
    boundary); "prefix_match" records whether they agree.
  - Filter (--filter-lowest P%): candidates are the non-skipped examples WITH a context; sort them by
    (criticality ascending, index ascending); remove the first k = floor(count * P / 100); every other row
    (skipped ones, rows without a context) is kept. The kept rows are written in their original order with
    their original line text byte for byte, each followed by "\\n". removed.json lists the removed examples in
    the sorted order (lowest criticality first) as {"index", "criticality"}, with "percent" and
    "count_with_context" (= the number of candidates, the count in k's formula).

Demo and alpaca: the demo's tokenizer is nearly character-level on English, so the alpaca prompt with an
input is about 150 tokens, above the demo's 128 positions: in demo-alpaca every example with a context is
skipped (too_long), and its filter reference is the degenerate one (count_with_context 0, nothing removed,
the filtered file equals the input). The plain filter reference is the one that removes rows.

goldens.json:
  {"generator", "versions": {"torch", "transformers", "tokenizers", "safetensors"}, "data": "golden-data.jsonl",
   "max_tokens": 240, "precision": "...",
   "cases": [{"name", "template", "separator", "eos", "max_tokens",
              "templates": {"with_context", "without_context"},
              "checkpoints": [{"path" (repository-relative), "tokenizer" (path of tokenizer.json), "eos_id",
                               "position_limit", "model_type",
                               "examples": [{"index", "has_context", "skipped", "reason", "reason_detail",
                                             "with_context": null | {"prompt", "n", "full_len", "prefix_match",
                                                     "response_ids", "response_tokens", "nll_sum", "nll"},
                                             "without_context": {... the same},
                                             "criticality", "gain"}]}]}]}
  response_ids = full[n:] (+ eos_id); full_len = len(full) (without the eos). The file is indent=1 JSON with
  each example object on one line.

Rerun (from the repository root, CPU, about a minute): python3 Tools/goldens/make_criticality_goldens.py
  It reads the committed Probes/ift/alpaca-sample.json (check it first with
  python3 Tools/data/make_alpaca_sample.py --check) and the committed checkpoints, and rewrites the whole
  folder. Output is deterministic (one thread, fixed order): a rerun rewrites identical files. Every nll is
  also checked against transformers' own labels loss (assert, 1e-5).
Versions: Tools/requirements-goldens.txt.
"""
import copy
import json
import math
import os
import shutil

import safetensors
import tokenizers
import torch
import transformers as T

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "criticality")
SAMPLE = os.path.join(ROOT, "Probes", "ift", "alpaca-sample.json")
MAX_TOKENS = 240
FILTER_PERCENT = 25

TEMPLATES = {
    "alpaca": ("Below is an instruction that describes a task, paired with an input that provides further "
               "context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
               "{instruction}\n\n### Input:\n{context}\n\n### Response:",
               "Below is an instruction that describes a task. Write a response that appropriately completes "
               "the request.\n\n### Instruction:\n{instruction}\n\n### Response:",
               ""),
    "tulu": ("<|user|>\n{instruction}\n\n{context}\n<|assistant|>\n", "<|user|>\n{instruction}\n<|assistant|>\n", ""),
    "plain": ("Context: {context}\nQuestion: {instruction}\nAnswer:", "Question: {instruction}\nAnswer:", " "),
}

# Rows of Probes/ift/alpaca-sample.json (0-based), with their kind (make_alpaca_sample.py --kinds).
SAMPLE_ROWS = [(19, "a"), (51, "a"), (154, "a"), (170, "a"), (176, "a"), (190, "a"),
               (0, "b"), (2, "b"), (13, "b"), (21, "b"), (24, "b"), (54, "b"),
               (16, "c"), (22, "c"), (57, "c")]
LONG_CONTEXT = (
    "The Marrow Cross railway was opened in 1889 to carry slate from the quarries above the valley down to "
    "the harbour at Lowen Bay. It ran for eleven miles, crossed the river Hale three times on iron bridges, "
    "and climbed through a tunnel nearly a mile long under Thistle Ridge. Passenger trains were added in "
    "1902, with four stations: Marrow Cross, Eldermoor Halt, Kilbride Falls and Lowen Bay Quay. The line "
    "closed in 1961 when the last quarry shut, and the tunnel was sealed. In 2019 a group of volunteers "
    "reopened two miles of track as a heritage railway, which now carries visitors every weekend in summer.")
# (line text written as): "raw" = json.dumps(ensure_ascii=False), "escaped" = json.dumps(ensure_ascii=True,
# separators=(",", ":")) with the keys in the order given.
EDGE_ROWS = [
    ({"instruction": "What is 12 plus 30?", "output": "42"}, "raw"),                        # no "input" key
    ({"instruction": "Name two colours of the rainbow.", "input": "", "output": "Red and green."}, "raw"),
    ({"instruction": "Which city is the capital of Japan?", "input": "東京 is the capital of Japan.",
      "output": "東京 (Tokyo)."}, "raw"),
    ({"output": "Zürich.", "input": "The Grossmünster is a church in Zürich.",
      "instruction": "In which city is the Grossmünster?"}, "escaped"),
    ({"instruction": "List the two towns in the passage, one per line.",
      "input": "The bus runs from Dunmere to Nyholm.", "output": "Dunmere\nNyholm"}, "raw"),
    ({"instruction": "What did the sign say?", "input": "The sign on the bakery door said \"Back at two\".",
      "output": "\"Back at two\"."}, "raw"),
    ({"instruction": "Repeat nothing.", "input": "The lake is calm.", "output": ""}, "raw"),  # empty output
    ({"instruction": "Summarise the history of the railway.", "input": LONG_CONTEXT,
      "output": "Opened in 1889 for slate, the Marrow Cross railway closed in 1961; volunteers reopened two "
                "miles as a heritage line in 2019."}, "raw"),
]
DUPLICATE_OF = 5  # golden-data row copied (same line text) as the last row: a tie in criticality

CASES = [
    ("demo-alpaca", "alpaca", True, ["Demo/base", "Demo/full-ft/checkpoint-0", "Demo/full-ft/checkpoint-250",
                                     "Demo/full-ft/checkpoint-500"]),
    ("demo-tulu", "tulu", True, ["Demo/base"]),
    ("demo-plain", "plain", True, ["Demo/base", "Demo/full-ft/checkpoint-0", "Demo/full-ft/checkpoint-250",
                                   "Demo/full-ft/checkpoint-500"]),
    ("demo-plain-no-eos", "plain", False, ["Demo/base"]),
    ("probe-trajectory-alpaca", "alpaca", True, ["Tests/Fixtures/probe-trajectory/checkpoint-0"]),
    ("probe-gpt2-alpaca", "alpaca", True, ["Tests/Fixtures/probe-gpt2"]),
]
# (case, checkpoint, output stem) of the reference filters.
FILTERS = [("demo-alpaca", "Demo/base", "golden-data.filtered-25"),
           ("demo-plain", "Demo/base", "golden-data.plain.filtered-25")]


def golden_lines():
    sample = json.load(open(SAMPLE, encoding="utf-8"))
    lines = []
    for i, _ in SAMPLE_ROWS:
        r = sample[i]
        lines.append(json.dumps({"instruction": r["instruction"], "input": r["input"], "output": r["output"]},
                                ensure_ascii=False))
    for row, style in EDGE_ROWS:
        if style == "raw":
            lines.append(json.dumps(row, ensure_ascii=False))
        else:
            lines.append(json.dumps(row, ensure_ascii=True, separators=(",", ":")))
    lines.append(lines[DUPLICATE_OF])
    return lines


def render(tmpl, instruction, context):
    return tmpl.replace("{instruction}", instruction).replace("{context}", context)


def find_tokenizer(ckpt):
    d = os.path.join(ROOT, ckpt)
    for folder in (d, os.path.dirname(d)):
        if os.path.exists(os.path.join(folder, "tokenizer.json")):
            return folder
    raise FileNotFoundError(ckpt)


def load_tokenizer(folder, config):
    path = os.path.join(folder, "tokenizer.json")
    if os.path.exists(os.path.join(folder, "tokenizer_config.json")):
        tok = T.AutoTokenizer.from_pretrained(folder)
        eos = tok.eos_token_id
    else:
        tok = T.PreTrainedTokenizerFast(tokenizer_file=path)
        eos = config.eos_token_id
    assert eos is not None and eos == config.eos_token_id, (folder, eos, config.eos_token_id)
    raw = tokenizers.Tokenizer.from_file(path)

    def encode(text):
        ids = tok(text, add_special_tokens=True)["input_ids"]
        assert ids == raw.encode(text, add_special_tokens=True).ids, text
        return ids
    return encode, eos, os.path.relpath(path, ROOT)


def position_limit(config):
    for key in ("max_position_embeddings", "n_positions"):
        v = getattr(config, key, None)
        if v:
            return int(v)
    raise ValueError("no position limit")


@torch.no_grad()
def nll_sum(model, ids, n):
    logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    picked = logp[torch.arange(n - 1, len(ids) - 1), torch.tensor(ids[n:])]
    total = -float(picked.double().sum())
    # Cross-check with transformers' own shifted loss (labels -100 on the prompt): the same mean in float32.
    labels = torch.tensor([[-100] * n + ids[n:]])
    loss = float(model(input_ids=torch.tensor([ids]), labels=labels).loss)
    assert abs(loss - total / (len(ids) - n)) <= 1e-5 * max(1.0, abs(loss)), (loss, total)
    return total


def score_case(name, template, eos_on, ckpts, rows):
    with_t, without_t, sep = TEMPLATES[template]
    out = {"name": name, "template": template, "separator": sep, "eos": eos_on, "max_tokens": MAX_TOKENS,
           "templates": {"with_context": with_t, "without_context": without_t}, "checkpoints": []}
    for ckpt in ckpts:
        config = T.AutoConfig.from_pretrained(os.path.join(ROOT, ckpt))
        encode, eos, tok_path = load_tokenizer(find_tokenizer(ckpt), config)
        limit = position_limit(config)
        model = T.AutoModelForCausalLM.from_pretrained(os.path.join(ROOT, ckpt), dtype=torch.float32,
                                                       attn_implementation="eager").eval()
        examples = []
        for idx, row in enumerate(rows):
            context = row.get("input", "")
            has_ctx = context != ""
            conds = {}
            for cond, tmpl in (("with_context", with_t), ("without_context", without_t)):
                if cond == "with_context" and not has_ctx:
                    conds[cond] = None
                    continue
                prompt = render(tmpl, row["instruction"], context)
                full = encode(prompt + sep + row["output"])
                p_ids = encode(prompt)
                n = len(p_ids)
                resp = full[n:] + ([eos] if eos_on else [])
                conds[cond] = {"prompt": prompt, "n": n, "full_len": len(full),
                               "prefix_match": full[:n] == p_ids, "response_ids": resp,
                               "response_tokens": len(resp), "nll_sum": None, "nll": None,
                               "_ids": full + ([eos] if eos_on else [])}
            reason, detail = None, None
            if row["output"] == "":
                reason, detail = "empty_response", "the output is empty"
            elif any(c is not None and c["n"] == 0 for c in conds.values()):
                reason, detail = "empty_prompt", "full[:n] is empty"
            else:
                for cond in ("with_context", "without_context"):
                    c = conds[cond]
                    if c is None:
                        continue
                    length = len(c["_ids"])
                    if length > MAX_TOKENS or length > limit:
                        reason = "too_long"
                        detail = (f"{cond}: {length} tokens > "
                                  + " and ".join(s for s, over in ((f"--max-tokens {MAX_TOKENS}", length > MAX_TOKENS),
                                                                   (f"position limit {limit}", length > limit)) if over))
                        break
            crit = gain = None
            if reason is None:
                for c in conds.values():
                    if c is not None:
                        assert c["response_tokens"] > 0
                        c["nll_sum"] = nll_sum(model, c["_ids"], c["n"])
                        c["nll"] = c["nll_sum"] / c["response_tokens"]
                crit = math.exp(conds["without_context"]["nll"])
                if has_ctx:
                    gain = conds["without_context"]["nll"] - conds["with_context"]["nll"]
            for c in conds.values():
                if c is not None:
                    del c["_ids"]
            examples.append({"index": idx, "has_context": has_ctx, "skipped": reason is not None,
                             "reason": reason, "reason_detail": detail,
                             "with_context": conds["with_context"], "without_context": conds["without_context"],
                             "criticality": crit, "gain": gain})
        out["checkpoints"].append({"path": ckpt, "tokenizer": tok_path, "eos_id": eos, "position_limit": limit,
                                   "model_type": config.model_type, "examples": examples})
        scored = [e for e in examples if not e["skipped"]]
        print(f"{name} {ckpt}: {len(scored)}/{len(examples)} scored, "
              f"{sum(e['has_context'] for e in scored)} with context")
    return out


def dump_goldens(doc):
    """indent=1 JSON with each example on one line (keeps the file small and diffable)."""
    doc = copy.deepcopy(doc)
    compact = {}
    for case in doc["cases"]:
        for ckpt in case["checkpoints"]:
            for i, e in enumerate(ckpt["examples"]):
                key = f"@@example-{len(compact)}@@"
                compact[key] = json.dumps(e, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
                ckpt["examples"][i] = key
    text = json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    for key, line in compact.items():
        text = text.replace(f'"{key}"', line, 1)
    return text


def reference_filter(examples, lines, percent):
    """--filter-lowest percent%: returns (kept line texts, removed.json object)."""
    cands = [e for e in examples if not e["skipped"] and e["has_context"]]
    cands.sort(key=lambda e: (e["criticality"], e["index"]))
    k = len(cands) * percent // 100
    removed = cands[:k]
    gone = {e["index"] for e in removed}
    kept = [line for i, line in enumerate(lines) if i not in gone]
    return kept, {"removed": [{"index": e["index"], "criticality": e["criticality"]} for e in removed],
                  "percent": percent, "count_with_context": len(cands)}


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    lines = golden_lines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 24
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    with open(os.path.join(OUT, "golden-data.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(line + "\n" for line in lines))

    cases = [score_case(name, template, eos, ckpts, rows) for name, template, eos, ckpts in CASES]
    doc = {"generator": "Tools/goldens/make_criticality_goldens.py",
           "versions": {"torch": torch.__version__, "transformers": T.__version__,
                        "tokenizers": tokenizers.__version__, "safetensors": safetensors.__version__},
           "data": "golden-data.jsonl", "max_tokens": MAX_TOKENS,
           "precision": "float32 logits and log_softmax; selected log-probabilities summed in float64",
           "cases": cases}
    with open(os.path.join(OUT, "goldens.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(dump_goldens(doc))

    for case_name, ckpt, stem in FILTERS:
        case = next(c for c in cases if c["name"] == case_name)
        examples = next(c for c in case["checkpoints"] if c["path"] == ckpt)["examples"]
        kept, removed = reference_filter(examples, lines, FILTER_PERCENT)
        with open(os.path.join(OUT, stem + ".jsonl"), "w", encoding="utf-8", newline="\n") as f:
            f.write("".join(line + "\n" for line in kept))
        with open(os.path.join(OUT, stem + ".removed.json"), "w", encoding="utf-8", newline="\n") as f:
            f.write(json.dumps(removed, indent=1, allow_nan=False) + "\n")
        print(stem, removed)
    for name in sorted(os.listdir(OUT)):
        print(name, os.path.getsize(os.path.join(OUT, name)))


if __name__ == "__main__":
    main()
