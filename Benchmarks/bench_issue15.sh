#!/usr/bin/env bash
# Issue 15 benchmarks, side by side in one session (BENCHMARKS.md, "Issue 15"). Not a test.
#   1. 7B-shaped BF16 prefill: cpiscope bench (bf16; the oneDNN bf16 ceiling [128x4096]·[4096x11008]
#      re-measured between rounds) and hf_baseline.py prefill --dtype bfloat16, at 128 and 512 tokens.
#   2. The whole probe job, 7B-shaped BF16, 1 checkpoint × 8 world_facts probes: cpiscope bf16 (the
#      default), cpiscope fp32, transformers bf16; wall time and peak RSS from /usr/bin/time, then the
#      deviations between the three run files (Tools/precision/compare_runs.py).
#   3. GPT-2-124M F32, 2 checkpoints × 16 world_facts probes: cpiscope (fp32, the default) vs transformers fp32.
#      cpiscope as shipped (it restarts itself with OPENBLAS_CORETYPE=SkylakeX where OpenBLAS 0.3.21 falls back
#      to Prescott kernels on an AVX-512 CPU) and with OpenBLAS's own choice (CPISCOPE_KEEP_BLAS_CORE=1).
#   Only some sections: SECTIONS="3" Benchmarks/bench_issue15.sh 3
#   4. F16 (llama-160m-f16): cpiscope bench in fp32 and bf16 (the F16 default, docs/precision.md).
#   5. 7B decoding step of 16 and 8 sequences against reading every weight byte once (bench --decode-rows).
# Needs: swift build -c release; python3 Benchmarks/make_models.py --trajectory --llama7b-bf16;
# ../shared/datasets/context-parametric-inversion/world_facts.json; ../shared/tokenizers/gpt2/tokenizer.json.
#   Benchmarks/bench_issue15.sh [RUNS] 2>&1 | tee Benchmarks/results/issue15-$(date -u +%Y-%m-%dT%H%M).txt
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
B=.build/release/cpiscope
M=Benchmarks/models
W=/tmp/cpiscope-issue15; mkdir -p $W
SHARED=${CPISCOPE_SHARED:-../shared}
python3 - "$SHARED/datasets/context-parametric-inversion/world_facts.json" $W <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for n in (8, 16):
    open(f"{sys.argv[2]}/world_facts_{n}.jsonl", "w").write("".join(json.dumps(x) + "\n" for x in d[:n]))
PY
mkdir -p $W/gpt2-2ck
for c in checkpoint-0 checkpoint-100; do ln -sfn "$PWD/$M/gpt2-small-trajectory/$c" $W/gpt2-2ck/$c; done
t() { /usr/bin/time -f "  wall %e s, peak RSS %M KiB" "$@"; }
echo "== $(date -u) $(uptime)"; lscpu | grep "Model name"
S=${SECTIONS:-1 2 3 4 5}
want() { [[ " $S " == *" $1 "* ]]; }
if want 1; then
echo "== 1. prefill, llama-7b-bf16"
t $B bench $M/llama-7b-bf16 --tokens 128,512 --runs $RUNS
t python3 Benchmarks/hf_baseline.py prefill $M/llama-7b-bf16 --tokens 128,512 --runs $RUNS --dtype bfloat16
fi
if want 2; then
echo "== 2. whole job, llama-7b-bf16, 1 × 8 (max 12 new tokens)"
for p in bf16 fp32; do
  echo "-- cpiscope --precision $p"
  CPISCOPE_TIMING=1 t $B probe $M/llama-7b-bf16 --probes $W/world_facts_8.jsonl --max-new-tokens 12 --precision $p --force --quiet -o $W/7b-cp-$p.h5
done
echo "-- transformers bf16"
t python3 Benchmarks/hf_baseline.py job $M/llama-7b-bf16 --probes $W/world_facts_8.jsonl --tokenizer $M/llama-7b-bf16/tokenizer.json --out $W/7b-hf-bf16.h5 --dtype bfloat16
python3 Tools/precision/compare_runs.py "cpiscope fp32=$W/7b-cp-fp32.h5" "cpiscope bf16=$W/7b-cp-bf16.h5"
python3 Tools/precision/compare_runs.py "transformers bf16=$W/7b-hf-bf16.h5" "cpiscope bf16=$W/7b-cp-bf16.h5" "cpiscope fp32=$W/7b-cp-fp32.h5"
fi
if want 3; then
echo "== 3. whole job, gpt2-small F32, 2 × 16"
for r in $(seq $RUNS); do
  echo "-- run $r: cpiscope (fp32)"; t $B probe $W/gpt2-2ck --probes $W/world_facts_16.jsonl --tokenizer $SHARED/tokenizers/gpt2/tokenizer.json --max-new-tokens 12 --force --quiet -o $W/gpt2-cp.h5 >/dev/null
  echo "-- run $r: cpiscope (fp32, OpenBLAS's own kernel choice: CPISCOPE_KEEP_BLAS_CORE=1)"; CPISCOPE_KEEP_BLAS_CORE=1 t $B probe $W/gpt2-2ck --probes $W/world_facts_16.jsonl --tokenizer $SHARED/tokenizers/gpt2/tokenizer.json --max-new-tokens 12 --force --quiet -o $W/gpt2-cp.h5 >/dev/null
  echo "-- run $r: transformers fp32"; t python3 Benchmarks/hf_baseline.py job $W/gpt2-2ck --probes $W/world_facts_16.jsonl --tokenizer $SHARED/tokenizers/gpt2/tokenizer.json --out $W/gpt2-hf.h5 >/dev/null
done
fi
if want 4; then
echo "== 4. F16 precision, llama-160m-f16"
for p in fp32 bf16; do t $B bench $M/llama-160m-f16 --tokens 128,512 --runs $RUNS --precision $p; done
fi
if want 5; then
echo "== 5. decoding step, llama-7b-bf16"
for rows in 16 8; do $B bench $M/llama-7b-bf16 --tokens 8 --runs $RUNS --decode-rows $rows | grep -E "decoding|ceiling"; done
fi
echo "== $(date -u) $(uptime)"
