#!/bin/bash
# Issue 26, third and fourth sessions: the decoding-kernel measurements of BENCHMARKS.md in one log.
set -e
H=$(cd "$(dirname "$0")" && pwd); K=$H/../../Sources/CBF16Kernel; T=$(mktemp -d)
cd $H
clang -O2 -c $K/bf16_kernel.c -I $K/include -o $T/prod.o
# cpiscope's kernel with every VDPBF16PS replaced by an add (memonly)
sed -e 's/acc\[r\]\[o\] = _mm512_dpbf16_ps(acc\[r\]\[o\], xv, wv\[o\]);/acc[r][o] = _mm512_add_ps(acc[r][o], _mm512_castsi512_ps(_mm512_xor_si512((__m512i)xv, (__m512i)wv[o])));/' \
    -e 's/cpiscope_bf16_linear_outin/prod_memonly/g' -e 's/cpiscope_bf16_linear_inout/prod_memonly_inout/g' \
    -e 's/cpiscope_bf16_kernel_available/pk_avail/; s/cpiscope_cpu_has_avx512_skylakex/pk_sx/g; s/cpiscope_bf16_stream_read/pk_read/' $K/bf16_kernel.c > $T/memonly.c
clang -O2 -c $T/memonly.c -I $K/include -o $T/memonly.o
# cpiscope's kernel taking one output at a time at every row count (prod-o1: W in address order, x from L2 past 4 rows)
sed -e 's/X_IN_L1 = 32 << 10/X_IN_L1 = 1 << 30/' -e 's/cpiscope_bf16_linear_outin/prod_o1/g' -e 's/cpiscope_bf16_linear_inout/prod_o1_inout/g' \
    -e 's/cpiscope_bf16_kernel_available/o1_avail/; s/cpiscope_cpu_has_avx512_skylakex/o1_sx/g; s/cpiscope_bf16_stream_read/o1_read/' $K/bf16_kernel.c > $T/o1.c
clang -O2 -c $T/o1.c -I $K/include -o $T/o1.o
clang -O2 -DNAME=blocked_kb768 -DKB=768 -c blocked.c -o $T/b.o
clang -O2 -DNAME=blocked_kb768_memonly -DKB=768 -DNOCOMPUTE -c blocked.c -o $T/bm.o
for h in T0 T1 NTA; do clang -O2 -DSTAGED -DNAME=staged_$h -DKB=512 -DPFH=_MM_HINT_$h -c blocked.c -o $T/s$h.o; done
clang -O2 -DVARIANTS_DECL="V(prod_memonly) V(prod_o1) V(blocked_kb768) V(blocked_kb768_memonly) V(staged_T0) V(staged_T1) V(staged_NTA)" \
    -DVARIANTS_LIST="prod_memonly, prod_o1, blocked_kb768, blocked_kb768_memonly, staged_T0, staged_T1, staged_NTA" \
    -DVARIANTS_NAMES='"prod-memonly","prod-o1","blocked","blocked-memonly","staged-T0","staged-T1","staged-NTA"' \
    compare.c $T/prod.o $T/memonly.o $T/o1.o $T/b.o $T/bm.o $T/sT0.o $T/sT1.o $T/sNTA.o -I $K/include -o $T/compare -lpthread
clang -O2 access_patterns.c -o $T/patterns -lpthread
clang -O2 stream_patterns.c -o $T/stream-patterns -lpthread
clang -O2 -march=native peak.c -o $T/peak
date -u; lscpu | grep -E "Model name|Flags" | cut -c1-80; uptime
echo "== VDPBF16PS peak, one core, then both"; $T/peak; ($T/peak & $T/peak; wait)
echo "== access patterns (no arithmetic), 2 threads, 721 MB"; $T/patterns
echo "== orders of reading W (no arithmetic), 2 threads, 721 MB, GB/s"; $T/stream-patterns
echo "== kernels streaming 721 MB (K=4096), medians of up to 11 paired rounds"; RS=1,8,16 NR=11 $T/compare | grep -v differs
echo "== down_proj shape (K=11008)"; K=11008 N=32768 RS=8,16 NR=11 $T/compare | grep -v differs
echo "== weights in L2 (N=64, 2000 repetitions): times relative to a read of 0.5 MB, so read the ratios between kernels"; N=64 REP=2000 RS=8,16 NR=5 $T/compare | grep -v differs
rm -rf $T
