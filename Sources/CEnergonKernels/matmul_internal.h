// Shared definitions of the matmul kernels (not a public header).
#ifndef ENERGON_MATMUL_INTERNAL_H
#define ENERGON_MATMUL_INTERNAL_H

#include "energon_matmul.h"
#include "energon_cpu.h"

#include <stdint.h>
#include <string.h>

// ggml type ids (DType raw values).
enum {
    MM_F32 = 0, MM_F16 = 1, MM_Q4_0 = 2, MM_Q4_1 = 3, MM_Q5_0 = 6, MM_Q5_1 = 7, MM_Q8_0 = 8,
    MM_Q2_K = 10, MM_Q3_K = 11, MM_Q4_K = 12, MM_Q5_K = 13, MM_Q6_K = 14, MM_BF16 = 30,
};

// Tokens at or above which weights go through the packed GEMM kernels instead of row-by-row dot
// products (below it, packing panels costs more than it saves). First measured with the switch at
// 6 and 40 on SmolLM2 Q8_0 decode batches (energon bench-engine, 1 thread: 6..32 sequences ran
// 604..746 tok/s by rows, 40 by GEMM 737). Since the row kernels read each chunk of rows once for
// all tokens (a weight leaves DRAM once per call), they stay ahead of the GEMM much longer for the
// packed 4/8-bit formats; whole-model prefill of N tokens, SmolLM2, 1 thread, rows vs GEMM tok/s:
// Q8_0 N=40 1718 vs 1330, 192 1688 vs 1566, 512 1413 vs 1367 (2 threads 2749 vs 2512); Q4_0 64
// 1596 vs 1489, 128 1580 vs 1583, 256 1458 vs 1525; Q4_1 128 1659 vs 1557, 256 1604 vs 1531;
// Gemma 3 Q4_K_M (Q4_K/Q5_0/Q6_K) GEMM ahead from 40 (1249 vs 1203). See mm_gemm_min_tokens.
#define MM_GEMM_MIN_TOKENS 40
#define MM_FLOAT_GEMM_MIN_TOKENS 12
// Output rows per packed panel of the integer GEMM (one int32 lane per row in a zmm).
#define MM_PANEL_ROWS 16
// Float GEMM: 32 output rows per panel (two zmm of f32 lanes).
#define MM_FLOAT_PANEL_ROWS 32

static inline uint16_t mm_load_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t mm_load_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/// IEEE half -> float without F16C (portable path and table-free scalar code).
static inline float mm_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1F;
    uint32_t mantissa = h & 0x3FF;
    uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {
            // Subnormal half: normalise it.
            int shift = 0;
            while ((mantissa & 0x400) == 0) { mantissa <<= 1; shift++; }
            mantissa &= 0x3FF;
            bits = sign | ((uint32_t)(127 - 15 - shift + 1) << 23) | (mantissa << 13);
        }
    } else if (exponent == 31) {
        bits = sign | 0x7F800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline float mm_bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

// Inline (not in a .c file): the row kernels call these once per block inside loops specialized
// per format, where they fold to constants. Out of line, the call in the K-quant super-block loop
// spilled the accumulators to the stack every iteration (a store-to-load round trip on the
// loop-carried chain): Q6_K matvec 28 -> see BENCHMARKS.

/// Elements per "group" of a quantized format: its block, or its super-block for K-quants.
static inline size_t mm_group_size(uint32_t dtype) {
    switch (dtype) {
    case MM_Q4_0: case MM_Q4_1: case MM_Q5_0: case MM_Q5_1: case MM_Q8_0: return 32;
    case MM_Q2_K: case MM_Q3_K: case MM_Q4_K: case MM_Q5_K: case MM_Q6_K: return 256;
    default: return 1;
    }
}

/// Bytes of one group (block or super-block); for float formats, of one element; 0 if unknown.
static inline size_t mm_group_bytes(uint32_t dtype) {
    switch (dtype) {
    case MM_Q4_0: return 18;
    case MM_Q4_1: return 20;
    case MM_Q5_0: return 22;
    case MM_Q5_1: return 24;
    case MM_Q8_0: return 34;
    case MM_Q2_K: return 84;
    case MM_Q3_K: return 110;
    case MM_Q4_K: return 144;
    case MM_Q5_K: return 176;
    case MM_Q6_K: return 210;
    case MM_F32: return 4;
    case MM_F16: case MM_BF16: return 2;
    default: return 0;
    }
}

/// Whether a format's scales change every 16 elements (Q6_K, Q3_K, Q2_K) instead of every 32.
static inline int mm_has_scale_per_16(uint32_t dtype) {
    return dtype == MM_Q6_K || dtype == MM_Q3_K || dtype == MM_Q2_K;
}

/// Expands group `group` of a quantized weight row into unsigned values u[group size] and one
/// (scale, offset) pair per 16 elements so that weight[i] = scale[i/16] * u[i] + offset[i/16].
void mm_expand_group(uint32_t dtype, const uint8_t *row, size_t group, uint8_t *u, float *scale, float *offset);

/// Q4_K/Q5_K: the eight 6-bit scales (bytes of the result) from the 12 packed bytes. The first
/// four are the low 6 bits of bytes 0..3; the last four take their low 4 bits from bytes 8..11
/// and their top 2 bits from the top of bytes 0..3. The mins are the same with bytes 4..7 and
/// the high nibbles of 8..11. Plain 32-bit integer work, so it overlaps the vector work.
static inline void mm_k4_unpack(const uint8_t *packed, uint64_t *scales, uint64_t *mins) {
    uint32_t word0 = mm_load_u32(packed), word1 = mm_load_u32(packed + 4), word2 = mm_load_u32(packed + 8);
    uint32_t scales_low = word0 & 0x3F3F3F3Fu;
    uint32_t scales_high = (word2 & 0x0F0F0F0Fu) | (((word0 >> 6) & 0x03030303u) << 4);
    uint32_t mins_low = word1 & 0x3F3F3F3Fu;
    uint32_t mins_high = ((word2 >> 4) & 0x0F0F0F0Fu) | (((word1 >> 6) & 0x03030303u) << 4);
    *scales = (uint64_t)scales_low | (uint64_t)scales_high << 32;
    *mins = (uint64_t)mins_low | (uint64_t)mins_high << 32;
}

/// Views of an A32 activation row.
typedef struct {
    const int8_t *q;
    const float *d;
    const float *s32;
    const float *s16;
    const int8_t *split;   // q of each whole 4-block quad in split order (see mm_fill_split)
} mm_a32_row;

static inline mm_a32_row mm_a32_view(const uint8_t *row, size_t in) {
    mm_a32_row view;
    size_t blocks = in / 32;
    view.q = (const int8_t *)row;
    view.d = (const float *)(row + in);
    view.s32 = view.d + blocks;
    view.s16 = view.s32 + blocks;
    view.split = (const int8_t *)(view.s16 + 2 * blocks);
    return view;
}

/// Writes the split copy of a quantized row: for each whole quad of 4 blocks A..D, the 64 bytes
/// [A 0..15, B 0..15, C 0..15, D 0..15] then [A 16..31, ..., D 16..31], the order in which the
/// nibble formats store their weights (byte j of a block holds elements j and j + 16).
void mm_fill_split(uint8_t *row, size_t in);

// ---------------------------------------------------------------------------------------------
// Packed layout of Q4_0 / Q4_1 / Q5_0 / Q8_0 (energon_matmul_pack): 16-row groups, each group a run of
// units. A unit covers two 32-input blocks: [quants b0: Q][quants b1: Q][d b0: 32][d b1: 32]
// and, for Q4_1, [m b0: 32][m b1: 32]; a lone last block (odd block count) is
// [quants: Q][d: 32][m, or zero: 32]. Every unit is a whole number of 64-byte lines.
// "quants" is Q / 64 zmm (Q = 256 for the nibble formats, 512 for Q8_0): bytes 64 j + 4 r .. + 3
// hold bytes 4 j .. 4 j + 3 of row r's quant bytes (nibbles: low = elements 4 j..4 j+3, high =
// 16 + 4 j..; Q8_0: elements 4 j..4 j+3). Q5_0 adds a zmm of fifth bits after its nibbles:
// byte 4 r + k has bit j (j < 4) = fifth bit of element 4 j + k of row r and bit 4 + j = that of
// element 16 + 4 j + k, so a shift and a mask line them up under nibble zmm j.
// d and m are the rows' 16 f16 values in row order.

static inline uint32_t mm_packed_base(uint32_t dtype) { return dtype & ~ENERGON_MATMUL_PACKED; }
static inline int mm_is_packed(uint32_t dtype) { return (dtype & ENERGON_MATMUL_PACKED) != 0; }

/// The GEMM switch for weights of `dtype` (see MM_GEMM_MIN_TOKENS for the measurements; only the
/// packed layouts were measured past 40).
static inline size_t mm_gemm_min_tokens(uint32_t dtype) {
    if (!mm_is_packed(dtype)) return MM_GEMM_MIN_TOKENS;
    switch (mm_packed_base(dtype)) {
    case MM_Q8_0: return 640;
    case MM_Q4_1: return 384;
    case MM_Q4_0: return 128;
    default: return MM_GEMM_MIN_TOKENS;
    }
}
/// Bytes of one block's quants for 16 rows.
static inline size_t mm_packed_quant_bytes(uint32_t base) { return base == MM_Q8_0 ? 512 : base == MM_Q5_0 ? 320 : 256; }
static inline size_t mm_packed_pair_bytes(uint32_t base) {
    return 2 * mm_packed_quant_bytes(base) + (base == MM_Q4_1 ? 128 : 64);
}
static inline size_t mm_packed_lone_bytes(uint32_t base) { return mm_packed_quant_bytes(base) + 64; }
// Q4_K is packed per 256-input super-block into MM_PACKED_K4_BYTES: [quants: 4 chunks x 512]
// where chunk c is 8 zmm, bytes 64 j + 4 r .. + 3 holding bytes 32 c + 4 j .. + 3 of row r's
// nibbles (low nibbles: sub-block 2c, elements 4j..4j+3; high: sub-block 2c + 1), then d[16] and
// dmin[16] (f16), then the 6-bit scales and mins unpacked to bytes: scale[8][16], min[8][16]
// ([sub-block][row]). 2368 bytes for 16 x 144 stored (+2.8%) buy scales that are one
// zero-extension away from a vector, instead of 12 bit-packed bytes per row.
#define MM_PACKED_K4_BYTES 2368

/// Bytes of one 16-row group of `in` inputs.
static inline size_t mm_packed_group_bytes(uint32_t base, size_t in) {
    if (base == MM_Q4_K) return (in / 256) * MM_PACKED_K4_BYTES;
    size_t blocks = in / 32;
    return (blocks / 2) * mm_packed_pair_bytes(base) + (blocks % 2) * mm_packed_lone_bytes(base);
}
/// Where block b of a group starts: its quants, d and m (m is unused but for Q4_1).
static inline void mm_packed_block(uint32_t base, const uint8_t *group, size_t blocks, size_t b,
                                   const uint8_t **quants, const uint8_t **d, const uint8_t **m) {
    const uint8_t *unit = group + (b / 2) * mm_packed_pair_bytes(base);
    size_t q = mm_packed_quant_bytes(base);
    if ((b | 1) >= blocks) {  // the lone last block of an odd count
        *quants = unit;
        *d = unit + q;
        *m = unit + q + 32;
    } else {
        *quants = unit + q * (b & 1);
        *d = unit + 2 * q + 32 * (b & 1);
        *m = unit + 2 * q + 64 + 32 * (b & 1);
    }
}

/// Whether a (base-format) job goes through the packed GEMM kernels (many tokens, AVX-512).
int mm_uses_gemm(const energon_matmul_job *job);
size_t mm_packed_scratch_bytes(const energon_matmul_job *job);
void mm_packed_rows(const energon_matmul_job *job, size_t row_begin, size_t row_end, void *scratch);

// Portable kernels.
void mm_quantize_rows_portable(const float *input, size_t in, size_t rows, void *destination);
void mm_rows_portable(const energon_matmul_job *job, size_t row_begin, size_t row_end, void *scratch);

#if defined(__x86_64__)
void mm_quantize_rows_avx2(const float *input, size_t in, size_t rows, void *destination);
void mm_rows_avx2(const energon_matmul_job *job, size_t row_begin, size_t row_end, void *scratch);
void mm_quantize_rows_avx512(const float *input, size_t in, size_t rows, void *destination);
void mm_rows_avx512(const energon_matmul_job *job, size_t row_begin, size_t row_end, void *scratch);
size_t mm_gemm_scratch_bytes_avx512(const energon_matmul_job *job);
void mm_gemm_avx512(const energon_matmul_job *job, size_t row_begin, size_t row_end, void *scratch);
double mm_read_pass_avx512(const void *data, size_t bytes);
void mm_packed_rows_avx512(const energon_matmul_job *job, size_t row_begin, size_t row_end);
double mm_read_pass_avx2(const void *data, size_t bytes);
#endif

#endif
