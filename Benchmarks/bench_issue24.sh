#!/usr/bin/env bash
# Issue 24: what making run files independent of --threads costs (products cut into column tiles fixed by
# the shape, `ProductTiling`), and what the OpenBLAS restart gains where it fires. Compares two cpiscope
# release binaries in one run on one machine: OLD (before the change; products split by the thread count)
# and NEW (tiled). Both sides alternate, R runs each; medians.
#
#   OLD=/path/old/cpiscope NEW=.build/release/cpiscope R=3 Benchmarks/bench_issue24.sh
#
# Needs the benchmark models (python3 Benchmarks/make_models.py --trajectory --llama7b-bf16).
#   job      GPT-2-124M F32, 2 checkpoints × 16 capitals probes, default settings, 12 new tokens
#   prefill  Llama-2-7B-shaped BF16, `cpiscope bench --tokens 128,512` (bf16 on oneDNN)
#   cores    `cpiscope bench` GPT-2 prefill (128 tokens) under OPENBLAS_CORETYPE=Prescott, Haswell, SkylakeX
set -euo pipefail
cd "$(dirname "$0")/.."
OLD="${OLD:?the cpiscope binary from before the change}"; NEW="${NEW:-.build/release/cpiscope}"; R="${R:-3}"
SECTIONS="${SECTIONS:-job prefill cores}"
M=Benchmarks/models
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
mkdir -p "$work/traj"
for c in checkpoint-0 checkpoint-100; do ln -s "$PWD/$M/gpt2-small-trajectory/$c" "$work/traj/$c"; done
head -n 16 Probes/capitals.jsonl > "$work/probes.jsonl"
TOK="${TOK:-../shared/tokenizers/gpt2/tokenizer.json}"

secs() { local s e; s=$(date +%s.%N); "$@" > /dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

if [[ " $SECTIONS " == *" job "* ]]; then
  for side in OLD NEW; do : > "$work/$side.job"; done
  for i in $(seq "$R"); do
    for side in OLD NEW; do
      bin=${!side}
      secs "$bin" probe "$work/traj" --probes "$work/probes.jsonl" --tokenizer "$TOK" -o "$work/$side.h5" --force --quiet --max-new-tokens 12 >> "$work/$side.job"
    done
  done
  for side in OLD NEW; do echo "job $side: median $(median < "$work/$side.job") s over $R runs ($(tr '\n' ' ' < "$work/$side.job"))"; done
fi
if [[ " $SECTIONS " == *" prefill "* ]]; then
  for side in OLD NEW; do
    echo "prefill $side:"; "${!side}" bench "$M/llama-7b-bf16" --tokens 128,512 --runs "$R" 2>&1 | grep -E "tokens|ceiling|GFLOP|^ +[0-9]+ \|" | head -12
  done
fi
if [[ " $SECTIONS " == *" cores "* ]]; then
  for core in Prescott Haswell SkylakeX; do
    echo "cores $core:"; OPENBLAS_CORETYPE=$core "$NEW" bench "$M/gpt2-small" --tokens 128 --runs "$R" 2>&1 | grep -E "kernel|128|sgemm" | head -4
  done
fi
