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
//     horizontally at the end. Outputs go in groups read in lockstep, the next group prefetched in
//     software while this one computes (the structure is described at the kernel, below).
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

// Tiles of the [in, out] kernel: RMAX rows × 32 outputs.
enum { RMAX = 4 };

INLINE TARGET __m512bh load32(const uint16_t *p) { return (__m512bh)_mm512_loadu_si512(p); }
INLINE TARGET __m512bh load32m(const uint16_t *p, __mmask32 m) { return (__m512bh)_mm512_maskz_loadu_epi16(m, p); }

// [out, in] kernel. A decoding step streams every weight once, so the kernel must keep the memory busy
// while it computes: each call walks its outputs in groups of O rows of W (read in lockstep along `in`),
// and while it computes on one group it prefetches the next group's rows at the same offsets (one
// prefetch per weight cache line, a group ahead: 24-64 KiB, microseconds before use), so the hardware's
// page-bound prefetchers never stall the stream. The R rows of x (R ≤ 8) stay in L1/L2 and are reused by
// the O outputs; the weights are read once per group of up to 8 rows.
//   - up to 8 rows: one row group, the whole of `in` per group (no partial sums): tiles of 1-2 rows × 8
//     outputs, 3-4 × 4, 5-8 × 3 (at most 24 accumulators of 16 lanes); but where the rows of x fit in
//     half of L1 (rows · in · 2 bytes ≤ X_IN_L1: up to 4 rows at in = 4096, 1 row at 11008), one output at
//     a time, so the weights are read row after row in address order. Reading O rows side by side streams
//     25-45% slower than reading in address order on the development machine (decode_kernel_harness/
//     access_patterns.c), and with x in L1 nothing needs the reuse of a wider tile: 1-4 rows then take
//     0.94-1.2× the time to read the weights against 1.05-1.5× (BENCHMARKS.md, issue 26, third session);
//   - 9-16 rows, and 5-8 rows whose x exceeds X_BLOCKED = 64 KiB (more than 4096 inputs at 8 rows: 7B's
//     down_proj, in = 11008): row groups of WIDE_RG = 4 rows × WIDE_O = 6 outputs that share each weight
//     block of KBLOCK inputs while it is in L1 (x's block of up to 16 rows, 32 KiB, too), the partial sums
//     of every group kept between blocks. Measured against 2 groups of 8 rows × 3 outputs and blocks of
//     256-2048: 1.2-1.35× faster at 12-16 rows on 7B shapes. At 5-8 rows past 64 KiB the 3-output tile
//     would read all of x from L2 for every group: a 7B step of 8 rows took 365-393 ms against 414-455 ms
//     that way, while at exactly 64 KiB (in = 4096) the two paths measured equal (BENCHMARKS.md, issue 26,
//     fourth session).
// Rows of x that lie a multiple of 4 KiB apart would share L1 sets with each other and the weights' rows
// (8 KiB apart at in = 4096); the caller pads x's row stride (TensorCore/BF16MatMul.swift).
// Measured (BENCHMARKS.md, issue 26): 1.3-2.9× faster than the previous kernel at 1-16 rows on 7B shapes.
enum { KBLOCK = 1024, GMAX = 8, WIDE_RG = 4, WIDE_O = 6, X_IN_L1 = 32 << 10, X_BLOCKED = 64 << 10 };

// Inputs i0..<i1 of y[r, o] (+)= Σ_i x[r, i]·w[o, i] for r < R, o < O (constants after inlining, so the
// accumulators live in registers). The R·O partial sums (16 lanes each) start at zero (`first`) or from
// `part`; they go back to `part`, or, after the last block (`last`), are reduced into y. `pf`: the rows to
// prefetch (row o at pf + o·ldw), at the same offsets; when there is no next group it points at this one.
INLINE TARGET void tile_outin(const int R, const int O, const uint16_t *x, size_t ldx, const uint16_t *w, size_t ldw,
                              size_t i0, size_t i1, __m512 *part, int first, int last, float *y, size_t ldy,
                              int accumulate, const uint16_t *pf) {
    __m512 acc[GMAX][8];
    for (int r = 0; r < R; r++)
        for (int o = 0; o < O; o++) acc[r][o] = first ? _mm512_setzero_ps() : part[r * 8 + o];
    size_t i = i0;
    for (; i + 32 <= i1; i += 32) {
        __m512bh wv[8];
        for (int o = 0; o < O; o++) {
            wv[o] = load32(w + o * ldw + i);
            _mm_prefetch((const char *)(pf + o * ldw + i), _MM_HINT_T0);
        }
        for (int r = 0; r < R; r++) {
            const __m512bh xv = load32(x + r * ldx + i);
            for (int o = 0; o < O; o++) acc[r][o] = _mm512_dpbf16_ps(acc[r][o], xv, wv[o]);
        }
    }
    if (i < i1) {  // the last (i1 - i0) % 32 inputs; masked-off lanes load as zero and are not read
        const __mmask32 m = (__mmask32)((1ull << (i1 - i)) - 1);
        __m512bh wv[8];
        for (int o = 0; o < O; o++) wv[o] = load32m(w + o * ldw + i, m);
        for (int r = 0; r < R; r++) {
            const __m512bh xv = load32m(x + r * ldx + i, m);
            for (int o = 0; o < O; o++) acc[r][o] = _mm512_dpbf16_ps(acc[r][o], xv, wv[o]);
        }
    }
    if (last) {
        for (int r = 0; r < R; r++)
            for (int o = 0; o < O; o++) {
                const float s = _mm512_reduce_add_ps(acc[r][o]);
                y[r * ldy + o] = accumulate ? y[r * ldy + o] + s : s;
            }
    } else {
        for (int r = 0; r < R; r++)
            for (int o = 0; o < O; o++) part[r * 8 + o] = acc[r][o];
    }
}

// Outputs per tile for a row group of `rg` rows of `in` inputs.
static inline int outputs_per_tile(int rg, size_t in) {
    if ((size_t)rg * in * 2 <= X_IN_L1) return 1;
    return rg <= 2 ? 8 : rg <= 4 ? 4 : 3;
}

#define OUTIN(R, O) tile_outin(R, O, xr, ldx, wo, ldw, i0, i1, part, i0 == 0, i1 == in, \
                               yro, ldy, accumulate, pf)
#define OUTIN_ROWS(O)                                                                                               \
    switch (nr) {                                                                                                   \
    case 1: OUTIN(1, O); break;                                                                                     \
    case 2: OUTIN(2, O); break;                                                                                     \
    case 3: OUTIN(3, O); break;                                                                                     \
    case 4: OUTIN(4, O); break;                                                                                     \
    case 5: OUTIN(5, O); break;                                                                                     \
    case 6: OUTIN(6, O); break;                                                                                     \
    case 7: OUTIN(7, O); break;                                                                                     \
    default: OUTIN(8, O); break;                                                                                    \
    }

TARGET void cpiscope_bf16_linear_outin(const uint16_t *x, size_t ldx, size_t rows, const uint16_t *w, size_t ldw,
                                       size_t in, size_t out, float *y, size_t ldy, int accumulate) {
    if (in == 0) {
        if (!accumulate)
            for (size_t r = 0; r < rows; r++) memset(y + r * ldy, 0, out * sizeof(float));
        return;
    }
    __m512 partials[4 * GMAX * 8];   // up to 4 row groups × 8 × 8 accumulators
    for (size_t r0 = 0; r0 < rows; r0 += 2 * GMAX) {
        const size_t rowsHere = rows - r0 < 2 * GMAX ? rows - r0 : 2 * GMAX;
        const int wide = rowsHere > GMAX || (rowsHere > 4 && rowsHere * in * 2 > X_BLOCKED);
        const int rg = wide ? WIDE_RG : (int)rowsHere;   // rows per group
        const size_t kb = wide ? KBLOCK : in;            // inputs per block
        const int O = wide ? WIDE_O : outputs_per_tile(rg, in);
        const uint16_t *x0 = x + r0 * ldx;
        float *y0 = y + r0 * ldy;
        for (size_t o = 0; o < out;) {
            const int no = out - o >= (size_t)O ? O : 1;   // the last out % O outputs one at a time
            // The next group's rows (this group's where there is none).
            const uint16_t *pf = o + 2 * (size_t)no <= out ? w + (o + (size_t)no) * ldw : w + o * ldw;
            const uint16_t *wo = w + o * ldw;
            for (size_t i0 = 0; i0 < in; i0 += kb) {
                const size_t i1 = in - i0 < kb ? in : i0 + kb;
                for (size_t r = 0; r < rowsHere; r += (size_t)rg) {
                    const int nr = rowsHere - r < (size_t)rg ? (int)(rowsHere - r) : rg;
                    const uint16_t *xr = x0 + r * ldx;
                    float *yro = y0 + r * ldy + o;
                    __m512 *part = partials + (r / (size_t)rg) * (GMAX * 8);
                    if (no == 1) {
                        OUTIN_ROWS(1)
                    } else if (O == 8) {
                        switch (nr) {
                        case 1: OUTIN(1, 8); break;
                        default: OUTIN(2, 8); break;
                        }
                    } else if (O == 6) {
                        switch (nr) {
                        case 1: OUTIN(1, 6); break;
                        case 2: OUTIN(2, 6); break;
                        case 3: OUTIN(3, 6); break;
                        default: OUTIN(4, 6); break;
                        }
                    } else if (O == 4) {
                        switch (nr) {
                        case 1: OUTIN(1, 4); break;
                        case 2: OUTIN(2, 4); break;
                        case 3: OUTIN(3, 4); break;
                        default: OUTIN(4, 4); break;
                        }
                    } else {
                        OUTIN_ROWS(3)
                    }
                }
            }
            o += (size_t)no;
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

__attribute__((target("avx512f")))
static uint64_t stream_read_avx512(const unsigned char *p, size_t n) {
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 256 <= n; i += 256) {
        s0 = _mm512_xor_si512(s0, _mm512_loadu_si512(p + i));
        s1 = _mm512_xor_si512(s1, _mm512_loadu_si512(p + i + 64));
        s2 = _mm512_xor_si512(s2, _mm512_loadu_si512(p + i + 128));
        s3 = _mm512_xor_si512(s3, _mm512_loadu_si512(p + i + 192));
    }
    s0 = _mm512_xor_si512(_mm512_xor_si512(s0, s1), _mm512_xor_si512(s2, s3));
    uint64_t h = (uint64_t)_mm512_reduce_add_epi64(s0);
    for (; i < n; i++) h = h * 31 + p[i];
    return h;
}

static uint64_t stream_read_sse(const unsigned char *p, size_t n) {
    __m128i s0 = _mm_setzero_si128(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm_xor_si128(s0, _mm_loadu_si128((const __m128i *)(p + i)));
        s1 = _mm_xor_si128(s1, _mm_loadu_si128((const __m128i *)(p + i + 16)));
        s2 = _mm_xor_si128(s2, _mm_loadu_si128((const __m128i *)(p + i + 32)));
        s3 = _mm_xor_si128(s3, _mm_loadu_si128((const __m128i *)(p + i + 48)));
    }
    s0 = _mm_xor_si128(_mm_xor_si128(s0, s1), _mm_xor_si128(s2, s3));
    uint64_t lanes[2];
    _mm_storeu_si128((__m128i *)lanes, s0);
    uint64_t h = lanes[0] ^ lanes[1];
    for (; i < n; i++) h = h * 31 + p[i];
    return h;
}

uint64_t cpiscope_bf16_stream_read(const void *p, size_t n) {
    // CPUID costs far less than the read it decides (called once per region, not per byte).
    return cpiscope_cpu_has_avx512_skylakex() ? stream_read_avx512((const unsigned char *)p, n) : stream_read_sse((const unsigned char *)p, n);
}

#else
int cpiscope_bf16_kernel_available(void) { return 0; }
uint64_t cpiscope_bf16_stream_read(const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++) h = h * 31 + b[i];
    return h;
}
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
