// Issue 26, third session: how fast can a core stream the weights in the order the decoding kernel reads
// them, with no arithmetic at all? Each 512-bit load's value is only kept alive (an empty asm), so the
// figures are the access pattern's own bandwidth on 2 threads (each half of 721 MB, anonymous memory):
//   seq              one pass in address order (what `bench` calls "reading every weight byte once");
//   lockstep         O rows of W (8 KiB apart at in = 4096) read side by side, 64 bytes of each per step,
//                    as the [out, in] kernel reads an output group;
//   +pf-next-group   the same, prefetching the next group's rows at the same offsets (the kernel's scheme);
//   +pf-ahead        the same, prefetching PFD bytes ahead within each row;
//   +pf-seq-next     the same, prefetching the next group's rows as one contiguous chunk in address order.
//   clang -O2 access_patterns.c -o /tmp/access-patterns -lpthread && /tmp/access-patterns
// Figures: BENCHMARKS.md, issue 26 (third session).
#include <immintrin.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
size_t K=4096, N=11008*8; uint16_t *W; int MODE, O; long PFD;
static __m512 sink[2];
__attribute__((target("avx512f"))) void* work(void*a){ long t=(long)a; size_t n0=N/2*t, n=N/2; const uint16_t*w=W+n0*K;
  __m512 acc=_mm512_setzero_ps();
  if(MODE==0){ for(size_t i=0;i<n*K;i+=32) { __m512i v_=_mm512_loadu_si512(w+i); __asm__ volatile("" :: "v"(v_)); } }
  else { // O rows in lockstep, prefetch next group's rows at same offset (MODE 2) or nothing (MODE1) or seq chunk PFD bytes ahead (MODE3)
    for(size_t o=0;o+O<=n;o+=O){ const uint16_t*g=w+o*K; const char*nx=(const char*)(w+(o+O)*K);
      for(size_t i=0;i<K;i+=32){ for(int q=0;q<O;q++){ { __m512i v_=_mm512_loadu_si512(g+q*K+i); __asm__ volatile("" :: "v"(v_)); }
          if(MODE==2) _mm_prefetch((const char*)(g+(q+O)*K+i),_MM_HINT_T0);
          if(MODE==3) _mm_prefetch((const char*)(g+q*K+i)+PFD,_MM_HINT_T0); }
        if(MODE==4){ for(int q=0;q<O;q++) _mm_prefetch(nx+((i/32)*O+q)*64,_MM_HINT_T0);} } } }
  sink[t]=acc; return 0; }
double run(int m){ MODE=m; pthread_t th[2]; double t0=now(); for(long t=0;t<2;t++) pthread_create(&th[t],0,work,(void*)t); for(int t=0;t<2;t++) pthread_join(th[t],0); return now()-t0; }
int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(){ W=aligned_alloc(64,N*K*2); memset(W,1,N*K*2); PFD=getenv("PFD")?atol(getenv("PFD")):2048;
  int os[]={1,3,6,8,16};
  for(int a=0;a<5;a++){ O=os[a]; double t[5][9]; for(int q=0;q<9;q++) for(int m=0;m<5;m++) t[m][q]=run(m);
    for(int m=0;m<5;m++) qsort(t[m],9,8,cmp);
    printf("O=%2d seq %.1f GB/s  lockstep %.1f  +pf-next-group %.1f  +pf-ahead %.1f  +pf-seq-next %.1f\n",O, N*K*2/t[0][4]/1e9, N*K*2/t[1][4]/1e9, N*K*2/t[2][4]/1e9, N*K*2/t[3][4]/1e9, N*K*2/t[4][4]/1e9); }
}
