// bf16 × bf16 → float32 products for few rows, written from the instruction semantics in the Intel 64
// and IA-32 Architectures Software Developer's Manual (VDPBF16PS: each float32 lane j of the destination
// gains a[2j]·b[2j] + a[2j+1]·b[2j+1], the bf16 products exact, denormal inputs and outputs flushed,
// round to nearest even, MXCSR not consulted) and the CPUID/XGETBV feature-detection rules of the same
// manual (vol. 1 §15.2: OS support for AVX-512 state).
//
// Why: a decoding step multiplies 1-16 rows by every weight of the model once, so it should take the
// time to stream the weights. oneDNN's brgemm matmul packs the weights into its blocked layout in every
// call, which costs more than the stream at these row counts. Here the weights are read where they lie:
//   - [out, in] (nn.Linear): a row of W and a row of x are both contiguous along `in`, which is exactly
//     the pairing VDPBF16PS wants, so a tile of R rows × O outputs keeps R·O float32 accumulators of 16
//     lanes, loads O weight vectors and R activation vectors per 32 inputs, and reduces each accumulator
//     horizontally at the end. Outputs are the outer loop, then blocks of 256 inputs, then groups of R
//     rows: each weight byte comes from memory once, the block's activations (16 rows) stay in L1, and
//     the partial sums wait in a small buffer between blocks.
//   - [in, out] (Conv1D): two consecutive weight rows (i, i+1) are interleaved into (W[i][o], W[i+1][o])
//     pairs (one VPERMT2W per 16 outputs), multiplied by the broadcast pair (x[r][i], x[r][i+1]).
// Every function that uses AVX-512 carries a target attribute, so this file compiles for any x86-64 and
// the caller checks `cpiscope_bf16_kernel_available()` first.
#include "bf16_kernel.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

// 1 when the OS saves the AVX-512 state: OSXSAVE, then XCR0 bits 1, 2 (SSE, AVX state), 5, 6, 7 (opmask,
// upper halves of ZMM0-15, ZMM16-31).
static int avx512_state_enabled(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!((c >> 27) & 1)) return 0;  // OSXSAVE: XGETBV may run
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return (lo & 0xE6u) == 0xE6u;
}

int cpiscope_cpu_has_avx512_skylakex(void) {
    unsigned a, b, c, d;
    if (!avx512_state_enabled() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    // CPUID.(EAX=7, ECX=0):EBX bits 16 AVX512F, 17 AVX512DQ, 30 AVX512BW, 31 AVX512VL
    return ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
}

int cpiscope_bf16_kernel_available(void) {
    unsigned a, b, c, d;
    if (!avx512_state_enabled() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const unsigned maxSubleaf = a;
    const int f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    if (maxSubleaf < 1 || !__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    const int bf16 = (a >> 5) & 1;  // CPUID.(EAX=7, ECX=1):EAX[5] AVX512_BF16
    return f && bw && vl && bf16;
}

#define TARGET __attribute__((target("avx512f,avx512bf16,avx512bw,avx512vl")))
#define INLINE static inline __attribute__((always_inline))

// The largest tile: RMAX rows × OMAX outputs ([out, in]) or RMAX rows × 32 outputs ([in, out]).
enum { RMAX = 4, OMAX = 4 };

INLINE TARGET __m512bh load32(const uint16_t *p) { return (__m512bh)_mm512_loadu_si512(p); }
INLINE TARGET __m512bh load32m(const uint16_t *p, __mmask32 m) { return (__m512bh)_mm512_maskz_loadu_epi16(m, p); }

INLINE TARGET void store1(float *p, float s, int accumulate) { *p = accumulate ? *p + s : s; }

// Inputs per block of the [out, in] kernel: 16 rows × KBLOCK bf16 activations (8 KiB) stay in L1 while
// the tiles of the block run, and the weights are read once per block. Measured on a 7B MLP product
// (in 4096, out 11008, one thread): 1.07×, 1.19× and 1.24× faster than without blocks at 4, 8 and 16 rows;
// 512 and 768 gained less.
enum { KBLOCK = 256 };

// Inputs i0..<i1 of y[r, o] (+)= Σ_i x[r, i]·w[o, i] for r < R, o < O (R ≤ RMAX, O ≤ OMAX; constants after
// inlining, so the accumulators live in registers). The R·O partial sums (16 lanes each) start at zero
// (`first`) or from `part`; they go back to `part`, or, after the last block (`last`), are summed into y.
INLINE TARGET void tile_outin(const int R, const int O, const uint16_t *x, size_t ldx, const uint16_t *w, size_t ldw,
                              size_t i0, size_t i1, __m512 *part, int first, int last, float *y, size_t ldy,
                              int accumulate) {
    __m512 acc[RMAX][OMAX];
    for (int r = 0; r < R; r++)
        for (int o = 0; o < O; o++) acc[r][o] = first ? _mm512_setzero_ps() : part[r * OMAX + o];
    size_t i = i0;
    for (; i + 32 <= i1; i += 32) {
        __m512bh wv[OMAX];
        for (int o = 0; o < O; o++) wv[o] = load32(w + o * ldw + i);
        for (int r = 0; r < R; r++) {
            const __m512bh xv = load32(x + r * ldx + i);
            for (int o = 0; o < O; o++) acc[r][o] = _mm512_dpbf16_ps(acc[r][o], xv, wv[o]);
        }
    }
    if (i < i1) {  // the last (i1 - i0) % 32 inputs; masked-off lanes load as zero and are not read
        const __mmask32 m = (__mmask32)((1ull << (i1 - i)) - 1);
        __m512bh wv[OMAX];
        for (int o = 0; o < O; o++) wv[o] = load32m(w + o * ldw + i, m);
        for (int r = 0; r < R; r++) {
            const __m512bh xv = load32m(x + r * ldx + i, m);
            for (int o = 0; o < O; o++) acc[r][o] = _mm512_dpbf16_ps(acc[r][o], xv, wv[o]);
        }
    }
    if (last) {
        for (int r = 0; r < R; r++)
            for (int o = 0; o < O; o++) store1(y + r * ldy + o, _mm512_reduce_add_ps(acc[r][o]), accumulate);
    } else {
        for (int r = 0; r < R; r++)
            for (int o = 0; o < O; o++) part[r * OMAX + o] = acc[r][o];
    }
}

#define OUTIN(R, O) tile_outin(R, O, xr, ldx, wo, ldw, i0, i1, partials + (r / RMAX) * (RMAX * OMAX), \
                               i0 == 0, i1 == in, yro, ldy, accumulate)

TARGET void cpiscope_bf16_linear_outin(const uint16_t *x, size_t ldx, size_t rows, const uint16_t *w, size_t ldw,
                                       size_t in, size_t out, float *y, size_t ldy, int accumulate) {
    if (in == 0) {
        if (!accumulate)
            for (size_t r = 0; r < rows; r++) memset(y + r * ldy, 0, out * sizeof(float));
        return;
    }
    // Partial sums of one tile column (4 row groups × 4 × 4 accumulators): 16 rows per pass over the
    // outputs, the rows beyond in further passes.
    __m512 partials[4 * RMAX * OMAX];
    for (size_t r0 = 0; r0 < rows; r0 += 4 * RMAX) {
        const size_t rowsHere = rows - r0 < 4 * RMAX ? rows - r0 : 4 * RMAX;
        const uint16_t *x0 = x + r0 * ldx;
        float *y0 = y + r0 * ldy;
        for (size_t o = 0; o < out; o += OMAX) {
            const size_t no = out - o < OMAX ? out - o : OMAX;
            for (size_t j = 0; j < (no == OMAX ? 1 : no); j++) {  // the last out % 4 outputs one at a time
                for (size_t i0 = 0; i0 < in; i0 += KBLOCK) {
                    const size_t i1 = in - i0 < KBLOCK ? in : i0 + KBLOCK;
                    for (size_t r = 0; r < rowsHere; r += RMAX) {
                        const size_t nr = rowsHere - r < RMAX ? rowsHere - r : RMAX;
                        const uint16_t *xr = x0 + r * ldx, *wo = w + (o + j) * ldw;
                        float *yro = y0 + r * ldy + o + j;
                        if (no == OMAX) {
                            switch (nr) {
                            case 1: OUTIN(1, OMAX); break;
                            case 2: OUTIN(2, OMAX); break;
                            case 3: OUTIN(3, OMAX); break;
                            default: OUTIN(4, OMAX); break;
                            }
                        } else {
                            switch (nr) {
                            case 1: OUTIN(1, 1); break;
                            case 2: OUTIN(2, 1); break;
                            case 3: OUTIN(3, 1); break;
                            default: OUTIN(4, 1); break;
                            }
                        }
                    }
                }
            }
        }
    }
}

// Interleaving indices for VPERMT2W: element 2j takes a[j] (index j) and element 2j+1 takes b[j] (index
// 32 + j); the high half does the same for j + 16.
static const uint16_t interleaveLo[32] = {0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                          8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
static const uint16_t interleaveHi[32] = {16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21, 53, 22, 54, 23, 55,
                                          24, 56, 25, 57, 26, 58, 27, 59, 28, 60, 29, 61, 30, 62, 31, 63};

// y[r, o] (+)= Σ_i x[r, i]·w[i, o] for r < R and the first `n` ≤ 32 outputs (NV = 1: n ≤ 16).
INLINE TARGET void tile_inout(const int R, const int NV, const uint16_t *x, size_t ldx, const uint16_t *w, size_t ldw,
                              size_t k, size_t n, float *y, size_t ldy, int accumulate) {
    const __m512i lo = _mm512_loadu_si512(interleaveLo), hi = _mm512_loadu_si512(interleaveHi);
    const __mmask32 m = n >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << n) - 1);
    __m512 acc[RMAX][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i < k; i += 2) {
        const __m512i a = _mm512_maskz_loadu_epi16(m, w + i * ldw);
        const __m512i b = i + 1 < k ? _mm512_maskz_loadu_epi16(m, w + (i + 1) * ldw) : _mm512_setzero_si512();
        __m512bh wv[2];
        wv[0] = (__m512bh)_mm512_permutex2var_epi16(a, lo, b);
        if (NV == 2) wv[1] = (__m512bh)_mm512_permutex2var_epi16(a, hi, b);
        for (int r = 0; r < R; r++) {
            uint32_t pair = x[r * ldx + i];
            if (i + 1 < k) pair |= (uint32_t)x[r * ldx + i + 1] << 16;
            const __m512bh xv = (__m512bh)_mm512_set1_epi32((int)pair);
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], xv, wv[v]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) {
            const size_t first = 16 * (size_t)v;
            const __mmask16 s = n >= first + 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - first)) - 1);
            float *p = y + r * ldy + first;
            __m512 val = acc[r][v];
            if (accumulate) val = _mm512_add_ps(val, _mm512_maskz_loadu_ps(s, p));
            _mm512_mask_storeu_ps(p, s, val);
        }
}

#define INOUT(R, NV) tile_inout(R, NV, xr + i0, ldx, w + i0 * ldw + o, ldw, i1 - i0, no, y + r * ldy + o, ldy, add)

// Inputs per pass over the columns: the weights are read in runs of KCHUNK whole rows (contiguous), not
// 64-byte pieces of every row (a page per piece), and y holds the partial sums between passes.
enum { KCHUNK = 64 };

TARGET void cpiscope_bf16_linear_inout(const uint16_t *x, size_t ldx, size_t rows, const uint16_t *w, size_t ldw,
                                       size_t in, size_t out, float *y, size_t ldy, int accumulate) {
    if (in == 0) {
        if (!accumulate)
            for (size_t r = 0; r < rows; r++) memset(y + r * ldy, 0, out * sizeof(float));
        return;
    }
    for (size_t i0 = 0; i0 < in; i0 += KCHUNK) {
    const size_t i1 = in - i0 < KCHUNK ? in : i0 + KCHUNK;
    const int add = accumulate || i0 > 0;
    for (size_t o = 0; o < out; o += 32) {
        const size_t no = out - o < 32 ? out - o : 32;
        for (size_t r = 0; r < rows; r += RMAX) {
            const size_t nr = rows - r < RMAX ? rows - r : RMAX;
            const uint16_t *xr = x + r * ldx;
            if (no > 16) {
                switch (nr) {
                case 1: INOUT(1, 2); break;
                case 2: INOUT(2, 2); break;
                case 3: INOUT(3, 2); break;
                default: INOUT(4, 2); break;
                }
            } else {
                switch (nr) {
                case 1: INOUT(1, 1); break;
                case 2: INOUT(2, 1); break;
                case 3: INOUT(3, 1); break;
                default: INOUT(4, 1); break;
                }
            }
        }
    }
    }
}

#else
int cpiscope_bf16_kernel_available(void) { return 0; }
int cpiscope_cpu_has_avx512_skylakex(void) { return 0; }
void cpiscope_bf16_linear_outin(const uint16_t *x, size_t ldx, size_t rows, const uint16_t *w, size_t ldw,
                                size_t in, size_t out, float *y, size_t ldy, int accumulate) {
    (void)x; (void)ldx; (void)rows; (void)w; (void)ldw; (void)in; (void)out; (void)y; (void)ldy; (void)accumulate;
}
void cpiscope_bf16_linear_inout(const uint16_t *x, size_t ldx, size_t rows, const uint16_t *w, size_t ldw,
                                size_t in, size_t out, float *y, size_t ldy, int accumulate) {
    (void)x; (void)ldx; (void)rows; (void)w; (void)ldw; (void)in; (void)out; (void)y; (void)ldy; (void)accumulate;
}
#endif
