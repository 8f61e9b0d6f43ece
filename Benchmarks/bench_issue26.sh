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
#   job7b    7B BF16, 1 checkpoint × 8 world_facts probes, default settings: NEW with CPISCOPE_TIMING=1 (each
#            phase against the roofline measured in the same process) and transformers bf16, alternating
#   criticality  7B BF16 `criticality` on the first 40 examples of Probes/ift/alpaca-sample.json with
#            CPISCOPE_TIMING=1 (the scoring passes against the roofline), torch's F.linear at 512 and 2048
#            rows (the pass's size) before and after
#   trajectory  a 2-checkpoint 7B trajectory (the model and a byte copy of it, $M/llama-7b-bf16-copy, made
#            once: 13 GB) with a cold page cache (drop_caches: needs root) against two warm single-checkpoint
#            runs of the same job (1 × 8 world_facts probes); the cold run once with the weight hashes cached
#            (as for any job after the first on these checkpoints) and once with CPISCOPE_HASH_CACHE=0
# Needs the benchmark models (python3 Benchmarks/make_models.py --trajectory --llama7b-bf16). Prints the load
# average before each run: the development machine is shared with compilers.
set -euo pipefail
cd "$(dirname "$0")/.."
NEW="${NEW:-.build/release/cpiscope}"; R="${R:-2}"
SECTIONS="${*:-decode ceiling job}"
M=Benchmarks/models
load() { cut -d' ' -f1-3 /proc/loadavg; }
needs_old() { OLD="${OLD:?the cpiscope binary from before issue 26 (sections decode, job)}"; }
SHARED="${CPISCOPE_SHARED:-../shared}"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
python3 - "$SHARED/datasets/context-parametric-inversion/world_facts.json" "$W" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
open(f"{sys.argv[2]}/world_facts_8.jsonl", "w").write("".join(json.dumps(x) + "\n" for x in d[:8]))
d = json.load(open("Probes/ift/alpaca-sample.json"))
json.dump(d[:40], open(f"{sys.argv[2]}/alpaca40.json", "w"))
PY
if [[ " $SECTIONS " == *" decode "* ]]; then
  needs_old
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
  needs_old
  work="$W"
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
wall() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); printf '  %.1f s wall: %s\n' "$(echo "$e - $s" | bc)" "$(basename "$1") $2"; }
if [[ " $SECTIONS " == *" job7b "* ]]; then
  for i in $(seq "$R"); do
    echo "=== 7B job round $i (load $(load))"
    CPISCOPE_TIMING=1 wall "$NEW" probe "$M/llama-7b-bf16" --probes "$W/world_facts_8.jsonl" -o "$W/7b.h5" --force --quiet 2>&1 | grep -E "timing|wall"
    wall python3 Benchmarks/hf_baseline.py job "$M/llama-7b-bf16" --probes "$W/world_facts_8.jsonl" \
      --tokenizer "$M/llama-7b-bf16/tokenizer.json" --out "$W/7b-hf.h5" --dtype bfloat16 2>&1 | grep wall
  done
fi
if [[ " $SECTIONS " == *" criticality "* ]]; then
  for i in $(seq "$R"); do
    echo "=== criticality round $i (load $(load))"
    python3 Benchmarks/torch_linear_ceiling.py --rows 512 2048 --threads 2 --runs 5
    CPISCOPE_TIMING=1 "$NEW" criticality "$M/llama-7b-bf16" --data "$W/alpaca40.json" --template alpaca -o "$W/crit.h5" \
      --force --quiet 2>&1 | grep -E "timing|tokens/s"
    python3 Benchmarks/torch_linear_ceiling.py --rows 512 2048 --threads 2 --runs 5
  done
fi
if [[ " $SECTIONS " == *" trajectory "* ]]; then
  [[ -d "$M/llama-7b-bf16-copy" ]] || cp -r "$M/llama-7b-bf16" "$M/llama-7b-bf16-copy"
  mkdir -p "$W/traj7b"
  ln -sfn "$PWD/$M/llama-7b-bf16" "$W/traj7b/checkpoint-0"; ln -sfn "$PWD/$M/llama-7b-bf16-copy" "$W/traj7b/checkpoint-1"
  job() { "$NEW" probe "$@" --probes "$W/world_facts_8.jsonl" --tokenizer "$M/llama-7b-bf16/tokenizer.json" -o "$W/t.h5" --force --quiet; }
  for i in $(seq "$R"); do
    echo "=== trajectory round $i (load $(load))"
    job "$W/traj7b/checkpoint-0" > /dev/null; wall job "$W/traj7b/checkpoint-0"    # warm (after a first run)
    job "$W/traj7b/checkpoint-1" > /dev/null; wall job "$W/traj7b/checkpoint-1"
    sync; echo 3 > /proc/sys/vm/drop_caches
    echo "  page cache dropped: $(grep -E '^Cached' /proc/meminfo)"
    wall job "$W/traj7b"                                                           # cold, both checkpoints
    sync; echo 3 > /proc/sys/vm/drop_caches
    echo "  page cache dropped; weight hashes not cached (CPISCOPE_HASH_CACHE=0): both checkpoints hashed too"
    CPISCOPE_HASH_CACHE=0 wall job "$W/traj7b"
  done
fi
