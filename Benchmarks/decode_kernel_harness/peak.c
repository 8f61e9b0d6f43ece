// VDPBF16PS throughput of one core: 16 independent accumulators, no memory (clang -O2 -march=native peak.c:
// without -march clang keeps 3 of the accumulators on the stack and measures the spills; run two at once for both cores).
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define D(i) a##i=_mm512_dpbf16_ps(a##i,x,y);
__attribute__((target("avx512f,avx512bf16"))) int main(){
 __m512 a0=_mm512_set1_ps(0),a1=a0,a2=a0,a3=a0,a4=a0,a5=a0,a6=a0,a7=a0,a8=a0,a9=a0,a10=a0,a11=a0,a12=a0,a13=a0,a14=a0,a15=a0;
 __m512bh x=(__m512bh)_mm512_set1_epi32(0x3c003c00), y=(__m512bh)_mm512_set1_epi32(0x3c013c01);
 long n=400000000/16; double t0=now();
 for(long k=0;k<n;k++){ D(0)D(1)D(2)D(3)D(4)D(5)D(6)D(7)D(8)D(9)D(10)D(11)D(12)D(13)D(14)D(15) }
 double t=now()-t0; __m512 s=_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0,a1),_mm512_add_ps(a2,a3)),_mm512_add_ps(_mm512_add_ps(a4,a5),_mm512_add_ps(a6,a7)));
 s=_mm512_add_ps(s,_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8,a9),_mm512_add_ps(a10,a11)),_mm512_add_ps(_mm512_add_ps(a12,a13),_mm512_add_ps(a14,a15))));
 float o[16]; _mm512_storeu_ps(o,s);
 printf("%.2f G dpbf16/s = %.1f GFLOP/s per core (%g)\n", n*16/t/1e9, n*16*64/t/1e9, o[0]);
}
