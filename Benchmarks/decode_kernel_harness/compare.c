// Issue 26, third and fourth sessions: cpiscope's [out, in] decoding kernel against variants, on 2 threads (each
// half the outputs), as multiples of a streaming read of the same bytes in the same round (the median over NR
// rounds, by the memory's speed in each: this VM's memory reads at 44-52 or 67-77 GB/s, switching every few
// minutes). Every variant's output is first compared with cpiscope's, bit for bit.
// Variants are object files built with -DNAME=... and named at build time:
//   K=../../Sources/CBF16Kernel; clang -O2 -c $K/bf16_kernel.c -I $K/include -o /tmp/prod.o
//   clang -O2 -DNAME=blocked_kb768 -DKB=768 -c blocked.c -o /tmp/blocked_kb768.o
//   clang -O2 -DVARIANTS_DECL="V(blocked_kb768)" -DVARIANTS_LIST="blocked_kb768" -DVARIANTS_NAMES='"kb768"' \
//       compare.c /tmp/prod.o /tmp/blocked_kb768.o -I $K/include -o /tmp/compare -lpthread
//   RS=1,8,16 NR=11 /tmp/compare                # 721 MB of anonymous memory (K=4096; K=11008 N=32768 for down_proj)
//   N=64 REP=2000 NR=5 /tmp/compare              # weights in L2: the kernels' arithmetic rate
//   WFILE=model.safetensors [WHUGE=1] /tmp/compare   # weights read from a mapped checkpoint file (MADV_HUGEPAGE)
// Figures: BENCHMARKS.md, issue 26 (third and fourth sessions).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "bf16_kernel.h"
typedef void (*kfn)(const uint16_t *, size_t, size_t, const uint16_t *, size_t, size_t, size_t, float *, size_t, int);
#define V(n) void n(const uint16_t *, size_t, size_t, const uint16_t *, size_t, size_t, size_t, float *, size_t, int);
VARIANTS_DECL
static kfn fns[] = { cpiscope_bf16_linear_outin, VARIANTS_LIST };
static const char *names[] = { "prod", VARIANTS_NAMES };
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
size_t K=4096, N=11008*8; int REPS=1; uint16_t *W,*X; float *Y; int R, KIND;
void* work(void*a){ long t=(long)a; size_t n0=N/2*t, n=N/2; float*y=Y+n0; const uint16_t*w=W+n0*K; size_t ldx=K+32;
  if(KIND<0) { volatile uint64_t h = cpiscope_bf16_stream_read(w, n*K*2); (void)h; return 0; }
  for(int q=0;q<REPS;q++) fns[KIND](X,ldx,R,w,K,K,n,y,N,0); return 0; }
double run(int kind,int r){ KIND=kind; R=r; pthread_t th[2]; double t0=now(); for(long t=0;t<2;t++) pthread_create(&th[t],0,work,(void*)t); for(int t=0;t<2;t++) pthread_join(th[t],0); return now()-t0; }
int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){ if(getenv("N")) N=atol(getenv("N")); if(getenv("K")) K=atol(getenv("K")); REPS=getenv("REP")?atoi(getenv("REP")):1; int NR=getenv("NR")?atoi(getenv("NR")):15;
  if(getenv("WFILE")){ int fd=open(getenv("WFILE"),O_RDONLY); struct stat st; fstat(fd,&st); char*p=mmap(0,st.st_size,PROT_READ,MAP_PRIVATE,fd,0); if(getenv("WHUGE")) madvise(p,st.st_size,MADV_HUGEPAGE); W=(uint16_t*)(p+(1<<21)); volatile unsigned long s=0; for(size_t i=0;i<N*K*2;i+=4096) s+=((char*)W)[i]; } else W=aligned_alloc(64,N*K*2); X=aligned_alloc(64,16*(K+32)*2); Y=aligned_alloc(64,16*N*4);
  srand(1); if(!getenv("WFILE")) for(size_t i=0;i<N*K;i++) W[i]=0x3C00^(rand()&0x80FF); for(size_t i=0;i<16*(K+32);i++) X[i]=0x3C00^(rand()&0x80FF);
  const int nv = sizeof(fns)/sizeof(fns[0]);
  float *Y0=aligned_alloc(64,16*N*4);
  int rs[8]; int nrs=0; char *s=strdup(getenv("RS")?getenv("RS"):"8,16"); for(char*p=strtok(s,",");p;p=strtok(0,",")) rs[nrs++]=atoi(p);
  for(int a=0;a<nrs;a++){ int r=rs[a]; run(0,r); memcpy(Y0,Y,16*N*4); for(int v=1;v<nv;v++){ run(v,r); long bad=0; for(int i=0;i<r;i++) for(size_t o=0;o<N;o++) if(memcmp(&Y[i*N+o],&Y0[i*N+o],4)) bad++; if(bad) printf("R=%d %s differs in %ld\n", r, names[v], bad);} }
  // Each round: a read, every variant, a read. A round counts only when its two reads agree within 15%
  // (the memory did not change speed during it); its ratios are times over the mean of the two reads, and the
  // rounds are reported by the memory's speed in them (fast: above 58 GB/s), medians of the ratios.
  for(int a=0;a<nrs;a++){ int r=rs[a]; double rt[16][2][64]; int nm[2]={0,0};
    for(int q=0;q<NR;q++){ double t[16], r0=run(-1,r); for(int v=0;v<nv;v++) t[v]=run(v,r); double r1=run(-1,r);
      if(r0/r1>1.15||r1/r0>1.15) continue;
      const double rr=(r0+r1)/2; const int fast = N*K*2/rr/1e9 > 58;
      for(int v=0;v<nv;v++) rt[v][fast][nm[fast]]=t[v]/rr; nm[fast]++; }
    for(int m=0;m<2;m++){ if(!nm[m]) continue; printf("R=%2d memory %s (%d rounds): time / read", r, m?"fast":"slow", nm[m]);
      for(int v=0;v<nv;v++){ qsort(rt[v][m],nm[m],8,cmp); printf("  %s %.2fx", names[v], rt[v][m][nm[m]/2]); } printf("\n"); } }
  FILE*f=fopen("/proc/self/smaps_rollup","r"); char line[256]; while(fgets(line,256,f)) if(strstr(line,"FilePmd")) fputs(line,stdout);
}
