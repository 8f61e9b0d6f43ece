#!/usr/bin/env bash
# Runs every benchmark of BENCHMARKS.md in one session on this machine and prints the figures.
#   Benchmarks/run_benchmarks.sh [prefill|job|all]   (needs: swift build -c release; python3 Benchmarks/make_models.py --trajectory;
#                                                     the real GPT-2 tokenizer at ../shared/tokenizers/gpt2/tokenizer.json for the job)
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.build/release/cpiscope
M=Benchmarks/models
what=${1:-all}
echo "# $(date -u +%FT%TZ) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$what" = prefill ] || [ "$what" = all ]; then
  # GPT-2 has 1024 positions, so its longest prompt is 1024 tokens.
  for m in gpt2-small llama-160m llama-160m-bf16; do
    lens=128,512,2048; [ $m = gpt2-small ] && lens=128,512,1024
    echo "## cpiscope bench $m"
    /usr/bin/time -f "wall %e s, peak RSS %M KiB" $BIN bench $M/$m --tokens $lens --runs 5
    echo "## transformers prefill $m"
    /usr/bin/time -f "wall %e s, peak RSS %M KiB" python3 Benchmarks/hf_baseline.py prefill $M/$m --tokens $lens --runs 5
  done
fi
if [ "$what" = job ] || [ "$what" = all ]; then
  head -32 Probes/capitals.jsonl > /tmp/bench-probes.jsonl
  TOK=../shared/tokenizers/gpt2/tokenizer.json
  echo "## whole job: 8 checkpoints x 32 probes, gpt2-small shape, plain template, 12 new tokens"
  echo "### cpiscope"
  /usr/bin/time -f "wall %e s, peak RSS %M KiB" $BIN probe $M/gpt2-small-trajectory --probes /tmp/bench-probes.jsonl \
      --tokenizer $TOK -o /tmp/bench-cpiscope.h5 --force --quiet --max-new-tokens 12
  echo "### transformers"
  /usr/bin/time -f "wall %e s, peak RSS %M KiB" python3 Benchmarks/hf_baseline.py job $M/gpt2-small-trajectory \
      --probes /tmp/bench-probes.jsonl --tokenizer $TOK --out /tmp/bench-hf.h5 --max-new-tokens 12
fi
