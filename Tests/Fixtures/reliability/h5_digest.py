#!/usr/bin/env python3
"""Digests of a cpiscope run file, for the reliability tests in Tests/CLITests (run through Process).

    h5_digest.py digest RUN.h5        JSON: {"complete": [...], "run_complete": 0|1,
                                             "attrs": {name: repr}, "vars": {name: {"shape", "dtype",
                                             "slices": [sha256 per checkpoint] | "whole": sha256}}}
    h5_digest.py same A.h5 B.h5       JSON: {"same": true|false, "differences": [...]}: the digests
                                      compared with `created` and `command_line` left out (the
                                      attributes that record when and how a file was made); exit 0
                                      when the same, 1 when not.
    h5_digest.py diff A.h5 B.h5       JSON: {name: max |a - b|} for every floating-point variable
                                      (NaN in both counts as equal; NaN in one only gives "inf"),
                                      and {name: count of differing elements} for the others.

Digests hash the raw bytes (bitwise for floats); strings are hashed as UTF-8 with a separator.
Variables whose first dimension is `checkpoint` are hashed one checkpoint slice at a time, so a test
can compare only the checkpoints marked complete. Needs h5py and numpy.
"""
import hashlib
import json
import sys

import h5py
import numpy as np


def first_dim(ds):
    try:
        return [d.name.rsplit("/", 1)[-1] for d in ds.dims[0].values()][0] if len(ds.dims) else None
    except Exception:
        return None


def blob(a):
    a = np.asarray(a)
    if a.dtype.kind == "O" or a.dtype.kind in "SU":
        flat = [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in a.reshape(-1)]
        return "\x1f".join(flat).encode("utf-8") + repr(a.shape).encode()
    return np.ascontiguousarray(a).tobytes() + repr((a.shape, a.dtype.str)).encode()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def digest(path):
    with h5py.File(path, "r") as f:
        out = {"complete": [int(x) for x in f["checkpoint_complete"][:]],
               "run_complete": int(f.attrs.get("complete", -1)),
               "attrs": {k: repr(v.tolist() if hasattr(v, "tolist") else v) for k, v in f.attrs.items()},
               "vars": {}}
        for name, ds in f.items():
            if not isinstance(ds, h5py.Dataset):
                continue
            data = ds[()]
            entry = {"shape": list(ds.shape), "dtype": str(ds.dtype)}
            if first_dim(ds) == "checkpoint" and name != "checkpoint":
                entry["slices"] = [sha(blob(data[i])) for i in range(ds.shape[0])]
            else:
                entry["whole"] = sha(blob(data))
            out["vars"][name] = entry
        return out


# Attributes that record when and how a file was made; the only ones `same` ignores.
PER_PROCESS = ("created", "command_line")


def same(a_path, b_path):
    a, b = digest(a_path), digest(b_path)
    for d in (a, b):
        for k in PER_PROCESS:
            d["attrs"].pop(k, None)
    out = []
    for key in ("complete", "run_complete"):
        if a[key] != b[key]:
            out.append(key)
    for k in sorted(set(a["attrs"]) | set(b["attrs"])):
        if a["attrs"].get(k) != b["attrs"].get(k):
            out.append("attr " + k)
    for k in sorted(set(a["vars"]) | set(b["vars"])):
        if a["vars"].get(k) != b["vars"].get(k):
            out.append("var " + k)
    return {"same": not out, "differences": out}


def diff(a_path, b_path):
    out = {}
    with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
        for name, ds in a.items():
            if not isinstance(ds, h5py.Dataset) or name not in b:
                continue
            x, y = ds[()], b[name][()]
            if x.shape != y.shape:
                out[name] = "shape"
                continue
            if x.dtype.kind == "f":
                nan_x, nan_y = np.isnan(x), np.isnan(y)
                if (nan_x != nan_y).any():
                    out[name] = "inf"
                    continue
                d = np.abs(x.astype(np.float64) - y.astype(np.float64))[~nan_x]
                out[name] = float(d.max()) if d.size else 0.0
            else:
                out[name] = int((np.asarray(x) != np.asarray(y)).sum())
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "digest":
        print(json.dumps(digest(sys.argv[2])))
    elif len(sys.argv) == 4 and sys.argv[1] == "same":
        result = same(sys.argv[2], sys.argv[3])
        print(json.dumps(result))
        sys.exit(0 if result["same"] else 1)
    elif len(sys.argv) == 4 and sys.argv[1] == "diff":
        print(json.dumps(diff(sys.argv[2], sys.argv[3])))
    else:
        sys.exit(__doc__)
