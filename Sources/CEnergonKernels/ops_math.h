// Vector math shared by the ops*.c kernels: exp, sigmoid-style activations, erf-GELU and tail
// masks, each as a scalar (portable), an AVX2+FMA and an AVX-512 inline function.
//
// Every level uses the same algorithm, so results differ between levels only by FMA contraction
// and rounding, never by approximation: the accuracy notes in energon_ops.h hold everywhere.
#ifndef ENERGON_OPS_MATH_H
#define ENERGON_OPS_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "energon_cpu.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define ENERGON_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define ENERGON_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

// exp range: above EXP_HIGH the result saturates (keeps 1/(1+exp(-x)) finite and exact enough),
// below EXP_LOW it is flushed to 0 (the true value is a denormal). Both keep 2^n a normal float.
#define ENERGON_EXP_HIGH 88.3f
#define ENERGON_EXP_LOW (-87.3f)
#define ENERGON_LOG2E 1.44269504088896341f
// ln 2 split so n * LN2_HIGH is exact for |n| < 2^9 (Cody-Waite reduction).
#define ENERGON_LN2_HIGH 0.693359375f
#define ENERGON_LN2_LOW (-2.12194440e-4f)
// Minimax coefficients of (exp(r) - 1 - r) / r^2 on |r| <= ln2/2 (Cephes expf).
#define ENERGON_EXP_P0 1.9875691500e-4f
#define ENERGON_EXP_P1 1.3981999507e-3f
#define ENERGON_EXP_P2 8.3334519073e-3f
#define ENERGON_EXP_P3 4.1665795894e-2f
#define ENERGON_EXP_P4 1.6666665459e-1f
#define ENERGON_EXP_P5 5.0000001201e-1f
// GELU tanh form: 0.5 x (1 + tanh(u)) == x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
#define ENERGON_GELU_TWO_SQRT_2_OVER_PI 1.5957691216057308f
#define ENERGON_GELU_CUBIC 0.044715f
#define ENERGON_SQRT_HALF 0.70710678118654752f
// erfc(z) ~ t exp(-z^2 + P(t)), t = 1 / (1 + z/2), z >= 0 (Chebyshev fit, fractional error < 1.2e-7).
#define ENERGON_ERFC_C0 (-1.26551223f)
#define ENERGON_ERFC_C1 1.00002368f
#define ENERGON_ERFC_C2 0.37409196f
#define ENERGON_ERFC_C3 0.09678418f
#define ENERGON_ERFC_C4 (-0.18628806f)
#define ENERGON_ERFC_C5 0.27886807f
#define ENERGON_ERFC_C6 (-1.13520398f)
#define ENERGON_ERFC_C7 1.48851587f
#define ENERGON_ERFC_C8 (-0.82215223f)
#define ENERGON_ERFC_C9 0.17087277f

// ---------------------------------------------------------------------------------------------
// Portable scalar versions (also the tails of nothing: the vector versions mask their tails).

static inline float energon_exp_scalar(float x) {
    if (x != x) return x;
    if (x < ENERGON_EXP_LOW) return 0.0f;
    if (x > ENERGON_EXP_HIGH) x = ENERGON_EXP_HIGH;
    float n = rintf(x * ENERGON_LOG2E);
    float r = x - n * ENERGON_LN2_HIGH;
    r = r - n * ENERGON_LN2_LOW;
    float p = ENERGON_EXP_P0;
    p = p * r + ENERGON_EXP_P1;
    p = p * r + ENERGON_EXP_P2;
    p = p * r + ENERGON_EXP_P3;
    p = p * r + ENERGON_EXP_P4;
    p = p * r + ENERGON_EXP_P5;
    float y = p * (r * r) + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float power;
    memcpy(&power, &bits, sizeof power);
    return y * power;
}

static inline float energon_silu_scalar(float x) { return x / (1.0f + energon_exp_scalar(-x)); }

static inline float energon_gelu_tanh_scalar(float x) {
    float u = ENERGON_GELU_TWO_SQRT_2_OVER_PI * (x + ENERGON_GELU_CUBIC * x * x * x);
    return x / (1.0f + energon_exp_scalar(-u));
}

static inline float energon_gelu_erf_scalar(float x) {
    float z = fabsf(x) * ENERGON_SQRT_HALF;
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = ENERGON_ERFC_C9;
    p = p * t + ENERGON_ERFC_C8;
    p = p * t + ENERGON_ERFC_C7;
    p = p * t + ENERGON_ERFC_C6;
    p = p * t + ENERGON_ERFC_C5;
    p = p * t + ENERGON_ERFC_C4;
    p = p * t + ENERGON_ERFC_C3;
    p = p * t + ENERGON_ERFC_C2;
    p = p * t + ENERGON_ERFC_C1;
    p = p * t + ENERGON_ERFC_C0;
    float half_erfc = 0.5f * t * energon_exp_scalar(p - z * z);
    // Phi(x) = 1 - erfc/2 for x >= 0 and erfc/2 for x < 0: no cancellation on the negative side.
    return x * (x >= 0.0f ? 1.0f - half_erfc : half_erfc);
}

/// tanh(y) = sign(y) (1 - e) / (1 + e), e = exp(-2|y|): absolute error ~1e-7, never overflows.
static inline float energon_tanh_scalar(float y) {
    float e = energon_exp_scalar(-2.0f * fabsf(y));
    float magnitude = (1.0f - e) / (1.0f + e);
    return y < 0.0f ? -magnitude : magnitude;
}

#if defined(__x86_64__)
// ---------------------------------------------------------------------------------------------
// AVX-512

ENERGON_AVX512 static inline __mmask16 energon_tail_mask16(size_t remaining) {
    return remaining >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << remaining) - 1u);
}

ENERGON_AVX512 static inline __m512 energon_exp512(__m512 x) {
    __mmask16 underflow = _mm512_cmp_ps_mask(x, _mm512_set1_ps(ENERGON_EXP_LOW), _CMP_LT_OQ);
    // Constant first: min/max return the second operand when one is NaN, so NaN propagates.
    x = _mm512_min_ps(_mm512_set1_ps(ENERGON_EXP_HIGH), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(ENERGON_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(ENERGON_LN2_HIGH), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(ENERGON_LN2_LOW), r);
    __m512 p = _mm512_set1_ps(ENERGON_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ENERGON_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ENERGON_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ENERGON_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ENERGON_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(ENERGON_EXP_P5));
    __m512 y = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    // n is in [-126, 127] for non-flushed inputs, so (n + 127) << 23 is a normal 2^n.
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    __m512 result = _mm512_mul_ps(y, _mm512_castsi512_ps(bits));
    return _mm512_mask_mov_ps(result, underflow, _mm512_setzero_ps());
}

ENERGON_AVX512 static inline __m512 energon_silu512(__m512 x) {
    __m512 e = energon_exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

ENERGON_AVX512 static inline __m512 energon_gelu_tanh512(__m512 x) {
    __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    __m512 inner = _mm512_fmadd_ps(x3, _mm512_set1_ps(ENERGON_GELU_CUBIC), x);
    __m512 minus_u = _mm512_mul_ps(inner, _mm512_set1_ps(-ENERGON_GELU_TWO_SQRT_2_OVER_PI));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), energon_exp512(minus_u)));
}

ENERGON_AVX512 static inline __m512 energon_gelu_erf512(__m512 x) {
    __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(ENERGON_SQRT_HALF));
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), one));
    __m512 p = _mm512_set1_ps(ENERGON_ERFC_C9);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(ENERGON_ERFC_C8));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(ENERGON_ERFC_C7));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(ENERGON_ERFC_C6));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(ENERGON_ERFC_C5));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(ENERGON_ERFC_C4));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(ENERGON_ERFC_C3));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(ENERGON_ERFC_C2));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(ENERGON_ERFC_C1));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(ENERGON_ERFC_C0));
    __m512 half_erfc = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), t),
                                     energon_exp512(_mm512_fnmadd_ps(z, z, p)));
    __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 phi = _mm512_mask_mov_ps(_mm512_sub_ps(one, half_erfc), negative, half_erfc);
    return _mm512_mul_ps(x, phi);
}

ENERGON_AVX512 static inline __m512 energon_tanh512(__m512 y) {
    __m512 magnitude_in = _mm512_abs_ps(y);
    __m512 e = energon_exp512(_mm512_mul_ps(magnitude_in, _mm512_set1_ps(-2.0f)));
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 magnitude = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
    // Copy y's sign bit onto the magnitude.
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(y), _mm512_set1_epi32((int)0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(magnitude), sign));
}

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA

ENERGON_AVX2 static inline __m256i energon_tail_mask8(size_t remaining) {
    int count = remaining >= 8 ? 8 : (int)remaining;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

ENERGON_AVX2 static inline __m256 energon_exp256(__m256 x) {
    __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(ENERGON_EXP_LOW), _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_set1_ps(ENERGON_EXP_HIGH), x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(ENERGON_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ENERGON_LN2_HIGH), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ENERGON_LN2_LOW), r);
    __m256 p = _mm256_set1_ps(ENERGON_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ENERGON_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ENERGON_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ENERGON_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ENERGON_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ENERGON_EXP_P5));
    __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 result = _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
    return _mm256_andnot_ps(underflow, result);
}

ENERGON_AVX2 static inline __m256 energon_silu256(__m256 x) {
    __m256 e = energon_exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

ENERGON_AVX2 static inline __m256 energon_gelu_tanh256(__m256 x) {
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 inner = _mm256_fmadd_ps(x3, _mm256_set1_ps(ENERGON_GELU_CUBIC), x);
    __m256 minus_u = _mm256_mul_ps(inner, _mm256_set1_ps(-ENERGON_GELU_TWO_SQRT_2_OVER_PI));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), energon_exp256(minus_u)));
}

ENERGON_AVX2 static inline __m256 energon_abs256(__m256 x) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
}

ENERGON_AVX2 static inline __m256 energon_gelu_erf256(__m256 x) {
    __m256 z = _mm256_mul_ps(energon_abs256(x), _mm256_set1_ps(ENERGON_SQRT_HALF));
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), one));
    __m256 p = _mm256_set1_ps(ENERGON_ERFC_C9);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ENERGON_ERFC_C8));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ENERGON_ERFC_C7));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ENERGON_ERFC_C6));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ENERGON_ERFC_C5));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ENERGON_ERFC_C4));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ENERGON_ERFC_C3));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ENERGON_ERFC_C2));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ENERGON_ERFC_C1));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(ENERGON_ERFC_C0));
    __m256 half_erfc = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), t),
                                     energon_exp256(_mm256_fnmadd_ps(z, z, p)));
    __m256 negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 phi = _mm256_blendv_ps(_mm256_sub_ps(one, half_erfc), half_erfc, negative);
    return _mm256_mul_ps(x, phi);
}

ENERGON_AVX2 static inline __m256 energon_tanh256(__m256 y) {
    __m256 e = energon_exp256(_mm256_mul_ps(energon_abs256(y), _mm256_set1_ps(-2.0f)));
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 magnitude = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
    __m256 sign = _mm256_and_ps(y, _mm256_set1_ps(-0.0f));
    return _mm256_or_ps(magnitude, sign);
}

ENERGON_AVX2 static inline float energon_hsum256(__m256 v) {
    __m128 low = _mm256_castps256_ps128(v);
    __m128 high = _mm256_extractf128_ps(v, 1);
    low = _mm_add_ps(low, high);
    low = _mm_add_ps(low, _mm_movehl_ps(low, low));
    low = _mm_add_ss(low, _mm_movehdup_ps(low));
    return _mm_cvtss_f32(low);
}

ENERGON_AVX2 static inline float energon_hmax256(__m256 v) {
    __m128 low = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    low = _mm_max_ps(low, _mm_movehl_ps(low, low));
    low = _mm_max_ss(low, _mm_movehdup_ps(low));
    return _mm_cvtss_f32(low);
}
#endif  // __x86_64__

#endif
