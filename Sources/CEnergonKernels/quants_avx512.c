// AVX-512 decoders for the formats that sit on hot paths (embedding lookups, weight conversion)
// and the bulk F16/BF16 encoders. Each mirrors its portable twin in quants.c: integer codes are
// widened to i32, converted exactly to f32, and scaled with the same f32 products in the same
// order (separate multiply and add, never an FMA), so the output bits are identical.
#include "quants_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define T_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))

T_AVX512 static inline float half_scalar(const uint16_t *p) { return _cvtsh_ss(*p); }

/// Sixteen bytes -> sixteen floats of their unsigned values minus `offset`.
T_AVX512 static inline __m512 codes_to_ps(__m128i bytes, int offset) {
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(bytes), _mm512_set1_epi32(offset)));
}

T_AVX512 void energon_dq_f16_avx512(const void *src, float *dst, int64_t n) {
    const uint16_t *x = (const uint16_t *)src;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(x + i + 16));
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(a));
        _mm512_storeu_ps(dst + i + 16, _mm512_cvtph_ps(b));
    }
    for (; i < n; i += 16) {
        int64_t left = n - i;
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __m256i h = _mm256_maskz_loadu_epi16(mask, x + i);
        _mm512_mask_storeu_ps(dst + i, mask, _mm512_cvtph_ps(h));
    }
}

T_AVX512 void energon_dq_bf16_avx512(const void *src, float *dst, int64_t n) {
    const uint16_t *x = (const uint16_t *)src;
    for (int64_t i = 0; i < n; i += 16) {
        int64_t left = n - i;
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __m256i h = _mm256_maskz_loadu_epi16(mask, x + i);
        __m512i wide = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);  // bf16 is the top half of f32
        _mm512_mask_storeu_ps(dst + i, mask, _mm512_castsi512_ps(wide));
    }
}

T_AVX512 void energon_q_f16_avx512(const float *src, void *dst, int64_t n) {
    uint16_t *y = (uint16_t *)dst;
    for (int64_t i = 0; i < n; i += 16) {
        int64_t left = n - i;
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __m512 v = _mm512_maskz_loadu_ps(mask, src + i);
        __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(y + i, mask, h);
    }
}

// Integer rounding rather than vcvtneps2bf16, which flushes subnormals to zero and so would
// differ from ggml_compute_fp32_to_bf16 and gguf-py.
T_AVX512 void energon_q_bf16_avx512(const float *src, void *dst, int64_t n) {
    uint16_t *y = (uint16_t *)dst;
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7FFF);
    const __m512i absolute = _mm512_set1_epi32(0x7FFFFFFF), infinity = _mm512_set1_epi32(0x7F800000);
    const __m512i quiet = _mm512_set1_epi32(64);
    for (int64_t i = 0; i < n; i += 16) {
        int64_t left = n - i;
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __m512i x = _mm512_castps_si512(_mm512_maskz_loadu_ps(mask, src + i));
        __m512i top = _mm512_srli_epi32(x, 16);
        __m512i lsb = _mm512_and_si512(top, one);
        __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(x, _mm512_add_epi32(bias, lsb)), 16);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(x, absolute), infinity);
        rounded = _mm512_mask_or_epi32(rounded, nan, top, quiet);
        _mm256_mask_storeu_epi16(y + i, mask, _mm512_cvtepi32_epi16(rounded));
    }
}

T_AVX512 void energon_dq_q4_0_avx512(const void *src, float *dst, int64_t n) {
    const block_q4_0 *x = (const block_q4_0 *)src;
    const __m128i nibble = _mm_set1_epi8(0x0F);
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const __m512 d = _mm512_set1_ps(half_scalar(&x[b].d));
        __m128i qs = _mm_loadu_si128((const __m128i *)x[b].qs);
        __m128i low = _mm_and_si128(qs, nibble), high = _mm_and_si128(_mm_srli_epi16(qs, 4), nibble);
        _mm512_storeu_ps(dst, _mm512_mul_ps(codes_to_ps(low, 8), d));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(codes_to_ps(high, 8), d));
    }
}

T_AVX512 void energon_dq_q4_1_avx512(const void *src, float *dst, int64_t n) {
    const block_q4_1 *x = (const block_q4_1 *)src;
    const __m128i nibble = _mm_set1_epi8(0x0F);
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const __m512 d = _mm512_set1_ps(half_scalar(&x[b].d)), m = _mm512_set1_ps(half_scalar(&x[b].m));
        __m128i qs = _mm_loadu_si128((const __m128i *)x[b].qs);
        __m128i low = _mm_and_si128(qs, nibble), high = _mm_and_si128(_mm_srli_epi16(qs, 4), nibble);
        _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_mul_ps(codes_to_ps(low, 0), d), m));
        _mm512_storeu_ps(dst + 16, _mm512_add_ps(_mm512_mul_ps(codes_to_ps(high, 0), d), m));
    }
}

T_AVX512 void energon_dq_q5_0_avx512(const void *src, float *dst, int64_t n) {
    const block_q5_0 *x = (const block_q5_0 *)src;
    const __m128i nibble = _mm_set1_epi8(0x0F);
    const __m512i sixteen = _mm512_set1_epi32(16);
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const __m512 d = _mm512_set1_ps(half_scalar(&x[b].d));
        uint32_t qh;
        memcpy(&qh, x[b].qh, 4);
        __m128i qs = _mm_loadu_si128((const __m128i *)x[b].qs);
        __m512i low = _mm512_cvtepu8_epi32(_mm_and_si128(qs, nibble));
        __m512i high = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(qs, 4), nibble));
        // The 32 fifth bits are exactly two lane masks: add 16 where set, then remove the bias.
        low = _mm512_sub_epi32(_mm512_mask_add_epi32(low, (__mmask16)(qh & 0xFFFF), low, sixteen), sixteen);
        high = _mm512_sub_epi32(_mm512_mask_add_epi32(high, (__mmask16)(qh >> 16), high, sixteen), sixteen);
        _mm512_storeu_ps(dst, _mm512_mul_ps(_mm512_cvtepi32_ps(low), d));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(high), d));
    }
}

T_AVX512 void energon_dq_q8_0_avx512(const void *src, float *dst, int64_t n) {
    const block_q8_0 *x = (const block_q8_0 *)src;
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const __m512 d = _mm512_set1_ps(half_scalar(&x[b].d));
        __m128i first = _mm_loadu_si128((const __m128i *)x[b].qs);
        __m128i second = _mm_loadu_si128((const __m128i *)(x[b].qs + 16));
        _mm512_storeu_ps(dst, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(first)), d));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(second)), d));
    }
}

T_AVX512 void energon_dq_q4_K_avx512(const void *src, float *dst, int64_t n) {
    const block_q4_K *x = (const block_q4_K *)src;
    const __m128i nibble = _mm_set1_epi8(0x0F);
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++) {
        const float d = half_scalar(&x[b].d), dmin = half_scalar(&x[b].dmin);
        const uint8_t *q = x[b].qs;
        for (int chunk = 0; chunk < 4; chunk++, q += 32, dst += 64) {
            uint8_t sc, m;
            energon_k_scale_min(2 * chunk, x[b].scales, &sc, &m);
            const __m512 d1 = _mm512_set1_ps(d * (float)sc), m1 = _mm512_set1_ps(dmin * (float)m);
            energon_k_scale_min(2 * chunk + 1, x[b].scales, &sc, &m);
            const __m512 d2 = _mm512_set1_ps(d * (float)sc), m2 = _mm512_set1_ps(dmin * (float)m);
            for (int part = 0; part < 2; part++) {
                __m128i bytes = _mm_loadu_si128((const __m128i *)(q + 16 * part));
                __m128i low = _mm_and_si128(bytes, nibble), high = _mm_and_si128(_mm_srli_epi16(bytes, 4), nibble);
                _mm512_storeu_ps(dst + 16 * part, _mm512_sub_ps(_mm512_mul_ps(d1, codes_to_ps(low, 0)), m1));
                _mm512_storeu_ps(dst + 32 + 16 * part, _mm512_sub_ps(_mm512_mul_ps(d2, codes_to_ps(high, 0)), m2));
            }
        }
    }
}

T_AVX512 void energon_dq_q6_K_avx512(const void *src, float *dst, int64_t n) {
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
                // Assemble the four 6-bit codes in bytes; the masks drop bits a 16-bit shift
                // carries over from the neighbouring byte.
                __m128i q1 = _mm_or_si128(_mm_and_si128(a, nibble), _mm_slli_epi16(_mm_and_si128(h, two), 4));
                __m128i q2 = _mm_or_si128(_mm_and_si128(c, nibble),
                                          _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(h, 2), two), 4));
                __m128i q3 = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(a, 4), nibble), _mm_and_si128(h, top));
                __m128i q4 = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(c, 4), nibble),
                                          _mm_and_si128(_mm_srli_epi16(h, 2), top));
                _mm512_storeu_ps(dst + l, _mm512_mul_ps(_mm512_set1_ps(d * (float)sc[is + 0]), codes_to_ps(q1, 32)));
                _mm512_storeu_ps(dst + l + 32, _mm512_mul_ps(_mm512_set1_ps(d * (float)sc[is + 2]), codes_to_ps(q2, 32)));
                _mm512_storeu_ps(dst + l + 64, _mm512_mul_ps(_mm512_set1_ps(d * (float)sc[is + 4]), codes_to_ps(q3, 32)));
                _mm512_storeu_ps(dst + l + 96, _mm512_mul_ps(_mm512_set1_ps(d * (float)sc[is + 6]), codes_to_ps(q4, 32)));
            }
        }
    }
}

T_AVX512 void energon_dq_q5_1_avx512(const void *src, float *dst, int64_t n) {
    const block_q5_1 *x = (const block_q5_1 *)src;
    const __m128i nibble = _mm_set1_epi8(0x0F);
    const __m512i sixteen = _mm512_set1_epi32(16);
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const __m512 d = _mm512_set1_ps(half_scalar(&x[b].d)), m = _mm512_set1_ps(half_scalar(&x[b].m));
        uint32_t qh;
        memcpy(&qh, x[b].qh, 4);
        __m128i qs = _mm_loadu_si128((const __m128i *)x[b].qs);
        __m512i low = _mm512_cvtepu8_epi32(_mm_and_si128(qs, nibble));
        __m512i high = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(qs, 4), nibble));
        low = _mm512_mask_add_epi32(low, (__mmask16)(qh & 0xFFFF), low, sixteen);
        high = _mm512_mask_add_epi32(high, (__mmask16)(qh >> 16), high, sixteen);
        _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(low), d), m));
        _mm512_storeu_ps(dst + 16, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(high), d), m));
    }
}

/// Bytes that are 0xFF where `bytes & bit` is set, else 0.
T_AVX512 static inline __m128i bit_set(__m128i bytes, __m128i bit) {
    return _mm_cmpeq_epi8(_mm_and_si128(bytes, bit), bit);
}

T_AVX512 void energon_dq_q5_K_avx512(const void *src, float *dst, int64_t n) {
    const block_q5_K *x = (const block_q5_K *)src;
    const __m128i nibble = _mm_set1_epi8(0x0F), sixteen = _mm_set1_epi8(16);
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++) {
        const float d = half_scalar(&x[b].d), dmin = half_scalar(&x[b].dmin);
        const uint8_t *q = x[b].qs;
        for (int chunk = 0; chunk < 4; chunk++, q += 32, dst += 64) {
            uint8_t sc, m;
            energon_k_scale_min(2 * chunk, x[b].scales, &sc, &m);
            const __m512 d1 = _mm512_set1_ps(d * (float)sc), m1 = _mm512_set1_ps(dmin * (float)m);
            energon_k_scale_min(2 * chunk + 1, x[b].scales, &sc, &m);
            const __m512 d2 = _mm512_set1_ps(d * (float)sc), m2 = _mm512_set1_ps(dmin * (float)m);
            // Sub-blocks 2c and 2c+1 take their fifth bit from bits 2c and 2c+1 of qh[l].
            const __m128i bit1 = _mm_set1_epi8((char)(1 << (2 * chunk))), bit2 = _mm_set1_epi8((char)(2 << (2 * chunk)));
            for (int part = 0; part < 2; part++) {
                __m128i bytes = _mm_loadu_si128((const __m128i *)(q + 16 * part));
                __m128i h = _mm_loadu_si128((const __m128i *)(x[b].qh + 16 * part));
                __m128i low = _mm_or_si128(_mm_and_si128(bytes, nibble), _mm_and_si128(bit_set(h, bit1), sixteen));
                __m128i high = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(bytes, 4), nibble),
                                            _mm_and_si128(bit_set(h, bit2), sixteen));
                _mm512_storeu_ps(dst + 16 * part, _mm512_sub_ps(_mm512_mul_ps(d1, codes_to_ps(low, 0)), m1));
                _mm512_storeu_ps(dst + 32 + 16 * part, _mm512_sub_ps(_mm512_mul_ps(d2, codes_to_ps(high, 0)), m2));
            }
        }
    }
}

T_AVX512 void energon_dq_q2_K_avx512(const void *src, float *dst, int64_t n) {
    const block_q2_K *x = (const block_q2_K *)src;
    const __m128i three = _mm_set1_epi8(3);
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++) {
        const float d = half_scalar(&x[b].d), dmin = half_scalar(&x[b].dmin);
        // Element 128h + 32s + 16p + l: bits 2s of qs[32h + 16p + l], scale byte 8h + 2s + p.
        for (int half = 0; half < 2; half++) {
            for (int shift = 0; shift < 4; shift++) {
                for (int part = 0; part < 2; part++, dst += 16) {
                    const uint8_t sc = x[b].scales[8 * half + 2 * shift + part];
                    const __m512 dl = _mm512_set1_ps(d * (float)(sc & 0x0F)), ml = _mm512_set1_ps(dmin * (float)(sc >> 4));
                    __m128i bytes = _mm_loadu_si128((const __m128i *)(x[b].qs + 32 * half + 16 * part));
                    __m128i codes = _mm_and_si128(_mm_srl_epi16(bytes, _mm_cvtsi32_si128(2 * shift)), three);
                    _mm512_storeu_ps(dst, _mm512_sub_ps(_mm512_mul_ps(dl, codes_to_ps(codes, 0)), ml));
                }
            }
        }
    }
}

T_AVX512 void energon_dq_q3_K_avx512(const void *src, float *dst, int64_t n) {
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
        // As Q2_K for the low bits; bit 4h + s of hmask[16p + l] set means "no -4", so the code
        // is low + 4 * bit - 4.
        for (int half = 0; half < 2; half++) {
            for (int shift = 0; shift < 4; shift++) {
                const __m128i bit = _mm_set1_epi8((char)(1 << (4 * half + shift)));
                for (int part = 0; part < 2; part++, dst += 16) {
                    __m128i bytes = _mm_loadu_si128((const __m128i *)(x[b].qs + 32 * half + 16 * part));
                    __m128i h = _mm_loadu_si128((const __m128i *)(x[b].hmask + 16 * part));
                    __m128i codes = _mm_and_si128(_mm_srl_epi16(bytes, _mm_cvtsi32_si128(2 * shift)), three);
                    codes = _mm_or_si128(codes, _mm_and_si128(bit_set(h, bit), four));
                    _mm512_storeu_ps(dst, _mm512_mul_ps(_mm512_set1_ps(dl[8 * half + 2 * shift + part]), codes_to_ps(codes, 4)));
                }
            }
        }
    }
}

#endif
