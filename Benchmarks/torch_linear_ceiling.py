#!/usr/bin/env python3
"""Issue 26: torch's bf16 F.linear rate at a 7B MLP shape, the reference ceiling of `cpiscope bench`.

    python3 Benchmarks/torch_linear_ceiling.py --rows 128 --threads 2 --runs 10

Prints the median GFLOP/s of F.linear(x[rows, 4096] bf16, W[11008, 4096] bf16) (weights in a checkpoint's
[out, in] layout, plain, as torch keeps them), after a warm-up, on `--threads` intra-op threads.
"""
import argparse
import time

import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, nargs="+", default=[128])
ap.add_argument("--k", type=int, default=4096)
ap.add_argument("--n", type=int, default=11008)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--runs", type=int, default=10)
a = ap.parse_args()
torch.set_num_threads(a.threads)
w = (torch.rand(a.n, a.k) * 0.01).to(torch.bfloat16)
for m in a.rows:
    x = (torch.rand(m, a.k) * 0.01).to(torch.bfloat16)
    for _ in range(3):
        F.linear(x, w)
    t = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        F.linear(x, w)
        t.append(time.perf_counter() - t0)
    t.sort()
    med = t[len(t) // 2]
    print(f"torch {torch.__version__} F.linear bf16 [{m}x{a.k}]·[{a.n}x{a.k}]ᵀ, {a.threads} threads: median {med*1e3:.2f} ms, "
          f"{2*m*a.k*a.n/med/1e9:.1f} GFLOP/s (best {2*m*a.k*a.n/t[0]/1e9:.1f})")
