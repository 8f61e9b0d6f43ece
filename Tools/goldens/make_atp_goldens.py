#!/usr/bin/env python3
"""Goldens for `cpiscope attribute` (attribution patching, AtP) from an independent torch implementation.

Nothing here comes from cpiscope. On the fixture trajectory Tests/Fixtures/probe-trajectory (checkpoint-0,
-10, -20, a 2-layer Llama with 4 heads of 8 and 2 kv heads; its probes.jsonl; template plain; its
tokenizer.json), transformers in float32 with eager attention on the CPU:

Prompts, ids and spans are built as the probe job builds them (as make_probe_fixtures.py and
make_dla_goldens.py do): prompt = "Context: {context}\\nQuestion: {question}\\nAnswer:", ids and character
offsets from `tokenizers` (BOS added by the post-processor), a token is in a span when its offsets are
non-empty and overlap the span's characters; spans: context and question where they were substituted,
subject = every case-insensitive, word-bounded mention of the annotated subject in the question and the
context. The answers' first tokens: the first id of prompt + " " + answer after the prompt's ids.

Hooks, registered as a TransformerLens user would by hand (retain_grad on each recorded tensor):
  hook_z          forward pre-hook on each self_attn.o_proj: its input [pos, head·d_head]
  hook_mlp_out    forward hook on each layer's mlp: its output [pos, d_model]
  hook_resid_pre  forward pre-hook on each decoder layer: its hidden_states input [pos, d_model]
The metric at the last prompt position: logit_diff = logits[a] − logits[b] (a, b the first tokens of the
context and memory answers), or mc = sigmoid(logit_diff) (= p_a / (p_a + p_b)); metric.backward().

The estimate for component c and baseline B: atp(c) = Σ_pos (B[pos] − a[pos]) · g[pos] over the positions
where B has a value (products of float32 values, summed in float64), with
  zero                 B = 0 at every position
  mean                 the mean over the probe set, at the same checkpoint, of the activation at the same
                       distance from the prompt's end (averaged over the probes long enough to have it)
  checkpoint:CKPT      CKPT's activations on the same prompt (CKPT = checkpoint-0; targets checkpoint-10, -20)
  corrupt:no-context   the probe's prompt with an empty context: clean position p < (first context token) maps
                       to p where the ids agree; p ≥ q (first question token) maps to p − q + q_corrupt where
                       the ids agree; any other position has no baseline (adds nothing)
atp_head_by_span: each head's sum over the positions of the context, subject and question spans, and "other"
(positions in none of them).

verify-top K: the K components of largest |mean over probes| (ties: heads layer-major, then mlp, then
resid), each written to its baseline at every position that has one (a hook that returns the replaced
activation), full forward; effect = metric_patched − metric_clean.

Cases (components heads,mlp,resid throughout):
  zero, mean, checkpoint (baseline checkpoint:checkpoint-0 at checkpoint-10 and -20), corrupt (corrupt:no-context)
  zero-mc (zero, metric mc); verify-top 3 for zero and corrupt.
Each case is also recomputed in float64 and the largest |fp32 − fp64| per variable is printed (the torch
side's own rounding, which bounds how close two correct fp32 implementations can agree).

Writes Tests/Fixtures/attribution/atp-goldens.json.
Rerun (from the repository root): python3 Tools/goldens/make_atp_goldens.py
"""
import json
import os
import re

import tokenizers
import torch
import transformers as T
from tokenizers import Tokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIX = os.path.join(ROOT, "Tests", "Fixtures")
TRAJ = os.path.join(FIX, "probe-trajectory")
OUT = os.path.join(FIX, "attribution", "atp-goldens.json")
CHECKPOINTS = ["checkpoint-0", "checkpoint-10", "checkpoint-20"]
SPANS = ["context", "subject", "question", "other"]
TEMPLATE = "Context: {context}\nQuestion: {question}\nAnswer:"
VERIFY_TOP = 3


def load(name, dtype):
    m = T.AutoModelForCausalLM.from_pretrained(os.path.join(TRAJ, name), attn_implementation="eager", dtype=dtype).eval()
    return m


# ---------------------------------------------------------------- prompts, ids, spans (as the probe job)

def mentions(needle, hay):
    """Case-insensitive, word-bounded occurrences of needle in hay (ASCII fixtures), as (start, end)."""
    out, n, h, i = [], needle.lower(), hay.lower(), 0
    word = lambda c: c.isascii() and c.isalnum()
    while True:
        i = h.find(n, i)
        if i < 0:
            return out
        if (word(n[0]) and i > 0 and word(h[i - 1])) or (word(n[-1]) and i + len(n) < len(h) and word(h[i + len(n)])):
            i += 1
            continue
        out.append((i, i + len(n)))
        i += len(n)


def build(tok, p, context):
    prompt = TEMPLATE.format(context=context, question=p["question"])
    enc = tok.encode(prompt)
    ids, offsets = enc.ids, enc.offsets
    c0 = len("Context: ")
    q0 = c0 + len(context) + len("\nQuestion: ")
    assert prompt[c0:c0 + len(context)] == context and prompt[q0:q0 + len(p["question"])] == p["question"]

    def positions(ranges):
        return [i for i, (s, e) in enumerate(offsets) if e > s and any(s < r1 and r0 < e for r0, r1 in ranges)]
    subj = [(q0 + s, q0 + e) for s, e in mentions(p["subject"], p["question"])] + \
           [(c0 + s, c0 + e) for s, e in mentions(p["subject"], context)]
    spans = {"context": positions([(c0, c0 + len(context))]), "subject": positions(subj),
             "question": positions([(q0, q0 + len(p["question"]))])}

    def first(ans):
        full = tok.encode(prompt + " " + ans).ids
        assert full[:len(ids)] == ids, "prompt ids are not a prefix of prompt + answer"
        return full[len(ids)]
    return {"id": p["id"], "prompt": prompt, "prompt_ids": ids, "spans": spans,
            "answer_first": first(p["answer"]), "memory_first": first(p["memory_answer"])}


def alignment(clean, corrupt):
    """Clean position → corrupted position (see the header)."""
    ids, xids = clean["prompt_ids"], corrupt["prompt_ids"]
    cstart = min(clean["spans"]["context"])
    m = {p: p for p in range(min(cstart, len(xids))) if ids[p] == xids[p]}
    q, qx = min(clean["spans"]["question"]), min(corrupt["spans"]["question"])
    for p in range(q, len(ids)):
        px = p - q + qx
        if px < len(xids) and ids[p] == xids[px]:
            m[p] = px
    return m


# ---------------------------------------------------------------- hooks

class Hooked:
    """Records hook_z, hook_mlp_out, hook_resid_pre of every layer (retain_grad), or replaces one of them."""

    def __init__(self, model):
        self.model = model
        self.layers = model.model.layers
        self.cfg = model.config
        self.H, self.dh = self.cfg.num_attention_heads, self.cfg.head_dim
        self.rec = {}
        self.patch = None  # (kind, layer, head or None, {pos: row tensor})
        self.handles = []
        for l, layer in enumerate(self.layers):
            self.handles.append(layer.self_attn.o_proj.register_forward_pre_hook(lambda m, args, l=l: self._pre("z", l, args)))
            self.handles.append(layer.mlp.register_forward_hook(lambda m, i, o, l=l: self._post("mlp", l, o)))
            self.handles.append(layer.register_forward_pre_hook(lambda m, args, kw, l=l: self._pre_kw("resid", l, args, kw), with_kwargs=True))

    def _replace(self, kind, l, x):
        if self.patch is not None and self.patch[0] == kind and self.patch[1] == l:
            _, _, h, rows = self.patch
            x = x.clone()
            for p, row in rows.items():
                if h is None:
                    x[0, p] = row
                else:
                    x[0, p, h * self.dh:(h + 1) * self.dh] = row
        if torch.is_grad_enabled() and x.requires_grad:
            x.retain_grad()
        self.rec[(kind, l)] = x
        return x

    def _pre(self, kind, l, args):
        return (self._replace(kind, l, args[0]),) + tuple(args[1:])

    def _pre_kw(self, kind, l, args, kw):
        if args:
            return (self._replace(kind, l, args[0]),) + tuple(args[1:]), kw
        kw = dict(kw)
        kw["hidden_states"] = self._replace(kind, l, kw["hidden_states"])
        return args, kw

    def _post(self, kind, l, out):
        return self._replace(kind, l, out)

    def forward(self, ids, grad):
        self.rec = {}
        with torch.set_grad_enabled(grad):
            return self.model(torch.tensor([ids])).logits[0, -1]


def metric_of(ld, metric):
    return ld if metric == "logit_diff" else torch.sigmoid(ld)


def activations(hm, ids):
    """{(kind, layer): [pos, width]} of one forward without gradients."""
    hm.forward(ids, grad=False)
    return {k: v[0].detach().clone() for k, v in hm.rec.items()}


# ---------------------------------------------------------------- one case

def run_case(dtype, probes, built, corrupt, case):
    """Estimates (and verified effects) of one case at its checkpoints, in `dtype`."""
    base_model = Hooked(load("checkpoint-0", dtype)) if case["baseline"].startswith("checkpoint:") else None
    out = {k: [] for k in ["clean_logit_diff", "clean_metric", "atp_head", "atp_head_by_span", "atp_mlp", "atp_resid"]}
    out["verified"] = []
    for ck in case["checkpoints"]:
        hm = Hooked(load(ck, dtype))
        L, H, dh = len(hm.layers), hm.H, hm.dh
        # The baseline rows per probe: {(kind, layer): {pos: row}} (row: [width]).
        if case["baseline"] == "mean":
            sums, counts = {}, {}
            for b in built:
                acts = activations(hm, b["prompt_ids"])
                n = len(b["prompt_ids"])
                for k, a in acts.items():
                    for p in range(n):
                        e = n - 1 - p
                        sums.setdefault(k, {}).setdefault(e, torch.zeros(a.shape[1], dtype=torch.float64))
                        sums[k][e] += a[p].double()
                        counts.setdefault(k, {}).setdefault(e, 0)
                        counts[k][e] += 1
            means = {k: {e: (s / counts[k][e]).to(dtype) for e, s in v.items()} for k, v in sums.items()}

        def baseline_rows(j):
            b = built[j]
            n = len(b["prompt_ids"])
            kinds = [(kind, l) for l in range(L) for kind in ("z", "mlp", "resid")]
            if case["baseline"] == "zero":
                return {k: {p: None for p in range(n)} for k in kinds}
            if case["baseline"] == "mean":
                return {k: {p: means[k][n - 1 - p] for p in range(n)} for k in kinds}
            if case["baseline"].startswith("checkpoint:"):
                acts = activations(base_model, b["prompt_ids"])
                return {k: {p: acts[k][p] for p in range(n)} for k in kinds}
            acts = activations(hm, corrupt[j]["prompt_ids"])
            amap = alignment(b, corrupt[j])
            return {k: {p: acts[k][px] for p, px in amap.items()} for k in kinds}

        row = {k: [] for k in out if k != "verified"}
        base_all = []
        for j, b in enumerate(built):
            ids, a, bb = b["prompt_ids"], b["answer_first"], b["memory_first"]
            base = baseline_rows(j)  # before the clean pass: corrupt's forward overwrites the recorded tensors
            base_all.append(base)
            logits = hm.forward(ids, grad=True)
            ld = logits[a] - logits[bb]
            m = metric_of(ld, case["metric"])
            hm.model.zero_grad(set_to_none=True)
            m.backward()
            row["clean_logit_diff"].append(float(ld.detach()))
            row["clean_metric"].append(float(m.detach()))
            n = len(ids)
            in_span = [[p in b["spans"][s] for s in SPANS[:3]] for p in range(n)]
            in_span = [x + [not any(x)] for x in in_span]

            def contribution(kind, l, col, count):
                act, g = hm.rec[(kind, l)][0].detach(), hm.rec[(kind, l)].grad[0]
                total, by = 0.0, [0.0] * len(SPANS)
                for p, r in base[(kind, l)].items():
                    bv = torch.zeros(count, dtype=act.dtype) if r is None else r[col:col + count]
                    s = float(((bv - act[p, col:col + count]).double() * g[p, col:col + count].double()).sum())
                    total += s
                    for si in range(len(SPANS)):
                        if in_span[p][si]:
                            by[si] += s
                return total, by
            heads, by_span = [], []
            for l in range(L):
                hr, br = [], []
                for h in range(H):
                    t, by = contribution("z", l, h * dh, dh)
                    hr.append(t)
                    br.append(by)
                heads.append(hr)
                by_span.append(br)
            d = hm.cfg.hidden_size
            row["atp_head"].append(heads)
            row["atp_head_by_span"].append(by_span)
            row["atp_mlp"].append([contribution("mlp", l, 0, d)[0] for l in range(L)])
            row["atp_resid"].append([contribution("resid", l, 0, d)[0] for l in range(L)])
        for k in row:
            out[k].append(row[k])

        if case.get("verify_top"):
            P = len(built)
            cands = [(f"L{l}H{h}", "z", l, h, [row["atp_head"][j][l][h] for j in range(P)]) for l in range(L) for h in range(H)]
            cands += [(f"mlp{l}", "mlp", l, None, [row["atp_mlp"][j][l] for j in range(P)]) for l in range(L)]
            cands += [(f"resid{l}", "resid", l, None, [row["atp_resid"][j][l] for j in range(P)]) for l in range(L)]
            mean_abs = [abs(sum(c[4]) / P) for c in cands]
            order = sorted(range(len(cands)), key=lambda i: (-mean_abs[i], i))[:case["verify_top"]]
            names, effects, estimates = [], [], []
            for i in order:
                name, kind, l, h, est = cands[i]
                names.append(name)
                estimates.append(est)
                eff = []
                for j, b in enumerate(built):
                    width = dh if h is not None else hm.cfg.hidden_size
                    rows = {}
                    for p, r in base_all[j][(kind, l)].items():
                        if r is None:
                            rows[p] = torch.zeros(width, dtype=dtype)
                        else:
                            rows[p] = r[h * dh:(h + 1) * dh] if h is not None else r
                    hm.patch = (kind, l, h, rows)
                    logits = hm.forward(b["prompt_ids"], grad=False)
                    hm.patch = None
                    m = metric_of(logits[b["answer_first"]] - logits[b["memory_first"]], case["metric"])
                    eff.append(float(m) - row["clean_metric"][j])
                effects.append(eff)
            out["verified"].append({"names": names, "estimates": estimates, "effects": effects,
                                    "mean_abs": {cands[i][0]: mean_abs[i] for i in range(len(cands))}})
    return out


def flat(x):
    if isinstance(x, list):
        for y in x:
            yield from flat(y)
    elif isinstance(x, dict):
        for y in x.values():
            yield from flat(y)
    else:
        yield x


def rounded(x):
    if isinstance(x, list):
        return [rounded(y) for y in x]
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    if isinstance(x, float):
        return float(f"{x:.9g}")
    return x


def main():
    T.logging.disable_progress_bar()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    tok = Tokenizer.from_file(os.path.join(TRAJ, "tokenizer.json"))
    probes = [json.loads(l) for l in open(os.path.join(TRAJ, "probes.jsonl"))]
    built = [build(tok, p, p["context"]) for p in probes]
    corrupt = [build(tok, p, "") for p in probes]
    # The ids and spans agree with the probe job's (Tests/Fixtures/probe-trajectory/goldens.json, which the
    # probe golden tests check against cpiscope; the Swift test checks them against the job directly too).
    ref = json.load(open(os.path.join(TRAJ, "goldens.json")))["checkpoints"]["checkpoint-10"]
    for b, r in zip(built, ref):
        assert b["prompt"] == r["prompt"] and b["prompt_ids"] == r["prompt_ids"], b["id"]
        assert b["spans"]["context"] == r["span_positions"]["context"] and b["spans"]["question"] == r["span_positions"]["question"], b["id"]
        assert b["answer_first"] == r["answer_ids"][0] and b["memory_first"] == r["memory_ids"][0], b["id"]
        assert b["spans"]["subject"], b["id"]
    cases = {
        "zero": {"baseline": "zero", "metric": "logit_diff", "checkpoints": CHECKPOINTS, "verify_top": VERIFY_TOP},
        "mean": {"baseline": "mean", "metric": "logit_diff", "checkpoints": CHECKPOINTS},
        "checkpoint": {"baseline": "checkpoint:checkpoint-0", "metric": "logit_diff", "checkpoints": CHECKPOINTS[1:]},
        "corrupt": {"baseline": "corrupt:no-context", "metric": "logit_diff", "checkpoints": CHECKPOINTS, "verify_top": VERIFY_TOP},
        "zero-mc": {"baseline": "zero", "metric": "mc", "checkpoints": CHECKPOINTS},
    }
    out_cases = {}
    for name, case in cases.items():
        r32 = run_case(torch.float32, probes, built, corrupt, case)
        r64 = run_case(torch.float64, probes, built, corrupt, case)
        report = []
        for k in ["clean_logit_diff", "clean_metric", "atp_head", "atp_head_by_span", "atp_mlp", "atp_resid"]:
            a, b = list(flat(r32[k])), list(flat(r64[k]))
            scale = max(abs(x) for x in b)
            report.append(f"{k} max|fp32−fp64| {max(abs(x - y) for x, y in zip(a, b)):.2e} (max|v| {scale:.3g})")
        for v32, v64 in zip(r32["verified"], r64["verified"]):
            d = max(abs(x - y) for x, y in zip(flat(v32["effects"]), flat(v64["effects"])))
            report.append(f"verified {v32['names']} (fp64 {v64['names']}) effects max|fp32−fp64| {d:.2e}")
        print(name, "\n  " + "\n  ".join(report))
        out_cases[name] = dict(case, components="heads,mlp,resid", **r32)
    golden = {
        "generator": "Tools/goldens/make_atp_goldens.py",
        "versions": {"torch": torch.__version__, "transformers": T.__version__, "tokenizers": tokenizers.__version__},
        "dtype": "float32", "attention": "eager", "template": "plain", "spans": SPANS,
        "probes": [dict(b, corrupt_prompt_ids=c["prompt_ids"], corrupt_question_start=min(c["spans"]["question"]),
                        alignment=sorted(alignment(b, c).items())) for b, c in zip(built, corrupt)],
        "cases": rounded(out_cases),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
