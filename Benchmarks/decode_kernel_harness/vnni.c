// The outputs-in-lanes prototypes of Benchmarks/decode_kernel_harness/bench.c (not used by cpiscope):
// vnni_linear_outin transposes per tile in registers; vnni2_linear_outin (V2=1) transposes 32 outputs ×
// 1024 inputs once into a 64 KiB buffer that row groups of 8 share.
#include <immintrin.h>
#include <stdint.h>
#include <stddef.h>
#define TARGET __attribute__((target("avx512f,avx512bf16,avx512bw,avx512vl")))
#define INLINE static inline __attribute__((always_inline))

// Transpose 16 rows x 16 dwords (rows at w + i*ldw, 64 bytes each) into t[j] = dword j of every row.
INLINE TARGET void transpose16(const uint16_t *w, size_t ldw, __m512i t[16]) {
    __m512i r[16], a[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_si512(w + (size_t)i * ldw);
    // stage 1: 32-bit interleave of row pairs
    for (int i = 0; i < 16; i += 2) { a[i] = _mm512_unpacklo_epi32(r[i], r[i+1]); a[i+1] = _mm512_unpackhi_epi32(r[i], r[i+1]); }
    // stage 2: 64-bit interleave
    for (int i = 0; i < 16; i += 4) {
        r[i]   = _mm512_unpacklo_epi64(a[i], a[i+2]); r[i+1] = _mm512_unpackhi_epi64(a[i], a[i+2]);
        r[i+2] = _mm512_unpacklo_epi64(a[i+1], a[i+3]); r[i+3] = _mm512_unpackhi_epi64(a[i+1], a[i+3]);
    }
    // stage 3: 128-bit lanes
    for (int i = 0; i < 4; i++) {
        a[i]    = _mm512_shuffle_i32x4(r[i], r[i+4], 0x88);   a[i+4]  = _mm512_shuffle_i32x4(r[i], r[i+4], 0xdd);
        a[i+8]  = _mm512_shuffle_i32x4(r[i+8], r[i+12], 0x88); a[i+12] = _mm512_shuffle_i32x4(r[i+8], r[i+12], 0xdd);
    }
    for (int i = 0; i < 8; i++) { t[i] = _mm512_shuffle_i32x4(a[i], a[i+8], 0x88); t[i+8] = _mm512_shuffle_i32x4(a[i], a[i+8], 0xdd); }
}

enum { PF = 512 };
// y[r, 0..16·OB) (+)= Σ_i x[r, i] · w[o, i] for R rows and 16·OB outputs (rows of w ldw apart), k % 32 == 0.
INLINE TARGET void vnni_tile(const int R, const int OB, const uint16_t *x, size_t ldx, const uint16_t *w, size_t ldw,
                             size_t k, float *y, size_t ldy, int accumulate, const uint16_t *next) {
    __m512 acc[2][16];
    for (int ob = 0; ob < OB; ob++) for (int r = 0; r < R; r++) acc[ob][r] = _mm512_setzero_ps();
    for (size_t i = 0; i < k; i += 32) {
        for (int ob = 0; ob < OB; ob++) {
            const uint16_t *wb = w + (size_t)ob * 16 * ldw;
            if (i + PF < k) { for (int q = 0; q < 16; q++) _mm_prefetch((const char *)(wb + q * ldw + i + PF), _MM_HINT_T0); }
            else if (next) { for (int q = 0; q < 16; q++) _mm_prefetch((const char *)(next + (size_t)(ob * 16 + q) * ldw + (i + PF - k)), _MM_HINT_T0); }
            __m512i t[16];
            transpose16(wb + i, ldw, t);
            for (int j = 0; j < 16; j++)
                for (int r = 0; r < R; r++) {
                    const __m512bh xb = (__m512bh)_mm512_set1_epi32(*(const int32_t *)(x + r * ldx + i + 2 * j));
                    acc[ob][r] = _mm512_dpbf16_ps(acc[ob][r], xb, (__m512bh)t[j]);
                }
        }
    }
    for (int ob = 0; ob < OB; ob++)
        for (int r = 0; r < R; r++) {
            float *p = y + r * ldy + ob * 16;
            __m512 v = acc[ob][r];
            if (accumulate) v = _mm512_add_ps(v, _mm512_loadu_ps(p));
            _mm512_storeu_ps(p, v);
        }
}

#define VT(R, OB) vnni_tile(R, OB, x + r0 * ldx, ldx, w + o * ldw, ldw, in, y + r0 * ldy + o, ldy, accumulate, nx)
TARGET void vnni_linear_outin(const uint16_t *x, size_t ldx, size_t rows, const uint16_t *w, size_t ldw,
                              size_t in, size_t out, float *y, size_t ldy, int accumulate) {
    // rows in groups of up to 16; outputs in blocks of 32 (≤ 8 rows) or 16
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const size_t nr = rows - r0 < 16 ? rows - r0 : 16;
        const size_t ob = nr <= 8 ? 32 : 16;
        for (size_t o = 0; o + ob <= out; o += ob) {
            const uint16_t *nx = o + 2 * ob <= out ? w + (o + ob) * ldw : 0;
            if (ob == 32) {
                switch (nr) { case 1: VT(1,2); break; case 2: VT(2,2); break; case 3: VT(3,2); break; case 4: VT(4,2); break;
                              case 5: VT(5,2); break; case 6: VT(6,2); break; case 7: VT(7,2); break; default: VT(8,2); }
            } else {
                switch (nr) { case 9: VT(9,1); break; case 10: VT(10,1); break; case 11: VT(11,1); break; case 12: VT(12,1); break;
                              case 13: VT(13,1); break; case 14: VT(14,1); break; case 15: VT(15,1); break; default: VT(16,1); }
            }
        }
    }
}

// Shared-buffer variant for 9-16 rows: per block of 32 outputs and KC inputs, W is transposed once into
// buf (KC/2 pairs × 32 outputs, 64 B per 16 outputs), then each row group of up to 8 rows accumulates
// 2 × 16 outputs from it (partials kept in part between chunks).
enum { KC = 1024 };
INLINE TARGET void buf_rows(const int R, const uint16_t *x, size_t ldx, const __m512i *buf, size_t i0, size_t kc,
                            __m512 *part, int first) {
    __m512 acc[8][2];
    for (int r = 0; r < R; r++) for (int b = 0; b < 2; b++) acc[r][b] = first ? _mm512_setzero_ps() : part[r * 2 + b];
    for (size_t j = 0; j < kc / 2; j++) {
        const __m512bh t0 = (__m512bh)buf[2 * j], t1 = (__m512bh)buf[2 * j + 1];
        for (int r = 0; r < R; r++) {
            const __m512bh xb = (__m512bh)_mm512_set1_epi32(*(const int32_t *)(x + r * ldx + i0 + 2 * j));
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], xb, t0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], xb, t1);
        }
    }
    for (int r = 0; r < R; r++) for (int b = 0; b < 2; b++) part[r * 2 + b] = acc[r][b];
}

TARGET void vnni2_linear_outin(const uint16_t *x, size_t ldx, size_t rows, const uint16_t *w, size_t ldw,
                               size_t in, size_t out, float *y, size_t ldy, int accumulate) {
    static __thread __m512i buf[KC];          // KC/2 pairs × 2 blocks of 16 outputs: 64 KiB
    __m512 part[16 * 2];
    for (size_t o = 0; o + 32 <= out; o += 32) {
        const uint16_t *wo = w + o * ldw;
        const uint16_t *next = o + 64 <= out ? w + (o + 32) * ldw : 0;
        for (size_t i0 = 0; i0 < in; i0 += KC) {
            const size_t kc = in - i0 < KC ? in - i0 : KC;
            for (size_t i = 0; i < kc; i += 32) {
                for (int b = 0; b < 2; b++) {
                    const uint16_t *wb = wo + (size_t)b * 16 * ldw + i0 + i;
                    if (i0 + i + PF < in) { for (int q = 0; q < 16; q++) _mm_prefetch((const char *)(wb + q * ldw + PF), _MM_HINT_T0); }
                    else if (next) { for (int q = 0; q < 16; q++) _mm_prefetch((const char *)(next + (size_t)(b * 16 + q) * ldw + (i0 + i + PF - in)), _MM_HINT_T0); }
                    __m512i t[16];
                    transpose16(wb, ldw, t);
                    for (int j = 0; j < 16; j++) buf[(i / 2 + j) * 2 + b] = t[j];
                }
            }
            for (size_t r0 = 0; r0 < rows; r0 += 8) {
                const int nr = rows - r0 < 8 ? (int)(rows - r0) : 8;
                __m512 *p = part + r0 * 2;
                const uint16_t *xr = x + r0 * ldx;
                switch (nr) {
                case 1: buf_rows(1, xr, ldx, buf, i0, kc, p, i0 == 0); break;
                case 2: buf_rows(2, xr, ldx, buf, i0, kc, p, i0 == 0); break;
                case 3: buf_rows(3, xr, ldx, buf, i0, kc, p, i0 == 0); break;
                case 4: buf_rows(4, xr, ldx, buf, i0, kc, p, i0 == 0); break;
                case 5: buf_rows(5, xr, ldx, buf, i0, kc, p, i0 == 0); break;
                case 6: buf_rows(6, xr, ldx, buf, i0, kc, p, i0 == 0); break;
                case 7: buf_rows(7, xr, ldx, buf, i0, kc, p, i0 == 0); break;
                default: buf_rows(8, xr, ldx, buf, i0, kc, p, i0 == 0); break;
                }
            }
        }
        for (size_t r = 0; r < rows; r++)
            for (int b = 0; b < 2; b++) {
                float *py = y + r * ldy + o + 16 * b;
                __m512 v = part[r * 2 + b];
                if (accumulate) v = _mm512_add_ps(v, _mm512_loadu_ps(py));
                _mm512_storeu_ps(py, v);
            }
    }
}
