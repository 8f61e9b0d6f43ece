#!/usr/bin/env python3
"""Generates the safetensors goldens under Tests/Fixtures/safetensors/.

Rerun (from the package root, with the versions pinned in Tools/requirements-safetensors.txt):

    pip install -r Tools/requirements-safetensors.txt
    python3 Tools/gen_safetensors_fixtures.py

Writes
  decode.safetensors     three tensors written by `safetensors.torch.save_file` (F32, F16, BF16)
                         holding the same decimal inputs, plus __metadata__.
  decode_expected.json   for each tensor: dtype, shape, and the float32 bit pattern (uint32) of every
                         element as torch computes it with `.to(torch.float32)`. The Swift test
                         compares the reader's Float32 output bit for bit (tolerance 0).
  validation_corpus.json hand-made byte images (hex), valid and broken, each with the verdict of the
                         reference reader `safetensors.safe_open` 0.8.0 (accepted, or its error).
                         The Swift test requires: every image the reference rejects, we reject.
  sharded/               a 3-tensor F32 state dict split into two shards by huggingface_hub
                         `save_torch_state_dict` (model-0000k-of-00002.safetensors +
                         model.safetensors.index.json), values 0, 1, 2, ... per tensor.
CI never runs this script; its outputs are committed.
"""
import json
import math
import os
import struct
import tempfile

import numpy as np
import huggingface_hub
import torch
from huggingface_hub import save_torch_state_dict
from safetensors import safe_open
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "safetensors")

# Chosen to cover: zeros of both signs, exactly representable values, values that round differently
# in F16 and BF16, the F16 extremes (max normal, min normal, min subnormal), a BF16-only large value
# (overflows F16 to inf), infinities and NaN.
VALUES = [
    0.0, -0.0, 1.0, -2.5, 0.1, 1.0 / 3.0, 3.140625, -1000.5,
    65504.0,                 # F16 max normal
    6.103515625e-05,         # F16 min normal (2^-14)
    5.960464477539063e-08,   # F16 min subnormal (2^-24)
    1.0e-6,                  # F16 subnormal, BF16 normal
    3.0e38,                  # F16 -> inf, BF16 finite
    math.inf, -math.inf, math.nan,
]
SHAPE = [4, 4]


def bits(t: torch.Tensor) -> list:
    return [int(b) for b in t.to(torch.float32).contiguous().numpy().view(np.uint32).reshape(-1)]


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    base = torch.tensor(VALUES, dtype=torch.float64).reshape(SHAPE)
    tensors = {
        "w.f32": base.to(torch.float32),
        "w.f16": base.to(torch.float16),
        "w.bf16": base.to(torch.bfloat16),
    }
    meta = {"format": "pt", "generator": "Tools/gen_safetensors_fixtures.py"}
    save_file(tensors, os.path.join(OUT, "decode.safetensors"), metadata=meta)
    expected = {
        "metadata": meta,
        "inputs": [repr(v) for v in VALUES],
        "tensors": {
            name: {
                "dtype": {"w.f32": "F32", "w.f16": "F16", "w.bf16": "BF16"}[name],
                "shape": SHAPE,
                "float32_bits": bits(t),
            }
            for name, t in tensors.items()
        },
        "versions": {"safetensors": __import__("safetensors").__version__, "torch": torch.__version__,
                     "numpy": np.__version__},
    }
    with open(os.path.join(OUT, "decode_expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")

    sharded = os.path.join(OUT, "sharded")
    os.makedirs(sharded, exist_ok=True)
    for f in os.listdir(sharded):
        os.remove(os.path.join(sharded, f))
    state = {
        "embed.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4),
        "layer.0.weight": torch.arange(8, dtype=torch.float32).reshape(2, 4),
        "layer.1.bias": torch.arange(4, dtype=torch.float32),
    }
    # 60 bytes per shard forces a split: embed (48 B) alone, then the two small tensors (32 + 16 B).
    save_torch_state_dict(state, sharded, max_shard_size=60)

    write_validation_corpus()


def image(header: bytes, data: bytes = b"", declared=None) -> bytes:
    n = len(header) if declared is None else declared
    return struct.pack("<Q", n) + header + data


def t(name, dtype, shape, start, end):
    return '"%s":{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (name, dtype, json.dumps(shape), start, end)


def h(*entries) -> bytes:
    return ("{" + ",".join(entries) + "}").encode()


# name -> byte image. Kept small: each is under 200 bytes.
CORPUS = {
    "valid_f32": image(h(t("a", "F32", [1], 0, 4)), b"\0" * 4),
    "valid_leading_space": image(b" " + h(t("a", "F32", [1], 0, 4)), b"\0" * 4),
    "valid_trailing_space": image(h(t("a", "F32", [1], 0, 4)) + b"   ", b"\0" * 4),
    "valid_extra_field": image(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}', b"\0" * 4),
    "valid_scalar": image(h(t("a", "F32", [], 0, 4)), b"\0" * 4),
    "valid_zero_elements": image(h(t("a", "F32", [0, 3], 0, 0))),
    "valid_empty": image(b"{}"),
    "valid_metadata_null": image(b'{"__metadata__":null}'),
    "valid_metadata": image(b'{"__metadata__":{"k":"v"},' + h(t("a", "F32", [1], 0, 4))[1:], b"\0" * 4),
    "valid_unordered_entries": image(h(t("b", "F32", [1], 4, 8), t("a", "F32", [1], 0, 4)), b"\0" * 8),
    "valid_f4_even": image(h(t("a", "F4", [4], 0, 2)), b"\0" * 2),
    "valid_f6": image(h(t("a", "F6_E2M3", [4], 0, 3)), b"\0" * 3),
    "valid_f8_e8m0": image(h(t("a", "F8_E8M0", [4], 0, 4)), b"\0" * 4),
    "valid_c64": image(h(t("a", "C64", [1], 0, 8)), b"\0" * 8),
    "valid_unicode_name": image('{"\u00e9":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'.encode(), b"\0" * 4),
    "valid_escaped_name": image(b'{"a\\u00e9":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4),
    "duplicate_name": image(h(t("a", "F32", [1], 0, 4), t("a", "F32", [1], 0, 4)), b"\0" * 4),
    "too_small": b"\0" * 5,
    "empty_file": b"",
    "header_too_large": struct.pack("<Q", 100_000_001) + b"{}",
    "header_u64_max": struct.pack("<Q", 2**64 - 1) + b"{}",
    "header_past_eof": image(b"{}", declared=1000),
    "not_utf8": image(b'{"a\xff":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4),
    "bad_json": image(b'{"a":', b""),
    "trailing_nul": image(h(t("a", "F32", [1], 0, 4)) + b"\0", b"\0" * 4),
    "header_array": image(b"[]"),
    "metadata_int_value": image(b'{"__metadata__":{"a":1}}'),
    "metadata_nested": image(b'{"__metadata__":{"k":{"x":"y"}}}'),
    "entry_not_object": image(b'{"a":5}'),
    "missing_shape": image(b'{"a":{"dtype":"F32","data_offsets":[0,4]}}', b"\0" * 4),
    "missing_dtype": image(b'{"a":{"shape":[1],"data_offsets":[0,4]}}', b"\0" * 4),
    "missing_offsets": image(b'{"a":{"dtype":"F32","shape":[1]}}', b"\0" * 4),
    "float_shape": image(b'{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', b"\0" * 4),
    "negative_shape": image(b'{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', b"\0" * 4),
    "three_offsets": image(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}', b"\0" * 4),
    "huge_offset": image(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551616]}}', b"\0" * 4),
    "unknown_dtype": image(h(t("a", "F33", [1], 0, 4)), b"\0" * 4),
    "lowercase_dtype": image(h(t("a", "f32", [1], 0, 4)), b"\0" * 4),
    "lone_surrogate": image(b'{"a\\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4),
    "size_overflow": image(h(t("a", "F32", [4611686018427387904, 4], 0, 4)), b"\0" * 4),
    "f4_odd": image(h(t("a", "F4", [3], 0, 2)), b"\0" * 2),
    "inverted_offsets": image(h(t("a", "F32", [0], 4, 0))),
    "gap_between": image(h(t("a", "F32", [1], 0, 4), t("b", "F32", [1], 8, 12)), b"\0" * 12),
    "gap_at_start": image(h(t("a", "F32", [1], 4, 8)), b"\0" * 8),
    "overlap": image(h(t("a", "F32", [2], 0, 8), t("b", "F32", [1], 4, 8)), b"\0" * 8),
    "length_mismatch": image(h(t("a", "F32", [2], 0, 4)), b"\0" * 4),
    "truncated": image(h(t("a", "F32", [2], 0, 8)), b"\0" * 5),
    "trailing_bytes": image(h(t("a", "F32", [1], 0, 4)), b"\0" * 5),
}


def write_validation_corpus() -> None:
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in CORPUS.items():
            path = os.path.join(tmp, name + ".safetensors")
            with open(path, "wb") as f:
                f.write(data)
            try:
                with safe_open(path, framework="np") as f:
                    list(f.keys())
                verdict = "ok"
            except Exception as e:  # the reference's error text, for the reader of the fixture
                verdict = "error: " + str(e).splitlines()[0][:160]
            cases.append({"name": name, "hex": data.hex(), "reference": verdict})
    with open(os.path.join(OUT, "validation_corpus.json"), "w") as f:
        json.dump({"reference": "safetensors.safe_open " + __import__("safetensors").__version__,
                   "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
