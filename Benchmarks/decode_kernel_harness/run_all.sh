#!/bin/bash
# Issue 26, third session: the decoding-kernel measurements of BENCHMARKS.md in one log.
set -e
H=$(cd "$(dirname "$0")" && pwd); K=$H/../../Sources/CBF16Kernel; T=$(mktemp -d)
cd $H
clang -O2 -c $K/bf16_kernel.c -I $K/include -o $T/prod.o
# cpiscope's kernel with every VDPBF16PS replaced by an add (memonly)
sed -e 's/acc\[r\]\[o\] = _mm512_dpbf16_ps(acc\[r\]\[o\], xv, wv\[o\]);/acc[r][o] = _mm512_add_ps(acc[r][o], _mm512_castsi512_ps(_mm512_xor_si512((__m512i)xv, (__m512i)wv[o])));/' \
    -e 's/cpiscope_bf16_linear_outin/prod_memonly/g' -e 's/cpiscope_bf16_linear_inout/prod_memonly_inout/g' \
    -e 's/cpiscope_bf16_kernel_available/pk_avail/; s/cpiscope_cpu_has_avx512_skylakex/pk_sx/g; s/cpiscope_bf16_stream_read/pk_read/' $K/bf16_kernel.c > $T/memonly.c
clang -O2 -c $T/memonly.c -I $K/include -o $T/memonly.o
clang -O2 -DNAME=blocked_kb768 -DKB=768 -c blocked.c -o $T/b.o
clang -O2 -DNAME=blocked_kb768_memonly -DKB=768 -DNOCOMPUTE -c blocked.c -o $T/bm.o
clang -O2 -DVARIANTS_DECL="V(prod_memonly) V(blocked_kb768) V(blocked_kb768_memonly)" -DVARIANTS_LIST="prod_memonly, blocked_kb768, blocked_kb768_memonly" \
    -DVARIANTS_NAMES='"prod-memonly","blocked","blocked-memonly"' compare.c $T/prod.o $T/memonly.o $T/b.o $T/bm.o -I $K/include -o $T/compare -lpthread
clang -O2 access_patterns.c -o $T/patterns -lpthread
clang -O2 -march=native peak.c -o $T/peak
date -u; lscpu | grep -E "Model name|Flags" | cut -c1-80; uptime
echo "== VDPBF16PS peak, one core, then both"; $T/peak; ($T/peak & $T/peak; wait)
echo "== access patterns (no arithmetic), 2 threads, 721 MB"; $T/patterns
echo "== kernels streaming 721 MB (K=4096), medians of 11"; RS=1,8,16 NR=11 $T/compare | grep -v differs
echo "== down_proj shape (K=11008)"; K=11008 N=32768 RS=8,16 NR=11 $T/compare | grep -v differs
echo "== weights in L2 (N=64, 2000 repetitions): times relative to a read of 0.5 MB, so read the ratios between kernels"; N=64 REP=2000 RS=8,16 NR=5 $T/compare | grep -v differs
rm -rf $T
