#!/usr/bin/env python3
"""Goldens for Tests/AnalysisTests: the seeded generators, percentiles, ranks, Spearman and the
paired bootstrap, computed independently of the Swift code.

  SplitMix64 / xoshiro256**: re-implemented here from the reference C code
      (https://prng.di.unimi.it/splitmix64.c, https://prng.di.unimi.it/xoshiro256starstar.c),
      xoshiro seeded with the first four SplitMix64 outputs.
  index(below n): (next() * n) >> 64.
  percentiles: numpy.percentile(method="linear"); ranks: scipy.stats.rankdata(method="average");
  Spearman: scipy.stats.spearmanr.
  bootstrap: resample r draws n indices in order; mean of the drawn values; 2.5/97.5 percentiles.

Rerun (versions in Tools/requirements-analysis.txt):
    python3 Tools/analysis_goldens.py > Tests/Fixtures/analysis/goldens.json
"""
import json

import numpy as np
import scipy.stats

M = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return state, z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M


class Xoshiro:
    def __init__(self, seed):
        s, st = seed, []
        for _ in range(4):
            s, z = splitmix64(s)
            st.append(z)
        self.s = st

    def next(self):
        s = self.s
        result = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def index(self, n):
        return (self.next() * n) >> 64


def bootstrap(d, seed, resamples):
    rng = Xoshiro(seed)
    n = len(d)
    means = []
    for _ in range(resamples):
        total = 0.0
        for _ in range(n):
            total += d[rng.index(n)]
        means.append(total / n)
    means = np.array(means)
    return {
        "d": d, "seed": seed, "resamples": resamples,
        "mean": float(np.sum(d) / n),
        "low": float(np.percentile(means, 2.5, method="linear")),
        "high": float(np.percentile(means, 97.5, method="linear")),
    }


def main():
    out = {}
    sm = []
    for seed in [0, 1, 0xDEADBEEF]:
        s, vals = seed, []
        for _ in range(4):
            s, z = splitmix64(s)
            vals.append(str(z))
        sm.append({"seed": seed, "outputs": vals})
    out["splitmix64"] = sm
    xs = []
    for seed in [0, 42, 2**64 - 1]:
        r = Xoshiro(seed)
        xs.append({"seed": str(seed), "outputs": [str(r.next()) for _ in range(6)]})
    out["xoshiro256starstar"] = xs
    r = Xoshiro(7)
    out["index_below"] = {"seed": 7, "n": 13, "outputs": [r.index(13) for _ in range(20)]}

    data = [3.5, -1.0, 2.25, 8.0, 0.5, 0.5, 4.0]
    out["percentile"] = {"data": data, "q": [0.0, 0.025, 0.25, 0.5, 0.9, 0.975, 1.0],
                         "values": [float(np.percentile(data, 100 * q, method="linear"))
                                    for q in [0.0, 0.025, 0.25, 0.5, 0.9, 0.975, 1.0]]}
    tied = [10.0, 20.0, 20.0, 5.0, 20.0, 10.0, 1.0]
    out["ranks"] = {"data": tied, "ranks": [float(x) for x in scipy.stats.rankdata(tied, method="average")]}
    cases = [
        ([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]),
        ([0.1, 0.4, 0.4, 0.2, 0.9, 0.9], [3, 1, 2, 2, 5, 4]),
        ([1, 2, 3, 4], [4, 3, 2, 1]),
        ([0.3, 0.1, 0.2, 0.5, 0.5, 0.4, 0.0], [0.0, 0.0, 0.5, 1.0, 0.5, 0.5, 0.0]),
    ]
    out["spearman"] = [{"x": [float(v) for v in x], "y": [float(v) for v in y],
                        "rho": float(scipy.stats.spearmanr(x, y).statistic)} for x, y in cases]
    out["bootstrap"] = [
        bootstrap([0.1, -0.2, 0.35, 0.05, 0.4, -0.05, 0.2, 0.15, 0.3, 0.0], 0, 1000),
        bootstrap([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0], 12345, 500),
        bootstrap([0.25], 3, 50),
    ]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
