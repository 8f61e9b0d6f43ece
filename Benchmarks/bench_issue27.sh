#!/bin/bash
# Issue 27: attribution patching at 7B (Llama-2-7B-shaped, BF16 weights), 1 checkpoint × 8 world_facts
# probes, against (a) the probe job's instrumented prompt passes on the same probes (CPISCOPE_TIMING=1) and
# (b) answering the same question by per-head ablation (`intervene --ablate heads:…`), measured on 1 and 5
# heads and extrapolated to all 1024. Every command in one run, on one machine.
# Needs: swift build -c release; python3 Benchmarks/make_models.py --llama7b-bf16;
# ../shared/datasets/context-parametric-inversion/world_facts.json.
# Usage: Benchmarks/bench_issue27.sh [CPISCOPE_BINARY]
set -euo pipefail
B=${1:-.build/release/cpiscope}
M=Benchmarks/models/llama-7b-bf16
SHARED=${SHARED:-../shared}
W=$(mktemp -d /tmp/cpiscope-bench27.XXXXXX)
python3 - "$SHARED/datasets/context-parametric-inversion/world_facts.json" "$W" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d = d if isinstance(d, list) else d.get("data", d.get("examples", []))
open(f"{sys.argv[2]}/world_facts_8.jsonl", "w").write("".join(json.dumps(x) + "\n" for x in d[:8]))
PY
P=$W/world_facts_8.jsonl
t() { local s=$(date +%s.%N); "$@"; local e=$(date +%s.%N); printf "wall %.1f s: %s\n" "$(echo "$e - $s" | bc)" "$*" >&2; }
uptime
echo "== warm the page cache"; cat $M/*.safetensors > /dev/null
echo "== probe job (its prompt passes are the reference)"
CPISCOPE_TIMING=1 t $B probe $M --probes $P --max-new-tokens 12 --force --quiet -o $W/probe.h5 2>&1 | grep -E "timing|wall" || true
echo "== attribute: every head and MLP, zero baseline"
t $B attribute $M --probes $P --components heads,mlp --baseline zero --force --quiet --top 5 -o $W/atp.h5
echo "== per-head ablation: 1 head, then 5 heads (no generation)"
t $B intervene $M --probes $P --ablate heads:0.0 --force --quiet -o $W/abl1.h5
t $B intervene $M --probes $P --ablate heads:0.0,8.3,15.7,24.1,31.31 --force --quiet -o $W/abl5.h5
uptime
rm -rf "$W"
