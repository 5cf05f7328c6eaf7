// AVX-512 attention helpers that read an F16 KV cache directly: each key or value vector is
// loaded as 16 halves and widened in a register (F16C `vcvtph2ps`, exact) right before its FMAs,
// so half rows cost one narrower load and one conversion, with no copy through memory. Same
// loops, blocking and summation order as scores_rows_avx512 / accumulate_rows_avx512 (whose f32
// results on the widened rows these reproduce bit for bit). Included by ops_attention.c inside
// its x86-64 section, after the f32 AVX-512 helpers.

ENERGON_AVX512 static inline __m512 half_load16_avx512(const uint16_t *source) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)source));
}
ENERGON_AVX512 static inline __m512 half_maskz_load16_avx512(__mmask16 mask, const uint16_t *source) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, source));
}

ENERGON_AVX512 static inline float dot_half_avx512(const float *a, const uint16_t *b, int64_t count) {
    __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= count; i += 32) {
        sum0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), half_load16_avx512(b + i), sum0);
        sum1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), half_load16_avx512(b + i + 16), sum1);
    }
    for (; i < count; i += 16) {
        __mmask16 mask = energon_tail_mask16((size_t)(count - i));
        sum0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + i), half_maskz_load16_avx512(mask, b + i), sum0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1));
}

// Up to three query rows against eight half keys at a time (as scores_rows_avx512).
ENERGON_AVX512 static inline __attribute__((always_inline)) void scores_rows_half_avx512(
    int rows, const float *const q[3], const uint16_t *const *keys, int64_t count, int64_t dimension, float scale,
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
                    __m512 key = half_load16_avx512(keys[j + k] + d);
                    for (int r = 0; r < rows; r++) acc[r][k] = _mm512_fmadd_ps(query[r], key, acc[r][k]);
                }
            }
        } else {
            for (int64_t d = 0; d < dimension; d += 16) {
                __mmask16 mask = energon_tail_mask16((size_t)(dimension - d));
                __m512 query[3];
                for (int r = 0; r < rows; r++) query[r] = _mm512_maskz_loadu_ps(mask, q[r] + d);
                for (int k = 0; k < 8; k++) {
                    __m512 key = half_maskz_load16_avx512(mask, keys[j + k] + d);
                    for (int r = 0; r < rows; r++) acc[r][k] = _mm512_fmadd_ps(query[r], key, acc[r][k]);
                }
            }
        }
        for (int r = 0; r < rows; r++) _mm256_storeu_ps(out[r] + j, _mm256_mul_ps(transpose_sum8(acc[r]), factor));
    }
    for (; j < count; j++)
        for (int r = 0; r < rows; r++) out[r][j] = dot_half_avx512(q[r], keys[j], dimension) * scale;
}

// Up to three output rows from the same half values, 64 columns at a time in registers.
ENERGON_AVX512 static inline __attribute__((always_inline)) void accumulate_rows_half_avx512(
    int rows, float *const out[3], const float *const weights[3], const uint16_t *const *values, int64_t count,
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
            const uint16_t *value = values[j] + d;
            for (int part = 0; part < 4; part++) {
                __m512 v = half_maskz_load16_avx512(mask[part], value + 16 * part);
                for (int r = 0; r < rows; r++) acc[r][part] = _mm512_fmadd_ps(weight[r], v, acc[r][part]);
            }
        }
        for (int part = 0; part < 4; part++)
            for (int r = 0; r < rows; r++) _mm512_mask_storeu_ps(out[r] + d + 16 * part, mask[part], acc[r][part]);
    }
}

ENERGON_AVX512 static void scores_half_avx512(const float *q0, const uint16_t *const *keys, int64_t count,
                                              int64_t dimension, float scale, float *out0) {
    const float *q[3] = {q0, q0, q0};
    float *out[3] = {out0, out0, out0};
    scores_rows_half_avx512(1, q, keys, count, dimension, scale, out);
}
ENERGON_AVX512 static void scores_pair_half_avx512(const float *q0, const float *q1, const uint16_t *const *keys,
                                                   int64_t count, int64_t dimension, float scale, float *out0,
                                                   float *out1) {
    const float *q[3] = {q0, q1, q1};
    float *out[3] = {out0, out1, out1};
    scores_rows_half_avx512(2, q, keys, count, dimension, scale, out);
}
ENERGON_AVX512 static void scores_triple_half_avx512(const float *q0, const float *q1, const float *q2,
                                                     const uint16_t *const *keys, int64_t count, int64_t dimension,
                                                     float scale, float *out0, float *out1, float *out2) {
    const float *q[3] = {q0, q1, q2};
    float *out[3] = {out0, out1, out2};
    scores_rows_half_avx512(3, q, keys, count, dimension, scale, out);
}
ENERGON_AVX512 static void accumulate_half_avx512(float *out0, const float *weights0, const uint16_t *const *values,
                                                  int64_t count, int64_t dimension) {
    float *out[3] = {out0, out0, out0};
    const float *weights[3] = {weights0, weights0, weights0};
    accumulate_rows_half_avx512(1, out, weights, values, count, dimension);
}
ENERGON_AVX512 static void accumulate_pair_half_avx512(float *out0, float *out1, const float *weights0,
                                                       const float *weights1, const uint16_t *const *values,
                                                       int64_t count, int64_t dimension) {
    float *out[3] = {out0, out1, out1};
    const float *weights[3] = {weights0, weights1, weights1};
    accumulate_rows_half_avx512(2, out, weights, values, count, dimension);
}
ENERGON_AVX512 static void accumulate_triple_half_avx512(float *out0, float *out1, float *out2, const float *weights0,
                                                         const float *weights1, const float *weights2,
                                                         const uint16_t *const *values, int64_t count,
                                                         int64_t dimension) {
    float *out[3] = {out0, out1, out2};
    const float *weights[3] = {weights0, weights1, weights2};
    accumulate_rows_half_avx512(3, out, weights, values, count, dimension);
}
