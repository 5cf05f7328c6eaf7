// Scaled dot-product attention over a paged KV cache, one (query token, KV head) per call; the
// Swift side spreads calls over threads. The loop itself is ops_attention_body.h, instantiated
// here for each ISA level on top of that level's small vector helpers.
#include "energon_ops.h"
#include "ops_math.h"

size_t energon_attention_scratch_floats(int32_t group_heads) {
    return (size_t)group_heads * (ENERGON_ATTENTION_CHUNK + 2);
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

#define ENERGON_ATTENTION_TARGET
#define ENERGON_ATTENTION_NAME(name) name##_portable
#include "ops_attention_body.h"
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
ENERGON_AVX512 static inline void axpy_avx512(float *y, float a, const float *x, int64_t count) {
    __m512 factor = _mm512_set1_ps(a);
    for (int64_t i = 0; i < count; i += 16) {
        __mmask16 mask = energon_tail_mask16((size_t)(count - i));
        __m512 result = _mm512_fmadd_ps(factor, _mm512_maskz_loadu_ps(mask, x + i), _mm512_maskz_loadu_ps(mask, y + i));
        _mm512_mask_storeu_ps(y + i, mask, result);
    }
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

#define ENERGON_ATTENTION_TARGET ENERGON_AVX512
#define ENERGON_ATTENTION_NAME(name) name##_avx512
#include "ops_attention_body.h"
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
ENERGON_AVX2 static inline void axpy_avx2(float *y, float a, const float *x, int64_t count) {
    __m256 factor = _mm256_set1_ps(a);
    for (int64_t i = 0; i < count; i += 8) {
        __m256i mask = energon_tail_mask8((size_t)(count - i));
        __m256 result = _mm256_fmadd_ps(factor, _mm256_maskload_ps(x + i, mask), _mm256_maskload_ps(y + i, mask));
        _mm256_maskstore_ps(y + i, mask, result);
    }
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

#define ENERGON_ATTENTION_TARGET ENERGON_AVX2
#define ENERGON_ATTENTION_NAME(name) name##_avx2
#include "ops_attention_body.h"
#undef ENERGON_ATTENTION_TARGET
#undef ENERGON_ATTENTION_NAME
#endif

void energon_attention_f32(const float *q, const float *const *key_blocks, const float *const *value_blocks,
                           int64_t first_position, int64_t end_position, const energon_attention_shape *shape,
                           float *output, float *scratch, energon_isa isa) {
#if defined(__x86_64__)
    if (isa >= ENERGON_ISA_AVX512) {
        attention_avx512(q, key_blocks, value_blocks, first_position, end_position, shape, output, scratch);
        return;
    }
    if (isa >= ENERGON_ISA_AVX2) {
        attention_avx2(q, key_blocks, value_blocks, first_position, end_position, shape, output, scratch);
        return;
    }
#endif
    (void)isa;
    attention_portable(q, key_blocks, value_blocks, first_position, end_position, shape, output, scratch);
}
