// Issue 26, "the ceiling": oneDNN 2.6 bf16 matmul at a 7B shape, one product cut into column tiles run by
// single-threaded primitives on 2 threads (what cpiscope does), the tile written into the full-width output
// (ldc = N: oneDNN picks gemm:jit) or into a dense buffer (ldc = n: brg:avx512_core_bf16), against one
// 2-thread primitive of the whole product.
//   gcc -O2 -fopenmp Benchmarks/onednn_tile_harness.c -o /tmp/tile -ldnnl -lpthread
//   NOWHOLE=1 /tmp/tile ROWS TILES 1 THREADS DENSE      (N=, K= in the environment: the shape; default 11008, 4096)
// Prints the median and best GFLOP/s of 15 runs (and per-thread times of the last runs on stderr).
// harness: oneDNN bf16 matmul, tiled per thread (1-thread primitives) vs whole product
#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static dnnl_engine_t eng;
typedef struct { dnnl_primitive_t p; size_t sp; dnnl_memory_desc_t s,w,d,spmd; } prim;
static prim make(int m,int n,int k,int ldc,int thr){
  prim r; dnnl_dims_t ds={m,k}, ss={k,1}; dnnl_memory_desc_init_by_strides(&r.s,2,ds,dnnl_bf16,ss);
  dnnl_dims_t dw={k,n}, sw={1,k}; dnnl_memory_desc_init_by_strides(&r.w,2,dw,dnnl_bf16,sw);
  dnnl_dims_t dd={m,n}, sd={ldc,1}; dnnl_memory_desc_init_by_strides(&r.d,2,dd,dnnl_f32,sd);
  dnnl_matmul_desc_t desc; dnnl_matmul_desc_init(&desc,&r.s,&r.w,NULL,&r.d);
  dnnl_primitive_attr_t a; dnnl_primitive_attr_create(&a); dnnl_primitive_attr_set_scratchpad_mode(a,dnnl_scratchpad_mode_user);
  omp_set_num_threads(thr);
  dnnl_primitive_desc_t pd; if(dnnl_primitive_desc_create(&pd,&desc,a,eng,NULL)){printf("pd fail\n");exit(1);}
  const char*nm; dnnl_primitive_desc_query(pd,dnnl_query_impl_info_str,0,&nm);
  const dnnl_memory_desc_t*sp=dnnl_primitive_desc_query_md(pd,dnnl_query_scratchpad_md,0); r.spmd=*sp; r.sp=dnnl_memory_desc_get_size(sp);
  fprintf(stderr,"m%d n%d k%d thr%d impl %s scratch %zu\n",m,n,k,thr,nm,r.sp);
  dnnl_primitive_create(&r.p,pd); omp_set_num_threads(1); return r;
}
static void run(prim*p,void*a,void*w,void*c,void*sp,int thr){
  omp_set_num_threads(thr);
  dnnl_stream_t st; dnnl_stream_create(&st,eng,dnnl_stream_default_flags);
  dnnl_memory_t m[4]; void*h[4]={a,w,c,sp}; dnnl_memory_desc_t*d[4]={&p->s,&p->w,&p->d,&p->spmd};
  for(int i=0;i<4;i++) dnnl_memory_create(&m[i],d[i],eng,h[i]);
  dnnl_exec_arg_t args[4]={{DNNL_ARG_SRC,m[0]},{DNNL_ARG_WEIGHTS,m[1]},{DNNL_ARG_DST,m[2]},{DNNL_ARG_SCRATCHPAD,m[3]}};
  dnnl_primitive_execute(p->p,st,4,args); dnnl_stream_wait(st);
  for(int i=0;i<4;i++) dnnl_memory_destroy(m[i]); dnnl_stream_destroy(st);
}
int DENSE=0,M,N,K,T=16,NT=2,REUSE=1; unsigned short*A,*W; float*C; prim tp;
void*spbuf[2]; float*Cd[8];
double wt[8]; void* worker(void*arg){ long t=(long)arg; int w=N/T; double t0=now();
  for(int i=t*T/NT;i<(t+1)*T/NT;i++){ void*sp = REUSE? spbuf[t] : aligned_alloc(64,(tp.sp+63)/64*64);
    run(&tp,A,W+(size_t)i*w*K,DENSE?Cd[t]:C+i*w,sp,1); if(!REUSE) free(sp);} wt[t]=now()-t0; return 0;}
int main(int argc,char**argv){ M=atoi(argv[1]); T=atoi(argv[2]); REUSE=atoi(argv[3]); NT=argc>4?atoi(argv[4]):2; DENSE=argc>5?atoi(argv[5]):0; for(int t=0;t<8;t++) Cd[t]=aligned_alloc(64,(size_t)M*11008*4);
  dnnl_engine_create(&eng,dnnl_cpu,0); N=getenv("N")?atoi(getenv("N")):11008; K=getenv("K")?atoi(getenv("K")):4096;
  A=aligned_alloc(64,(size_t)M*K*2); W=aligned_alloc(64,(size_t)N*K*2); C=aligned_alloc(64,(size_t)M*N*4);
  for(size_t i=0;i<(size_t)M*K;i++)A[i]=0x3C00|(i%5); for(size_t i=0;i<(size_t)N*K;i++)W[i]=0x3C00|(i%7);
  tp=make(M,N/T,K,DENSE?N/T:N,1); for(int t=0;t<2;t++) spbuf[t]=aligned_alloc(64,(tp.sp+63)/64*64+64);
  prim whole=make(M,N,K,N,NT); void*wsp=aligned_alloc(64,whole.sp+64);
  double fl=2.0*M*N*K; double bt=1e9,bw=1e9; double tts[15],tws[15];
  for(int r=0;r<15;r++){ double t0=now(); pthread_t th[8]; for(long t=0;t<NT;t++) pthread_create(&th[t],0,worker,(void*)t); for(int t=0;t<NT;t++) pthread_join(th[t],0); tts[r]=now()-t0; if(r>10) fprintf(stderr,"  wall %.2f ms thread0 %.2f thread1 %.2f\n",tts[r]*1e3,wt[0]*1e3,wt[1]*1e3);
    t0=now(); if(!getenv("NOWHOLE")) run(&whole,A,W,C,wsp,NT); tws[r]=now()-t0; }
  int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
  qsort(tts,15,8,cmp); qsort(tws,15,8,cmp);
  printf("M=%d tiles=%d reuse=%d: tiled %.1f GFLOP/s (best %.1f), whole %.1f (best %.1f)\n",M,T,REUSE,fl/tts[7]/1e9,fl/tts[0]/1e9,fl/tws[7]/1e9,fl/tws[0]/1e9);
}
