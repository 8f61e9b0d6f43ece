// Issue 26, third session: a block-major variant of the [out, in] decoding kernel (not used by cpiscope).
// x's block of KB inputs (all rows, copied into a packed per-thread buffer, rows KB apart) stays in L1 while
// a super-group of SG groups of 24/RGS outputs streams through it; the partial sums of every (row group,
// output) pair of the super-group live in a per-thread buffer between blocks, as vectors, so each lane
// accumulates in input order as in cpiscope's kernel: the results are bit-identical to it (compare.c checks).
// With its weights in L2 it reaches 66-77% of the VDPBF16PS peak against 43-56% for cpiscope's kernel; while
// streaming the weights from memory it is no faster (BENCHMARKS.md). Build for compare.c:
//   clang -O2 -DNAME=blocked_kb768 -DKB=768 -c blocked.c -o /tmp/blocked_kb768.o
// -DSTAGED (issue 26, fourth session): instead of prefetching each group's next rows at the same offsets, the
// next super-group (SG·3 rows of W, contiguous: 384 KiB at in = 4096) is prefetched in address order while this
// one computes, P cache lines per inner iteration, paced so that all of it is requested by the end of this one
// (PFH: the hint). The memory then sees one ascending stream, the only order that reads at its full rate
// (stream_patterns.c), while the arithmetic reads its tiles from L2. Also bit-identical; also not faster:
//   clang -O2 -DSTAGED -DNAME=staged_T0 -DKB=512 -DPFH=_MM_HINT_T0 -c blocked.c -o /tmp/staged_T0.o
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#define TARGET __attribute__((target("avx512f,avx512bf16,avx512bw,avx512vl")))
#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("clang loop unroll(full)")
#ifndef KB
#define KB 512
#endif
#ifndef SG
#define SG 16
#endif
#ifndef RGS
#define RGS 8
#endif
#ifndef PFH
#define PFH _MM_HINT_T0
#endif
#ifndef PFG
#define PFG 1
#endif
#ifndef NAME
#define NAME blocked_linear_outin
#endif
#define OGS (24 / RGS)
// -DNOCOMPUTE: every VDPBF16PS replaced by an add of the same operands (the loads and their order unchanged),
// to time the access pattern alone.
#ifdef NOCOMPUTE
#define DP(a, x, w) _mm512_add_ps(a, _mm512_castsi512_ps(_mm512_xor_si512((__m512i)(x), (__m512i)(w))))
#else
#define DP(a, x, w) _mm512_dpbf16_ps(a, x, w)
#endif
static __thread __m512 *pbuf; static __thread size_t pcap;
static __thread uint16_t *xbuf; static __thread size_t xcap;

// R rows (of the packed block xb, rows KB apart) × O outputs (w rows ldw apart) over n inputs; the R·O
// accumulators from/to part unless first/last (then reduced into y).
INLINE TARGET void tile(const int R, const int O, const uint16_t *restrict xb, const uint16_t *restrict w, size_t ldw, size_t n,
                        __m512 *restrict part, int first, int last, float *restrict y, size_t ldy, int accumulate,
#ifdef STAGED
                        const char **pfs, const char *pfend, int P) {
#else
                        const uint16_t *restrict pf, int dopf) {
#endif
    __m512 acc[RGS][OGS];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int o = 0; o < O; o++) acc[r][o] = first ? _mm512_setzero_ps() : part[r * O + o];
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh wv[OGS];
        UNROLL for (int o = 0; o < O; o++) wv[o] = (__m512bh)_mm512_loadu_si512(w + o * ldw + i);
#ifdef STAGED
        { const char *q = *pfs; for (int p = 0; p < P; p++) { if (q < pfend) { _mm_prefetch(q, PFH); q += 64; } } *pfs = q; }
#else
        if (dopf) UNROLL for (int o = 0; o < O; o++) _mm_prefetch((const char *)(pf + o * ldw + i), PFH);
#endif
        UNROLL for (int r = 0; r < R; r++) {
            const __m512bh xv = (__m512bh)_mm512_load_si512(xb + r * KB + i);
            UNROLL for (int o = 0; o < O; o++) acc[r][o] = DP(acc[r][o], xv, wv[o]);
        }
    }
    if (i < n) {
        const __mmask32 m = (__mmask32)((1ull << (n - i)) - 1);
        __m512bh wv[OGS];
        UNROLL for (int o = 0; o < O; o++) wv[o] = (__m512bh)_mm512_maskz_loadu_epi16(m, w + o * ldw + i);
        UNROLL for (int r = 0; r < R; r++) {
            const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(m, xb + r * KB + i);
            UNROLL for (int o = 0; o < O; o++) acc[r][o] = DP(acc[r][o], xv, wv[o]);
        }
    }
    if (last) {
        UNROLL for (int r = 0; r < R; r++) UNROLL for (int o = 0; o < O; o++) {
            const float s = _mm512_reduce_add_ps(acc[r][o]);
            y[r * ldy + o] = accumulate ? y[r * ldy + o] + s : s;
        }
    } else UNROLL for (int r = 0; r < R; r++) UNROLL for (int o = 0; o < O; o++) part[r * O + o] = acc[r][o];
}

#ifdef STAGED
#define T(R_, O_, PF_) tile(R_, O_, xr, wg + i0, ldw, n, part, b == 0, b + 1 == nb, yro, ldy, accumulate, &pfq, pfend, P)
#else
#define T(R_, O_, PF_) tile(R_, O_, xr, wg + i0, ldw, n, part, b == 0, b + 1 == nb, yro, ldy, accumulate, pfp + i0, PF_)
#endif
#define ROWS(O_, PF_) switch (nr) { case 1: T(1, O_, PF_); break; case 2: T(2, O_, PF_); break; case 3: T(3, O_, PF_); break; \
    case 4: T(4, O_, PF_); break; case 5: T(5 < RGS ? 5 : RGS, O_, PF_); break; case 6: T(6 < RGS ? 6 : RGS, O_, PF_); break; \
    case 7: T(7 < RGS ? 7 : RGS, O_, PF_); break; default: T(RGS, O_, PF_); break; }

void cpiscope_bf16_linear_outin(const uint16_t *x, size_t ldx, size_t rows, const uint16_t *w, size_t ldw,
                                size_t in, size_t out, float *y, size_t ldy, int accumulate);

// Block-major: x's block of KB inputs (all rows, packed) stays in L1 while a super-group of SG groups of
// OGS outputs streams through; the partial sums of the super-group's (row group, output) pairs live in a
// per-thread buffer between blocks (as vectors: the lanes accumulate in input order, as in the whole-K
// kernel, so the results are bit-identical to it).
TARGET void NAME(const uint16_t *x, size_t ldx, size_t rows, const uint16_t *w, size_t ldw,
                 size_t in, size_t out, float *y, size_t ldy, int accumulate) {
    if (rows <= 4 || in == 0) { cpiscope_bf16_linear_outin(x, ldx, rows, w, ldw, in, out, y, ldy, accumulate); return; }
    const size_t nb = (in + KB - 1) / KB;
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const size_t R = rows - r0 < 16 ? rows - r0 : 16;
        const size_t nrg = (R + RGS - 1) / RGS;
        {   const size_t need = nb * 16 * KB;
            if (xcap < need) { free(xbuf); xbuf = aligned_alloc(64, need * 2); xcap = need; }
            const size_t needp = (size_t)SG * OGS * nrg * RGS * OGS + 64;
            if (pcap < needp) { free(pbuf); pbuf = aligned_alloc(64, needp * 64); pcap = needp; } }
        for (size_t b = 0; b < nb; b++) {
            const size_t i0 = b * KB, n = in - i0 < KB ? in - i0 : KB;
            for (size_t r = 0; r < R; r++) memcpy(xbuf + (b * 16 + r) * KB, x + (r0 + r) * ldx + i0, n * 2);
        }
        for (size_t s0 = 0; s0 < out; s0 += (size_t)SG * OGS) {
            const size_t s1 = out - s0 < (size_t)SG * OGS ? out : s0 + (size_t)SG * OGS;
#ifdef STAGED
            // The next super-group's rows, in address order, paced over this one's inner iterations (the first
            // super-group's own rows requested up front).
            const size_t n1 = out - s1 < (size_t)SG * OGS ? out : s1 + (size_t)SG * OGS;
            const char *pfq = (const char *)(w + s1 * ldw), *pfend = (const char *)(w + n1 * ldw);
            if (s0 == 0) { for (const char *q = (const char *)w; q < (const char *)(w + s1 * ldw); q += 64) _mm_prefetch(q, PFH); }
            const size_t lines = (size_t)(pfend - pfq) / 64 + 1;
            const size_t iters = nb * ((s1 - s0 + OGS - 1) / OGS) * nrg * ((KB + 31) / 32);
            const int P = (int)((lines + iters - 1) / iters);
#endif
            for (size_t b = 0; b < nb; b++) {
                const size_t i0 = b * KB, n = in - i0 < KB ? in - i0 : KB;
                size_t slot = 0;
                for (size_t o = s0; o < s1;) {
                    const int no = s1 - o >= OGS ? OGS : 1;
                    const uint16_t *wg = w + o * ldw;
                    // prefetch: PFG groups ahead within this super-group's block; at its end, the next block's first groups
#ifndef STAGED
                    size_t po = o + (size_t)PFG * OGS;
                    const uint16_t *pfp = po + OGS <= s1 ? w + po * ldw : (b + 1 < nb ? w + (s0 + (po - s1) % (s1 - s0 + 1)) * ldw + KB : wg);
#endif
                    for (size_t r = 0; r < R; r += RGS) {
                        const size_t nr = R - r < RGS ? R - r : RGS;
                        const uint16_t *xr = xbuf + (b * 16 + r) * KB;
                        float *yro = y + (r0 + r) * ldy + o;
                        __m512 *part = pbuf + slot * (RGS * OGS);
                        slot++;
                        if (no == OGS) { if (r == 0) { ROWS(OGS, 1) } else { ROWS(OGS, 0) } }
                        else { ROWS(1, 0) }
                    }
                    o += no;
                }
            }
        }
    }
}
