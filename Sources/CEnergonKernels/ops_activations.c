// Element-wise activations and softmax (see energon_ops.h for the accuracy of exp/erf).
//
// Each kernel exists three times, generated from one vector function per level: full vectors in
// the main loop, then one masked vector for the tail (masked loads never fault on the lanes they
// skip, so no scalar tail is needed and short rows take one iteration).
#include "energon_ops.h"
#include "ops_math.h"

#if defined(__x86_64__)
#define ENERGON_DEFINE_UNARY_X86(NAME, F512, F256)                                                   \
    ENERGON_AVX512 static void NAME##_avx512(const float *x, float *y, size_t count) {              \
        size_t i = 0;                                                                                \
        for (; i + 16 <= count; i += 16) _mm512_storeu_ps(y + i, F512(_mm512_loadu_ps(x + i)));     \
        if (i < count) {                                                                             \
            __mmask16 mask = energon_tail_mask16(count - i);                                         \
            _mm512_mask_storeu_ps(y + i, mask, F512(_mm512_maskz_loadu_ps(mask, x + i)));            \
        }                                                                                            \
    }                                                                                                \
    ENERGON_AVX2 static void NAME##_avx2(const float *x, float *y, size_t count) {                  \
        size_t i = 0;                                                                                \
        for (; i + 8 <= count; i += 8) _mm256_storeu_ps(y + i, F256(_mm256_loadu_ps(x + i)));      \
        if (i < count) {                                                                             \
            __m256i mask = energon_tail_mask8(count - i);                                            \
            _mm256_maskstore_ps(y + i, mask, F256(_mm256_maskload_ps(x + i, mask)));                 \
        }                                                                                            \
    }

#define ENERGON_DEFINE_GATED_X86(NAME, F512, F256)                                                   \
    ENERGON_AVX512 static void NAME##_avx512(const float *gate, const float *up, float *y,          \
                                             size_t count) {                                         \
        size_t i = 0;                                                                                \
        for (; i + 16 <= count; i += 16)                                                             \
            _mm512_storeu_ps(y + i, _mm512_mul_ps(F512(_mm512_loadu_ps(gate + i)),                   \
                                                  _mm512_loadu_ps(up + i)));                         \
        if (i < count) {                                                                             \
            __mmask16 mask = energon_tail_mask16(count - i);                                         \
            __m512 g = F512(_mm512_maskz_loadu_ps(mask, gate + i));                                  \
            _mm512_mask_storeu_ps(y + i, mask, _mm512_mul_ps(g, _mm512_maskz_loadu_ps(mask, up + i))); \
        }                                                                                            \
    }                                                                                                \
    ENERGON_AVX2 static void NAME##_avx2(const float *gate, const float *up, float *y, size_t count) { \
        size_t i = 0;                                                                                \
        for (; i + 8 <= count; i += 8)                                                               \
            _mm256_storeu_ps(y + i, _mm256_mul_ps(F256(_mm256_loadu_ps(gate + i)),                   \
                                                  _mm256_loadu_ps(up + i)));                         \
        if (i < count) {                                                                             \
            __m256i mask = energon_tail_mask8(count - i);                                            \
            __m256 g = F256(_mm256_maskload_ps(gate + i, mask));                                     \
            _mm256_maskstore_ps(y + i, mask, _mm256_mul_ps(g, _mm256_maskload_ps(up + i, mask)));    \
        }                                                                                            \
    }
#else
#define ENERGON_DEFINE_UNARY_X86(NAME, F512, F256)
#define ENERGON_DEFINE_GATED_X86(NAME, F512, F256)
#endif

#define ENERGON_DEFINE_UNARY(NAME, F512, F256, FSCALAR)                                              \
    ENERGON_DEFINE_UNARY_X86(NAME, F512, F256)                                                       \
    static void NAME##_portable(const float *x, float *y, size_t count) {                            \
        for (size_t i = 0; i < count; i++) y[i] = FSCALAR(x[i]);                                     \
    }                                                                                                \
    static void NAME(const float *x, float *y, size_t count, energon_isa isa) {                      \
        ENERGON_DISPATCH(NAME, (x, y, count));                                                       \
    }

#define ENERGON_DEFINE_GATED(NAME, F512, F256, FSCALAR)                                              \
    ENERGON_DEFINE_GATED_X86(NAME, F512, F256)                                                       \
    static void NAME##_portable(const float *gate, const float *up, float *y, size_t count) {        \
        for (size_t i = 0; i < count; i++) y[i] = FSCALAR(gate[i]) * up[i];                          \
    }                                                                                                \
    static void NAME(const float *gate, const float *up, float *y, size_t count, energon_isa isa) {  \
        ENERGON_DISPATCH(NAME, (gate, up, y, count));                                                \
    }

#if defined(__x86_64__)
#define ENERGON_DISPATCH(NAME, ARGS)                                                                 \
    do {                                                                                             \
        if (isa >= ENERGON_ISA_AVX512) NAME##_avx512 ARGS;                                           \
        else if (isa >= ENERGON_ISA_AVX2) NAME##_avx2 ARGS;                                          \
        else NAME##_portable ARGS;                                                                   \
    } while (0)
#else
#define ENERGON_DISPATCH(NAME, ARGS) \
    do {                               \
        (void)isa;                     \
        NAME##_portable ARGS;          \
    } while (0)
#endif

ENERGON_DEFINE_UNARY(exp_map, energon_exp512, energon_exp256, energon_exp_scalar)
ENERGON_DEFINE_UNARY(silu_map, energon_silu512, energon_silu256, energon_silu_scalar)
ENERGON_DEFINE_UNARY(gelu_tanh_map, energon_gelu_tanh512, energon_gelu_tanh256, energon_gelu_tanh_scalar)
ENERGON_DEFINE_UNARY(gelu_erf_map, energon_gelu_erf512, energon_gelu_erf256, energon_gelu_erf_scalar)
ENERGON_DEFINE_GATED(swiglu_map, energon_silu512, energon_silu256, energon_silu_scalar)
ENERGON_DEFINE_GATED(geglu_tanh_map, energon_gelu_tanh512, energon_gelu_tanh256, energon_gelu_tanh_scalar)
ENERGON_DEFINE_GATED(geglu_erf_map, energon_gelu_erf512, energon_gelu_erf256, energon_gelu_erf_scalar)

void energon_exp_f32(const float *x, float *y, size_t count, energon_isa isa) { exp_map(x, y, count, isa); }

void energon_silu_f32(float *x, size_t count, energon_isa isa) { silu_map(x, x, count, isa); }

void energon_gelu_f32(float *x, size_t count, int use_erf, energon_isa isa) {
    if (use_erf) gelu_erf_map(x, x, count, isa);
    else gelu_tanh_map(x, x, count, isa);
}

void energon_swiglu_f32(const float *gate, const float *up, float *output, size_t count, energon_isa isa) {
    swiglu_map(gate, up, output, count, isa);
}

void energon_geglu_f32(const float *gate, const float *up, float *output, size_t count, int use_erf,
                       energon_isa isa) {
    if (use_erf) geglu_erf_map(gate, up, output, count, isa);
    else geglu_tanh_map(gate, up, output, count, isa);
}

// ---------------------------------------------------------------------------------------------
// Softmax: max, exp(x - max) with the running sum, then one multiply by 1/sum. Subtracting the
// max keeps every exp argument <= 0, so nothing overflows and the largest term is exactly 1.

#if defined(__x86_64__)
ENERGON_AVX512 static void softmax_avx512(float *x, size_t count) {
    __m512 maximum = _mm512_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 16 <= count; i += 16) maximum = _mm512_max_ps(maximum, _mm512_loadu_ps(x + i));
    if (i < count) {
        __mmask16 mask = energon_tail_mask16(count - i);
        maximum = _mm512_mask_max_ps(maximum, mask, maximum, _mm512_maskz_loadu_ps(mask, x + i));
    }
    __m512 shift = _mm512_set1_ps(_mm512_reduce_max_ps(maximum));
    __m512 sum = _mm512_setzero_ps();
    for (i = 0; i + 16 <= count; i += 16) {
        __m512 e = energon_exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), shift));
        sum = _mm512_add_ps(sum, e);
        _mm512_storeu_ps(x + i, e);
    }
    if (i < count) {
        __mmask16 mask = energon_tail_mask16(count - i);
        __m512 e = energon_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), shift));
        e = _mm512_maskz_mov_ps(mask, e);
        sum = _mm512_add_ps(sum, e);
        _mm512_mask_storeu_ps(x + i, mask, e);
    }
    __m512 inverse = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (i = 0; i + 16 <= count; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inverse));
    if (i < count) {
        __mmask16 mask = energon_tail_mask16(count - i);
        _mm512_mask_storeu_ps(x + i, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + i), inverse));
    }
}

ENERGON_AVX2 static void softmax_avx2(float *x, size_t count) {
    __m256 maximum = _mm256_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 8 <= count; i += 8) maximum = _mm256_max_ps(maximum, _mm256_loadu_ps(x + i));
    float shift_value = energon_hmax256(maximum);
    for (; i < count; i++) shift_value = x[i] > shift_value ? x[i] : shift_value;
    __m256 shift = _mm256_set1_ps(shift_value);
    __m256 sum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= count; i += 8) {
        __m256 e = energon_exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), shift));
        sum = _mm256_add_ps(sum, e);
        _mm256_storeu_ps(x + i, e);
    }
    if (i < count) {
        __m256i mask = energon_tail_mask8(count - i);
        __m256 e = energon_exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, mask), shift));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(mask));
        sum = _mm256_add_ps(sum, e);
        _mm256_maskstore_ps(x + i, mask, e);
    }
    __m256 inverse = _mm256_set1_ps(1.0f / energon_hsum256(sum));
    for (i = 0; i + 8 <= count; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inverse));
    if (i < count) {
        __m256i mask = energon_tail_mask8(count - i);
        _mm256_maskstore_ps(x + i, mask, _mm256_mul_ps(_mm256_maskload_ps(x + i, mask), inverse));
    }
}
#endif

static void softmax_portable(float *x, size_t count) {
    float maximum = -INFINITY;
    for (size_t i = 0; i < count; i++) maximum = x[i] > maximum ? x[i] : maximum;
    // Eight partial sums, like the vector versions' lanes: one running f32 sum would lose ~1e-5
    // relative over a 64k-entry vocabulary row.
    float partial[8] = {0};
    size_t i = 0;
    for (; i + 8 <= count; i += 8)
        for (int lane = 0; lane < 8; lane++) {
            x[i + lane] = energon_exp_scalar(x[i + lane] - maximum);
            partial[lane] += x[i + lane];
        }
    for (; i < count; i++) {
        x[i] = energon_exp_scalar(x[i] - maximum);
        partial[0] += x[i];
    }
    float sum = ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
                ((partial[4] + partial[5]) + (partial[6] + partial[7]));
    float inverse = 1.0f / sum;
    for (size_t i = 0; i < count; i++) x[i] *= inverse;
}

void energon_softmax_f32(float *x, size_t count, energon_isa isa) {
    if (count == 0) return;
    ENERGON_DISPATCH(softmax, (x, count));
}
