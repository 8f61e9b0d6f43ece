// Issue 26, fourth session: which orders of reading W [out, in] (bf16, in = 4096: rows 8 KiB apart) stream at
// the memory's rate on 2 threads (each half of 721 MB, anonymous memory), with no arithmetic at all:
//   seq          each thread reads its half in address order (what `bench` calls "reading every weight byte once");
//   O=n Bb       groups of n consecutive rows read side by side, b bytes of one row, then b bytes of the next
//                row of the group, ... (b = 64: the [out, in] kernel's tile; b = 8192: a whole row, so address
//                order again);
//   k-split      both threads walk every row, thread t reading bytes [t·4096, t·4096 + 4096) of each (the inputs
//                split between the cores, so that each core's rows of x would fit in its L1).
// Medians of 7 rounds, the variants interleaved within each round; GB/s.
//   clang -O2 stream_patterns.c -o /tmp/stream-patterns -lpthread && /tmp/stream-patterns
// Figures: BENCHMARKS.md, issue 26 (fourth session).
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static const size_t K = 4096, N = 11008 * 8;
static uint16_t *W;
static int mode, O;   // mode 0 seq, 1 groups side by side, 2 k-split
static size_t B;
#define TOUCH(p) do { __m512i v_ = _mm512_loadu_si512(p); __asm__ volatile("" ::"v"(v_)); } while (0)
__attribute__((target("avx512f"))) static void *work(void *a) {
    const long t = (long)a;
    if (mode == 0) {
        const uint16_t *w = W + N / 2 * t * K;
        for (size_t i = 0; i < N / 2 * K; i += 32) TOUCH(w + i);
    } else if (mode == 1) {
        const uint16_t *w = W + N / 2 * t * K;
        const size_t be = B / 2;
        for (size_t o = 0; o + O <= N / 2; o += O)
            for (size_t i0 = 0; i0 < K; i0 += be)
                for (int q = 0; q < O; q++)
                    for (size_t i = i0; i < i0 + be; i += 32) TOUCH(w + (o + q) * K + i);
    } else {
        for (size_t o = 0; o < N; o++)
            for (size_t i = 0; i < K / 2; i += 32) TOUCH(W + o * K + t * K / 2 + i);
    }
    return 0;
}
static double run(void) {
    pthread_t th[2];
    const double t0 = now();
    for (long t = 0; t < 2; t++) pthread_create(&th[t], 0, work, (void *)t);
    for (int t = 0; t < 2; t++) pthread_join(th[t], 0);
    return now() - t0;
}
static int cmp(const void *a, const void *b) { const double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(void) {
    W = aligned_alloc(4096, N * K * 2);
    memset(W, 1, N * K * 2);
    const int os[] = {2, 3, 8};
    const size_t bs[] = {64, 256, 1024, 4096, 8192};
    for (int a = 0; a < 3; a++) {
        O = os[a];
        double t[7][7];
        for (int q = 0; q < 7; q++) {
            mode = 0; t[0][q] = run();
            mode = 2; t[1][q] = run();
            mode = 1;
            for (int b = 0; b < 5; b++) { B = bs[b]; t[2 + b][q] = run(); }
        }
        for (int v = 0; v < 7; v++) qsort(t[v], 7, sizeof(double), cmp);
        printf("seq %.1f  k-split %.1f  |", N * K * 2 / t[0][3] / 1e9, N * K * 2 / t[1][3] / 1e9);
        for (int b = 0; b < 5; b++) printf("  O=%d B%zu %.1f", O, bs[b], N * K * 2 / t[2 + b][3] / 1e9);
        printf("\n");
    }
    return 0;
}
