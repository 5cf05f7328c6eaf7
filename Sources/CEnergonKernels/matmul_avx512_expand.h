// AVX-512 expansion of quantized weight blocks into unsigned bytes plus (scale, offset) pairs,
// shared by the matvec (matmul_avx512.c) and the GEMM packing (matmul_avx512_gemm.c).
#ifndef ENERGON_MATMUL_AVX512_EXPAND_H
#define ENERGON_MATMUL_AVX512_EXPAND_H

#include "matmul_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define MM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))

// ---------------------------------------------------------------------------------------------
// Quantized weights: expansion of 64 weights into unsigned bytes + 4 (scale, offset) pairs.

/// [a, a, b, b] from two f16 values.
MM_AVX512 static inline __m128 mm_pair_halves(uint16_t a, uint16_t b) {
    __m128 both = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)a | ((uint32_t)b << 16))));
    return _mm_unpacklo_ps(both, both);
}

/// Low nibbles of 16 + 16 bytes then their high nibbles, reordered to natural element order:
/// [A lo, A hi, B lo, B hi] where A and B are two 32-weight blocks whose byte j holds elements
/// j and j + 16.
MM_AVX512 static inline __m512i mm_nibbles_two_blocks(const uint8_t *a, const uint8_t *b) {
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)),
                                        _mm_loadu_si128((const __m128i *)b), 1);
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    __m256i low = _mm256_and_si256(v, low_mask);
    __m256i high = _mm256_and_si256(_mm256_srli_epi16(v, 4), low_mask);
    __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);  // [Alo, Blo, Ahi, Bhi]
    return _mm512_shuffle_i64x2(both, both, 0xD8);                             // [Alo, Ahi, Blo, Bhi]
}

/// Expands blocks `block` and `block + 1` of a 32-weight format.
MM_AVX512 static inline __m512i mm512_expand_pair32(uint32_t dtype, const uint8_t *row, size_t block,
                                                    __m128 *scale, __m128 *offset) {
    size_t bytes = mm_group_bytes(dtype);
    const uint8_t *a = row + block * bytes, *b = a + bytes;
    __m128 d = mm_pair_halves(mm_load_u16(a), mm_load_u16(b));
    *scale = d;
    switch (dtype) {
    case MM_Q8_0: {
        __m512i values = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(a + 2))),
                                            _mm256_loadu_si256((const __m256i *)(b + 2)), 1);
        *offset = _mm_mul_ps(d, _mm_set1_ps(-128.0f));
        return _mm512_xor_si512(values, _mm512_set1_epi8((char)0x80));  // int8 + 128 as uint8
    }
    case MM_Q4_0:
        *offset = _mm_mul_ps(d, _mm_set1_ps(-8.0f));
        return mm_nibbles_two_blocks(a + 2, b + 2);
    case MM_Q4_1:
        *offset = mm_pair_halves(mm_load_u16(a + 2), mm_load_u16(b + 2));
        return mm_nibbles_two_blocks(a + 4, b + 4);
    case MM_Q5_0: case MM_Q5_1: {
        size_t skip = dtype == MM_Q5_1 ? 4 : 2;
        *offset = dtype == MM_Q5_1 ? mm_pair_halves(mm_load_u16(a + 2), mm_load_u16(b + 2))
                                   : _mm_mul_ps(d, _mm_set1_ps(-16.0f));
        __m512i values = mm_nibbles_two_blocks(a + skip + 4, b + skip + 4);
        // Bit i of each block's 32-bit word is the fifth bit of its element i.
        __mmask64 fifth = (__mmask64)mm_load_u32(a + skip) | ((__mmask64)mm_load_u32(b + skip) << 32);
        return _mm512_mask_add_epi8(values, fifth, values, _mm512_set1_epi8(16));
    }
    default:
        return _mm512_setzero_si512();
    }
}

/// A K-quant super-block expanded: 256 unsigned values in natural order (4 zmm) and one
/// (scale, offset) per 16 weights (a zmm each).
typedef struct {
    __m512i u[4];
    __m512 scale, offset;
} mm512_super;

MM_AVX512 static inline mm512_super mm512_expand_k(uint32_t dtype, const uint8_t *row, size_t group) {
    const uint8_t *block = row + group * mm_group_bytes(dtype);
    mm512_super super;
    switch (dtype) {
    case MM_Q4_K: case MM_Q5_K: {
        __m128 halves = _mm_cvtph_ps(_mm_cvtsi32_si128((int)mm_load_u32(block)));  // d, dmin
        uint64_t scales, mins;
        mm_k4_unpack(block + 4, &scales, &mins);
        // Each 32-weight scale covers two 16-weight lanes groups.
        const __m512i twice = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
        __m512 scale8 = _mm512_castps256_ps512(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)scales))));
        __m512 min8 = _mm512_castps256_ps512(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)mins))));
        super.scale = _mm512_mul_ps(_mm512_permutexvar_ps(twice, scale8), _mm512_broadcastss_ps(halves));
        super.offset = _mm512_mul_ps(_mm512_permutexvar_ps(twice, min8),
                                     _mm512_set1_ps(-_mm_cvtss_f32(_mm_movehdup_ps(halves))));
        const uint8_t *qs = block + (dtype == MM_Q5_K ? 48 : 16);
        const __m256i low_mask = _mm256_set1_epi8(0x0F);
        __m512i high = _mm512_setzero_si512();
        if (dtype == MM_Q5_K) high = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(block + 16)));
        for (int c = 0; c < 4; c++) {
            // Chunk c: 32 bytes whose low nibbles are weights 64c.. and high nibbles 64c + 32...
            __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m512i values = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, low_mask)),
                                                _mm256_and_si256(_mm256_srli_epi16(v, 4), low_mask), 1);
            if (dtype == MM_Q5_K) {
                // Bit 2c of high[l] is the fifth bit of weight 64c + l, bit 2c + 1 of 64c + 32 + l.
                __m512i bits = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * c))),
                                                  _mm256_set1_epi8((char)(2 << (2 * c))), 1);
                __mmask64 fifth = _mm512_test_epi8_mask(high, bits);
                values = _mm512_mask_add_epi8(values, fifth, values, _mm512_set1_epi8(16));
            }
            super.u[c] = values;
        }
        break;
    }
    case MM_Q6_K: {
        const uint8_t *ql = block, *qh = block + 128;
        float d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128((int)mm_load_u16(block + 208))));
        super.scale = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(block + 192)))),
                                    _mm512_set1_ps(d));
        super.offset = _mm512_mul_ps(super.scale, _mm512_set1_ps(-32.0f));
        const __m512i low_mask = _mm512_set1_epi8(0x0F), two_bits = _mm512_set1_epi8(0x30);
        for (int h = 0; h < 2; h++) {
            // ql[64h..64h+63]: low nibbles are weights 128h + 0..63, high nibbles 128h + 64..127.
            // qh[32h + l], bits 2s..2s+1: top bits of weight 128h + 32s + l.
            __m512i nibbles = _mm512_loadu_si512((const void *)(ql + 64 * h));
            __m512i top = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qh + 32 * h)));
            // Move bits 2s..2s+1 to bits 4..5: shift left by 4 - 2s (s = 0, 1), right by 2s - 4 (s = 2, 3).
            __m512i top_low = _mm512_and_si512(_mm512_sllv_epi16(top, _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1)), two_bits);
            __m512i top_high = _mm512_and_si512(_mm512_srlv_epi16(top, _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1)), two_bits);
            super.u[2 * h] = _mm512_or_si512(_mm512_and_si512(nibbles, low_mask), top_low);
            super.u[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(nibbles, 4), low_mask), top_high);
        }
        break;
    }
    case MM_Q2_K: case MM_Q3_K: {
        // 2-bit values: qs[32n + l] holds weights 128n + 32s + l in bits 2s..2s+1, so the zmm of
        // weights 64c.. is the 32 bytes of half n = c / 2, shifted by 2s for s = 2(c % 2), +1.
        int three = dtype == MM_Q3_K;
        const uint8_t *qs = block + (three ? 32 : 16);
        __m512i hmask = three ? _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)block)) : _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            int n = c >> 1, s = 2 * (c & 1);
            __m512i bits = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qs + 32 * n)));
            __m512i shift = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * s)), _mm256_set1_epi16((short)(2 * s + 2)), 1);
            __m512i values = _mm512_and_si512(_mm512_srlv_epi16(bits, shift), _mm512_set1_epi8(3));
            if (three) {
                // Bit 4n + s of hmask[l] is the third bit of weight 128n + 32s + l.
                __m512i test = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (4 * n + s))),
                                                  _mm256_set1_epi8((char)(1 << (4 * n + s + 1))), 1);
                values = _mm512_mask_add_epi8(values, _mm512_test_epi8_mask(hmask, test), values, _mm512_set1_epi8(4));
            }
            super.u[c] = values;
        }
        if (three) {
            // Sixteen 6-bit scales biased by 32 (see mm_k3_scale in the portable file).
            // Low 4 bits: bytes 0..7, low nibbles then high nibbles; top 2 bits: byte 8 + j % 4,
            // bits 2 (j / 4).
            const uint8_t *packed = block + 96;
            __m128i nibbles = _mm_loadl_epi64((const __m128i *)packed);
            __m128i low = _mm_unpacklo_epi64(_mm_and_si128(nibbles, _mm_set1_epi8(0x0F)),
                                             _mm_and_si128(_mm_srli_epi16(nibbles, 4), _mm_set1_epi8(0x0F)));
            uint32_t word = mm_load_u32(packed + 8);
            __m128i top = _mm_set_epi32((int)((word >> 6) & 0x03030303u), (int)((word >> 4) & 0x03030303u),
                                        (int)((word >> 2) & 0x03030303u), (int)(word & 0x03030303u));
            __m128i biased = _mm_sub_epi8(_mm_or_si128(low, _mm_slli_epi16(top, 4)), _mm_set1_epi8(32));
            float d = mm_half_to_float(mm_load_u16(block + 108));
            super.scale = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(biased)),
                                        _mm512_set1_ps(d));
            super.offset = _mm512_mul_ps(super.scale, _mm512_set1_ps(-4.0f));
        } else {
            // Byte j of the 16 scale bytes: low nibble scales, high nibble mins sub-block j.
            __m512i packed = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)block));
            __m128 halves = _mm_cvtph_ps(_mm_cvtsi32_si128((int)mm_load_u32(block + 80)));  // d, dmin
            super.scale = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(packed, _mm512_set1_epi32(0xF))),
                                        _mm512_broadcastss_ps(halves));
            super.offset = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(packed, 4)),
                                         _mm512_set1_ps(-_mm_cvtss_f32(_mm_movehdup_ps(halves))));
        }
        break;
    }
    default: {
        // Anything else: the shared scalar decoder.
        uint8_t values[256];
        float sc[16], of[16];
        mm_expand_group(dtype, row, group, values, sc, of);
        for (int c = 0; c < 4; c++) super.u[c] = _mm512_loadu_si512((const void *)(values + 64 * c));
        super.scale = _mm512_loadu_ps(sc);
        super.offset = _mm512_loadu_ps(of);
        break;
    }
    }
    return super;
}

/// Four consecutive 32-weight blocks in "split" order: zmm `low` holds elements 0..15 of blocks
/// A, B, C, D (one 128-bit lane each) and `high` their elements 16..31, which is exactly how the
/// nibble formats store them, so no byte shuffles are needed; the activations are rearranged
/// to match with two 128-bit lane shuffles instead (see mm512_quad_accumulate). Q8_0 blocks come
/// back as `low` = A|B, `high` = C|D in natural order (`natural` set).
typedef struct {
    __m512i low, high;
    __m128 scale, offset;   // per block
    int natural;
} mm512_quad;

/// Four f16 values at p, p + stride, p + 2 stride, p + 3 stride as floats. The scalar loads and
/// shifts run on the integer ports, beside the vector work.
MM_AVX512 static inline __m128 mm_four_halves(const uint8_t *p, size_t stride) {
    uint64_t packed = (uint64_t)mm_load_u16(p) | (uint64_t)mm_load_u16(p + stride) << 16 |
                      (uint64_t)mm_load_u16(p + 2 * stride) << 32 | (uint64_t)mm_load_u16(p + 3 * stride) << 48;
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)packed));
}

/// Four 16-byte runs at p, p + stride, ... in the four 128-bit lanes of a zmm.
MM_AVX512 static inline __m512i mm_four_runs(const uint8_t *p, size_t stride) {
    __m512i z = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p));
    z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(p + stride)), 1);
    z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(p + 2 * stride)), 2);
    return _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(p + 3 * stride)), 3);
}

/// The fifth bits of four Q5 blocks as byte masks for the split order: bits 0..15 of each
/// block's 32-bit word go to `low`, bits 16..31 to `high`.
MM_AVX512 static inline void mm_four_fifth_masks(const uint8_t *p, size_t stride, __mmask64 *low, __mmask64 *high) {
    uint64_t a = mm_load_u32(p), b = mm_load_u32(p + stride), c = mm_load_u32(p + 2 * stride), d = mm_load_u32(p + 3 * stride);
    *low = (__mmask64)((a & 0xFFFF) | (b & 0xFFFF) << 16 | (c & 0xFFFF) << 32 | (d & 0xFFFF) << 48);
    *high = (__mmask64)((a >> 16) | (b >> 16) << 16 | (c >> 16) << 32 | (d >> 16) << 48);
}

/// The factor between a block's offset and its scale for formats where it is a constant
/// (the quad kernels accumulate scale * sum and multiply once per row); 1 where the block
/// stores its own offset.
static inline float mm_quad_offset_ratio(uint32_t dtype) {
    switch (dtype) {
    case MM_Q8_0: return -128.0f;
    case MM_Q4_0: return -8.0f;
    case MM_Q5_0: return -16.0f;
    default: return 1.0f;
    }
}

MM_AVX512 static inline mm512_quad mm512_expand_quad(uint32_t dtype, const uint8_t *row, size_t block) {
    size_t bytes = mm_group_bytes(dtype);
    const uint8_t *p = row + block * bytes;
    mm512_quad quad;
    quad.scale = mm_four_halves(p, bytes);
    quad.natural = 0;
    const __m512i low_mask = _mm512_set1_epi8(0x0F);
    switch (dtype) {
    case MM_Q8_0: {
        // int8 + 128 as uint8 (offset -128 d); the nibble formats need no such shift.
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        quad.low = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 2))),
                                                       _mm256_loadu_si256((const __m256i *)(p + bytes + 2)), 1), flip);
        quad.high = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 2 * bytes + 2))),
                                                        _mm256_loadu_si256((const __m256i *)(p + 3 * bytes + 2)), 1), flip);
        quad.offset = quad.scale;  // times mm_quad_offset_ratio at the end of the row
        quad.natural = 1;
        break;
    }
    case MM_Q4_0: case MM_Q4_1: {
        int has_min = dtype == MM_Q4_1;
        __m512i v = mm_four_runs(p + (has_min ? 4 : 2), bytes);
        quad.low = _mm512_and_si512(v, low_mask);
        quad.high = _mm512_and_si512(_mm512_srli_epi16(v, 4), low_mask);
        quad.offset = has_min ? mm_four_halves(p + 2, bytes) : quad.scale;
        break;
    }
    case MM_Q5_0: case MM_Q5_1: {
        int has_min = dtype == MM_Q5_1;
        size_t at = has_min ? 4 : 2;
        __m512i v = mm_four_runs(p + at + 4, bytes);
        __mmask64 fifth_low, fifth_high;
        mm_four_fifth_masks(p + at, bytes, &fifth_low, &fifth_high);
        const __m512i sixteen = _mm512_set1_epi8(16);
        __m512i low = _mm512_and_si512(v, low_mask), high = _mm512_and_si512(_mm512_srli_epi16(v, 4), low_mask);
        quad.low = _mm512_mask_add_epi8(low, fifth_low, low, sixteen);
        quad.high = _mm512_mask_add_epi8(high, fifth_high, high, sixteen);
        quad.offset = has_min ? mm_four_halves(p + 2, bytes) : quad.scale;
        break;
    }
    default:
        quad.low = quad.high = _mm512_setzero_si512();
        quad.offset = _mm_setzero_ps();
        break;
    }
    return quad;
}

/// The factor between the offset and the scale of the packed formats without stored mins.
static inline float mm_packed_offset_ratio(uint32_t base) {
    return base == MM_Q8_0 ? -128.0f : base == MM_Q5_0 ? -16.0f : -8.0f;
}

/// The unsigned values of one packed nibble-format block (Q4_0, Q4_1, Q5_0) for 16 rows:
/// low[j] = elements 4j..4j+3 of each row, high[j] = elements 16 + 4j.. (one row per int32 lane).
/// Q5_0's fifth bits sit in bit j (low) and bit 4 + j (high) of the zmm after the nibbles: a
/// 16-bit shift brings bit j to bit 4 of every byte (bits never cross a byte below bit 4), and one
/// ternary-logic op masks it and merges it into the nibbles.
MM_AVX512 static inline __attribute__((always_inline)) void
mm512_packed_nibbles(uint32_t base, const uint8_t *quants, __m512i low[4], __m512i high[4]) {
    const __m512i mask = _mm512_set1_epi8(0x0F);
    for (int j = 0; j < 4; j++) {
        __m512i w = _mm512_loadu_si512((const void *)(quants + 64 * j));
        low[j] = _mm512_and_si512(w, mask);
        high[j] = _mm512_and_si512(_mm512_srli_epi16(w, 4), mask);
    }
    if (base == MM_Q5_0) {
        const __m512i bit4 = _mm512_set1_epi8(0x10);
        __m512i fifth = _mm512_loadu_si512((const void *)(quants + 256));
        // a | (b & c): 0xF0 | (0xCC & 0xAA) = 0xF8.
        low[0] = _mm512_ternarylogic_epi32(low[0], _mm512_slli_epi16(fifth, 4), bit4, 0xF8);
        low[1] = _mm512_ternarylogic_epi32(low[1], _mm512_slli_epi16(fifth, 3), bit4, 0xF8);
        low[2] = _mm512_ternarylogic_epi32(low[2], _mm512_slli_epi16(fifth, 2), bit4, 0xF8);
        low[3] = _mm512_ternarylogic_epi32(low[3], _mm512_slli_epi16(fifth, 1), bit4, 0xF8);
        high[0] = _mm512_ternarylogic_epi32(high[0], fifth, bit4, 0xF8);
        high[1] = _mm512_ternarylogic_epi32(high[1], _mm512_srli_epi16(fifth, 1), bit4, 0xF8);
        high[2] = _mm512_ternarylogic_epi32(high[2], _mm512_srli_epi16(fifth, 2), bit4, 0xF8);
        high[3] = _mm512_ternarylogic_epi32(high[3], _mm512_srli_epi16(fifth, 3), bit4, 0xF8);
    }
}

#endif
#endif
