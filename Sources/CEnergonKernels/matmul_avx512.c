// AVX-512 (F/BW/VL/DQ + VNNI) matmul kernels for decode: activation quantization, and
// row-by-row dot products for a few tokens. The packed GEMM for many tokens is in
// matmul_avx512_gemm.c.
//
// Every quantized format is expanded, 64 weights at a time, into unsigned bytes u in natural
// element order, so one `vpdpbusd` against 64 int8 activations gives 16 int32 partial sums
// where each 128-bit lane belongs to one run of 16 weights sharing one (scale, offset) pair.
// The lane sums are turned into floats and scaled per lane (scale * activation scale), and the
// offset term is applied once per 16 weights using the activation block sums.
#include "matmul_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#define MM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))

// ---------------------------------------------------------------------------------------------
// Activation quantization

MM_AVX512 void mm_quantize_rows_avx512(const float *input, size_t in, size_t rows, void *destination) {
    size_t stride = energon_matmul_quantized_row_bytes(in);
    size_t blocks = in / 32;
    const __m512 sign_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
    for (size_t r = 0; r < rows; r++) {
        const float *x = input + r * in;
        uint8_t *row = (uint8_t *)destination + r * stride;
        float *d = (float *)(row + in), *s32 = d + blocks, *s16 = s32 + blocks;
        for (size_t b = 0; b < blocks; b++) {
            __m512 low = _mm512_loadu_ps(x + 32 * b), high = _mm512_loadu_ps(x + 32 * b + 16);
            __m512 magnitude = _mm512_max_ps(_mm512_and_ps(low, sign_mask), _mm512_and_ps(high, sign_mask));
            float amax = _mm512_reduce_max_ps(magnitude);
            float scale = amax / 127.0f;
            __m512 inverse = _mm512_set1_ps(scale > 0 ? 1.0f / scale : 0.0f);
            // Round to nearest even (the default MXCSR mode), like nearbyintf in the portable path.
            __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(low, inverse));
            __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(high, inverse));
            _mm_storeu_si128((__m128i *)(row + 32 * b), _mm512_cvtepi32_epi8(q0));
            _mm_storeu_si128((__m128i *)(row + 32 * b + 16), _mm512_cvtepi32_epi8(q1));
            int sum0 = _mm512_reduce_add_epi32(q0), sum1 = _mm512_reduce_add_epi32(q1);
            d[b] = scale;
            s16[2 * b] = scale * (float)sum0;
            s16[2 * b + 1] = scale * (float)sum1;
            s32[b] = scale * (float)(sum0 + sum1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Float weights: direct dot products.

MM_AVX512 static inline __m512 mm512_load_weights(uint32_t dtype, const uint8_t *row, size_t i) {
    if (dtype == MM_F32) return _mm512_loadu_ps((const float *)row + i);
    __m256i halves = _mm256_loadu_si256((const __m256i *)(row + 2 * i));
    if (dtype == MM_F16) return _mm512_cvtph_ps(halves);
    // bf16 is the top half of an f32.
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
}

MM_AVX512 static inline __m512 mm512_load_weights_masked(uint32_t dtype, const uint8_t *row, size_t i, __mmask16 mask) {
    if (dtype == MM_F32) return _mm512_maskz_loadu_ps(mask, (const float *)row + i);
    __m256i halves = _mm256_maskz_loadu_epi16(mask, row + 2 * i);
    if (dtype == MM_F16) return _mm512_cvtph_ps(halves);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
}

MM_AVX512 static float mm512_dot_float(uint32_t dtype, const uint8_t *row, const float *x, size_t in) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
    size_t i = 0;
    // Four independent accumulators hide the FMA latency.
    for (; i + 64 <= in; i += 64) {
        acc0 = _mm512_fmadd_ps(mm512_load_weights(dtype, row, i), _mm512_loadu_ps(x + i), acc0);
        acc1 = _mm512_fmadd_ps(mm512_load_weights(dtype, row, i + 16), _mm512_loadu_ps(x + i + 16), acc1);
        acc2 = _mm512_fmadd_ps(mm512_load_weights(dtype, row, i + 32), _mm512_loadu_ps(x + i + 32), acc2);
        acc3 = _mm512_fmadd_ps(mm512_load_weights(dtype, row, i + 48), _mm512_loadu_ps(x + i + 48), acc3);
    }
    for (; i < in; i += 16) {
        size_t left = in - i;
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        acc0 = _mm512_fmadd_ps(mm512_load_weights_masked(dtype, row, i, mask), _mm512_maskz_loadu_ps(mask, x + i), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

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

/// Expands the 256 weights of K-quant super-block `group` into four zmm of unsigned bytes and
/// per-16 scales/offsets (four per zmm).
MM_AVX512 static inline void mm512_expand_k(uint32_t dtype, const uint8_t *row, size_t group,
                                            __m512i u[4], __m128 scale[4], __m128 offset[4]) {
    const uint8_t *block = row + group * mm_group_bytes(dtype);
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    switch (dtype) {
    case MM_Q4_K: case MM_Q5_K: {
        float d = mm_half_to_float(mm_load_u16(block)), dmin = mm_half_to_float(mm_load_u16(block + 2));
        const uint8_t *scales = block + 4;
        const uint8_t *qs = block + (dtype == MM_Q5_K ? 48 : 16);
        // Unpack the eight 6-bit (scale, min) pairs (see mm_k4_scale_min in the portable file).
        float sc[8], mn[8];
        for (int j = 0; j < 4; j++) {
            sc[j] = (float)(scales[j] & 63);
            mn[j] = (float)(scales[j + 4] & 63);
            sc[j + 4] = (float)((scales[j + 8] & 0xF) | ((scales[j] >> 6) << 4));
            mn[j + 4] = (float)((scales[j + 8] >> 4) | ((scales[j + 4] >> 6) << 4));
        }
        __m256 scale8 = _mm256_mul_ps(_mm256_loadu_ps(sc), _mm256_set1_ps(d));
        __m256 offset8 = _mm256_mul_ps(_mm256_loadu_ps(mn), _mm256_set1_ps(-dmin));
        __m256i high = dtype == MM_Q5_K ? _mm256_loadu_si256((const __m256i *)(block + 16)) : _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m512i values = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, low_mask)),
                                                _mm256_and_si256(_mm256_srli_epi16(v, 4), low_mask), 1);
            if (dtype == MM_Q5_K) {
                // Bit 2c of high[l] is the fifth bit of element 64c + l, bit 2c + 1 of 64c + 32 + l.
                __mmask32 first = _mm256_test_epi8_mask(high, _mm256_set1_epi8((char)(1 << (2 * c))));
                __mmask32 second = _mm256_test_epi8_mask(high, _mm256_set1_epi8((char)(2 << (2 * c))));
                __mmask64 fifth = (__mmask64)first | ((__mmask64)second << 32);
                values = _mm512_mask_add_epi8(values, fifth, values, _mm512_set1_epi8(16));
            }
            u[c] = values;
            __m128 s2 = c < 2 ? _mm256_castps256_ps128(scale8) : _mm256_extractf128_ps(scale8, 1);
            __m128 o2 = c < 2 ? _mm256_castps256_ps128(offset8) : _mm256_extractf128_ps(offset8, 1);
            // Sub-blocks 2c, 2c + 1 -> [s, s, t, t].
            if (c & 1) { s2 = _mm_movehl_ps(s2, s2); o2 = _mm_movehl_ps(o2, o2); }
            scale[c] = _mm_unpacklo_ps(s2, s2);
            offset[c] = _mm_unpacklo_ps(o2, o2);
        }
        break;
    }
    case MM_Q6_K: {
        const uint8_t *ql = block, *qh = block + 128;
        const int8_t *scales = (const int8_t *)(block + 192);
        __m128 d = _mm_set1_ps(mm_half_to_float(mm_load_u16(block + 208)));
        for (int c = 0; c < 4; c++) {
            int h = c >> 1, odd = c & 1;
            // Elements 64c.. come from ql[64h..64h+63] (low nibbles for even c, high for odd c)
            // and from bits (4 * odd) and (4 * odd + 2) of qh[32h + l].
            __m512i nibbles = _mm512_loadu_si512((const void *)(ql + 64 * h));
            if (odd) nibbles = _mm512_srli_epi16(nibbles, 4);
            nibbles = _mm512_and_si512(nibbles, _mm512_set1_epi8(0x0F));
            __m256i bits = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
            __m256i first = _mm256_srli_epi16(bits, 4 * odd);
            __m256i second = _mm256_srli_epi16(bits, 4 * odd + 2);
            __m512i top = _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
            top = _mm512_slli_epi16(_mm512_and_si512(top, _mm512_set1_epi8(3)), 4);
            u[c] = _mm512_or_si512(nibbles, top);
            __m128 s4 = _mm_mul_ps(_mm_cvtepi32_ps(_mm_cvtepi8_epi32(_mm_cvtsi32_si128((int)mm_load_u32((const uint8_t *)scales + 4 * c)))), d);
            scale[c] = s4;
            offset[c] = _mm_mul_ps(s4, _mm_set1_ps(-32.0f));
        }
        break;
    }
    default: {
        // Q2_K, Q3_K: the shared scalar decoder.
        uint8_t values[256];
        float sc[16], of[16];
        mm_expand_group(dtype, row, group, values, sc, of);
        for (int c = 0; c < 4; c++) {
            u[c] = _mm512_loadu_si512((const void *)(values + 64 * c));
            scale[c] = _mm_loadu_ps(sc + 4 * c);
            offset[c] = _mm_loadu_ps(of + 4 * c);
        }
        break;
    }
    }
}

/// Accumulates 64 expanded weights (elements first .. first + 63) against `tokens` activation rows.
/// `lanes` masks the activation bytes that exist (all 64, or the first 32 for a lone last block).
MM_AVX512 static inline void mm512_accumulate(__m512i u, __m128 scale, __m128 offset, const mm_a32_row *x,
                                              size_t first, int tokens, __mmask64 lanes,
                                              __m512 *accumulator, __m128 *correction) {
    // Lane group k (4 int32 lanes = 16 weights) takes scale k.
    const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    size_t block = first / 32;
    for (int t = 0; t < tokens; t++) {
        __m512i q = _mm512_maskz_loadu_epi8(lanes, x[t].q + first);
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, q);
        __m128 xd;
        if (lanes == ~(__mmask64)0) {
            __m128 pair = _mm_castpd_ps(_mm_load_sd((const double *)(x[t].d + block)));
            xd = _mm_unpacklo_ps(pair, pair);  // [dA, dA, dB, dB]
        } else {
            xd = _mm_set_ps(0, 0, x[t].d[block], x[t].d[block]);
        }
        __m512 lane_scale = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_mul_ps(scale, xd)));
        accumulator[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), lane_scale, accumulator[t]);
        __m128 sums = lanes == ~(__mmask64)0 ? _mm_loadu_ps(x[t].s16 + first / 16)
                                             : _mm_castpd_ps(_mm_load_sd((const double *)(x[t].s16 + first / 16)));
        correction[t] = _mm_fmadd_ps(offset, sums, correction[t]);
    }
}

/// Dot products of one quantized weight row with `tokens` (1...8) activation rows.
MM_AVX512 static inline __attribute__((always_inline)) void
mm512_quantized_row(uint32_t dtype, const uint8_t *row, size_t in, const mm_a32_row *x, int tokens, float *result) {
    __m512 accumulator[8];
    __m128 correction[8];
    for (int t = 0; t < tokens; t++) {
        accumulator[t] = _mm512_setzero_ps();
        correction[t] = _mm_setzero_ps();
    }
    if (mm_group_size(dtype) == 32) {
        size_t blocks = in / 32, block = 0;
        for (; block + 2 <= blocks; block += 2) {
            __m128 scale, offset;
            __m512i u = mm512_expand_pair32(dtype, row, block, &scale, &offset);
            mm512_accumulate(u, scale, offset, x, 32 * block, tokens, ~(__mmask64)0, accumulator, correction);
        }
        if (block < blocks) {
            // A lone last block: expand it alone so nothing past the row is read.
            uint8_t values[64] = {0};
            float sc[16] = {0}, of[16] = {0};
            mm_expand_group(dtype, row, block, values, sc, of);
            mm512_accumulate(_mm512_loadu_si512((const void *)values), _mm_loadu_ps(sc), _mm_loadu_ps(of), x,
                             32 * block, tokens, (__mmask64)0xFFFFFFFFu, accumulator, correction);
        }
    } else {
        size_t groups = in / 256;
        for (size_t g = 0; g < groups; g++) {
            __m512i u[4];
            __m128 scale[4], offset[4];
            mm512_expand_k(dtype, row, g, u, scale, offset);
            for (int c = 0; c < 4; c++)
                mm512_accumulate(u[c], scale[c], offset[c], x, 256 * g + 64 * c, tokens, ~(__mmask64)0, accumulator, correction);
        }
    }
    for (int t = 0; t < tokens; t++) {
        __m128 c = correction[t];
        c = _mm_add_ps(c, _mm_movehl_ps(c, c));
        c = _mm_add_ss(c, _mm_movehdup_ps(c));
        result[t] = _mm512_reduce_add_ps(accumulator[t]) + _mm_cvtss_f32(c);
    }
}

MM_AVX512 static void mm512_quantized_rows(const energon_matmul_job *job, size_t row_begin, size_t row_end, int tokens) {
    size_t stride = energon_matmul_quantized_row_bytes(job->in);
    for (size_t t0 = 0; t0 < job->tokens; t0 += (size_t)tokens) {
        int count = (int)(job->tokens - t0 < (size_t)tokens ? job->tokens - t0 : (size_t)tokens);
        mm_a32_row x[8];
        for (int t = 0; t < count; t++) x[t] = mm_a32_view(job->quantized + (t0 + (size_t)t) * stride, job->in);
        for (size_t o = row_begin; o < row_end; o++) {
            float result[8];
            const uint8_t *row = job->weight + o * job->row_bytes;
            // Constant token counts let the compiler keep the accumulators in registers.
            switch (count) {
            case 1: mm512_quantized_row(job->dtype, row, job->in, x, 1, result); break;
            case 2: mm512_quantized_row(job->dtype, row, job->in, x, 2, result); break;
            case 3: mm512_quantized_row(job->dtype, row, job->in, x, 3, result); break;
            default: mm512_quantized_row(job->dtype, row, job->in, x, count, result); break;
            }
            for (int t = 0; t < count; t++) job->output[(t0 + (size_t)t) * job->output_stride + o] = result[t];
        }
    }
}

MM_AVX512 void mm_rows_avx512(const energon_matmul_job *job, size_t row_begin, size_t row_end, void *scratch) {
    (void)scratch;
    if (!energon_matmul_needs_quantized_input(job->dtype)) {
        for (size_t o = row_begin; o < row_end; o++) {
            const uint8_t *row = job->weight + o * job->row_bytes;
            for (size_t t = 0; t < job->tokens; t++)
                job->output[t * job->output_stride + o] = mm512_dot_float(job->dtype, row, job->input + t * job->in, job->in);
        }
        return;
    }
    mm512_quantized_rows(job, row_begin, row_end, 4);
}

MM_AVX512 double mm_read_pass_avx512(const void *data, size_t bytes) {
    const __m512i *p = (const __m512i *)data;
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    for (size_t i = 0; i + 4 <= bytes / 64; i += 4) {
        a = _mm512_add_epi64(a, _mm512_load_si512(p + i));
        b = _mm512_add_epi64(b, _mm512_load_si512(p + i + 1));
        c = _mm512_add_epi64(c, _mm512_load_si512(p + i + 2));
        d = _mm512_add_epi64(d, _mm512_load_si512(p + i + 3));
    }
    return (double)_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
}

#endif
