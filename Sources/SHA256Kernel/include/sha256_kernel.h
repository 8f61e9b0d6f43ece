// SHA-256 block compression with the x86 SHA extensions, for Checkpoints/ContentHash.swift.
#ifndef CPISCOPE_SHA256_KERNEL_H
#define CPISCOPE_SHA256_KERNEL_H
#include <stddef.h>
#include <stdint.h>

/// The 64 round constants K of FIPS 180-4 §4.2.2 (shared with the portable Swift code).
extern const uint32_t cpiscope_sha256_k[64];

/// 1 when this CPU has the SHA extensions (and SSSE3 / SSE4.1), so `cpiscope_sha256_blocks_ni` may run.
int cpiscope_sha256_ni_available(void);

/// Compresses `blocks` consecutive 64-byte blocks of `data` into `state` (h0…h7 of FIPS 180-4 §6.2.2).
/// Only call when `cpiscope_sha256_ni_available()` returns 1.
void cpiscope_sha256_blocks_ni(uint32_t state[8], const uint8_t *data, size_t blocks);

#endif
