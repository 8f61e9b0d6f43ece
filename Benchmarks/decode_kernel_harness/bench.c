// Issue 26: the direct bf16 kernel of a decoding step (Sources/CBF16Kernel) against a streaming read of
// the same weights, on 2 threads (each half the outputs), and a prototype with the outputs in lanes
// (vnni.c: a 16 x 16 transpose of 32-bit input pairs per 16 outputs x 32 inputs, x broadcast). Results of
// the two kernels are compared first (max relative difference). Build with clang, as SwiftPM does:
//   cd Benchmarks/decode_kernel_harness
//   clang -O2 -march=native -c ../../Sources/CBF16Kernel/bf16_kernel.c -I ../../Sources/CBF16Kernel/include -o old.o
//   clang -O2 -march=native -c vnni.c -o vnni.o
//   clang -O2 -march=native bench.c old.o vnni.o -I ../../Sources/CBF16Kernel/include -o /tmp/decode-bench -lpthread
//   /tmp/decode-bench                   # 721 MB of weights: streamed from memory
//   N=256 REP=700 /tmp/decode-bench     # 2 MB of weights: in L2, the kernels compute-bound
//   V2=1 /tmp/decode-bench              # the shared-buffer prototype instead
// Figures: BENCHMARKS.md, issue 26 (second session).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bf16_kernel.h"
void vnni_linear_outin(const uint16_t *x, size_t ldx, size_t rows, const uint16_t *w, size_t ldw, size_t in, size_t out, float *y, size_t ldy, int accumulate);
void vnni2_linear_outin(const uint16_t *x, size_t ldx, size_t rows, const uint16_t *w, size_t ldw, size_t in, size_t out, float *y, size_t ldy, int accumulate);
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
size_t K=4096, N=11008*8; int REPS=1; uint16_t *W,*X; float *Y; int R, KIND;
void* work(void*a){ long t=(long)a; size_t n0=N/2*t, n=N/2; float*y=Y+n0; const uint16_t*w=W+n0*K; size_t ldx=K+32;
  for(int q=0;q<REPS;q++){ if(KIND==0) cpiscope_bf16_linear_outin(X,ldx,R,w,K,K,n,y,N,0); else if(KIND==1) (getenv("V2")?vnni2_linear_outin:vnni_linear_outin)(X,ldx,R,w,K,K,n,y,N,0); }
  if(KIND==2) { volatile uint64_t h = cpiscope_bf16_stream_read(w, n*K*2); (void)h; } return 0; }
double run(int kind,int r){ KIND=kind; R=r; pthread_t th[2]; double t0=now(); for(long t=0;t<2;t++) pthread_create(&th[t],0,work,(void*)t); for(int t=0;t<2;t++) pthread_join(th[t],0); return now()-t0; }
int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){ if(getenv("N")) N=atol(getenv("N")); REPS=getenv("REP")?atoi(getenv("REP")):1; W=aligned_alloc(64,N*K*2); X=aligned_alloc(64,16*(K+32)*2); Y=aligned_alloc(64,16*N*4);
  for(size_t i=0;i<N*K;i++) W[i]=0x3C00|((i*7)%13); for(size_t i=0;i<16*(K+32);i++) X[i]=0x3C00|((i*5)%11);
  // correctness: compare kernels at each R
  float *Y2=aligned_alloc(64,16*N*4);
  int rs[]={1,2,4,8,12,16};
  for(int a=0;a<6;a++){ int r=rs[a]; run(0,r); memcpy(Y2,Y,16*N*4); run(1,r); double md=0; for(int i=0;i<r;i++) for(size_t o=0;o<N;o++){ double d=Y[i*N+o]-Y2[i*N+o]; if(d<0)d=-d; double rel=d/(Y2[i*N+o]<0?-Y2[i*N+o]:Y2[i*N+o]); if(rel>md) md=rel;} printf("R=%d max rel diff %.2e\n", r, md);}
  for(int a=0;a<6;a++){ int r=rs[a]; double t[3][7]; for(int q=0;q<7;q++){ t[2][q]=run(2,r); t[0][q]=run(0,r); t[1][q]=run(1,r);} for(int k=0;k<3;k++) qsort(t[k],7,8,cmp);
    printf("R=%2d  read %.1f ms (%.1f GB/s)  old %.1f ms (%.2fx)  vnni %.1f ms (%.2fx)\n", r, t[2][3]*1e3, N*K*2/t[2][3]/1e9, t[0][3]*1e3, t[0][3]/t[2][3], t[1][3]*1e3, t[1][3]/t[2][3]); }
}
