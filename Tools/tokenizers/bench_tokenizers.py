#!/usr/bin/env python3
"""Encoding rate of Python `tokenizers` next to cpiscope's Swift tokenizer, on the same ~1 MB text.

The text is the contexts and questions of ../shared/datasets/context-parametric-inversion joined
with newlines (or, when absent, the committed Tests/Fixtures/tokenizers/corpus.json texts),
repeated to reach --size bytes. Each tokenizer encodes the whole text in ONE call, best of
--repeat runs, single-threaded (RAYON_NUM_THREADS=1; one `encode` call does not use threads anyway).

Rerun (from the repository root):
    python3 -m pip install -r Tools/tokenizers/requirements.txt
    swift build -c release --product cpiscope
    python3 Tools/tokenizers/bench_tokenizers.py --swift .build/release/cpiscope
Without --swift only the Python side is timed. Not a test; figures go to BENCHMARKS.md.
"""
import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
from tokenizers import Tokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
if not os.path.isdir(SHARED) and os.path.isdir("/work/shared"):
    SHARED = "/work/shared"


def bench_text(size):
    base = os.path.join(SHARED, "datasets", "context-parametric-inversion")
    pieces = []
    if os.path.isdir(base):
        for name in ["world_facts.json", "country_capitals_only.json"]:
            with open(os.path.join(base, name), encoding="utf-8") as f:
                for item in json.load(f):
                    pieces += [item["context"], item["question"]]
        with open(os.path.join(base, "famous_biographies.jsonl"), encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    item = json.loads(line)
                    pieces += [item["context"], item["question"]]
    else:
        with open(os.path.join(ROOT, "Tests", "Fixtures", "tokenizers", "corpus.json"), encoding="utf-8") as f:
            pieces = json.load(f)["texts"]
    block = "\n".join(pieces)
    text = block
    while len(text.encode("utf-8")) < size:
        text += "\n" + block
    # Cut at a character boundary near `size` bytes.
    return text.encode("utf-8")[:size].decode("utf-8", errors="ignore")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=1_000_000, help="bytes of text (default 1 MB)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--swift", help="path to the cpiscope executable (release build) to time as well")
    ap.add_argument("--text-out", default="/tmp/cpiscope-bench-1mb.txt", help="where the benchmark text is written")
    ap.add_argument("tokenizers", nargs="*", help="tokenizer.json paths or folders (default: ../shared/tokenizers/* and the trained fixtures)")
    args = ap.parse_args()

    text = bench_text(args.size)
    with open(args.text_out, "w", encoding="utf-8") as f:
        f.write(text)
    paths = args.tokenizers
    if not paths:
        shared = os.path.join(SHARED, "tokenizers")
        if os.path.isdir(shared):
            paths += [os.path.join(shared, d) for d in sorted(os.listdir(shared))
                      if os.path.exists(os.path.join(shared, d, "tokenizer.json"))]
        trained = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers", "trained")
        paths += [os.path.join(trained, d) for d in sorted(os.listdir(trained))]
    print(f"text: {len(text.encode('utf-8'))} bytes, {len(text)} characters ({args.text_out})")
    for path in paths:
        file = os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path
        tok = Tokenizer.from_file(file)
        times = []
        n = 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            n = len(tok.encode(text, add_special_tokens=False).ids)
            times.append(time.perf_counter() - t0)
        best = min(times)
        mb = len(text.encode("utf-8")) / 1e6
        name = os.path.basename(os.path.normpath(path))
        print(f"{name:24s} python-tokenizers: {n} tokens, best {best:.3f} s, {mb / best:.2f} MB/s, {n / best:.0f} tokens/s")
        if args.swift:
            r = subprocess.run([args.swift, "tokenize", path, "--bench-file", args.text_out, "--bench-repeat",
                                str(args.repeat), "--no-special-tokens"], capture_output=True, text=True)
            line = (r.stdout.strip() or r.stderr.strip()).splitlines()[-1] if (r.stdout or r.stderr) else "(no output)"
            print(f"{'':24s} {line}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
