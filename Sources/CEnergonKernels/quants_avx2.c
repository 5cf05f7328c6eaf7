// AVX2 + F16C decoders for the hot formats and the bulk F16/BF16 encoders: the same arithmetic
// as the portable code in quants.c, eight lanes at a time, so the bits are identical.
#include "quants_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define T_AVX2 __attribute__((target("avx2,fma,f16c")))

T_AVX2 static inline float half_scalar(const uint16_t *p) { return _cvtsh_ss(*p); }

/// The low eight bytes of `bytes` -> eight floats of their unsigned values minus `offset`.
T_AVX2 static inline __m256 codes_to_ps(__m128i bytes, int offset) {
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(bytes), _mm256_set1_epi32(offset)));
}

/// Writes 16 byte codes (minus `offset`) times `scale` to dst[0..<16].
T_AVX2 static inline void store_scaled16(float *dst, __m128i bytes, int offset, __m256 scale) {
    _mm256_storeu_ps(dst, _mm256_mul_ps(codes_to_ps(bytes, offset), scale));
    _mm256_storeu_ps(dst + 8, _mm256_mul_ps(codes_to_ps(_mm_srli_si128(bytes, 8), offset), scale));
}

T_AVX2 void energon_dq_f16_avx2(const void *src, float *dst, int64_t n) {
    const uint16_t *x = (const uint16_t *)src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) dst[i] = energon_half_to_float(x[i]);
}

T_AVX2 void energon_dq_bf16_avx2(const void *src, float *dst, int64_t n) {
    const uint16_t *x = (const uint16_t *)src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
    }
    for (; i < n; i++) dst[i] = energon_bf16_to_float(x[i]);
}

T_AVX2 void energon_q_f16_avx2(const float *src, void *dst, int64_t n) {
    uint16_t *y = (uint16_t *)dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(y + i), h);
    }
    for (; i < n; i++) y[i] = energon_float_to_half(src[i]);
}

T_AVX2 void energon_q_bf16_avx2(const float *src, void *dst, int64_t n) {
    uint16_t *y = (uint16_t *)dst;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7FFF);
    const __m256i absolute = _mm256_set1_epi32(0x7FFFFFFF), infinity = _mm256_set1_epi32(0x7F800000);
    const __m256i quiet = _mm256_set1_epi32(64);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i x = _mm256_castps_si256(_mm256_loadu_ps(src + i));
        __m256i top = _mm256_srli_epi32(x, 16);
        __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(bias, _mm256_and_si256(top, one))), 16);
        // |x| fits in a signed compare, so NaN detection needs no unsigned compare.
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, absolute), infinity);
        rounded = _mm256_blendv_epi8(rounded, _mm256_or_si256(top, quiet), nan);
        // Values are <= 0xFFFF, so unsigned saturation packs them unchanged; packing works per
        // 128-bit lane, hence the qword permute to bring the two halves together.
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(rounded, rounded), 0xD8);
        _mm_storeu_si128((__m128i *)(y + i), _mm256_castsi256_si128(packed));
    }
    for (; i < n; i++) y[i] = energon_float_to_bf16(src[i]);
}

T_AVX2 void energon_dq_q4_0_avx2(const void *src, float *dst, int64_t n) {
    const block_q4_0 *x = (const block_q4_0 *)src;
    const __m128i nibble = _mm_set1_epi8(0x0F);
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const __m256 d = _mm256_set1_ps(half_scalar(&x[b].d));
        __m128i qs = _mm_loadu_si128((const __m128i *)x[b].qs);
        store_scaled16(dst, _mm_and_si128(qs, nibble), 8, d);
        store_scaled16(dst + 16, _mm_and_si128(_mm_srli_epi16(qs, 4), nibble), 8, d);
    }
}

T_AVX2 void energon_dq_q4_1_avx2(const void *src, float *dst, int64_t n) {
    const block_q4_1 *x = (const block_q4_1 *)src;
    const __m128i nibble = _mm_set1_epi8(0x0F);
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const __m256 d = _mm256_set1_ps(half_scalar(&x[b].d)), m = _mm256_set1_ps(half_scalar(&x[b].m));
        __m128i qs = _mm_loadu_si128((const __m128i *)x[b].qs);
        __m128i low = _mm_and_si128(qs, nibble), high = _mm_and_si128(_mm_srli_epi16(qs, 4), nibble);
        for (int part = 0; part < 2; part++) {
            __m128i lowPart = part ? _mm_srli_si128(low, 8) : low;
            __m128i highPart = part ? _mm_srli_si128(high, 8) : high;
            _mm256_storeu_ps(dst + 8 * part, _mm256_add_ps(_mm256_mul_ps(codes_to_ps(lowPart, 0), d), m));
            _mm256_storeu_ps(dst + 16 + 8 * part, _mm256_add_ps(_mm256_mul_ps(codes_to_ps(highPart, 0), d), m));
        }
    }
}

T_AVX2 void energon_dq_q5_0_avx2(const void *src, float *dst, int64_t n) {
    const block_q5_0 *x = (const block_q5_0 *)src;
    const __m128i nibble = _mm_set1_epi8(0x0F);
    const __m256i lanes = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i sixteen = _mm256_set1_epi32(16);
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const __m256 d = _mm256_set1_ps(half_scalar(&x[b].d));
        uint32_t qh;
        memcpy(&qh, x[b].qh, 4);
        __m128i qs = _mm_loadu_si128((const __m128i *)x[b].qs);
        __m128i nibbles[2] = {_mm_and_si128(qs, nibble), _mm_and_si128(_mm_srli_epi16(qs, 4), nibble)};
        for (int group = 0; group < 4; group++) {  // elements 8*group ..< 8*group + 8
            __m128i bytes = nibbles[group / 2];
            if (group % 2) bytes = _mm_srli_si128(bytes, 8);
            // Spread bits 8*group... of qh over the lanes: lane k gets 16 when bit k is set.
            __m256i bits = _mm256_and_si256(_mm256_set1_epi32((int)(qh >> (8 * group))), lanes);
            __m256i fifth = _mm256_and_si256(_mm256_cmpeq_epi32(bits, lanes), sixteen);
            __m256i codes = _mm256_sub_epi32(_mm256_or_si256(_mm256_cvtepu8_epi32(bytes), fifth), sixteen);
            _mm256_storeu_ps(dst + 8 * group, _mm256_mul_ps(_mm256_cvtepi32_ps(codes), d));
        }
    }
}

T_AVX2 void energon_dq_q8_0_avx2(const void *src, float *dst, int64_t n) {
    const block_q8_0 *x = (const block_q8_0 *)src;
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const __m256 d = _mm256_set1_ps(half_scalar(&x[b].d));
        for (int part = 0; part < 4; part++) {
            __m128i bytes = _mm_loadl_epi64((const __m128i *)(x[b].qs + 8 * part));
            _mm256_storeu_ps(dst + 8 * part, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)), d));
        }
    }
}

T_AVX2 void energon_dq_q4_K_avx2(const void *src, float *dst, int64_t n) {
    const block_q4_K *x = (const block_q4_K *)src;
    const __m128i nibble = _mm_set1_epi8(0x0F);
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++) {
        const float d = half_scalar(&x[b].d), dmin = half_scalar(&x[b].dmin);
        const uint8_t *q = x[b].qs;
        for (int chunk = 0; chunk < 4; chunk++, q += 32, dst += 64) {
            uint8_t sc, m;
            energon_k_scale_min(2 * chunk, x[b].scales, &sc, &m);
            const __m256 d1 = _mm256_set1_ps(d * (float)sc), m1 = _mm256_set1_ps(dmin * (float)m);
            energon_k_scale_min(2 * chunk + 1, x[b].scales, &sc, &m);
            const __m256 d2 = _mm256_set1_ps(d * (float)sc), m2 = _mm256_set1_ps(dmin * (float)m);
            for (int part = 0; part < 4; part++) {
                __m128i bytes = _mm_loadl_epi64((const __m128i *)(q + 8 * part));
                __m128i low = _mm_and_si128(bytes, nibble), high = _mm_and_si128(_mm_srli_epi16(bytes, 4), nibble);
                _mm256_storeu_ps(dst + 8 * part, _mm256_sub_ps(_mm256_mul_ps(d1, codes_to_ps(low, 0)), m1));
                _mm256_storeu_ps(dst + 32 + 8 * part, _mm256_sub_ps(_mm256_mul_ps(d2, codes_to_ps(high, 0)), m2));
            }
        }
    }
}

T_AVX2 void energon_dq_q6_K_avx2(const void *src, float *dst, int64_t n) {
    const block_q6_K *x = (const block_q6_K *)src;
    const __m128i nibble = _mm_set1_epi8(0x0F), two = _mm_set1_epi8(0x03), top = _mm_set1_epi8(0x30);
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++) {
        const float d = half_scalar(&x[b].d);
        for (int half = 0; half < 2; half++, dst += 128) {
            const uint8_t *ql = x[b].ql + 64 * half, *qh = x[b].qh + 32 * half;
            const int8_t *sc = x[b].scales + 8 * half;
            for (int l = 0; l < 32; l += 16) {
                const int is = l / 16;
                __m128i a = _mm_loadu_si128((const __m128i *)(ql + l));
                __m128i c = _mm_loadu_si128((const __m128i *)(ql + l + 32));
                __m128i h = _mm_loadu_si128((const __m128i *)(qh + l));
                __m128i q1 = _mm_or_si128(_mm_and_si128(a, nibble), _mm_slli_epi16(_mm_and_si128(h, two), 4));
                __m128i q2 = _mm_or_si128(_mm_and_si128(c, nibble),
                                          _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(h, 2), two), 4));
                __m128i q3 = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(a, 4), nibble), _mm_and_si128(h, top));
                __m128i q4 = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(c, 4), nibble),
                                          _mm_and_si128(_mm_srli_epi16(h, 2), top));
                store_scaled16(dst + l, q1, 32, _mm256_set1_ps(d * (float)sc[is + 0]));
                store_scaled16(dst + l + 32, q2, 32, _mm256_set1_ps(d * (float)sc[is + 2]));
                store_scaled16(dst + l + 64, q3, 32, _mm256_set1_ps(d * (float)sc[is + 4]));
                store_scaled16(dst + l + 96, q4, 32, _mm256_set1_ps(d * (float)sc[is + 6]));
            }
        }
    }
}

/// Writes scale * code - bias for 16 byte codes to dst[0..<16] (the K-quants' "d*q - m").
T_AVX2 static inline void store_minus16(float *dst, __m128i bytes, __m256 scale, __m256 bias) {
    _mm256_storeu_ps(dst, _mm256_sub_ps(_mm256_mul_ps(scale, codes_to_ps(bytes, 0)), bias));
    _mm256_storeu_ps(dst + 8, _mm256_sub_ps(_mm256_mul_ps(scale, codes_to_ps(_mm_srli_si128(bytes, 8), 0)), bias));
}

/// Bytes that are 0xFF where `bytes & bit` is set, else 0.
T_AVX2 static inline __m128i bit_set(__m128i bytes, __m128i bit) {
    return _mm_cmpeq_epi8(_mm_and_si128(bytes, bit), bit);
}

/// Sixteen of a Q5 block's fifth bits as byte values: byte j is 16 when bit j of `qh16` is set
/// (pass the low or the high half of the block's 32-bit qh).
T_AVX2 static inline __m128i fifth_bits16(uint32_t qh16) {
    const __m128i select = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, (char)128, 1, 2, 4, 8, 16, 32, 64, (char)128);
    __m128i spread = _mm_setr_epi8((char)qh16, (char)qh16, (char)qh16, (char)qh16, (char)qh16, (char)qh16,
                                   (char)qh16, (char)qh16, (char)(qh16 >> 8), (char)(qh16 >> 8), (char)(qh16 >> 8),
                                   (char)(qh16 >> 8), (char)(qh16 >> 8), (char)(qh16 >> 8), (char)(qh16 >> 8),
                                   (char)(qh16 >> 8));
    return _mm_and_si128(bit_set(spread, select), _mm_set1_epi8(16));
}

T_AVX2 void energon_dq_q5_1_avx2(const void *src, float *dst, int64_t n) {
    const block_q5_1 *x = (const block_q5_1 *)src;
    const __m128i nibble = _mm_set1_epi8(0x0F);
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const __m256 d = _mm256_set1_ps(half_scalar(&x[b].d)), m = _mm256_set1_ps(half_scalar(&x[b].m));
        uint32_t qh;
        memcpy(&qh, x[b].qh, 4);
        __m128i qs = _mm_loadu_si128((const __m128i *)x[b].qs);
        __m128i codes[2] = {_mm_or_si128(_mm_and_si128(qs, nibble), fifth_bits16(qh & 0xFFFF)),
                            _mm_or_si128(_mm_and_si128(_mm_srli_epi16(qs, 4), nibble), fifth_bits16(qh >> 16))};
        for (int group = 0; group < 4; group++) {
            __m128i bytes = group % 2 ? _mm_srli_si128(codes[group / 2], 8) : codes[group / 2];
            _mm256_storeu_ps(dst + 8 * group, _mm256_add_ps(_mm256_mul_ps(codes_to_ps(bytes, 0), d), m));
        }
    }
}

T_AVX2 void energon_dq_q5_K_avx2(const void *src, float *dst, int64_t n) {
    const block_q5_K *x = (const block_q5_K *)src;
    const __m128i nibble = _mm_set1_epi8(0x0F), sixteen = _mm_set1_epi8(16);
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++) {
        const float d = half_scalar(&x[b].d), dmin = half_scalar(&x[b].dmin);
        const uint8_t *q = x[b].qs;
        for (int chunk = 0; chunk < 4; chunk++, q += 32, dst += 64) {
            uint8_t sc, m;
            energon_k_scale_min(2 * chunk, x[b].scales, &sc, &m);
            const __m256 d1 = _mm256_set1_ps(d * (float)sc), m1 = _mm256_set1_ps(dmin * (float)m);
            energon_k_scale_min(2 * chunk + 1, x[b].scales, &sc, &m);
            const __m256 d2 = _mm256_set1_ps(d * (float)sc), m2 = _mm256_set1_ps(dmin * (float)m);
            const __m128i bit1 = _mm_set1_epi8((char)(1 << (2 * chunk))), bit2 = _mm_set1_epi8((char)(2 << (2 * chunk)));
            for (int part = 0; part < 2; part++) {
                __m128i bytes = _mm_loadu_si128((const __m128i *)(q + 16 * part));
                __m128i h = _mm_loadu_si128((const __m128i *)(x[b].qh + 16 * part));
                __m128i low = _mm_or_si128(_mm_and_si128(bytes, nibble), _mm_and_si128(bit_set(h, bit1), sixteen));
                __m128i high = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(bytes, 4), nibble),
                                            _mm_and_si128(bit_set(h, bit2), sixteen));
                store_minus16(dst + 16 * part, low, d1, m1);
                store_minus16(dst + 32 + 16 * part, high, d2, m2);
            }
        }
    }
}

T_AVX2 void energon_dq_q2_K_avx2(const void *src, float *dst, int64_t n) {
    const block_q2_K *x = (const block_q2_K *)src;
    const __m128i three = _mm_set1_epi8(3);
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++) {
        const float d = half_scalar(&x[b].d), dmin = half_scalar(&x[b].dmin);
        for (int half = 0; half < 2; half++) {
            for (int shift = 0; shift < 4; shift++) {
                for (int part = 0; part < 2; part++, dst += 16) {
                    const uint8_t sc = x[b].scales[8 * half + 2 * shift + part];
                    const __m256 dl = _mm256_set1_ps(d * (float)(sc & 0x0F)), ml = _mm256_set1_ps(dmin * (float)(sc >> 4));
                    __m128i bytes = _mm_loadu_si128((const __m128i *)(x[b].qs + 32 * half + 16 * part));
                    store_minus16(dst, _mm_and_si128(_mm_srl_epi16(bytes, _mm_cvtsi32_si128(2 * shift)), three), dl, ml);
                }
            }
        }
    }
}

T_AVX2 void energon_dq_q3_K_avx2(const void *src, float *dst, int64_t n) {
    const block_q3_K *x = (const block_q3_K *)src;
    const __m128i three = _mm_set1_epi8(3), four = _mm_set1_epi8(4);
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++) {
        const float d = half_scalar(&x[b].d);
        float dl[16];
        for (int k = 0; k < 16; k++) {
            int low = k < 8 ? (x[b].scales[k] & 0x0F) : (x[b].scales[k - 8] >> 4);
            int high = (x[b].scales[8 + k % 4] >> (2 * (k / 4))) & 3;
            dl[k] = d * (float)((low | (high << 4)) - 32);
        }
        for (int half = 0; half < 2; half++) {
            for (int shift = 0; shift < 4; shift++) {
                const __m128i bit = _mm_set1_epi8((char)(1 << (4 * half + shift)));
                for (int part = 0; part < 2; part++, dst += 16) {
                    __m128i bytes = _mm_loadu_si128((const __m128i *)(x[b].qs + 32 * half + 16 * part));
                    __m128i h = _mm_loadu_si128((const __m128i *)(x[b].hmask + 16 * part));
                    __m128i codes = _mm_and_si128(_mm_srl_epi16(bytes, _mm_cvtsi32_si128(2 * shift)), three);
                    codes = _mm_or_si128(codes, _mm_and_si128(bit_set(h, bit), four));
                    store_scaled16(dst, codes, 4, _mm256_set1_ps(dl[8 * half + 2 * shift + part]));
                }
            }
        }
    }
}

#endif
