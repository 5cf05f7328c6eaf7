// Portable (plain C) matmul kernels, the block-format decoders every level shares, and the
// public entry points that dispatch to the level a job asks for.
#include "matmul_internal.h"

#include <math.h>

// ---------------------------------------------------------------------------------------------
// Format facts

int energon_matmul_supports(uint32_t dtype) {
    if (mm_is_packed(dtype)) return energon_matmul_packable(mm_packed_base(dtype));
    return mm_group_bytes(dtype) != 0;
}

int energon_matmul_needs_quantized_input(uint32_t dtype) {
    if (mm_is_packed(dtype)) return energon_matmul_supports(dtype);
    return energon_matmul_supports(dtype) && dtype != MM_F32 && dtype != MM_F16 && dtype != MM_BF16;
}

// ---------------------------------------------------------------------------------------------
// Block decoding into (unsigned value, per-16 scale, per-16 offset)

/// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block: the first four
/// sit in the low 6 bits of bytes 0..3 / 4..7; the last four take 4 bits from bytes 8..11 and
/// their top 2 bits from the unused high bits of bytes 0..7.
static inline void mm_k4_scale_min(const uint8_t *scales, int j, int *scale, int *min) {
    if (j < 4) {
        *scale = scales[j] & 63;
        *min = scales[j + 4] & 63;
    } else {
        *scale = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
        *min = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

/// The 6-bit scales of a Q3_K super-block (16 values, stored biased by 32): low 4 bits in bytes
/// 0..7 (two per byte, first eight in the low nibbles), high 2 bits in bytes 8..11.
static inline int mm_k3_scale(const uint8_t *scales, int j) {
    int low = j < 8 ? (scales[j] & 0xF) : (scales[j - 8] >> 4);
    int high = (scales[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
    return (low | (high << 4)) - 32;
}

void mm_expand_group(uint32_t dtype, const uint8_t *row, size_t group, uint8_t *u, float *scale, float *offset) {
    const uint8_t *block = row + group * mm_group_bytes(dtype);
    switch (dtype) {
    case MM_Q8_0: {
        // Signed int8 shifted by 128 so every level can use unsigned x signed byte products.
        float d = mm_half_to_float(mm_load_u16(block));
        for (int i = 0; i < 32; i++) u[i] = (uint8_t)((int8_t)block[2 + i] + 128);
        scale[0] = scale[1] = d;
        offset[0] = offset[1] = -128.0f * d;
        break;
    }
    case MM_Q4_0: case MM_Q4_1: {
        float d = mm_half_to_float(mm_load_u16(block));
        float m = dtype == MM_Q4_1 ? mm_half_to_float(mm_load_u16(block + 2)) : -8.0f * d;
        const uint8_t *qs = block + (dtype == MM_Q4_1 ? 4 : 2);
        // Byte j holds element j (low nibble) and element j + 16 (high nibble).
        for (int j = 0; j < 16; j++) {
            u[j] = qs[j] & 0xF;
            u[j + 16] = qs[j] >> 4;
        }
        scale[0] = scale[1] = d;
        offset[0] = offset[1] = m;
        break;
    }
    case MM_Q5_0: case MM_Q5_1: {
        float d = mm_half_to_float(mm_load_u16(block));
        float m = dtype == MM_Q5_1 ? mm_half_to_float(mm_load_u16(block + 2)) : -16.0f * d;
        const uint8_t *p = block + (dtype == MM_Q5_1 ? 4 : 2);
        uint32_t high = mm_load_u32(p);  // bit i is the fifth bit of element i
        const uint8_t *qs = p + 4;
        for (int j = 0; j < 16; j++) {
            u[j] = (uint8_t)((qs[j] & 0xF) | (((high >> j) & 1) << 4));
            u[j + 16] = (uint8_t)((qs[j] >> 4) | (((high >> (j + 16)) & 1) << 4));
        }
        scale[0] = scale[1] = d;
        offset[0] = offset[1] = m;
        break;
    }
    case MM_Q4_K: case MM_Q5_K: {
        float d = mm_half_to_float(mm_load_u16(block));
        float dmin = mm_half_to_float(mm_load_u16(block + 2));
        const uint8_t *scales = block + 4;
        const uint8_t *high = dtype == MM_Q5_K ? block + 16 : NULL;
        const uint8_t *qs = block + (dtype == MM_Q5_K ? 48 : 16);
        // Chunk c of 32 bytes holds sub-block 2c (low nibbles) and 2c + 1 (high nibbles).
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                uint8_t low = qs[32 * c + l] & 0xF, top = qs[32 * c + l] >> 4;
                if (high) {
                    low |= (uint8_t)(((high[l] >> (2 * c)) & 1) << 4);
                    top |= (uint8_t)(((high[l] >> (2 * c + 1)) & 1) << 4);
                }
                u[64 * c + l] = low;
                u[64 * c + 32 + l] = top;
            }
        }
        for (int j = 0; j < 8; j++) {
            int sc, mn;
            mm_k4_scale_min(scales, j, &sc, &mn);
            scale[2 * j] = scale[2 * j + 1] = d * (float)sc;
            offset[2 * j] = offset[2 * j + 1] = -dmin * (float)mn;
        }
        break;
    }
    case MM_Q6_K: {
        const uint8_t *ql = block, *qh = block + 128;
        const int8_t *scales = (const int8_t *)(block + 192);
        float d = mm_half_to_float(mm_load_u16(block + 208));
        // Half h: ql[64h..] low nibbles are elements 128h + 0..63, high nibbles 128h + 64..127;
        // qh[32h + l] holds the top 2 bits of elements 128h + 32s + l in bits 2s..2s+1.
        for (int h = 0; h < 2; h++) {
            for (int l = 0; l < 32; l++) {
                uint8_t bits = qh[32 * h + l];
                u[128 * h + l] = (uint8_t)((ql[64 * h + l] & 0xF) | ((bits & 3) << 4));
                u[128 * h + 32 + l] = (uint8_t)((ql[64 * h + 32 + l] & 0xF) | (((bits >> 2) & 3) << 4));
                u[128 * h + 64 + l] = (uint8_t)((ql[64 * h + l] >> 4) | (((bits >> 4) & 3) << 4));
                u[128 * h + 96 + l] = (uint8_t)((ql[64 * h + 32 + l] >> 4) | (((bits >> 6) & 3) << 4));
            }
        }
        for (int j = 0; j < 16; j++) {
            scale[j] = d * (float)scales[j];
            offset[j] = -32.0f * scale[j];
        }
        break;
    }
    case MM_Q2_K: {
        const uint8_t *scales = block, *qs = block + 16;
        float d = mm_half_to_float(mm_load_u16(block + 80));
        float dmin = mm_half_to_float(mm_load_u16(block + 82));
        // qs[32n + l] holds elements 128n + 32s + l in bits 2s..2s+1.
        for (int n = 0; n < 2; n++)
            for (int s = 0; s < 4; s++)
                for (int l = 0; l < 32; l++) u[128 * n + 32 * s + l] = (qs[32 * n + l] >> (2 * s)) & 3;
        for (int j = 0; j < 16; j++) {
            scale[j] = d * (float)(scales[j] & 0xF);
            offset[j] = -dmin * (float)(scales[j] >> 4);
        }
        break;
    }
    case MM_Q3_K: {
        const uint8_t *hmask = block, *qs = block + 32, *scales = block + 96;
        float d = mm_half_to_float(mm_load_u16(block + 108));
        // Low 2 bits like Q2_K; bit b of hmask[l] is the third bit of element 32b + l. The value
        // is (u - 4), i.e. the stored "high bit clear means subtract 4" rule.
        for (int n = 0; n < 2; n++)
            for (int s = 0; s < 4; s++)
                for (int l = 0; l < 32; l++) {
                    int element = 128 * n + 32 * s + l;
                    int third = (hmask[l] >> (4 * n + s)) & 1;
                    u[element] = (uint8_t)(((qs[32 * n + l] >> (2 * s)) & 3) | (third << 2));
                }
        for (int j = 0; j < 16; j++) {
            scale[j] = d * (float)mm_k3_scale(scales, j);
            offset[j] = -4.0f * scale[j];
        }
        break;
    }
    default:
        break;
    }
}

// ---------------------------------------------------------------------------------------------
// Activation quantization

size_t energon_matmul_quantized_row_bytes(size_t in) {
    size_t bytes = 2 * in + (in / 32) * 16;
    return (bytes + 63) & ~(size_t)63;
}

void mm_fill_split(uint8_t *row, size_t in) {
    size_t blocks = in / 32;
    uint8_t *split = row + in + blocks * 16;
    for (size_t quad = 0; quad + 4 <= blocks; quad += 4) {
        for (size_t b = 0; b < 4; b++) {
            memcpy(split + 32 * quad + 16 * b, row + 32 * (quad + b), 16);
            memcpy(split + 32 * quad + 64 + 16 * b, row + 32 * (quad + b) + 16, 16);
        }
    }
}

void mm_quantize_rows_portable(const float *input, size_t in, size_t rows, void *destination) {
    size_t stride = energon_matmul_quantized_row_bytes(in);
    size_t blocks = in / 32;
    for (size_t r = 0; r < rows; r++) {
        const float *x = input + r * in;
        uint8_t *row = (uint8_t *)destination + r * stride;
        int8_t *q = (int8_t *)row;
        float *d = (float *)(row + in), *s32 = d + blocks, *s16 = s32 + blocks;
        for (size_t b = 0; b < blocks; b++) {
            float amax = 0;
            for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[32 * b + i]));
            float scale = amax / 127.0f;
            float inverse = scale > 0 ? 1.0f / scale : 0.0f;
            int sums[2] = {0, 0};
            for (int i = 0; i < 32; i++) {
                int v = (int)nearbyintf(x[32 * b + i] * inverse);
                q[32 * b + i] = (int8_t)v;
                sums[i >> 4] += v;
            }
            d[b] = scale;
            s16[2 * b] = scale * (float)sums[0];
            s16[2 * b + 1] = scale * (float)sums[1];
            s32[b] = scale * (float)(sums[0] + sums[1]);
        }
        mm_fill_split(row, in);
    }
}

// ---------------------------------------------------------------------------------------------
// Portable rows kernel: expand each weight group once, then dot it with every token.

void mm_rows_portable(const energon_matmul_job *job, size_t row_begin, size_t row_end, void *scratch) {
    size_t in = job->in, tokens = job->tokens;
    float *accumulators = (float *)scratch;               // [tokens]
    float *values = accumulators + ((tokens + 15) & ~(size_t)15);  // [in] for float formats
    if (!energon_matmul_needs_quantized_input(job->dtype)) {
        for (size_t o = row_begin; o < row_end; o++) {
            const uint8_t *row = job->weight + o * job->row_bytes;
            for (size_t i = 0; i < in; i++) {
                if (job->dtype == MM_F32) memcpy(&values[i], row + 4 * i, 4);
                else if (job->dtype == MM_F16) values[i] = mm_half_to_float(mm_load_u16(row + 2 * i));
                else values[i] = mm_bf16_to_float(mm_load_u16(row + 2 * i));
            }
            for (size_t t = 0; t < tokens; t++) {
                const float *x = job->input + t * in;
                float sum = 0;
                for (size_t i = 0; i < in; i++) sum += values[i] * x[i];
                job->output[t * job->output_stride + o] = sum;
            }
        }
        return;
    }
    size_t group = mm_group_size(job->dtype), groups = in / group;
    size_t stride = energon_matmul_quantized_row_bytes(in);
    uint8_t u[256];
    float scale[16], offset[16];
    for (size_t o = row_begin; o < row_end; o++) {
        const uint8_t *row = job->weight + o * job->row_bytes;
        for (size_t t = 0; t < tokens; t++) accumulators[t] = 0;
        for (size_t g = 0; g < groups; g++) {
            mm_expand_group(job->dtype, row, g, u, scale, offset);
            for (size_t t = 0; t < tokens; t++) {
                mm_a32_row x = mm_a32_view(job->quantized + t * stride, in);
                size_t first = g * group;
                float sum = 0;
                for (size_t sub = 0; sub < group / 16; sub++) {
                    const int8_t *q = x.q + first + 16 * sub;
                    int dot = 0;
                    for (int i = 0; i < 16; i++) dot += (int)u[16 * sub + i] * (int)q[i];
                    size_t half = first / 16 + sub;
                    sum += scale[sub] * x.d[half / 2] * (float)dot + offset[sub] * x.s16[half];
                }
                accumulators[t] += sum;
            }
        }
        for (size_t t = 0; t < tokens; t++) job->output[t * job->output_stride + o] = accumulators[t];
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch

void energon_matmul_quantize_rows(int isa, const float *input, size_t in, size_t rows, void *destination) {
#if defined(__x86_64__)
    if (isa >= ENERGON_ISA_AVX512) { mm_quantize_rows_avx512(input, in, rows, destination); return; }
    if (isa >= ENERGON_ISA_AVX2) { mm_quantize_rows_avx2(input, in, rows, destination); return; }
#endif
    (void)isa;
    mm_quantize_rows_portable(input, in, rows, destination);
}

int mm_uses_gemm(const energon_matmul_job *job) {
#if defined(__x86_64__)
    size_t threshold = energon_matmul_needs_quantized_input(job->dtype) ? mm_gemm_min_tokens(job->dtype) : MM_FLOAT_GEMM_MIN_TOKENS;
    return job->isa >= ENERGON_ISA_AVX512 && job->tokens >= threshold;
#else
    (void)job;
    return 0;
#endif
}

size_t energon_matmul_scratch_bytes(const energon_matmul_job *job) {
    if (mm_is_packed(job->dtype)) return mm_packed_scratch_bytes(job);
    size_t bytes = 4 * (((job->tokens + 15) & ~(size_t)15) + job->in) + 256;
#if defined(__x86_64__)
    if (mm_uses_gemm(job)) {
        size_t gemm = mm_gemm_scratch_bytes_avx512(job);
        if (gemm > bytes) bytes = gemm;
    }
#endif
    return (bytes + 63) & ~(size_t)63;
}

size_t energon_matmul_row_grain(const energon_matmul_job *job) {
    if (mm_is_packed(job->dtype)) return ENERGON_MATMUL_PACK_ROWS;
    if (mm_uses_gemm(job)) {
        return energon_matmul_needs_quantized_input(job->dtype) ? MM_PANEL_ROWS : MM_FLOAT_PANEL_ROWS;
    }
    return 4;
}

void energon_matmul_rows(const energon_matmul_job *job, size_t row_begin, size_t row_end, void *scratch) {
    if (row_begin >= row_end || job->tokens == 0) return;
    if (mm_is_packed(job->dtype)) { mm_packed_rows(job, row_begin, row_end, scratch); return; }
#if defined(__x86_64__)
    if (mm_uses_gemm(job)) { mm_gemm_avx512(job, row_begin, row_end, scratch); return; }
    if (job->isa >= ENERGON_ISA_AVX512) { mm_rows_avx512(job, row_begin, row_end, scratch); return; }
    if (job->isa >= ENERGON_ISA_AVX2) { mm_rows_avx2(job, row_begin, row_end, scratch); return; }
#endif
    mm_rows_portable(job, row_begin, row_end, scratch);
}

double energon_read_bandwidth_pass(int isa, const void *data, size_t bytes) {
#if defined(__x86_64__)
    if (isa >= ENERGON_ISA_AVX512) return mm_read_pass_avx512(data, bytes);
    if (isa >= ENERGON_ISA_AVX2) return mm_read_pass_avx2(data, bytes);
#endif
    (void)isa;
    const uint64_t *words = (const uint64_t *)data;
    uint64_t sums[4] = {0, 0, 0, 0};
    for (size_t i = 0; i + 4 <= bytes / 8; i += 4) {
        sums[0] += words[i]; sums[1] += words[i + 1]; sums[2] += words[i + 2]; sums[3] += words[i + 3];
    }
    return (double)(sums[0] ^ sums[1] ^ sums[2] ^ sums[3]);
}
