// Non-matmul kernels: activations, normalisation, softmax and attention, each with an AVX-512,
// an AVX2+FMA and a portable version picked by the `isa` argument.
//
// Accuracy of the shared vector exp (all ISA levels, same algorithm): range reduction to
// x = n ln2 + r with |r| <= ln2/2 and a degree-7 minimax polynomial (the Cephes expf
// coefficients). Measured max relative error 1.2e-7 (about 1 ulp) on a 2M-point grid over
// [-87.3, 88.3], at every level.
// Outside that range: x > 88.3 saturates at exp(88.3) (about 2.1e38, so sigmoids of huge
// arguments stay finite) and x < -87.3 returns 0 (the true value is below FLT_MIN).
// The erf used by exact GELU is erfc(z) = t exp(-z^2 + P(t)), t = 1/(1 + z/2) (the Chebyshev
// fit of Numerical Recipes' erfcc, fractional error < 1.2e-7 in exact arithmetic).
// Measured against f64 libm on [-12, 12]: silu, gelu (tanh) and gelu (erf) are within 1.2e-6
// absolute (about 1 ulp of values near 12), and within 1.5e-6 relative wherever |result| > 1e-3.
#ifndef ENERGON_OPS_H
#define ENERGON_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "energon_cpu.h"

#ifdef __cplusplus
extern "C" {
#endif

/// y[i] = exp(x[i]) (see the accuracy note above). `y` may equal `x`.
void energon_exp_f32(const float *x, float *y, size_t count, energon_isa isa);

/// x[i] = x[i] * sigmoid(x[i]), in place.
void energon_silu_f32(float *x, size_t count, energon_isa isa);

/// x[i] = gelu(x[i]) in place; `use_erf` 0 = tanh approximation, 1 = exact (erf) form.
void energon_gelu_f32(float *x, size_t count, int use_erf, energon_isa isa);

/// output[i] = silu(gate[i]) * up[i]. `output` may equal `gate` or `up`.
void energon_swiglu_f32(const float *gate, const float *up, float *output, size_t count, energon_isa isa);

/// output[i] = gelu(gate[i]) * up[i]. `output` may equal `gate` or `up`.
void energon_geglu_f32(const float *gate, const float *up, float *output, size_t count, int use_erf,
                       energon_isa isa);

/// In-place softmax of one row of `count` floats.
void energon_softmax_f32(float *x, size_t count, energon_isa isa);

/// One row: y = x / sqrt(mean(x^2) + epsilon) * (weight + weight_offset). `y` may equal `x`.
void energon_rmsnorm_f32(const float *x, const float *weight, float *y, size_t count, float epsilon,
                         float weight_offset, energon_isa isa);

/// One row: y = (x - mean) / sqrt(var + epsilon) * weight + bias (`bias` may be NULL). `y` may equal `x`.
void energon_layernorm_f32(const float *x, const float *weight, const float *bias, float *y, size_t count,
                           float epsilon, energon_isa isa);

/// sum(a[i] * b[i]) accumulated in f32.
float energon_dot_f32(const float *a, const float *b, size_t count, energon_isa isa);

/// Keys processed per online-softmax step of the attention kernel.
#define ENERGON_ATTENTION_CHUNK 64

/// Shape of one attention call: one KV head and the query heads that share it.
typedef struct {
    int32_t head_dimension;   ///< floats per head
    int32_t group_heads;      ///< query heads that read this KV head (contiguous in q and output)
    int64_t row_stride;       ///< floats per cache row (kv heads * head dimension)
    int64_t head_offset;      ///< offset of this KV head inside a cache row
    int64_t block_size;       ///< positions per cache block
    float scale;              ///< multiplies q.k
    float softcap;            ///< > 0: scores become softcap * tanh(score / softcap)
} energon_attention_shape;

/// Most rows (query heads x tokens) one attention call takes.
#define ENERGON_ATTENTION_MAX_ROWS 256

/// Floats of scratch one `energon_attention_f32` call needs (group_heads <= ENERGON_ATTENTION_MAX_ROWS).
size_t energon_attention_scratch_floats(int32_t group_heads);

/// Floats of scratch one `energon_attention_rows_f32` call needs.
size_t energon_attention_rows_scratch_floats(int32_t rows);

/// Attention of `rows` (<= ENERGON_ATTENTION_MAX_ROWS) query rows that read the same KV head
/// (`shape->head_offset`; `shape->group_heads` is ignored): row r is the head_dimension floats at
/// queries[r], sees keys firsts[r] ..< ends[r], and writes outputs[r]. Typically the heads of a
/// KV group for a few consecutive tokens, whose key ranges mostly overlap: the shared range is
/// computed for all rows together. With normalize == 0 outputs stay unnormalised (see
/// energon_attention_partial_f32).
void energon_attention_rows_f32(int32_t rows, const float *const *queries, float *const *outputs,
                                const int64_t *firsts, const int64_t *ends, const float *const *key_blocks,
                                const float *const *value_blocks, const energon_attention_shape *shape,
                                float *scratch, int normalize, energon_isa isa);

/// Attention of `group_heads` query heads (q: group_heads * head_dimension floats) over the keys
/// and values at positions first_position ..< end_position of a paged cache (position p lives in
/// row p % block_size of block p / block_size). Writes group_heads * head_dimension floats to
/// `output`. Online softmax in f32; an empty range writes zeros.
void energon_attention_f32(const float *q, const float *const *key_blocks, const float *const *value_blocks,
                           int64_t first_position, int64_t end_position, const energon_attention_shape *shape,
                           float *output, float *scratch, energon_isa isa);

/// Like `energon_attention_f32` over part of the key range (split-K): leaves each head's output
/// unnormalised and reports its running maximum and softmax denominator (`group_heads` floats
/// each), so that parts computed on different threads can be merged exactly.
void energon_attention_partial_f32(const float *q, const float *const *key_blocks, const float *const *value_blocks,
                                   int64_t first_position, int64_t end_position,
                                   const energon_attention_shape *shape, float *output, float *maxima, float *sums,
                                   float *scratch, energon_isa isa);

/// Floats of scratch one `energon_attention_rows_f16` or `energon_attention_partial_f16` call
/// needs: the f32 scratch plus room to widen one chunk of key and value head slices.
size_t energon_attention_rows_scratch_floats_f16(int32_t rows, int32_t head_dimension);

/// `energon_attention_rows_f32` over an F16 KV cache: the blocks hold IEEE half rows
/// (row_stride and head_offset count halves). Keys and values are widened to f32 exactly, so the
/// result is that of `energon_attention_rows_f32` on the widened cache up to summation order.
void energon_attention_rows_f16(int32_t rows, const float *const *queries, float *const *outputs,
                                const int64_t *firsts, const int64_t *ends, const uint16_t *const *key_blocks,
                                const uint16_t *const *value_blocks, const energon_attention_shape *shape,
                                float *scratch, int normalize, energon_isa isa);

/// `energon_attention_partial_f32` over an F16 KV cache (scratch:
/// `energon_attention_rows_scratch_floats_f16(group_heads, head_dimension)` floats).
void energon_attention_partial_f16(const float *q, const uint16_t *const *key_blocks,
                                   const uint16_t *const *value_blocks, int64_t first_position, int64_t end_position,
                                   const energon_attention_shape *shape, float *output, float *maxima, float *sums,
                                   float *scratch, energon_isa isa);

/// Merges `parts` partial results of `energon_attention_partial_f32` for the same queries:
/// partial_outputs is [parts, heads, head_dimension], maxima and sums are [parts, heads]; writes
/// the normalised [heads, head_dimension] output.
void energon_attention_merge_f32(const float *partial_outputs, const float *maxima, const float *sums,
                                 int32_t parts, int32_t heads, int32_t head_dimension, float *output);

#ifdef __cplusplus
}
#endif
#endif
