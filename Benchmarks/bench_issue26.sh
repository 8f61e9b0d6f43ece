#!/usr/bin/env bash
# Issue 26: the roofline, decoding at memory speed, the product ceiling against torch, the GPT-2 job.
# Compares two cpiscope release binaries in one run (OLD before issue 26, NEW after), alternating, R rounds.
#
#   OLD=/path/old/cpiscope NEW=.build/release/cpiscope R=2 Benchmarks/bench_issue26.sh [sections]
#
# Sections (default: decode ceiling job):
#   decode   7B BF16 decoding steps of 1, 8, 16 rows against reading every weight byte once (bench --decode-rows)
#   ceiling  7B prefill at 128 and 512 tokens (NEW's bench: roofline and passes) and torch's F.linear bf16 rate
#            at [128|512 × 4096]·[11008 × 4096]ᵀ on 2 threads (Benchmarks/torch_linear_ceiling.py), alternating
#   job      GPT-2-124M F32, 2 checkpoints × 16 capitals probes (20 new tokens), default settings and
#            --batch-memory 1024, against transformers (Benchmarks/hf_baseline.py job)
# Needs the benchmark models (python3 Benchmarks/make_models.py --trajectory --llama7b-bf16). Prints the load
# average before each run: the development machine is shared with compilers.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD="${OLD:?the cpiscope binary from before issue 26}"; NEW="${NEW:-.build/release/cpiscope}"; R="${R:-2}"
SECTIONS="${*:-decode ceiling job}"
M=Benchmarks/models
load() { cut -d' ' -f1-3 /proc/loadavg; }
if [[ " $SECTIONS " == *" decode "* ]]; then
  for i in $(seq "$R"); do
    echo "=== decode OLD round $i (load $(load)): one row count per run"
    for rows in 1 8 16; do "$OLD" bench "$M/llama-7b-bf16" --tokens 8 --runs 3 --decode-rows $rows 2>&1 | grep -E "decoding step,"; done
    echo "=== decode NEW round $i (load $(load))"
    "$NEW" bench "$M/llama-7b-bf16" --tokens 8 --runs 3 --decode-rows 1,8,16 2>&1 | grep -E "decoding step,|roofline"
  done
fi
if [[ " $SECTIONS " == *" ceiling "* ]]; then
  for i in $(seq "$R"); do
    echo "=== ceiling round $i (load $(load))"
    python3 Benchmarks/torch_linear_ceiling.py --rows 128 512 --threads 2 --runs 10
    "$NEW" bench "$M/llama-7b-bf16" --tokens 128,512 --runs 3 2>&1 | grep -E "roofline|^ +[0-9]+ \| none"
    python3 Benchmarks/torch_linear_ceiling.py --rows 128 512 --threads 2 --runs 10
  done
fi
if [[ " $SECTIONS " == *" job "* ]]; then
  work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/traj"
  for c in checkpoint-0 checkpoint-100; do ln -s "$PWD/$M/gpt2-small-trajectory/$c" "$work/traj/$c"; done
  head -n 16 Probes/capitals.jsonl > "$work/probes.jsonl"
  TOK="${TOK:-../shared/tokenizers/gpt2/tokenizer.json}"
  secs() { local s e; s=$(date +%s.%N); "$@" > /dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
  for i in $(seq "$R"); do
    echo "=== job round $i (load $(load))"
    echo "cpiscope NEW default:            $(secs "$NEW" probe "$work/traj" --probes "$work/probes.jsonl" --tokenizer "$TOK" -o "$work/a.h5" --force --quiet --max-new-tokens 20) s"
    echo "cpiscope NEW --batch-memory 1024: $(secs "$NEW" probe "$work/traj" --probes "$work/probes.jsonl" --tokenizer "$TOK" -o "$work/b.h5" --force --quiet --max-new-tokens 20 --batch-memory 1024) s"
    echo "cpiscope OLD --batch-memory 1024: $(secs "$OLD" probe "$work/traj" --probes "$work/probes.jsonl" --tokenizer "$TOK" -o "$work/c.h5" --force --quiet --max-new-tokens 20 --batch-memory 1024) s"
    echo "transformers:                     $(secs python3 Benchmarks/hf_baseline.py job "$work/traj" --probes "$work/probes.jsonl" --tokenizer "$TOK" --out "$work/hf.json" --max-new-tokens 20) s"
  done
fi
