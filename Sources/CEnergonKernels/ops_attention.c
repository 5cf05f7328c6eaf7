// Scaled dot-product attention over a paged KV cache, one (query token, KV head) per call; the
// Swift side spreads calls over threads. The loop itself is ops_attention_body.h, instantiated
// here for each ISA level on top of that level's small vector helpers.
#include "energon_ops.h"
#include "energon_quants.h"
#include "ops_math.h"

size_t energon_attention_scratch_floats(int32_t group_heads) {
    return energon_attention_rows_scratch_floats(group_heads);
}

size_t energon_attention_rows_scratch_floats(int32_t rows) {
    return 3 * ENERGON_ATTENTION_CHUNK + 2 * (size_t)rows;
}

size_t energon_attention_rows_scratch_floats_f16(int32_t rows, int32_t head_dimension) {
    return energon_attention_rows_scratch_floats(rows) + 2 * ENERGON_ATTENTION_CHUNK * (size_t)head_dimension;
}

// ---------------------------------------------------------------------------------------------
// Portable helpers.

static float dot_portable(const float *a, const float *b, int64_t count) {
    return energon_dot_f32(a, b, (size_t)count, ENERGON_ISA_PORTABLE);
}
static void axpy_portable(float *y, float a, const float *x, int64_t count) {
    for (int64_t i = 0; i < count; i++) y[i] += a * x[i];
}
static void scale_portable(float *y, float a, int64_t count) {
    for (int64_t i = 0; i < count; i++) y[i] *= a;
}
static float row_max_portable(const float *x, int64_t count) {
    float maximum = -INFINITY;
    for (int64_t i = 0; i < count; i++) maximum = x[i] > maximum ? x[i] : maximum;
    return maximum;
}
static float exp_sum_portable(float *x, int64_t count, float shift) {
    float sum = 0.0f;
    for (int64_t i = 0; i < count; i++) {
        x[i] = energon_exp_scalar(x[i] - shift);
        sum += x[i];
    }
    return sum;
}
static void softcap_portable(float *x, int64_t count, float cap) {
    for (int64_t i = 0; i < count; i++) x[i] = cap * energon_tanh_scalar(x[i] / cap);
}
static void scores_portable(const float *q, const float *const *keys, int64_t count, int64_t dimension, float scale,
                            float *out) {
    for (int64_t j = 0; j < count; j++) out[j] = dot_portable(q, keys[j], dimension) * scale;
}
static void accumulate_portable(float *out, const float *weights, const float *const *values, int64_t count,
                                int64_t dimension) {
    for (int64_t j = 0; j < count; j++) axpy_portable(out, weights[j], values[j], dimension);
}

static void scores_pair_portable(const float *q0, const float *q1, const float *const *keys, int64_t count,
                                 int64_t dimension, float scale, float *out0, float *out1) {
    scores_portable(q0, keys, count, dimension, scale, out0);
    scores_portable(q1, keys, count, dimension, scale, out1);
}
static void accumulate_pair_portable(float *out0, float *out1, const float *weights0, const float *weights1,
                                     const float *const *values, int64_t count, int64_t dimension) {
    accumulate_portable(out0, weights0, values, count, dimension);
    accumulate_portable(out1, weights1, values, count, dimension);
}

static void scores_triple_portable(const float *q0, const float *q1, const float *q2, const float *const *keys,
                                   int64_t count, int64_t dimension, float scale, float *out0, float *out1,
                                   float *out2) {
    scores_pair_portable(q0, q1, keys, count, dimension, scale, out0, out1);
    scores_portable(q2, keys, count, dimension, scale, out2);
}
static void accumulate_triple_portable(float *out0, float *out1, float *out2, const float *weights0,
                                       const float *weights1, const float *weights2, const float *const *values,
                                       int64_t count, int64_t dimension) {
    accumulate_pair_portable(out0, out1, weights0, weights1, values, count, dimension);
    accumulate_portable(out2, weights2, values, count, dimension);
}

static void half_rows_portable(const uint16_t *source, float *destination, int64_t count) {
    for (int64_t i = 0; i < count; i++) destination[i] = energon_half_to_float(source[i]);
}

#define ENERGON_ATTENTION_TARGET
#define ENERGON_ATTENTION_NAME(name) name##_portable
#include "ops_attention_body.h"
#define ENERGON_ATTENTION_HALF
#include "ops_attention_body.h"
#undef ENERGON_ATTENTION_HALF
#undef ENERGON_ATTENTION_TARGET
#undef ENERGON_ATTENTION_NAME

#if defined(__x86_64__)
// ---------------------------------------------------------------------------------------------
// AVX-512 helpers.

ENERGON_AVX512 static inline float dot_avx512(const float *a, const float *b, int64_t count) {
    __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= count; i += 32) {
        sum0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), sum0);
        sum1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), sum1);
    }
    for (; i < count; i += 16) {
        __mmask16 mask = energon_tail_mask16((size_t)(count - i));
        sum0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i), sum0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1));
}
ENERGON_AVX512 static inline void scale_avx512(float *y, float a, int64_t count) {
    __m512 factor = _mm512_set1_ps(a);
    for (int64_t i = 0; i < count; i += 16) {
        __mmask16 mask = energon_tail_mask16((size_t)(count - i));
        _mm512_mask_storeu_ps(y + i, mask, _mm512_mul_ps(factor, _mm512_maskz_loadu_ps(mask, y + i)));
    }
}
ENERGON_AVX512 static inline float row_max_avx512(const float *x, int64_t count) {
    __m512 maximum = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < count; i += 16) {
        __mmask16 mask = energon_tail_mask16((size_t)(count - i));
        maximum = _mm512_mask_max_ps(maximum, mask, maximum, _mm512_maskz_loadu_ps(mask, x + i));
    }
    return _mm512_reduce_max_ps(maximum);
}
ENERGON_AVX512 static inline float exp_sum_avx512(float *x, int64_t count, float shift) {
    __m512 sum = _mm512_setzero_ps(), offset = _mm512_set1_ps(shift);
    for (int64_t i = 0; i < count; i += 16) {
        __mmask16 mask = energon_tail_mask16((size_t)(count - i));
        __m512 e = energon_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), offset));
        e = _mm512_maskz_mov_ps(mask, e);
        sum = _mm512_add_ps(sum, e);
        _mm512_mask_storeu_ps(x + i, mask, e);
    }
    return _mm512_reduce_add_ps(sum);
}
ENERGON_AVX512 static inline void softcap_avx512(float *x, int64_t count, float cap) {
    __m512 c = _mm512_set1_ps(cap), inverse = _mm512_set1_ps(1.0f / cap);
    for (int64_t i = 0; i < count; i += 16) {
        __mmask16 mask = energon_tail_mask16((size_t)(count - i));
        __m512 t = energon_tanh512(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + i), inverse));
        _mm512_mask_storeu_ps(x + i, mask, _mm512_mul_ps(c, t));
    }
}

// Sixteen dot products at once: lane k of the result is the sum of the 16 lanes of acc[k]. A
// shuffle-and-add tree does it in 15 adds, instead of a full horizontal reduction per key.
ENERGON_AVX512 static inline __m512 transpose_sum16(const __m512 acc[16]) {
    __m512 pairs[8], quads[4];
    for (int i = 0; i < 8; i++)   // lanes: [a0+a2, b0+b2, a1+a3, b1+b3] per 128-bit lane
        pairs[i] = _mm512_add_ps(_mm512_unpacklo_ps(acc[2 * i], acc[2 * i + 1]),
                                 _mm512_unpackhi_ps(acc[2 * i], acc[2 * i + 1]));
    for (int i = 0; i < 4; i++) {  // per 128-bit lane: partial sums of four keys, in order
        __m512d low = _mm512_unpacklo_pd(_mm512_castps_pd(pairs[2 * i]), _mm512_castps_pd(pairs[2 * i + 1]));
        __m512d high = _mm512_unpackhi_pd(_mm512_castps_pd(pairs[2 * i]), _mm512_castps_pd(pairs[2 * i + 1]));
        quads[i] = _mm512_add_ps(_mm512_castpd_ps(low), _mm512_castpd_ps(high));
    }
    // Fold the four 128-bit lanes: twice "pair up lanes (0,2) and (1,3) of two vectors and add".
    __m512 first = _mm512_add_ps(_mm512_shuffle_f32x4(quads[0], quads[1], 0x88),
                                 _mm512_shuffle_f32x4(quads[0], quads[1], 0xDD));
    __m512 second = _mm512_add_ps(_mm512_shuffle_f32x4(quads[2], quads[3], 0x88),
                                  _mm512_shuffle_f32x4(quads[2], quads[3], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(first, second, 0x88), _mm512_shuffle_f32x4(first, second, 0xDD));
}

ENERGON_AVX512 static inline void scores_avx512(const float *q, const float *const *keys, int64_t count,
                                                int64_t dimension, float scale, float *out) {
    int64_t j = 0;
    __m512 factor = _mm512_set1_ps(scale);
    if ((dimension & 15) == 0) {
        // Whole vectors (head sizes 64, 128, 256...): plain loads, no mask bookkeeping.
        for (; j + 16 <= count; j += 16) {
            __m512 acc[16];
            for (int k = 0; k < 16; k++) acc[k] = _mm512_setzero_ps();
            for (int64_t d = 0; d < dimension; d += 16) {
                __m512 query = _mm512_loadu_ps(q + d);
                for (int k = 0; k < 16; k++) acc[k] = _mm512_fmadd_ps(query, _mm512_loadu_ps(keys[j + k] + d), acc[k]);
            }
            _mm512_storeu_ps(out + j, _mm512_mul_ps(transpose_sum16(acc), factor));
        }
    }
    for (; j + 16 <= count; j += 16) {
        __m512 acc[16];
        for (int k = 0; k < 16; k++) acc[k] = _mm512_setzero_ps();
        for (int64_t d = 0; d < dimension; d += 16) {
            __mmask16 mask = energon_tail_mask16((size_t)(dimension - d));
            __m512 query = _mm512_maskz_loadu_ps(mask, q + d);
            for (int k = 0; k < 16; k++)
                acc[k] = _mm512_fmadd_ps(query, _mm512_maskz_loadu_ps(mask, keys[j + k] + d), acc[k]);
        }
        _mm512_storeu_ps(out + j, _mm512_mul_ps(transpose_sum16(acc), factor));
    }
    for (; j < count; j++) out[j] = dot_avx512(q, keys[j], dimension) * scale;
}

// out += sum_j weights[j] * values[j], 64 columns at a time in registers, so each output element
// is loaded and stored once per chunk instead of once per key.
ENERGON_AVX512 static inline void accumulate_avx512(float *out, const float *weights, const float *const *values,
                                                    int64_t count, int64_t dimension) {
    int64_t d = 0;
    for (; d + 64 <= dimension; d += 64) {
        __m512 acc[4];
        for (int part = 0; part < 4; part++) acc[part] = _mm512_loadu_ps(out + d + 16 * part);
        for (int64_t j = 0; j < count; j++) {
            __m512 weight = _mm512_set1_ps(weights[j]);
            const float *value = values[j] + d;
            for (int part = 0; part < 4; part++)
                acc[part] = _mm512_fmadd_ps(weight, _mm512_loadu_ps(value + 16 * part), acc[part]);
        }
        for (int part = 0; part < 4; part++) _mm512_storeu_ps(out + d + 16 * part, acc[part]);
    }
    for (; d < dimension; d += 64) {
        __mmask16 mask[4];
        __m512 acc[4];
        for (int part = 0; part < 4; part++) {
            int64_t start = d + 16 * part;
            mask[part] = start < dimension ? energon_tail_mask16((size_t)(dimension - start)) : 0;
            acc[part] = _mm512_maskz_loadu_ps(mask[part], out + start);
        }
        for (int64_t j = 0; j < count; j++) {
            __m512 weight = _mm512_set1_ps(weights[j]);
            const float *value = values[j] + d;
            for (int part = 0; part < 4; part++)
                acc[part] = _mm512_fmadd_ps(weight, _mm512_maskz_loadu_ps(mask[part], value + 16 * part), acc[part]);
        }
        for (int part = 0; part < 4; part++) _mm512_mask_storeu_ps(out + d + 16 * part, mask[part], acc[part]);
    }
}

// Eight dot products at once (the low 256 bits of the result), same tree as transpose_sum16.
ENERGON_AVX512 static inline __m256 transpose_sum8(const __m512 acc[8]) {
    __m512 pairs[4], quads[2];
    for (int i = 0; i < 4; i++)
        pairs[i] = _mm512_add_ps(_mm512_unpacklo_ps(acc[2 * i], acc[2 * i + 1]),
                                 _mm512_unpackhi_ps(acc[2 * i], acc[2 * i + 1]));
    for (int i = 0; i < 2; i++) {
        __m512d low = _mm512_unpacklo_pd(_mm512_castps_pd(pairs[2 * i]), _mm512_castps_pd(pairs[2 * i + 1]));
        __m512d high = _mm512_unpackhi_pd(_mm512_castps_pd(pairs[2 * i]), _mm512_castps_pd(pairs[2 * i + 1]));
        quads[i] = _mm512_add_ps(_mm512_castpd_ps(low), _mm512_castpd_ps(high));
    }
    __m512 folded = _mm512_add_ps(_mm512_shuffle_f32x4(quads[0], quads[1], 0x88),
                                  _mm512_shuffle_f32x4(quads[0], quads[1], 0xDD));
    folded = _mm512_add_ps(_mm512_shuffle_f32x4(folded, folded, 0x88), _mm512_shuffle_f32x4(folded, folded, 0xDD));
    return _mm512_castps512_ps256(folded);
}

// Several query rows (heads of one KV group) against the same keys: each key vector loaded
// feeds `rows` FMAs, so the loads per FMA fall with the row count (one row is load-bound).
// `rows` is a constant at every call site, so the loops unroll and the accumulators (8 keys x
// up to 3 rows = 24 registers) stay in registers.
ENERGON_AVX512 static inline __attribute__((always_inline)) void scores_rows_avx512(
    int rows, const float *const q[3], const float *const *keys, int64_t count, int64_t dimension, float scale,
    float *const out[3]) {
    __m256 factor = _mm256_set1_ps(scale);
    int64_t j = 0;
    for (; j + 8 <= count; j += 8) {
        __m512 acc[3][8];
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < 8; k++) acc[r][k] = _mm512_setzero_ps();
        if ((dimension & 15) == 0) {
            for (int64_t d = 0; d < dimension; d += 16) {
                __m512 query[3];
                for (int r = 0; r < rows; r++) query[r] = _mm512_loadu_ps(q[r] + d);
                for (int k = 0; k < 8; k++) {
                    __m512 key = _mm512_loadu_ps(keys[j + k] + d);
                    for (int r = 0; r < rows; r++) acc[r][k] = _mm512_fmadd_ps(query[r], key, acc[r][k]);
                }
            }
        } else {
            for (int64_t d = 0; d < dimension; d += 16) {
                __mmask16 mask = energon_tail_mask16((size_t)(dimension - d));
                __m512 query[3];
                for (int r = 0; r < rows; r++) query[r] = _mm512_maskz_loadu_ps(mask, q[r] + d);
                for (int k = 0; k < 8; k++) {
                    __m512 key = _mm512_maskz_loadu_ps(mask, keys[j + k] + d);
                    for (int r = 0; r < rows; r++) acc[r][k] = _mm512_fmadd_ps(query[r], key, acc[r][k]);
                }
            }
        }
        for (int r = 0; r < rows; r++) _mm256_storeu_ps(out[r] + j, _mm256_mul_ps(transpose_sum8(acc[r]), factor));
    }
    for (; j < count; j++)
        for (int r = 0; r < rows; r++) out[r][j] = dot_avx512(q[r], keys[j], dimension) * scale;
}

// Several output rows from the same values: each value vector loaded feeds `rows` FMAs.
ENERGON_AVX512 static inline __attribute__((always_inline)) void accumulate_rows_avx512(
    int rows, float *const out[3], const float *const weights[3], const float *const *values, int64_t count,
    int64_t dimension) {
    for (int64_t d = 0; d < dimension; d += 64) {
        __mmask16 mask[4];
        __m512 acc[3][4];
        for (int part = 0; part < 4; part++) {
            int64_t start = d + 16 * part;
            mask[part] = start < dimension ? energon_tail_mask16((size_t)(dimension - start)) : 0;
            for (int r = 0; r < rows; r++) acc[r][part] = _mm512_maskz_loadu_ps(mask[part], out[r] + start);
        }
        for (int64_t j = 0; j < count; j++) {
            __m512 weight[3];
            for (int r = 0; r < rows; r++) weight[r] = _mm512_set1_ps(weights[r][j]);
            const float *value = values[j] + d;
            for (int part = 0; part < 4; part++) {
                __m512 v = _mm512_maskz_loadu_ps(mask[part], value + 16 * part);
                for (int r = 0; r < rows; r++) acc[r][part] = _mm512_fmadd_ps(weight[r], v, acc[r][part]);
            }
        }
        for (int part = 0; part < 4; part++)
            for (int r = 0; r < rows; r++) _mm512_mask_storeu_ps(out[r] + d + 16 * part, mask[part], acc[r][part]);
    }
}

ENERGON_AVX512 static void scores_pair_avx512(const float *q0, const float *q1, const float *const *keys,
                                              int64_t count, int64_t dimension, float scale, float *out0,
                                              float *out1) {
    const float *q[3] = {q0, q1, q1};
    float *out[3] = {out0, out1, out1};
    scores_rows_avx512(2, q, keys, count, dimension, scale, out);
}
ENERGON_AVX512 static void scores_triple_avx512(const float *q0, const float *q1, const float *q2,
                                                const float *const *keys, int64_t count, int64_t dimension,
                                                float scale, float *out0, float *out1, float *out2) {
    const float *q[3] = {q0, q1, q2};
    float *out[3] = {out0, out1, out2};
    scores_rows_avx512(3, q, keys, count, dimension, scale, out);
}
ENERGON_AVX512 static void accumulate_pair_avx512(float *out0, float *out1, const float *weights0,
                                                  const float *weights1, const float *const *values, int64_t count,
                                                  int64_t dimension) {
    float *out[3] = {out0, out1, out1};
    const float *weights[3] = {weights0, weights1, weights1};
    accumulate_rows_avx512(2, out, weights, values, count, dimension);
}
ENERGON_AVX512 static void accumulate_triple_avx512(float *out0, float *out1, float *out2, const float *weights0,
                                                    const float *weights1, const float *weights2,
                                                    const float *const *values, int64_t count, int64_t dimension) {
    float *out[3] = {out0, out1, out2};
    const float *weights[3] = {weights0, weights1, weights2};
    accumulate_rows_avx512(3, out, weights, values, count, dimension);
}

#include "ops_attention_half_avx512.h"

#define ENERGON_ATTENTION_TARGET ENERGON_AVX512
#define ENERGON_ATTENTION_NAME(name) name##_avx512
#include "ops_attention_body.h"
#define ENERGON_ATTENTION_HALF
#define ENERGON_ATTENTION_HALF_DIRECT  // widen in registers (ops_attention_half_avx512.h)
#include "ops_attention_body.h"
#undef ENERGON_ATTENTION_HALF_DIRECT
#undef ENERGON_ATTENTION_HALF
#undef ENERGON_ATTENTION_TARGET
#undef ENERGON_ATTENTION_NAME

// ---------------------------------------------------------------------------------------------
// AVX2 helpers.

ENERGON_AVX2 static inline float dot_avx2(const float *a, const float *b, int64_t count) {
    __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) {
        sum0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), sum0);
        sum1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), sum1);
    }
    for (; i < count; i += 8) {
        __m256i mask = energon_tail_mask8((size_t)(count - i));
        sum0 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, mask), _mm256_maskload_ps(b + i, mask), sum0);
    }
    return energon_hsum256(_mm256_add_ps(sum0, sum1));
}
ENERGON_AVX2 static inline void scale_avx2(float *y, float a, int64_t count) {
    __m256 factor = _mm256_set1_ps(a);
    for (int64_t i = 0; i < count; i += 8) {
        __m256i mask = energon_tail_mask8((size_t)(count - i));
        _mm256_maskstore_ps(y + i, mask, _mm256_mul_ps(factor, _mm256_maskload_ps(y + i, mask)));
    }
}
ENERGON_AVX2 static inline float row_max_avx2(const float *x, int64_t count) {
    __m256 maximum = _mm256_set1_ps(-INFINITY);
    for (int64_t i = 0; i < count; i += 8) {
        __m256i mask = energon_tail_mask8((size_t)(count - i));
        __m256 values = _mm256_blendv_ps(maximum, _mm256_maskload_ps(x + i, mask), _mm256_castsi256_ps(mask));
        maximum = _mm256_max_ps(maximum, values);
    }
    return energon_hmax256(maximum);
}
ENERGON_AVX2 static inline float exp_sum_avx2(float *x, int64_t count, float shift) {
    __m256 sum = _mm256_setzero_ps(), offset = _mm256_set1_ps(shift);
    for (int64_t i = 0; i < count; i += 8) {
        __m256i mask = energon_tail_mask8((size_t)(count - i));
        __m256 e = energon_exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, mask), offset));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(mask));
        sum = _mm256_add_ps(sum, e);
        _mm256_maskstore_ps(x + i, mask, e);
    }
    return energon_hsum256(sum);
}
ENERGON_AVX2 static inline void softcap_avx2(float *x, int64_t count, float cap) {
    __m256 c = _mm256_set1_ps(cap), inverse = _mm256_set1_ps(1.0f / cap);
    for (int64_t i = 0; i < count; i += 8) {
        __m256i mask = energon_tail_mask8((size_t)(count - i));
        __m256 t = energon_tanh256(_mm256_mul_ps(_mm256_maskload_ps(x + i, mask), inverse));
        _mm256_maskstore_ps(x + i, mask, _mm256_mul_ps(c, t));
    }
}

// Eight dot products at once: lane k of the result is the sum of the 8 lanes of acc[k].
ENERGON_AVX2 static inline __m256 transpose_sum8_avx2(const __m256 acc[8]) {
    __m256 t0 = _mm256_hadd_ps(acc[0], acc[1]), t1 = _mm256_hadd_ps(acc[2], acc[3]);
    __m256 t2 = _mm256_hadd_ps(acc[4], acc[5]), t3 = _mm256_hadd_ps(acc[6], acc[7]);
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);  // per 128-bit half: keys 0-3 / 4-7
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

ENERGON_AVX2 static inline void scores_avx2(const float *q, const float *const *keys, int64_t count,
                                            int64_t dimension, float scale, float *out) {
    __m256 factor = _mm256_set1_ps(scale);
    int64_t j = 0;
    for (; j + 8 <= count; j += 8) {
        __m256 acc[8];
        for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_ps();
        for (int64_t d = 0; d < dimension; d += 8) {
            __m256i mask = energon_tail_mask8((size_t)(dimension - d));
            __m256 query = _mm256_maskload_ps(q + d, mask);
            for (int k = 0; k < 8; k++)
                acc[k] = _mm256_fmadd_ps(query, _mm256_maskload_ps(keys[j + k] + d, mask), acc[k]);
        }
        _mm256_storeu_ps(out + j, _mm256_mul_ps(transpose_sum8_avx2(acc), factor));
    }
    for (; j < count; j++) out[j] = dot_avx2(q, keys[j], dimension) * scale;
}

// Four dot products at once: lane k of the result is the sum of the 8 lanes of acc[k].
ENERGON_AVX2 static inline __m128 transpose_sum4_avx2(const __m256 acc[4]) {
    __m256 both = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
    return _mm_add_ps(_mm256_castps256_ps128(both), _mm256_extractf128_ps(both, 1));
}

// Two query rows against the same keys, four keys at a time (2 x 4 accumulators, two query
// registers and a key fit the 16 ymm registers; three rows would spill).
ENERGON_AVX2 static inline void scores_pair_avx2(const float *q0, const float *q1, const float *const *keys,
                                                 int64_t count, int64_t dimension, float scale, float *out0,
                                                 float *out1) {
    __m128 factor = _mm_set1_ps(scale);
    int64_t j = 0;
    for (; j + 4 <= count; j += 4) {
        __m256 acc0[4], acc1[4];
        for (int k = 0; k < 4; k++) acc0[k] = acc1[k] = _mm256_setzero_ps();
        int64_t d = 0;
        for (; d + 8 <= dimension; d += 8) {
            __m256 query0 = _mm256_loadu_ps(q0 + d), query1 = _mm256_loadu_ps(q1 + d);
            for (int k = 0; k < 4; k++) {
                __m256 key = _mm256_loadu_ps(keys[j + k] + d);
                acc0[k] = _mm256_fmadd_ps(query0, key, acc0[k]);
                acc1[k] = _mm256_fmadd_ps(query1, key, acc1[k]);
            }
        }
        if (d < dimension) {
            __m256i mask = energon_tail_mask8((size_t)(dimension - d));
            __m256 query0 = _mm256_maskload_ps(q0 + d, mask), query1 = _mm256_maskload_ps(q1 + d, mask);
            for (int k = 0; k < 4; k++) {
                __m256 key = _mm256_maskload_ps(keys[j + k] + d, mask);
                acc0[k] = _mm256_fmadd_ps(query0, key, acc0[k]);
                acc1[k] = _mm256_fmadd_ps(query1, key, acc1[k]);
            }
        }
        _mm_storeu_ps(out0 + j, _mm_mul_ps(transpose_sum4_avx2(acc0), factor));
        _mm_storeu_ps(out1 + j, _mm_mul_ps(transpose_sum4_avx2(acc1), factor));
    }
    for (; j < count; j++) {
        out0[j] = dot_avx2(q0, keys[j], dimension) * scale;
        out1[j] = dot_avx2(q1, keys[j], dimension) * scale;
    }
}

// out_r += sum_j weights_r[j] * values[j] for one or two rows, 32 columns at a time in registers.
ENERGON_AVX2 static inline __attribute__((always_inline)) void accumulate_rows_avx2(
    int rows, float *const out[2], const float *const weights[2], const float *const *values, int64_t count,
    int64_t dimension) {
    for (int64_t d = 0; d < dimension; d += 32) {
        __m256i mask[4];
        __m256 acc[2][4];
        for (int part = 0; part < 4; part++) {
            int64_t start = d + 8 * part;
            mask[part] = start < dimension ? energon_tail_mask8((size_t)(dimension - start)) : _mm256_setzero_si256();
            for (int r = 0; r < rows; r++) acc[r][part] = _mm256_maskload_ps(out[r] + start, mask[part]);
        }
        for (int64_t j = 0; j < count; j++) {
            __m256 weight[2];
            for (int r = 0; r < rows; r++) weight[r] = _mm256_set1_ps(weights[r][j]);
            const float *value = values[j] + d;
            for (int part = 0; part < 4; part++) {
                __m256 v = _mm256_maskload_ps(value + 8 * part, mask[part]);
                for (int r = 0; r < rows; r++) acc[r][part] = _mm256_fmadd_ps(weight[r], v, acc[r][part]);
            }
        }
        for (int part = 0; part < 4; part++)
            for (int r = 0; r < rows; r++) _mm256_maskstore_ps(out[r] + d + 8 * part, mask[part], acc[r][part]);
    }
}
ENERGON_AVX2 static void accumulate_avx2(float *out, const float *weights, const float *const *values,
                                         int64_t count, int64_t dimension) {
    float *outs[2] = {out, out};
    const float *weight_rows[2] = {weights, weights};
    accumulate_rows_avx2(1, outs, weight_rows, values, count, dimension);
}
ENERGON_AVX2 static void accumulate_pair_avx2(float *out0, float *out1, const float *weights0, const float *weights1,
                                              const float *const *values, int64_t count, int64_t dimension) {
    float *out[2] = {out0, out1};
    const float *weights[2] = {weights0, weights1};
    accumulate_rows_avx2(2, out, weights, values, count, dimension);
}

ENERGON_AVX2 static inline void scores_triple_avx2(const float *q0, const float *q1, const float *q2, const float *const *keys,
                                   int64_t count, int64_t dimension, float scale, float *out0, float *out1,
                                   float *out2) {
    scores_pair_avx2(q0, q1, keys, count, dimension, scale, out0, out1);
    scores_avx2(q2, keys, count, dimension, scale, out2);
}
ENERGON_AVX2 static inline void accumulate_triple_avx2(float *out0, float *out1, float *out2, const float *weights0,
                                       const float *weights1, const float *weights2, const float *const *values,
                                       int64_t count, int64_t dimension) {
    accumulate_pair_avx2(out0, out1, weights0, weights1, values, count, dimension);
    accumulate_avx2(out2, weights2, values, count, dimension);
}

// Half -> float, 8 at a time with F16C (exact); the tail goes through the scalar conversion.
ENERGON_AVX2 static inline void half_rows_avx2(const uint16_t *source, float *destination, int64_t count) {
    int64_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(destination + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(source + i))));
    for (; i < count; i++) destination[i] = energon_half_to_float(source[i]);
}

#define ENERGON_ATTENTION_TARGET ENERGON_AVX2
#define ENERGON_ATTENTION_NAME(name) name##_avx2
#include "ops_attention_body.h"
#define ENERGON_ATTENTION_HALF
#include "ops_attention_body.h"
#undef ENERGON_ATTENTION_HALF
#undef ENERGON_ATTENTION_TARGET
#undef ENERGON_ATTENTION_NAME
#endif

void energon_attention_rows_f32(int32_t rows, const float *const *queries, float *const *outputs,
                                const int64_t *firsts, const int64_t *ends, const float *const *key_blocks,
                                const float *const *value_blocks, const energon_attention_shape *shape,
                                float *scratch, int normalize, energon_isa isa) {
#if defined(__x86_64__)
    if (isa >= ENERGON_ISA_AVX512) {
        attention_rows_avx512(rows, queries, outputs, firsts, ends, key_blocks, value_blocks, shape, scratch, normalize);
        return;
    }
    if (isa >= ENERGON_ISA_AVX2) {
        attention_rows_avx2(rows, queries, outputs, firsts, ends, key_blocks, value_blocks, shape, scratch, normalize);
        return;
    }
#endif
    (void)isa;
    attention_rows_portable(rows, queries, outputs, firsts, ends, key_blocks, value_blocks, shape, scratch, normalize);
}

void energon_attention_rows_f16(int32_t rows, const float *const *queries, float *const *outputs,
                                const int64_t *firsts, const int64_t *ends, const uint16_t *const *key_blocks,
                                const uint16_t *const *value_blocks, const energon_attention_shape *shape,
                                float *scratch, int normalize, energon_isa isa) {
#if defined(__x86_64__)
    if (isa >= ENERGON_ISA_AVX512) {
        attention_rows_half_avx512(rows, queries, outputs, firsts, ends, key_blocks, value_blocks, shape, scratch,
                                   normalize);
        return;
    }
    if (isa >= ENERGON_ISA_AVX2) {
        attention_rows_half_avx2(rows, queries, outputs, firsts, ends, key_blocks, value_blocks, shape, scratch,
                                 normalize);
        return;
    }
#endif
    (void)isa;
    attention_rows_half_portable(rows, queries, outputs, firsts, ends, key_blocks, value_blocks, shape, scratch,
                                 normalize);
}

/// The rows of one KV group's heads for one token: contiguous queries and outputs, one range.
/// `half` selects the cache element type of the blocks (f32 or IEEE half).
static void group_attention(const float *q, const void *const *key_blocks, const void *const *value_blocks, int half,
                            int64_t first_position, int64_t end_position, const energon_attention_shape *shape,
                            float *output, float *scratch, int normalize, energon_isa isa) {
    const float *queries[ENERGON_ATTENTION_MAX_ROWS];
    float *outputs[ENERGON_ATTENTION_MAX_ROWS];
    int64_t firsts[ENERGON_ATTENTION_MAX_ROWS], ends[ENERGON_ATTENTION_MAX_ROWS];
    const int32_t rows = shape->group_heads;
    for (int32_t r = 0; r < rows; r++) {
        queries[r] = q + (size_t)r * shape->head_dimension;
        outputs[r] = output + (size_t)r * shape->head_dimension;
        firsts[r] = first_position;
        ends[r] = end_position;
    }
    if (half)
        energon_attention_rows_f16(rows, queries, outputs, firsts, ends, (const uint16_t *const *)key_blocks,
                                   (const uint16_t *const *)value_blocks, shape, scratch, normalize, isa);
    else
        energon_attention_rows_f32(rows, queries, outputs, firsts, ends, (const float *const *)key_blocks,
                                   (const float *const *)value_blocks, shape, scratch, normalize, isa);
}

void energon_attention_f32(const float *q, const float *const *key_blocks, const float *const *value_blocks,
                           int64_t first_position, int64_t end_position, const energon_attention_shape *shape,
                           float *output, float *scratch, energon_isa isa) {
    group_attention(q, (const void *const *)key_blocks, (const void *const *)value_blocks, 0, first_position,
                    end_position, shape, output, scratch, 1, isa);
}

/// Copies the body's per-row softmax state out of scratch after a non-normalising call.
static void copy_state(const energon_attention_shape *shape, const float *scratch, float *maxima, float *sums) {
    const int64_t heads = shape->group_heads;
    const float *state = scratch + 3 * ENERGON_ATTENTION_CHUNK;  // the body's [maxima, sums]
    for (int64_t h = 0; h < heads; h++) {
        maxima[h] = state[h];
        sums[h] = state[heads + h];
    }
}

void energon_attention_partial_f32(const float *q, const float *const *key_blocks, const float *const *value_blocks,
                                   int64_t first_position, int64_t end_position,
                                   const energon_attention_shape *shape, float *output, float *maxima, float *sums,
                                   float *scratch, energon_isa isa) {
    group_attention(q, (const void *const *)key_blocks, (const void *const *)value_blocks, 0, first_position,
                    end_position, shape, output, scratch, 0, isa);
    copy_state(shape, scratch, maxima, sums);
}

void energon_attention_partial_f16(const float *q, const uint16_t *const *key_blocks,
                                   const uint16_t *const *value_blocks, int64_t first_position, int64_t end_position,
                                   const energon_attention_shape *shape, float *output, float *maxima, float *sums,
                                   float *scratch, energon_isa isa) {
    group_attention(q, (const void *const *)key_blocks, (const void *const *)value_blocks, 1, first_position,
                    end_position, shape, output, scratch, 0, isa);
    copy_state(shape, scratch, maxima, sums);
}
