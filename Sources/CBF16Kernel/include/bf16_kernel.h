// bf16 × bf16 → float32 products for few rows (decoding steps), with AVX512-BF16 dot products, for
// TensorCore/BF16MatMul.swift. Not public API: see ../README.md.
#ifndef CPISCOPE_BF16_KERNEL_H
#define CPISCOPE_BF16_KERNEL_H
#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU has AVX512F, AVX512BW, AVX512VL and AVX512_BF16 and the OS saves the AVX-512 state
/// (XCR0 opmask, ZMM_Hi256, Hi16_ZMM), so the two product functions below may run; else 0.
int cpiscope_bf16_kernel_available(void);

/// 1 when this CPU has the AVX-512 subset of OpenBLAS's SkylakeX kernels (AVX512F, DQ, BW, VL) and the OS
/// saves the AVX-512 state; else 0. For the OpenBLAS core-type decision in TensorCore/MatMul.swift.
int cpiscope_cpu_has_avx512_skylakex(void);

/// y[r, o] (+)= Σ_i x[r, i] · w[o, i] for r < rows, o < out, i < in: W stored [out, in] (torch.nn.Linear).
/// x: bf16 [rows, in], rows `ldx` elements apart; w: bf16, rows `ldw` elements apart; y: float32, rows `ldy`
/// elements apart. `accumulate` 0: y is overwritten; else added to. Float32 accumulation; the products of
/// bf16 values are exact, the sums are rounded to nearest even (bf16/float32 subnormals count as zero:
/// VDPBF16PS flushes them). Any `rows`; best for rows ≤ 16. Only call when the check above returned 1.
void cpiscope_bf16_linear_outin(const uint16_t *x, size_t ldx, size_t rows, const uint16_t *w, size_t ldw,
                                size_t in, size_t out, float *y, size_t ldy, int accumulate);

/// The same for W stored [in, out] (GPT-2 Conv1D): y[r, o] (+)= Σ_i x[r, i] · w[i, o], rows of w `ldw`
/// elements apart.
void cpiscope_bf16_linear_inout(const uint16_t *x, size_t ldx, size_t rows, const uint16_t *w, size_t ldw,
                                size_t in, size_t out, float *y, size_t ldy, int accumulate);

/// Reads `n` bytes at `p` once, front to back, and returns a value that depends on every byte (so the reads
/// cannot be dropped): the streaming read of the roofline's bandwidth (TensorCore/Roofline.swift). AVX-512
/// loads where the CPU has AVX512F and the OS saves its state, else 16-byte loads; both far above the
/// memory bandwidth of one core.
uint64_t cpiscope_bf16_stream_read(const void *p, size_t n);

#endif
