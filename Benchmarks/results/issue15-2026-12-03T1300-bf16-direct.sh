#!/bin/bash
# Before (HEAD 1932f1f, oneDNN for every bf16 product) vs after (direct kernel up to 32 rows), alternating.
cd /work/wt-bf16
B=/tmp/bf16b-cpiscope-before; A=.build/release/cpiscope
M160=Benchmarks/models/llama-160m-bf16; M7=Benchmarks/models/llama-7b-bf16
for rows in 16 4 1; do
  for side in before after; do
    bin=$B; [ $side = after ] && bin=$A
    echo "=== llama-160m-bf16 $side: cpiscope bench $M160 --decode-rows $rows --tokens 128 --runs 3  (load $(cut -d' ' -f1-3 /proc/loadavg))"
    $bin bench $M160 --decode-rows $rows --tokens 128 --runs 3 2>&1 | grep -E "decoding|capture overhead|ceiling:"
  done
done
for rows in 16 4 1; do
  for side in before after; do
    bin=$B; [ $side = after ] && bin=$A
    echo "=== llama-7b-bf16 $side: cpiscope bench $M7 --decode-rows $rows --tokens 8 --runs 3  (load $(cut -d' ' -f1-3 /proc/loadavg))"
    $bin bench $M7 --decode-rows $rows --tokens 8 --runs 3 2>&1 | grep -E "decoding|capture overhead"
  done
done
echo "=== kernels side by side (after): cpiscope bench $M160 --tokens 8 --runs 5 --bf16-kernels 1,2,4,8,16,24,32,48,64"
$A bench $M160 --tokens 8 --runs 5 --bf16-kernels 1,2,4,8,16,24,32,48,64 2>&1 | sed -n '/bf16 product/,/peak/p'
