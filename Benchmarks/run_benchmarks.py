#!/usr/bin/env python3
"""Runs every benchmark of BENCHMARKS.md (issue #8) in one session and writes the figures.

Both sides run on this machine in the same session, one after the other, per model and per workload:
cpiscope (release build) and the Python baseline Benchmarks/hf_baseline.py (transformers on the CPU, torch
threads = cores, fp32, eager attention, output_attentions and output_hidden_states, logit lens at every
layer). Nothing here is a test; timings are never asserted.

  prefill   `cpiscope bench MODEL --tokens … --runs R` vs `hf_baseline.py prefill MODEL --tokens … --runs R`
            for gpt2-small (128, 512, 1024 tokens: GPT-2 has 1024 positions), llama-160m and llama-160m-bf16
            (128, 512, 1024, 2048), each under /usr/bin/time for the peak RSS.
  job       the whole probe job, timed from outside (process start, loading, tokenization, HDF5 included):
            8 checkpoints × 32 probes and 1 × 32 for both sides, R runs each (median, min, max).
  scaling   cpiscope's job over 1 × 8, 8 × 8 and 4 × 32 (with the job section: checkpoints × probes ∈ {1, 4, 8} × {8, 32}).

Needs: `swift build -c release`, `python3 Benchmarks/make_models.py --trajectory`, the packages in
Tools/requirements-goldens.txt, and the real GPT-2 tokenizer at ../shared/tokenizers/gpt2/tokenizer.json
(for the job; override with --tokenizer).

    python3 Benchmarks/run_benchmarks.py [--runs 5] [--job-runs 5] [--only prefill,job,scaling]

Writes Benchmarks/results/<UTC date>.json (every raw figure) and prints a Markdown summary.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".build" / "release" / "cpiscope"
MODELS = ROOT / "Benchmarks" / "models"
WORK = Path("/tmp/cpiscope-bench")


def timed(cmd, **kw):
    """Runs cmd under /usr/bin/time; returns (stdout+stderr text, wall seconds, peak RSS MiB)."""
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "__time__ %e %M", *map(str, cmd)], cwd=ROOT, capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t0
    out = r.stdout + r.stderr
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(map(str, cmd))}\n{out[-3000:]}")
    m = re.search(r"__time__ ([\d.]+) (\d+)", out)
    return out, wall, int(m.group(2)) / 1024 if m else float("nan")


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    def version(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except Exception:
            return "?"
    import torch
    import transformers
    return {"date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"), "cpu": cpu,
            "cores": os.cpu_count(), "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "kernel": platform.release(), "swift": version(["swift", "--version"]),
            "openblas": version(["dpkg-query", "-W", "-f", "${Version}", "libopenblas0-pthread"]),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "load_average_start": open("/proc/loadavg").read().split()[:3]}


def weight_mib(path):
    return sum(f.stat().st_size for f in Path(path).glob("*.safetensors")) / 2**20


def parse_bench(text):
    rows = []
    for m in re.finditer(r"^\s*(\d+) \| (\w+)\s*\|\s*([\d.]+) \|\s*([\d.]+) \|\s*([\d.]+) \|\s*(\d+) \|\s*([\d.]+) \|\s*(\d+)%", text, re.M):
        rows.append({"tokens": int(m.group(1)), "pass": m.group(2), "median_ms": float(m.group(3)), "min_ms": float(m.group(4)),
                     "max_ms": float(m.group(5)), "tokens_per_s": float(m.group(6)), "gflops": float(m.group(7)),
                     "pct_sgemm": float(m.group(8))})
    sgemm = float(re.search(r"sgemm \[[^]]*\]·\[[^]]*\]: ([\d.]+) GFLOP/s", text).group(1))
    rss = float(re.search(r"peak RSS: ([\d.]+) MiB", text).group(1))
    return rows, sgemm, rss


def parse_hf(text):
    rows = []
    for m in re.finditer(r"^\s*(\d+) tokens\s+median\s+([\d.]+) ms\s+min\s+([\d.]+)\s+max\s+([\d.]+)", text, re.M):
        rows.append({"tokens": int(m.group(1)), "median_ms": float(m.group(2)), "min_ms": float(m.group(3)), "max_ms": float(m.group(4))})
    return rows


def prefill(runs):
    out = []
    for model, lengths in [("gpt2-small", "128,512,1024"), ("llama-160m", "128,512,1024,2048"), ("llama-160m-bf16", "128,512,1024,2048")]:
        path = MODELS / model
        print(f"prefill {model} …", file=sys.stderr)
        text, wall, rss = timed([BIN, "bench", path, "--tokens", lengths, "--runs", runs])
        rows, sgemm, own_rss = parse_bench(text)
        htext, hwall, hrss = timed([sys.executable, "Benchmarks/hf_baseline.py", "prefill", path, "--tokens", lengths, "--runs", runs])
        out.append({"model": model, "weights_mib": weight_mib(path), "cpiscope": rows, "sgemm_gflops": sgemm,
                    "cpiscope_peak_rss_mib": rss, "transformers": parse_hf(htext), "transformers_peak_rss_mib": hrss,
                    "cpiscope_log": text, "transformers_log": htext})
    return out


def trajectory(k):
    """A folder with the first k checkpoints of the benchmark trajectory (symlinks)."""
    src = MODELS / "gpt2-small-trajectory"
    ckpts = sorted(src.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[:k]
    d = WORK / f"traj{k}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for c in ckpts:
        (d / c.name).symlink_to(c)
    return d


def probes(n):
    f = WORK / f"probes{n}.jsonl"
    lines = [l for l in (ROOT / "Probes" / "capitals.jsonl").read_text().splitlines() if l.strip()][:n]
    f.write_text("\n".join(lines) + "\n")
    return f


def job_once(side, k, n, tokenizer):
    traj, pf = trajectory(k), probes(n)
    if side == "cpiscope":
        cmd = [BIN, "probe", traj, "--probes", pf, "--tokenizer", tokenizer, "-o", WORK / "c.h5", "--force", "--quiet",
               "--max-new-tokens", 12]
    else:
        cmd = [sys.executable, "Benchmarks/hf_baseline.py", "job", traj, "--probes", pf, "--tokenizer", tokenizer,
               "--out", WORK / "t.h5", "--max-new-tokens", 12]
    _, wall, rss = timed(cmd)
    return wall, rss


def summary(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "runs": xs}


def job(runs, tokenizer, workloads):
    out = []
    for k, n, sides in workloads:
        for side in sides:
            print(f"job {side} {k}×{n} ×{runs} …", file=sys.stderr)
            walls, rsss = [], []
            for _ in range(runs):
                w, r = job_once(side, k, n, tokenizer)
                walls.append(w)
                rsss.append(r)
            out.append({"side": side, "checkpoints": k, "probes": n, "wall_s": summary(walls), "peak_rss_mib": max(rsss)})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="prefill runs per length (medians of these)")
    ap.add_argument("--job-runs", type=int, default=5, help="runs of each whole-job workload")
    ap.add_argument("--only", default="prefill,job,scaling")
    ap.add_argument("--tokenizer", default=str(ROOT.parent / "shared" / "tokenizers" / "gpt2" / "tokenizer.json"))
    a = ap.parse_args()
    if not BIN.exists():
        sys.exit("build first: swift build -c release")
    if not (MODELS / "gpt2-small-trajectory").exists():
        sys.exit("make the models first: python3 Benchmarks/make_models.py --trajectory")
    WORK.mkdir(parents=True, exist_ok=True)
    only = set(a.only.split(","))
    res = {"machine": machine(), "commands": " ".join(sys.argv)}
    if "prefill" in only:
        res["prefill"] = prefill(a.runs)
    if "job" in only:
        res["job"] = job(a.job_runs, a.tokenizer, [(8, 32, ["cpiscope", "transformers"]), (1, 32, ["cpiscope", "transformers"])])
    if "scaling" in only:
        # With the job section's 1 × 32 and 8 × 32 runs this gives the checkpoints × probes grid.
        res["scaling"] = job(a.job_runs, a.tokenizer, [(1, 8, ["cpiscope"]), (8, 8, ["cpiscope"]), (4, 32, ["cpiscope"])])
    res["machine"]["load_average_end"] = open("/proc/loadavg").read().split()[:3]
    dest = ROOT / "Benchmarks" / "results"
    dest.mkdir(exist_ok=True)
    name = dest / (datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M") + ".json")
    name.write_text(json.dumps(res, indent=1))
    print(f"wrote {name}", file=sys.stderr)
    print(render(res))


def render(res):
    m = res["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['mem_gib']} GiB; {m['swift']}; OpenBLAS {m['openblas']}; "
             f"torch {m['torch']}, transformers {m['transformers']}; {m['date_utc']} UTC; load average "
             f"{' '.join(m['load_average_start'])} → {' '.join(m.get('load_average_end', []))}", ""]
    for p in res.get("prefill", []):
        lines += [f"### Prefill, {p['model']} ({p['weights_mib']:.0f} MiB of weights; sgemm {p['sgemm_gflops']:.1f} GFLOP/s in the same run)", "",
                  "| tokens | cpiscope none ms | capture ms | capture + lens ms [min–max] | transformers ms [min–max] | speed-up | GFLOP/s (capture) | % of sgemm | capture overhead |",
                  "|---|---|---|---|---|---|---|---|---|"]
        hf = {r["tokens"]: r for r in p["transformers"]}
        for n in sorted({r["tokens"] for r in p["cpiscope"]}):
            by = {r["pass"]: r for r in p["cpiscope"] if r["tokens"] == n}
            lens, cap, none, t = by["lens"], by["capture"], by["none"], hf.get(n)
            ratio = f"{t['median_ms'] / lens['median_ms']:.2f}×" if t else "–"
            tt = f"{t['median_ms']:.0f} [{t['min_ms']:.0f}–{t['max_ms']:.0f}]" if t else "–"
            lines.append(f"| {n} | {none['median_ms']:.0f} | {cap['median_ms']:.0f} | {lens['median_ms']:.0f} [{lens['min_ms']:.0f}–{lens['max_ms']:.0f}] | {tt} | {ratio} | "
                         f"{cap['gflops']:.1f} | {cap['pct_sgemm']:.0f}% | {(cap['median_ms'] / none['median_ms'] - 1) * 100:+.1f}% |")
        lines += ["", f"Peak RSS: cpiscope {p['cpiscope_peak_rss_mib']:.0f} MiB ({p['cpiscope_peak_rss_mib'] / p['weights_mib']:.2f}× the weights), "
                  f"transformers {p['transformers_peak_rss_mib']:.0f} MiB.", ""]
    for key, title in [("job", "Whole job"), ("scaling", "Scaling (cpiscope)")]:
        if key not in res:
            continue
        lines += [f"### {title}", "", "| side | checkpoints × probes | wall s median [min–max] | runs | peak RSS MiB | s per checkpoint × probe |", "|---|---|---|---|---|---|"]
        for j in res[key]:
            w = j["wall_s"]
            lines.append(f"| {j['side']} | {j['checkpoints']} × {j['probes']} | {w['median']:.1f} [{w['min']:.1f}–{w['max']:.1f}] | {len(w['runs'])} | "
                         f"{j['peak_rss_mib']:.0f} | {w['median'] / (j['checkpoints'] * j['probes']):.3f} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
