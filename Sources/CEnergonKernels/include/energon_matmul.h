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
    uint32_t dtype;           ///< ggml type id of the weight, | ENERGON_MATMUL_PACKED for packed weights
    const uint8_t *weight;    ///< row-major [out, in] weight data
    size_t row_bytes;         ///< bytes of one weight row (of the base format for packed weights)
    size_t rows;              ///< output rows of the weight (the packed layouts need it)
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

// ---------------------------------------------------------------------------------------------
// Packed weights: a layout made once at load time for faster decode.
//
// Groups of ENERGON_MATMUL_PACK_ROWS consecutive rows are interleaved block by block so that one
// 512-bit register holds 4 bytes of every row of the group (one row per int32 lane): the matvec
// then needs no horizontal sums and no per-row scalar scale work, and the weight is still read
// as one sequential stream. The last rows % 16 rows stay in the base format after the groups.
// A packed job sets `dtype` to (base type | ENERGON_MATMUL_PACKED) and `weight` to the packed
// bytes; `row_bytes` stays the base format's row size.

/// Flag on a job's dtype: the weight is in the packed layout of its base type.
#define ENERGON_MATMUL_PACKED 0x10000u
/// Rows per interleaved group of the packed layout.
#define ENERGON_MATMUL_PACK_ROWS 16

/// Whether weights of `dtype` (a base ggml type id) have a packed layout (Q4_0, Q4_1, Q5_0, Q8_0, Q4_K).
int energon_matmul_packable(uint32_t dtype);

/// Bytes of the packed form of a `[rows, in]` weight of `dtype` (0 if not packable or `in` is not
/// whole blocks).
size_t energon_matmul_packed_bytes(uint32_t dtype, size_t rows, size_t in);

/// Writes the packed form of the row-major `[rows, in]` weight at `weight` (rows of `row_bytes`)
/// to `destination` (energon_matmul_packed_bytes bytes, 64-byte aligned for the fastest loads).
void energon_matmul_pack(uint32_t dtype, const uint8_t *weight, size_t rows, size_t in, uint8_t *destination);

/// Writes rows [first, first + count) of a packed `[rows, in]` weight back in the base format
/// (row-major, rows of the base row size) to `destination`: the inverse of energon_matmul_pack.
void energon_matmul_unpack_rows(uint32_t dtype, const uint8_t *packed, size_t rows, size_t in, size_t first,
                                size_t count, uint8_t *destination);

/// Drops the resident pages wholly inside [data, data + bytes) when that range lies in a
/// file-backed mapping (they are re-read from the file if touched again), so a weight that was
/// copied into a packed form stops counting twice in the resident set. Anonymous memory is
/// left alone (dropping it would lose data). Returns the bytes released.
size_t energon_release_mapped_pages(const void *data, size_t bytes);

/// Reads `bytes` bytes (a multiple of 256, 64-byte aligned) with the widest loads the level has
/// and returns a checksum, so the read cannot be optimised away. Used to measure read bandwidth.
double energon_read_bandwidth_pass(int isa, const void *data, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif
