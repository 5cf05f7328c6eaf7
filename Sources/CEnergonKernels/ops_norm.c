// RMSNorm, LayerNorm and the f32 dot product.
//
// Sums use several independent vector accumulators: it hides the FMA latency and, as a side
// effect, is a pairwise-like summation that keeps f32 rounding error far below 1e-6 relative
// for rows of tens of thousands of elements.
#include "energon_ops.h"
#include "ops_math.h"

#if defined(__x86_64__)
ENERGON_AVX512 static float dot_avx512(const float *a, const float *b, size_t count) {
    __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
    __m512 sum2 = _mm512_setzero_ps(), sum3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= count; i += 64) {
        sum0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), sum0);
        sum1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), sum1);
        sum2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), sum2);
        sum3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), sum3);
    }
    for (; i + 16 <= count; i += 16) sum0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), sum0);
    if (i < count) {
        __mmask16 mask = energon_tail_mask16(count - i);
        sum1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i), sum1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(sum0, sum1), _mm512_add_ps(sum2, sum3)));
}

ENERGON_AVX2 static float dot_avx2(const float *a, const float *b, size_t count) {
    __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
    __m256 sum2 = _mm256_setzero_ps(), sum3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= count; i += 32) {
        sum0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), sum0);
        sum1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), sum1);
        sum2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), sum2);
        sum3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), sum3);
    }
    for (; i + 8 <= count; i += 8) sum0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), sum0);
    if (i < count) {
        __m256i mask = energon_tail_mask8(count - i);
        sum1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, mask), _mm256_maskload_ps(b + i, mask), sum1);
    }
    return energon_hsum256(_mm256_add_ps(_mm256_add_ps(sum0, sum1), _mm256_add_ps(sum2, sum3)));
}
#endif

static float dot_portable(const float *a, const float *b, size_t count) {
    float sum[8] = {0};
    size_t i = 0;
    for (; i + 8 <= count; i += 8)
        for (int lane = 0; lane < 8; lane++) sum[lane] += a[i + lane] * b[i + lane];
    for (; i < count; i++) sum[0] += a[i] * b[i];
    return ((sum[0] + sum[1]) + (sum[2] + sum[3])) + ((sum[4] + sum[5]) + (sum[6] + sum[7]));
}

float energon_dot_f32(const float *a, const float *b, size_t count, energon_isa isa) {
#if defined(__x86_64__)
    if (isa >= ENERGON_ISA_AVX512) return dot_avx512(a, b, count);
    if (isa >= ENERGON_ISA_AVX2) return dot_avx2(a, b, count);
#endif
    (void)isa;
    return dot_portable(a, b, count);
}

// ---------------------------------------------------------------------------------------------
// y = x * factor * (weight + offset): the scaling pass shared by RMSNorm (after the dot product
// gives sum(x^2)).

#if defined(__x86_64__)
ENERGON_AVX512 static void scale_weight_avx512(const float *x, const float *weight, float *y, size_t count,
                                               float factor, float offset) {
    __m512 f = _mm512_set1_ps(factor), o = _mm512_set1_ps(offset);
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512 w = _mm512_add_ps(_mm512_loadu_ps(weight + i), o);
        _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), f), w));
    }
    if (i < count) {
        __mmask16 mask = energon_tail_mask16(count - i);
        __m512 w = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, weight + i), o);
        _mm512_mask_storeu_ps(y + i, mask, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + i), f), w));
    }
}

ENERGON_AVX2 static void scale_weight_avx2(const float *x, const float *weight, float *y, size_t count,
                                           float factor, float offset) {
    __m256 f = _mm256_set1_ps(factor), o = _mm256_set1_ps(offset);
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 w = _mm256_add_ps(_mm256_loadu_ps(weight + i), o);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), f), w));
    }
    if (i < count) {
        __m256i mask = energon_tail_mask8(count - i);
        __m256 w = _mm256_add_ps(_mm256_maskload_ps(weight + i, mask), o);
        _mm256_maskstore_ps(y + i, mask, _mm256_mul_ps(_mm256_mul_ps(_mm256_maskload_ps(x + i, mask), f), w));
    }
}
#endif

void energon_rmsnorm_f32(const float *x, const float *weight, float *y, size_t count, float epsilon,
                         float weight_offset, energon_isa isa) {
    if (count == 0) return;
    float mean_square = energon_dot_f32(x, x, count, isa) / (float)count;
    float factor = 1.0f / sqrtf(mean_square + epsilon);
#if defined(__x86_64__)
    if (isa >= ENERGON_ISA_AVX512) { scale_weight_avx512(x, weight, y, count, factor, weight_offset); return; }
    if (isa >= ENERGON_ISA_AVX2) { scale_weight_avx2(x, weight, y, count, factor, weight_offset); return; }
#endif
    for (size_t i = 0; i < count; i++) y[i] = x[i] * factor * (weight[i] + weight_offset);
}

// LayerNorm is two-pass (mean, then the mean of squared deviations) so a large mean does not
// cancel the variance, and sums in f64: a row of 70 000 values near 100 would otherwise lose
// the mean's low digits, which the subtraction then magnifies. It runs once per token on small
// rows, so plain C is enough (the compiler vectorises these loops at the baseline level).
void energon_layernorm_f32(const float *x, const float *weight, const float *bias, float *y, size_t count,
                           float epsilon, energon_isa isa) {
    (void)isa;
    if (count == 0) return;
    double partial[4] = {0};
    size_t i = 0;
    for (; i + 4 <= count; i += 4)
        for (int lane = 0; lane < 4; lane++) partial[lane] += x[i + lane];
    for (; i < count; i++) partial[0] += x[i];
    double mean = ((partial[0] + partial[1]) + (partial[2] + partial[3])) / (double)count;
    double squares[4] = {0};
    for (i = 0; i + 4 <= count; i += 4)
        for (int lane = 0; lane < 4; lane++) {
            double d = x[i + lane] - mean;
            squares[lane] += d * d;
        }
    for (; i < count; i++) squares[0] += (x[i] - mean) * (x[i] - mean);
    double variance = ((squares[0] + squares[1]) + (squares[2] + squares[3])) / (double)count;
    float factor = (float)(1.0 / sqrt(variance + epsilon));
    float mean_f = (float)mean;
    if (bias) {
        for (i = 0; i < count; i++) y[i] = (x[i] - mean_f) * factor * weight[i] + bias[i];
    } else {
        for (i = 0; i < count; i++) y[i] = (x[i] - mean_f) * factor * weight[i];
    }
}
