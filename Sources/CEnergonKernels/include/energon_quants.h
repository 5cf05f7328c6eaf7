// GGUF/ggml block formats: decode rows to f32 and encode f32 rows, bit-exact with ggml's
// reference code and the `gguf` Python package.
//
// Every `n` is an element count and must be a whole number of the format's blocks (32 for the
// legacy formats, 256 for the K-quants, 1 for F16/BF16/F32). Byte layouts are ggml's
// `block_*` structs, packed, little-endian.
#ifndef ENERGON_QUANTS_H
#define ENERGON_QUANTS_H

#include <stdint.h>
#include <stddef.h>

#include "energon_cpu.h"

#ifdef __cplusplus
extern "C" {
#endif

/// ggml type ids (`ggml_type`) of the formats this file handles.
enum {
    ENERGON_TYPE_F32 = 0,
    ENERGON_TYPE_F16 = 1,
    ENERGON_TYPE_Q4_0 = 2,
    ENERGON_TYPE_Q4_1 = 3,
    ENERGON_TYPE_Q5_0 = 6,
    ENERGON_TYPE_Q5_1 = 7,
    ENERGON_TYPE_Q8_0 = 8,
    ENERGON_TYPE_Q8_1 = 9,
    ENERGON_TYPE_Q2_K = 10,
    ENERGON_TYPE_Q3_K = 11,
    ENERGON_TYPE_Q4_K = 12,
    ENERGON_TYPE_Q5_K = 13,
    ENERGON_TYPE_Q6_K = 14,
    ENERGON_TYPE_Q8_K = 15,
    ENERGON_TYPE_I8 = 24,
    ENERGON_TYPE_I16 = 25,
    ENERGON_TYPE_I32 = 26,
    ENERGON_TYPE_I64 = 27,
    ENERGON_TYPE_F64 = 28,
    ENERGON_TYPE_BF16 = 30,
};

// ---- Generic entry points (runtime dispatch) -------------------------------------------------

/// Decodes `n` elements of ggml type `type` at `src` into `dst` using kernels of level `isa`
/// (clamped to what the CPU supports). Returns 0, or -1 for a type without a decoder or an `n`
/// that is not a whole number of blocks.
int energon_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n, energon_isa isa);

/// Encodes `n` floats as ggml type `type` (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_K,
/// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K), with the bytes of ggml's `quantize_row_*_ref`.
/// Returns 0, or -1 for a type without an encoder or a misaligned `n`.
int energon_quantize_row(uint32_t type, const float *src, void *dst, int64_t n, energon_isa isa);

/// Whether `energon_dequantize_row` / `energon_quantize_row` accept `type`.
int energon_can_dequantize(uint32_t type);
int energon_can_quantize(uint32_t type);

// ---- Per-format decoders at the CPU's best level ---------------------------------------------

void energon_dequantize_row_f32(const void *src, float *dst, int64_t n);
void energon_dequantize_row_f16(const void *src, float *dst, int64_t n);
void energon_dequantize_row_bf16(const void *src, float *dst, int64_t n);
void energon_dequantize_row_q4_0(const void *src, float *dst, int64_t n);
void energon_dequantize_row_q4_1(const void *src, float *dst, int64_t n);
void energon_dequantize_row_q5_0(const void *src, float *dst, int64_t n);
void energon_dequantize_row_q5_1(const void *src, float *dst, int64_t n);
void energon_dequantize_row_q8_0(const void *src, float *dst, int64_t n);
void energon_dequantize_row_q8_1(const void *src, float *dst, int64_t n);
void energon_dequantize_row_q2_K(const void *src, float *dst, int64_t n);
void energon_dequantize_row_q3_K(const void *src, float *dst, int64_t n);
void energon_dequantize_row_q4_K(const void *src, float *dst, int64_t n);
void energon_dequantize_row_q5_K(const void *src, float *dst, int64_t n);
void energon_dequantize_row_q6_K(const void *src, float *dst, int64_t n);
void energon_dequantize_row_q8_K(const void *src, float *dst, int64_t n);

// ---- Per-format encoders at the CPU's best level ---------------------------------------------

void energon_quantize_row_f16(const float *src, void *dst, int64_t n);
void energon_quantize_row_bf16(const float *src, void *dst, int64_t n);
void energon_quantize_row_q4_0(const float *src, void *dst, int64_t n);
void energon_quantize_row_q4_1(const float *src, void *dst, int64_t n);
void energon_quantize_row_q5_0(const float *src, void *dst, int64_t n);
void energon_quantize_row_q5_1(const float *src, void *dst, int64_t n);
void energon_quantize_row_q8_0(const float *src, void *dst, int64_t n);
void energon_quantize_row_q8_K(const float *src, void *dst, int64_t n);
void energon_quantize_row_q2_K(const float *src, void *dst, int64_t n);
void energon_quantize_row_q3_K(const float *src, void *dst, int64_t n);
void energon_quantize_row_q4_K(const float *src, void *dst, int64_t n);
void energon_quantize_row_q5_K(const float *src, void *dst, int64_t n);
void energon_quantize_row_q6_K(const float *src, void *dst, int64_t n);

// ---- Scalar conversions (portable, identical to the F16C/AVX-512 results) --------------------

/// IEEE half -> float; exact. A signalling NaN comes back quiet, as `vcvtph2ps` returns it.
float energon_half_to_float(uint16_t h);
/// float -> IEEE half, round to nearest even (as `vcvtps2ph` with imm 0 and numpy's astype).
uint16_t energon_float_to_half(float f);
/// bfloat16 -> float; exact.
float energon_bf16_to_float(uint16_t h);
/// float -> bfloat16, round to nearest even, NaN forced quiet (ggml_compute_fp32_to_bf16).
uint16_t energon_float_to_bf16(float f);

#ifdef __cplusplus
}
#endif
#endif
