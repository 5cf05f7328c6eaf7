// Matrix products of f32 activations [tokens, in] with weights [out, in] in every supported
// weight format (F32, F16, BF16 and ggml's block-quantized formats).
//
// Quantized weights work on integer dot products: the activation rows are quantized once per call
// into the "A32" layout below (int8 values with one f32 scale per 32 inputs, plus block sums), and
// every weight format is expanded on the fly into unsigned 8-bit values u with a per-16-or-32
// (scale, offset) pair such that weight = scale * u + offset. Then
//     sum_i w_i x_i  ~=  sum_blocks  scale * dx * sum(u * qx)  +  offset * dx * sum(qx)
// where the first sum is an exact int32 dot product (vpdpbusd / pmaddubsw / plain C).
#ifndef ENERGON_MATMUL_H
#define ENERGON_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Whether `dtype` (a ggml type id) is supported as a weight format.
int energon_matmul_supports(uint32_t dtype);

/// Whether weights of `dtype` need quantized activations (A32 rows); 0 for F32/F16/BF16.
int energon_matmul_needs_quantized_input(uint32_t dtype);

/// Bytes of one quantized activation row of `in` inputs (a multiple of 64, so rows stay aligned).
/// Layout: int8 q[in]; float d[in/32]; float s32[in/32]; float s16[in/16], where s = d * sum(q).
size_t energon_matmul_quantized_row_bytes(size_t in);

/// Quantizes `rows` activation rows of `in` (a multiple of 32) floats each, stride `in`, into
/// A32 rows at `destination` with stride energon_matmul_quantized_row_bytes(in).
void energon_matmul_quantize_rows(int isa, const float *input, size_t in, size_t rows, void *destination);

/// One matrix product, described once and computed in pieces of output rows (one per thread).
typedef struct {
    int isa;                  ///< energon_isa level to run at
    uint32_t dtype;           ///< ggml type id of the weight
    const uint8_t *weight;    ///< row-major [out, in] weight data
    size_t row_bytes;         ///< bytes of one weight row
    size_t in;                ///< inputs per row
    const float *input;       ///< f32 activations [tokens, in] (used by F32/F16/BF16 weights)
    const uint8_t *quantized; ///< A32 activation rows [tokens] (used by quantized weights)
    size_t tokens;            ///< number of activation rows
    float *output;            ///< f32 output [tokens, output_stride]
    size_t output_stride;     ///< floats between consecutive tokens' outputs
} energon_matmul_job;

/// Per-thread scratch bytes energon_matmul_rows needs for this job (64-byte aligned).
size_t energon_matmul_scratch_bytes(const energon_matmul_job *job);

/// Output rows a thread's piece should be a multiple of (the tile height of the fast kernels).
size_t energon_matmul_row_grain(const energon_matmul_job *job);

/// Computes output[t, o] for every token t and every row o in [row_begin, row_end).
/// `scratch` holds energon_matmul_scratch_bytes(job) bytes private to the calling thread.
void energon_matmul_rows(const energon_matmul_job *job, size_t row_begin, size_t row_end, void *scratch);

/// Reads `bytes` bytes (a multiple of 256, 64-byte aligned) with the widest loads the level has
/// and returns a checksum, so the read cannot be optimised away. Used to measure read bandwidth.
double energon_read_bandwidth_pass(int isa, const void *data, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif
