#!/usr/bin/env python3
"""Deviation of probe-job results between runs (issue 15): cpiscope run files (any precision) and
Benchmarks/hf_baseline.py job files (float32 or bfloat16), against the first file given.

Per file: max and mean |Δ| of the attention mass from the answer position to the context span (every
layer and head), of M_C and of the logit difference logit[context answer] − logit[memory answer] (both
after the last block, from the lens log-probabilities), and the greedy agreement (share of probes whose
generated text, first line stripped, is identical).

    python3 Tools/precision/compare_runs.py REF.h5 OTHER.h5 ...   (label=path also accepted)
"""
import sys

import h5py
import numpy as np


def load(path):
    with h5py.File(path, "r") as f:
        if f.attrs.get("tool") in ("cpiscope", b"cpiscope"):
            spans = [s.decode() if isinstance(s, bytes) else s for s in f["span"][()]]
            ctx = f["attention_mass"][:, :, spans.index("context")]          # (ckpt, probe, layer, head)
        else:
            ctx = f["attention_mass"][:, :, :, 0]                             # (ckpt, probe, layer, span, head) → context
        lp = f["lens_logprob"][()]
        if lp.ndim == 4 and lp.shape[2] == 2:                                  # cpiscope: (ckpt, probe, answer, lens_layer)
            diff = lp[:, :, 0, -1] - lp[:, :, 1, -1]
        else:                                                                  # hf: (ckpt, probe, lens_layer, answer)
            diff = lp[:, :, -1, 0] - lp[:, :, -1, 1]
        mc = f["mc_ratio"][:, :, -1]
        gen = [[(g.decode() if isinstance(g, bytes) else g).strip().split("\n")[0].strip() for g in row] for row in f["generated"][()]]
    return dict(ctx=ctx.astype(np.float64), mc=mc.astype(np.float64), diff=diff.astype(np.float64), gen=gen)


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    named = [(a.split("=", 1) if "=" in a else (a, a)) for a in args]
    ref_name, ref = named[0][0], load(named[0][1])
    print(f"reference: {ref_name}")
    print("run | context mass max/mean |Δ| | M_C max/mean |Δ| | logit diff max/mean |Δ| | greedy agreement")
    for name, path in named[1:]:
        r = load(path)
        row = [name]
        for key in ("ctx", "mc", "diff"):
            d = np.abs(r[key] - ref[key])
            d = d[np.isfinite(d)]
            row.append(f"{d.max():.2e} / {d.mean():.2e}")
        pairs = [(a, b) for ra, rb in zip(r["gen"], ref["gen"]) for a, b in zip(ra, rb)]
        row.append(f"{sum(a == b for a, b in pairs)}/{len(pairs)}")
        print(" | ".join(row))


if __name__ == "__main__":
    main()
