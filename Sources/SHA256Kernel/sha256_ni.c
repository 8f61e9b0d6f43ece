// SHA-256 compression (FIPS 180-4 §6.2.2) with the Intel SHA extensions, written from the instruction
// semantics in the Intel 64 and IA-32 Architectures Software Developer's Manual (SHA256RNDS2,
// SHA256MSG1, SHA256MSG2) and Intel's "Intel SHA Extensions" white paper (Gulley et al., 2013):
//   - the eight working variables live in two registers, ABEF = (A, B, E, F) and CDGH = (C, D, G, H),
//     listed from the highest 32-bit lane to the lowest;
//   - SHA256RNDS2 runs two rounds on (CDGH, ABEF) with W[t] + K[t] and W[t+1] + K[t+1] in the low two
//     lanes of its third operand and returns the new ABEF; the new CDGH is the old ABEF;
//   - W[t..t+3] for t ≥ 16 is MSG2(MSG1(W[t-16..t-13], W[t-12..t-9]) + W[t-7..t-4], W[t-4..t-1]).
// The portable Swift implementation (ContentHash.swift) is the fallback and the reference in tests.
#include "sha256_kernel.h"

const uint32_t cpiscope_sha256_k[64] = {  // FIPS 180-4 §4.2.2
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>

int cpiscope_sha256_ni_available(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const int sha = (b >> 29) & 1;
    return ssse3 && sse41 && sha;
}


__attribute__((target("sha,sse4.1,ssse3")))
void cpiscope_sha256_blocks_ni(uint32_t state[8], const uint8_t *data, size_t blocks) {
    // Big-endian message words: reverse the bytes of each 32-bit lane.
    const __m128i bswap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
    __m128i abef = _mm_set_epi32((int)state[0], (int)state[1], (int)state[4], (int)state[5]);
    __m128i cdgh = _mm_set_epi32((int)state[2], (int)state[3], (int)state[6], (int)state[7]);
    for (size_t blk = 0; blk < blocks; blk++, data += 64) {
        const __m128i abef0 = abef, cdgh0 = cdgh;
        __m128i w[4];  // W[4g .. 4g+3] for the last four groups g, at w[g % 4]
        for (int g = 0; g < 16; g++) {
            __m128i m;
            if (g < 4) {
                m = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * g)), bswap);
            } else {
                const __m128i w16 = w[g % 4], w12 = w[(g + 1) % 4], w8 = w[(g + 2) % 4], w4 = w[(g + 3) % 4];
                m = _mm_sha256msg1_epu32(w16, w12);               // W[t-16] + σ0(W[t-15]) …
                m = _mm_add_epi32(m, _mm_alignr_epi8(w4, w8, 4));  // + W[t-7] …
                m = _mm_sha256msg2_epu32(m, w4);                  // + σ1(W[t-2]) …
            }
            w[g % 4] = m;
            __m128i wk = _mm_add_epi32(m, _mm_loadu_si128((const __m128i *)(cpiscope_sha256_k + 4 * g)));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);        // rounds 4g, 4g+1: cdgh now holds ABEF
            wk = _mm_shuffle_epi32(wk, 0x0E);                    // lanes 2, 3 down to 0, 1
            abef = _mm_sha256rnds2_epu32(abef, cdgh, wk);        // rounds 4g+2, 4g+3
        }
        abef = _mm_add_epi32(abef, abef0);
        cdgh = _mm_add_epi32(cdgh, cdgh0);
    }
    state[0] = (uint32_t)_mm_extract_epi32(abef, 3);
    state[1] = (uint32_t)_mm_extract_epi32(abef, 2);
    state[4] = (uint32_t)_mm_extract_epi32(abef, 1);
    state[5] = (uint32_t)_mm_extract_epi32(abef, 0);
    state[2] = (uint32_t)_mm_extract_epi32(cdgh, 3);
    state[3] = (uint32_t)_mm_extract_epi32(cdgh, 2);
    state[6] = (uint32_t)_mm_extract_epi32(cdgh, 1);
    state[7] = (uint32_t)_mm_extract_epi32(cdgh, 0);
}

#else
int cpiscope_sha256_ni_available(void) { return 0; }
void cpiscope_sha256_blocks_ni(uint32_t state[8], const uint8_t *data, size_t blocks) {
    (void)state; (void)data; (void)blocks;
}
#endif
