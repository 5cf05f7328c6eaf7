// AVX2 + FMA + F16C matmul kernels: activation quantization and row-by-row dot products.
//
// Quantized weights are expanded 32 at a time into unsigned bytes (see matmul_avx512.c), then
// `pmaddubsw` multiplies them with the int8 activations into 16-bit pair sums and `pmaddwd`
// by ones widens those to int32, one lane per 4 weights. pmaddubsw saturates at 32767, which
// unsigned values up to 63 (Q6_K) times |q| <= 127 never reach; Q8_0 weights, which would,
// use the sign trick instead (|w| times q with w's sign).
#include "matmul_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#define MM_AVX2 __attribute__((target("avx2,fma,f16c")))

MM_AVX2 void mm_quantize_rows_avx2(const float *input, size_t in, size_t rows, void *destination) {
    size_t stride = energon_matmul_quantized_row_bytes(in);
    size_t blocks = in / 32;
    const __m256 sign_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    for (size_t r = 0; r < rows; r++) {
        const float *x = input + r * in;
        uint8_t *row = (uint8_t *)destination + r * stride;
        float *d = (float *)(row + in), *s32 = d + blocks, *s16 = s32 + blocks;
        for (size_t b = 0; b < blocks; b++) {
            __m256 v[4];
            __m256 magnitude = _mm256_setzero_ps();
            for (int i = 0; i < 4; i++) {
                v[i] = _mm256_loadu_ps(x + 32 * b + 8 * i);
                magnitude = _mm256_max_ps(magnitude, _mm256_and_ps(v[i], sign_mask));
            }
            __m128 m = _mm_max_ps(_mm256_castps256_ps128(magnitude), _mm256_extractf128_ps(magnitude, 1));
            m = _mm_max_ps(m, _mm_movehl_ps(m, m));
            m = _mm_max_ss(m, _mm_movehdup_ps(m));
            float scale = _mm_cvtss_f32(m) / 127.0f;
            __m256 inverse = _mm256_set1_ps(scale > 0 ? 1.0f / scale : 0.0f);
            int32_t q[32];
            for (int i = 0; i < 4; i++)
                _mm256_storeu_si256((__m256i *)(q + 8 * i), _mm256_cvtps_epi32(_mm256_mul_ps(v[i], inverse)));
            int sums[2] = {0, 0};
            for (int i = 0; i < 32; i++) {
                row[32 * b + (size_t)i] = (uint8_t)(int8_t)q[i];
                sums[i >> 4] += q[i];
            }
            d[b] = scale;
            s16[2 * b] = scale * (float)sums[0];
            s16[2 * b + 1] = scale * (float)sums[1];
            s32[b] = scale * (float)(sums[0] + sums[1]);
        }
        mm_fill_split(row, in);
    }
}

// ---------------------------------------------------------------------------------------------
// Float weights

MM_AVX2 static inline __m256 mm256_load_weights(uint32_t dtype, const uint8_t *row, size_t i) {
    if (dtype == MM_F32) return _mm256_loadu_ps((const float *)row + i);
    __m128i halves = _mm_loadu_si128((const __m128i *)(row + 2 * i));
    if (dtype == MM_F16) return _mm256_cvtph_ps(halves);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(halves), 16));
}

MM_AVX2 static float mm256_dot_float(uint32_t dtype, const uint8_t *row, const float *x, size_t in) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= in; i += 32) {
        acc0 = _mm256_fmadd_ps(mm256_load_weights(dtype, row, i), _mm256_loadu_ps(x + i), acc0);
        acc1 = _mm256_fmadd_ps(mm256_load_weights(dtype, row, i + 8), _mm256_loadu_ps(x + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(mm256_load_weights(dtype, row, i + 16), _mm256_loadu_ps(x + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(mm256_load_weights(dtype, row, i + 24), _mm256_loadu_ps(x + i + 24), acc3);
    }
    for (; i + 8 <= in; i += 8) acc0 = _mm256_fmadd_ps(mm256_load_weights(dtype, row, i), _mm256_loadu_ps(x + i), acc0);
    __m256 acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float sum = _mm_cvtss_f32(s);
    for (; i < in; i++) {
        float w;
        if (dtype == MM_F32) memcpy(&w, row + 4 * i, 4);
        else if (dtype == MM_F16) w = mm_half_to_float(mm_load_u16(row + 2 * i));
        else w = mm_bf16_to_float(mm_load_u16(row + 2 * i));
        sum += w * x[i];
    }
    return sum;
}

// ---------------------------------------------------------------------------------------------
// Quantized weights

/// Expands block `block` of a 32-weight format into 32 bytes in natural order plus its scale
/// and offset. Q8_0 comes back as signed bytes with `is_signed` set (offset 0).
MM_AVX2 static inline __m256i mm256_expand_block32(uint32_t dtype, const uint8_t *row, size_t block,
                                                    float *scale, float *offset) {
    size_t bytes = mm_group_bytes(dtype);
    const uint8_t *p = row + block * bytes;
    float d = _cvtsh_ss(mm_load_u16(p));
    *scale = d;
    if (dtype == MM_Q8_0) {
        *offset = 0;
        return _mm256_loadu_si256((const __m256i *)(p + 2));
    }
    int has_min = dtype == MM_Q4_1 || dtype == MM_Q5_1;
    int has_fifth = dtype == MM_Q5_0 || dtype == MM_Q5_1;
    const uint8_t *q = p + (has_min ? 4 : 2) + (has_fifth ? 4 : 0);
    __m128i v = _mm_loadu_si128((const __m128i *)q);
    const __m128i low_mask = _mm_set1_epi8(0x0F);
    __m256i values = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), low_mask), _mm_and_si128(v, low_mask));
    if (has_fifth) {
        // Spread bit i of the 32-bit word to byte i: shuffle byte i/8 into byte i, test bit i%8.
        uint32_t word = mm_load_u32(p + (has_min ? 4 : 2));
        __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)word),
                                             _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                               0x0101010101010101, 0x0000000000000000));
        const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
        __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
        values = _mm256_or_si256(values, _mm256_and_si256(set, _mm256_set1_epi8(16)));
    }
    if (has_min) *offset = _cvtsh_ss(mm_load_u16(p + 2));
    else *offset = (has_fifth ? -16.0f : -8.0f) * d;
    return values;
}

/// Expands K-quant super-block `group` (Q4_K, Q5_K, Q6_K; others via the scalar decoder) into
/// 256 unsigned bytes in natural order and per-16 scales and offsets.
MM_AVX2 static void mm256_expand_k(uint32_t dtype, const uint8_t *row, size_t group, uint8_t *u, float *scale,
                                   float *offset) {
    const uint8_t *block = row + group * mm_group_bytes(dtype);
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    if (dtype == MM_Q4_K || dtype == MM_Q5_K) {
        float d = _cvtsh_ss(mm_load_u16(block)), dmin = _cvtsh_ss(mm_load_u16(block + 2));
        uint64_t scales, mins;
        mm_k4_unpack(block + 4, &scales, &mins);
        for (int j = 0; j < 8; j++) {
            scale[2 * j] = scale[2 * j + 1] = d * (float)((scales >> (8 * j)) & 0xFF);
            offset[2 * j] = offset[2 * j + 1] = -dmin * (float)((mins >> (8 * j)) & 0xFF);
        }
        const uint8_t *qs = block + (dtype == MM_Q5_K ? 48 : 16);
        __m256i high = dtype == MM_Q5_K ? _mm256_loadu_si256((const __m256i *)(block + 16)) : _mm256_setzero_si256();
        const __m256i sixteen = _mm256_set1_epi8(16);
        for (int c = 0; c < 4; c++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i low = _mm256_and_si256(v, low_mask), top = _mm256_and_si256(_mm256_srli_epi16(v, 4), low_mask);
            if (dtype == MM_Q5_K) {
                // Bit 2c of high[l]: fifth bit of weight 64c + l; bit 2c + 1: of weight 64c + 32 + l.
                __m256i first = _mm256_set1_epi8((char)(1 << (2 * c))), second = _mm256_set1_epi8((char)(2 << (2 * c)));
                low = _mm256_or_si256(low, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(high, first), first), sixteen));
                top = _mm256_or_si256(top, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(high, second), second), sixteen));
            }
            _mm256_storeu_si256((__m256i *)(u + 64 * c), low);
            _mm256_storeu_si256((__m256i *)(u + 64 * c + 32), top);
        }
        return;
    }
    if (dtype == MM_Q6_K) {
        float d = _cvtsh_ss(mm_load_u16(block + 208));
        const int8_t *scales = (const int8_t *)(block + 192);
        for (int j = 0; j < 16; j++) {
            scale[j] = d * (float)scales[j];
            offset[j] = -32.0f * scale[j];
        }
        const __m256i two_bits = _mm256_set1_epi8(3);
        for (int h = 0; h < 2; h++) {
            // ql[64h + l] / ql[64h + 32 + l]: low nibbles are weights 128h + l / + 32 + l, high
            // nibbles + 64 / + 96; bits 2s..2s+1 of qh[32h + l] top off weight 128h + 32s + l.
            __m256i first = _mm256_loadu_si256((const __m256i *)(block + 64 * h));
            __m256i second = _mm256_loadu_si256((const __m256i *)(block + 64 * h + 32));
            __m256i bits = _mm256_loadu_si256((const __m256i *)(block + 128 + 32 * h));
            __m256i nibbles[4] = {_mm256_and_si256(first, low_mask), _mm256_and_si256(second, low_mask),
                                  _mm256_and_si256(_mm256_srli_epi16(first, 4), low_mask),
                                  _mm256_and_si256(_mm256_srli_epi16(second, 4), low_mask)};
            for (int s = 0; s < 4; s++) {
                __m256i top = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits, 2 * s), two_bits), 4);
                _mm256_storeu_si256((__m256i *)(u + 128 * h + 32 * s), _mm256_or_si256(nibbles[s], top));
            }
        }
        return;
    }
    mm_expand_group(dtype, row, group, u, scale, offset);
}

/// int32 sums of 4 products per lane of unsigned u with signed q (lanes 0-3: first 16 weights).
MM_AVX2 static inline __m256i mm256_dot_u8_s8(__m256i u, __m256i q) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, q), _mm256_set1_epi16(1));
}

MM_AVX2 static void mm256_quantized_row(const energon_matmul_job *job, const uint8_t *row, float *result) {
    size_t in = job->in, tokens = job->tokens, stride = energon_matmul_quantized_row_bytes(in);
    size_t group = mm_group_size(job->dtype), groups = in / group;
    size_t group_bytes = mm_group_bytes(job->dtype);
    int is_signed = job->dtype == MM_Q8_0;
    uint8_t buffer[256];
    float scales[16], offsets[16];
    // Up to 4 tokens at a time keep their sums in registers across the whole row (one horizontal
    // sum per row, not per block); each group is expanded once per 4 tokens.
    for (size_t t0 = 0; t0 < tokens; t0 += 4) {
        int count = (int)(tokens - t0 < 4 ? tokens - t0 : 4);
        mm_a32_row x[4];
        __m256 acc[4];
        float correction[4];
        for (int t = 0; t < count; t++) {
            x[t] = mm_a32_view(job->quantized + (t0 + (size_t)t) * stride, in);
            acc[t] = _mm256_setzero_ps();
            correction[t] = 0;
        }
        for (size_t g = 0; g < groups; g++) {
            // The weight stream runs ahead in the prefetcher, as in the AVX-512 kernels (the
            // scales of a K-quant block sit at its end but are needed first).
            if (t0 == 0)
                for (size_t line = 0; line < group_bytes; line += 64)
                    _mm_prefetch((const char *)(row + g * group_bytes + 6144 + line), _MM_HINT_T0);
            if (group == 32) {
                __m256i u = mm256_expand_block32(job->dtype, row, g, &scales[0], &offsets[0]);
                __m256i magnitude = is_signed ? _mm256_sign_epi8(u, u) : u;
                for (int t = 0; t < count; t++) {
                    __m256i q = _mm256_loadu_si256((const __m256i *)(x[t].q + 32 * g));
                    __m256i dot = mm256_dot_u8_s8(magnitude, is_signed ? _mm256_sign_epi8(q, u) : q);
                    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(scales[0] * x[t].d[g]), acc[t]);
                    correction[t] += offsets[0] * (x[t].s16[2 * g] + x[t].s16[2 * g + 1]);
                }
                continue;
            }
            mm256_expand_k(job->dtype, row, g, buffer, scales, offsets);
            for (int t = 0; t < count; t++) {
                for (size_t c = 0; c < group / 32; c++) {
                    size_t first = g * group + 32 * c;
                    __m256i u = _mm256_loadu_si256((const __m256i *)(buffer + 32 * c));
                    __m256i q = _mm256_loadu_si256((const __m256i *)(x[t].q + first));
                    float d = x[t].d[first / 32];
                    __m256 lane_scale = _mm256_set_m128(_mm_set1_ps(scales[2 * c + 1] * d), _mm_set1_ps(scales[2 * c] * d));
                    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mm256_dot_u8_s8(u, q)), lane_scale, acc[t]);
                    correction[t] += offsets[2 * c] * x[t].s16[first / 16] + offsets[2 * c + 1] * x[t].s16[first / 16 + 1];
                }
            }
        }
        for (int t = 0; t < count; t++) {
            __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc[t]), _mm256_extractf128_ps(acc[t], 1));
            s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            s = _mm_add_ss(s, _mm_movehdup_ps(s));
            result[t0 + (size_t)t] = _mm_cvtss_f32(s) + correction[t];
        }
    }
}

MM_AVX2 void mm_rows_avx2(const energon_matmul_job *job, size_t row_begin, size_t row_end, void *scratch) {
    float *result = (float *)scratch;
    for (size_t o = row_begin; o < row_end; o++) {
        const uint8_t *row = job->weight + o * job->row_bytes;
        if (energon_matmul_needs_quantized_input(job->dtype)) {
            mm256_quantized_row(job, row, result);
            for (size_t t = 0; t < job->tokens; t++) job->output[t * job->output_stride + o] = result[t];
        } else {
            for (size_t t = 0; t < job->tokens; t++)
                job->output[t * job->output_stride + o] = mm256_dot_float(job->dtype, row, job->input + t * job->in, job->in);
        }
    }
}

MM_AVX2 double mm_read_pass_avx2(const void *data, size_t bytes) {
    const __m256i *p = (const __m256i *)data;
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 4 <= bytes / 32; i += 4) {
        a = _mm256_add_epi64(a, _mm256_load_si256(p + i));
        b = _mm256_add_epi64(b, _mm256_load_si256(p + i + 1));
        c = _mm256_add_epi64(c, _mm256_load_si256(p + i + 2));
        d = _mm256_add_epi64(d, _mm256_load_si256(p + i + 3));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
    int64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, s);
    return (double)(lanes[0] + lanes[1] + lanes[2] + lanes[3]);
}

#endif
