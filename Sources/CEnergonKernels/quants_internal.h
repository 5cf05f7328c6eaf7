// Private to quants*.c: ggml's block layouts and the per-level kernels the dispatcher picks.
#ifndef ENERGON_QUANTS_INTERNAL_H
#define ENERGON_QUANTS_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "energon_quants.h"

// Bit-exactness with ggml / gguf-py needs `a * b + c` rounded twice, never fused into an FMA
// (clang contracts within an expression by default once FMA is enabled for a function).
#pragma STDC FP_CONTRACT OFF

#define ENERGON_QK 32     // elements per legacy block
#define ENERGON_QK_K 256  // elements per K-quant super-block

// ggml's block structs. `packed` drops their alignment to 1 so a row at any address (a GGUF
// mapping, a Swift buffer) is read safely; the members already sit at their natural offsets,
// so the sizes match ggml's, as the static asserts pin.
#define ENERGON_BLOCK __attribute__((packed))
typedef struct ENERGON_BLOCK { uint16_t d; uint8_t qs[16]; } block_q4_0;
typedef struct ENERGON_BLOCK { uint16_t d; uint16_t m; uint8_t qs[16]; } block_q4_1;
typedef struct ENERGON_BLOCK { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } block_q5_0;
typedef struct ENERGON_BLOCK { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[16]; } block_q5_1;
typedef struct ENERGON_BLOCK { uint16_t d; int8_t qs[32]; } block_q8_0;
typedef struct ENERGON_BLOCK { uint16_t d; uint16_t s; int8_t qs[32]; } block_q8_1;
typedef struct ENERGON_BLOCK { uint8_t scales[16]; uint8_t qs[64]; uint16_t d; uint16_t dmin; } block_q2_K;
typedef struct ENERGON_BLOCK { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } block_q3_K;
typedef struct ENERGON_BLOCK { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qs[128]; } block_q4_K;
typedef struct ENERGON_BLOCK { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } block_q5_K;
typedef struct ENERGON_BLOCK { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } block_q6_K;
typedef struct ENERGON_BLOCK { float d; int8_t qs[256]; int16_t bsums[16]; } block_q8_K;

_Static_assert(sizeof(block_q4_0) == 18, "q4_0 size");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1 size");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0 size");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1 size");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0 size");
_Static_assert(sizeof(block_q8_1) == 36, "q8_1 size");
_Static_assert(sizeof(block_q2_K) == 84, "q2_K size");
_Static_assert(sizeof(block_q3_K) == 110, "q3_K size");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K size");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K size");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K size");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K size");

/// Unpacks the 6-bit scale `j` and min `j` (j < 8) of a Q4_K/Q5_K block's 12 scale bytes:
/// sub-blocks 0-3 keep their low 6 bits in bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7
/// keep their low 4 bits in bytes 8-11 and their top 2 bits in the spare top bits of bytes 0-7.
static inline void energon_k_scale_min(int j, const uint8_t *q, uint8_t *scale, uint8_t *min) {
    if (j < 4) {
        *scale = q[j] & 63;
        *min = q[j + 4] & 63;
    } else {
        *scale = (uint8_t)((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
        *min = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

typedef void (*energon_dequantize_fn)(const void *src, float *dst, int64_t n);
typedef void (*energon_quantize_fn)(const float *src, void *dst, int64_t n);

// Portable kernels (quants.c).
void energon_dq_f16_portable(const void *src, float *dst, int64_t n);
void energon_dq_bf16_portable(const void *src, float *dst, int64_t n);
void energon_dq_q4_0_portable(const void *src, float *dst, int64_t n);
void energon_dq_q4_1_portable(const void *src, float *dst, int64_t n);
void energon_dq_q5_0_portable(const void *src, float *dst, int64_t n);
void energon_dq_q8_0_portable(const void *src, float *dst, int64_t n);
void energon_dq_q4_K_portable(const void *src, float *dst, int64_t n);
void energon_dq_q6_K_portable(const void *src, float *dst, int64_t n);

// Portable encoders (quants_encode.c).
void energon_q_f16_portable(const float *src, void *dst, int64_t n);
void energon_q_bf16_portable(const float *src, void *dst, int64_t n);
void energon_q_q4_0_portable(const float *src, void *dst, int64_t n);
void energon_q_q4_1_portable(const float *src, void *dst, int64_t n);
void energon_q_q5_0_portable(const float *src, void *dst, int64_t n);
void energon_q_q5_1_portable(const float *src, void *dst, int64_t n);
void energon_q_q8_0_portable(const float *src, void *dst, int64_t n);
void energon_q_q8_K_portable(const float *src, void *dst, int64_t n);

// Portable K-quant encoders (quants_kencode.c).
void energon_q_q2_K_portable(const float *src, void *dst, int64_t n);
void energon_q_q3_K_portable(const float *src, void *dst, int64_t n);
void energon_q_q4_K_portable(const float *src, void *dst, int64_t n);
void energon_q_q5_K_portable(const float *src, void *dst, int64_t n);
void energon_q_q6_K_portable(const float *src, void *dst, int64_t n);

#if defined(__x86_64__)
// AVX2 + FMA + F16C kernels (quants_avx2.c).
void energon_dq_f16_avx2(const void *src, float *dst, int64_t n);
void energon_dq_bf16_avx2(const void *src, float *dst, int64_t n);
void energon_dq_q4_0_avx2(const void *src, float *dst, int64_t n);
void energon_dq_q4_1_avx2(const void *src, float *dst, int64_t n);
void energon_dq_q5_0_avx2(const void *src, float *dst, int64_t n);
void energon_dq_q8_0_avx2(const void *src, float *dst, int64_t n);
void energon_dq_q4_K_avx2(const void *src, float *dst, int64_t n);
void energon_dq_q6_K_avx2(const void *src, float *dst, int64_t n);
void energon_dq_q5_1_avx2(const void *src, float *dst, int64_t n);
void energon_dq_q2_K_avx2(const void *src, float *dst, int64_t n);
void energon_dq_q3_K_avx2(const void *src, float *dst, int64_t n);
void energon_dq_q5_K_avx2(const void *src, float *dst, int64_t n);
void energon_q_f16_avx2(const float *src, void *dst, int64_t n);
void energon_q_bf16_avx2(const float *src, void *dst, int64_t n);

// AVX-512 kernels (quants_avx512.c).
void energon_dq_f16_avx512(const void *src, float *dst, int64_t n);
void energon_dq_bf16_avx512(const void *src, float *dst, int64_t n);
void energon_dq_q4_0_avx512(const void *src, float *dst, int64_t n);
void energon_dq_q4_1_avx512(const void *src, float *dst, int64_t n);
void energon_dq_q5_0_avx512(const void *src, float *dst, int64_t n);
void energon_dq_q8_0_avx512(const void *src, float *dst, int64_t n);
void energon_dq_q4_K_avx512(const void *src, float *dst, int64_t n);
void energon_dq_q6_K_avx512(const void *src, float *dst, int64_t n);
void energon_dq_q5_1_avx512(const void *src, float *dst, int64_t n);
void energon_dq_q2_K_avx512(const void *src, float *dst, int64_t n);
void energon_dq_q3_K_avx512(const void *src, float *dst, int64_t n);
void energon_dq_q5_K_avx512(const void *src, float *dst, int64_t n);
void energon_q_f16_avx512(const float *src, void *dst, int64_t n);
void energon_q_bf16_avx512(const float *src, void *dst, int64_t n);
#endif

#endif
