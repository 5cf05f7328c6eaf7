// Portable decoders and encoders for the GGUF block formats, plus the runtime dispatch.
//
// The arithmetic follows ggml's reference code operation by operation (same products, same
// order, no fused multiply-add) so every level returns the same bits as ggml and gguf-py.
#include "quants_internal.h"


// ---- Scalar half / bfloat16 conversions ---------------------------------------------------------

static inline uint32_t float_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float energon_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1Fu;
    uint32_t mantissa = h & 0x3FFu;
    if (exponent == 0x1F) {
        // Inf keeps a zero mantissa; a NaN keeps its payload and, like vcvtph2ps, comes back quiet.
        return bits_float(sign | 0x7F800000u | (mantissa << 13) | (mantissa ? 0x00400000u : 0));
    }
    if (exponent == 0) {
        if (mantissa == 0) return bits_float(sign);
        // Subnormal half: shift the mantissa up until its leading one reaches the implicit bit.
        uint32_t biased = 127 - 15 + 1;
        while (!(mantissa & 0x400u)) { mantissa <<= 1; biased--; }
        return bits_float(sign | (biased << 23) | ((mantissa & 0x3FFu) << 13));
    }
    return bits_float(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
}

uint16_t energon_float_to_half(float f) {
    uint32_t x = float_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t magnitude = x & 0x7FFFFFFFu;
    if (magnitude > 0x7F800000u) return sign | 0x7E00u | (uint16_t)((magnitude >> 13) & 0x3FFu);  // NaN, quiet
    if (magnitude >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds (to even) past 65504: inf
    if (magnitude < 0x38800000u) {
        // Result is a half subnormal (or zero): count units of 2^-24, rounding half to even.
        if (magnitude <= 0x33000000u) return sign;  // <= 2^-25: ties to the even zero
        uint32_t exponent = magnitude >> 23;
        uint32_t significand = (magnitude & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126 - exponent;  // 14...24
        uint32_t units = significand >> shift;
        uint32_t rest = significand & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (units & 1))) units++;
        return sign | (uint16_t)units;  // a carry into bit 10 is the smallest normal, as it should be
    }
    uint32_t rebased = (magnitude - ((uint32_t)(127 - 15) << 23)) >> 13;
    uint32_t rest = magnitude & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (rebased & 1))) rebased++;
    return sign | (uint16_t)rebased;
}

float energon_bf16_to_float(uint16_t h) { return bits_float((uint32_t)h << 16); }

uint16_t energon_float_to_bf16(float f) {
    uint32_t x = float_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 64);  // NaN: set the quiet bit
    return (uint16_t)((x + (0x7FFFu + ((x >> 16) & 1))) >> 16);
}

static inline float read_half(const uint16_t *p) { return energon_half_to_float(*p); }

// ---- Portable decoders -----------------------------------------------------------------------

static void dq_f32(const void *src, float *dst, int64_t n) { memmove(dst, src, (size_t)n * sizeof(float)); }

void energon_dq_f16_portable(const void *src, float *dst, int64_t n) {
    const uint8_t *bytes = (const uint8_t *)src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, bytes + 2 * i, 2);
        dst[i] = energon_half_to_float(h);
    }
}

void energon_dq_bf16_portable(const void *src, float *dst, int64_t n) {
    const uint8_t *bytes = (const uint8_t *)src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, bytes + 2 * i, 2);
        dst[i] = energon_bf16_to_float(h);
    }
}

void energon_dq_q4_0_portable(const void *src, float *dst, int64_t n) {
    const block_q4_0 *x = (const block_q4_0 *)src;
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const float d = read_half(&x[b].d);
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)((x[b].qs[j] & 0x0F) - 8) * d;
            dst[j + 16] = (float)((x[b].qs[j] >> 4) - 8) * d;
        }
    }
}

void energon_dq_q4_1_portable(const void *src, float *dst, int64_t n) {
    const block_q4_1 *x = (const block_q4_1 *)src;
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const float d = read_half(&x[b].d), m = read_half(&x[b].m);
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)(x[b].qs[j] & 0x0F) * d + m;
            dst[j + 16] = (float)(x[b].qs[j] >> 4) * d + m;
        }
    }
}

void energon_dq_q5_0_portable(const void *src, float *dst, int64_t n) {
    const block_q5_0 *x = (const block_q5_0 *)src;
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const float d = read_half(&x[b].d);
        uint32_t qh;
        memcpy(&qh, x[b].qh, 4);  // bit j is the fifth bit of element j
        for (int j = 0; j < 16; j++) {
            int low = (x[b].qs[j] & 0x0F) | (int)(((qh >> j) & 1) << 4);
            int high = (x[b].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
            dst[j] = (float)(low - 16) * d;
            dst[j + 16] = (float)(high - 16) * d;
        }
    }
}

static void dq_q5_1(const void *src, float *dst, int64_t n) {
    const block_q5_1 *x = (const block_q5_1 *)src;
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const float d = read_half(&x[b].d), m = read_half(&x[b].m);
        uint32_t qh;
        memcpy(&qh, x[b].qh, 4);
        for (int j = 0; j < 16; j++) {
            int low = (x[b].qs[j] & 0x0F) | (int)(((qh >> j) & 1) << 4);
            int high = (x[b].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
            dst[j] = (float)low * d + m;
            dst[j + 16] = (float)high * d + m;
        }
    }
}

void energon_dq_q8_0_portable(const void *src, float *dst, int64_t n) {
    const block_q8_0 *x = (const block_q8_0 *)src;
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const float d = read_half(&x[b].d);
        for (int j = 0; j < 32; j++) dst[j] = (float)x[b].qs[j] * d;
    }
}

static void dq_q8_1(const void *src, float *dst, int64_t n) {
    const block_q8_1 *x = (const block_q8_1 *)src;
    for (int64_t b = 0; b < n / ENERGON_QK; b++, dst += ENERGON_QK) {
        const float d = read_half(&x[b].d);  // `s` (d times the sum) is only for dot products
        for (int j = 0; j < 32; j++) dst[j] = (float)x[b].qs[j] * d;
    }
}

static void dq_q2_K(const void *src, float *dst, int64_t n) {
    const block_q2_K *x = (const block_q2_K *)src;
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++) {
        const float d = read_half(&x[b].d), dmin = read_half(&x[b].dmin);
        int scale_index = 0;
        // Two halves of 128; in each, four 2-bit planes of the same 32 bytes, 16 elements per scale.
        for (int half = 0; half < 2; half++) {
            const uint8_t *q = x[b].qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; part++) {
                    uint8_t sc = x[b].scales[scale_index++];
                    const float dl = d * (float)(sc & 0x0F), ml = dmin * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++) *dst++ = dl * (float)((q[16 * part + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

static void dq_q3_K(const void *src, float *dst, int64_t n) {
    const block_q3_K *x = (const block_q3_K *)src;
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++) {
        const float d = read_half(&x[b].d);
        // 16 six-bit scales: low 4 bits in bytes 0-7 (low nibble: scales 0-7, high: 8-15), top
        // 2 bits of scale k in bits 2*(k/4) of byte 8 + k%4. Stored with a +32 bias.
        int scales[16];
        for (int k = 0; k < 16; k++) {
            int low = k < 8 ? (x[b].scales[k] & 0x0F) : (x[b].scales[k - 8] >> 4);
            int high = (x[b].scales[8 + k % 4] >> (2 * (k / 4))) & 3;
            scales[k] = (low | (high << 4)) - 32;
        }
        // Element 128h + 32s + 16p + l: low 2 bits at shift 2s of qs[32h + 16p + l]; its third
        // bit is bit 4h + s of hmask[16p + l], and a clear bit means "subtract 4".
        for (int half = 0; half < 2; half++) {
            for (int shift = 0; shift < 4; shift++) {
                for (int part = 0; part < 2; part++, dst += 16) {
                    const float dl = d * (float)scales[8 * half + 2 * shift + part];
                    const uint8_t *q = x[b].qs + 32 * half + 16 * part, *hm = x[b].hmask + 16 * part;
                    for (int l = 0; l < 16; l++) {
                        int low = (q[l] >> (2 * shift)) & 3;
                        int high = (hm[l] >> (4 * half + shift)) & 1;
                        dst[l] = dl * (float)(low - (high ? 0 : 4));
                    }
                }
            }
        }
    }
}

void energon_dq_q4_K_portable(const void *src, float *dst, int64_t n) {
    const block_q4_K *x = (const block_q4_K *)src;
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++) {
        const float d = read_half(&x[b].d), dmin = read_half(&x[b].dmin);
        const uint8_t *q = x[b].qs;
        // Four chunks of 32 bytes: low nibbles are sub-block 2c, high nibbles sub-block 2c+1.
        for (int chunk = 0; chunk < 4; chunk++, q += 32) {
            uint8_t sc, m;
            energon_k_scale_min(2 * chunk, x[b].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            energon_k_scale_min(2 * chunk + 1, x[b].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) *dst++ = d1 * (float)(q[l] & 0x0F) - m1;
            for (int l = 0; l < 32; l++) *dst++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

static void dq_q5_K(const void *src, float *dst, int64_t n) {
    const block_q5_K *x = (const block_q5_K *)src;
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++) {
        const float d = read_half(&x[b].d), dmin = read_half(&x[b].dmin);
        const uint8_t *q = x[b].qs;
        for (int chunk = 0; chunk < 4; chunk++, q += 32) {
            uint8_t sc, m;
            energon_k_scale_min(2 * chunk, x[b].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            energon_k_scale_min(2 * chunk + 1, x[b].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            // The fifth bit of sub-block s sits in bit s of qh[l].
            for (int l = 0; l < 32; l++) {
                int value = (q[l] & 0x0F) | (((x[b].qh[l] >> (2 * chunk)) & 1) << 4);
                *dst++ = d1 * (float)value - m1;
            }
            for (int l = 0; l < 32; l++) {
                int value = (q[l] >> 4) | (((x[b].qh[l] >> (2 * chunk + 1)) & 1) << 4);
                *dst++ = d2 * (float)value - m2;
            }
        }
    }
}

void energon_dq_q6_K_portable(const void *src, float *dst, int64_t n) {
    const block_q6_K *x = (const block_q6_K *)src;
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++) {
        const float d = read_half(&x[b].d);
        // Two halves of 128 elements; element 32*k + l of a half takes nibble k/2 of
        // ql[l + 32*(k%2)] and bits 2k..2k+1 of qh[l]; 16 elements share one int8 scale.
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = x[b].ql + 64 * half, *qh = x[b].qh + 32 * half;
            const int8_t *sc = x[b].scales + 8 * half;
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                dst[l] = d * (float)sc[is + 0] * (float)q1;
                dst[l + 32] = d * (float)sc[is + 2] * (float)q2;
                dst[l + 64] = d * (float)sc[is + 4] * (float)q3;
                dst[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
            dst += 128;
        }
    }
}

static void dq_q8_K(const void *src, float *dst, int64_t n) {
    const block_q8_K *x = (const block_q8_K *)src;
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++, dst += ENERGON_QK_K) {
        const float d = x[b].d;
        for (int j = 0; j < ENERGON_QK_K; j++) dst[j] = d * (float)x[b].qs[j];
    }
}

// Plain integer and f64 tensors (GGUF allows them; token-type tables use them).
static void dq_i8(const void *src, float *dst, int64_t n) {
    const int8_t *x = (const int8_t *)src;
    for (int64_t i = 0; i < n; i++) dst[i] = (float)x[i];
}
#define DEFINE_WIDE_DECODER(name, type)                                  \
    static void name(const void *src, float *dst, int64_t n) {          \
        const uint8_t *bytes = (const uint8_t *)src;                     \
        for (int64_t i = 0; i < n; i++) {                                \
            type value;                                                  \
            memcpy(&value, bytes + (size_t)i * sizeof(type), sizeof(type)); \
            dst[i] = (float)value;                                       \
        }                                                                \
    }
DEFINE_WIDE_DECODER(dq_i16, int16_t)
DEFINE_WIDE_DECODER(dq_i32, int32_t)
DEFINE_WIDE_DECODER(dq_i64, int64_t)
DEFINE_WIDE_DECODER(dq_f64, double)


// ---- Dispatch ----------------------------------------------------------------------------------

static void q_f32(const float *src, void *dst, int64_t n) { memmove(dst, src, (size_t)n * sizeof(float)); }

/// Elements per block of `type`, or 0 for a type this file does not know.
static int64_t block_size(uint32_t type) {
    switch (type) {
    case ENERGON_TYPE_F32: case ENERGON_TYPE_F16: case ENERGON_TYPE_BF16: case ENERGON_TYPE_I8:
    case ENERGON_TYPE_I16: case ENERGON_TYPE_I32: case ENERGON_TYPE_I64: case ENERGON_TYPE_F64:
        return 1;
    case ENERGON_TYPE_Q4_0: case ENERGON_TYPE_Q4_1: case ENERGON_TYPE_Q5_0: case ENERGON_TYPE_Q5_1:
    case ENERGON_TYPE_Q8_0: case ENERGON_TYPE_Q8_1:
        return ENERGON_QK;
    case ENERGON_TYPE_Q2_K: case ENERGON_TYPE_Q3_K: case ENERGON_TYPE_Q4_K: case ENERGON_TYPE_Q5_K:
    case ENERGON_TYPE_Q6_K: case ENERGON_TYPE_Q8_K:
        return ENERGON_QK_K;
    default:
        return 0;
    }
}

/// The decoder of `type` at level `isa` (already clamped to the CPU), or NULL.
static energon_dequantize_fn decoder(uint32_t type, energon_isa isa) {
#if defined(__x86_64__)
    if (isa == ENERGON_ISA_AVX512) {
        switch (type) {
        case ENERGON_TYPE_F16: return energon_dq_f16_avx512;
        case ENERGON_TYPE_BF16: return energon_dq_bf16_avx512;
        case ENERGON_TYPE_Q4_0: return energon_dq_q4_0_avx512;
        case ENERGON_TYPE_Q4_1: return energon_dq_q4_1_avx512;
        case ENERGON_TYPE_Q5_0: return energon_dq_q5_0_avx512;
        case ENERGON_TYPE_Q8_0: return energon_dq_q8_0_avx512;
        case ENERGON_TYPE_Q4_K: return energon_dq_q4_K_avx512;
        case ENERGON_TYPE_Q6_K: return energon_dq_q6_K_avx512;
        case ENERGON_TYPE_Q5_1: return energon_dq_q5_1_avx512;
        case ENERGON_TYPE_Q2_K: return energon_dq_q2_K_avx512;
        case ENERGON_TYPE_Q3_K: return energon_dq_q3_K_avx512;
        case ENERGON_TYPE_Q5_K: return energon_dq_q5_K_avx512;
        default: break;
        }
    } else if (isa == ENERGON_ISA_AVX2) {
        switch (type) {
        case ENERGON_TYPE_F16: return energon_dq_f16_avx2;
        case ENERGON_TYPE_BF16: return energon_dq_bf16_avx2;
        case ENERGON_TYPE_Q4_0: return energon_dq_q4_0_avx2;
        case ENERGON_TYPE_Q4_1: return energon_dq_q4_1_avx2;
        case ENERGON_TYPE_Q5_0: return energon_dq_q5_0_avx2;
        case ENERGON_TYPE_Q8_0: return energon_dq_q8_0_avx2;
        case ENERGON_TYPE_Q4_K: return energon_dq_q4_K_avx2;
        case ENERGON_TYPE_Q6_K: return energon_dq_q6_K_avx2;
        case ENERGON_TYPE_Q5_1: return energon_dq_q5_1_avx2;
        case ENERGON_TYPE_Q2_K: return energon_dq_q2_K_avx2;
        case ENERGON_TYPE_Q3_K: return energon_dq_q3_K_avx2;
        case ENERGON_TYPE_Q5_K: return energon_dq_q5_K_avx2;
        default: break;
        }
    }
#else
    (void)isa;
#endif
    switch (type) {
    case ENERGON_TYPE_F32: return dq_f32;
    case ENERGON_TYPE_F16: return energon_dq_f16_portable;
    case ENERGON_TYPE_BF16: return energon_dq_bf16_portable;
    case ENERGON_TYPE_Q4_0: return energon_dq_q4_0_portable;
    case ENERGON_TYPE_Q4_1: return energon_dq_q4_1_portable;
    case ENERGON_TYPE_Q5_0: return energon_dq_q5_0_portable;
    case ENERGON_TYPE_Q5_1: return dq_q5_1;
    case ENERGON_TYPE_Q8_0: return energon_dq_q8_0_portable;
    case ENERGON_TYPE_Q8_1: return dq_q8_1;
    case ENERGON_TYPE_Q2_K: return dq_q2_K;
    case ENERGON_TYPE_Q3_K: return dq_q3_K;
    case ENERGON_TYPE_Q4_K: return energon_dq_q4_K_portable;
    case ENERGON_TYPE_Q5_K: return dq_q5_K;
    case ENERGON_TYPE_Q6_K: return energon_dq_q6_K_portable;
    case ENERGON_TYPE_Q8_K: return dq_q8_K;
    case ENERGON_TYPE_I8: return dq_i8;
    case ENERGON_TYPE_I16: return dq_i16;
    case ENERGON_TYPE_I32: return dq_i32;
    case ENERGON_TYPE_I64: return dq_i64;
    case ENERGON_TYPE_F64: return dq_f64;
    default: return NULL;
    }
}

/// The encoder of `type` at level `isa` (already clamped to the CPU), or NULL. Only the bulk
/// F16/BF16 conversions have vector versions; the block encoders run once per weight at most
/// (activation quantization for matmuls lives with the matmul kernels).
static energon_quantize_fn encoder(uint32_t type, energon_isa isa) {
#if defined(__x86_64__)
    if (isa == ENERGON_ISA_AVX512) {
        if (type == ENERGON_TYPE_F16) return energon_q_f16_avx512;
        if (type == ENERGON_TYPE_BF16) return energon_q_bf16_avx512;
    } else if (isa == ENERGON_ISA_AVX2) {
        if (type == ENERGON_TYPE_F16) return energon_q_f16_avx2;
        if (type == ENERGON_TYPE_BF16) return energon_q_bf16_avx2;
    }
#else
    (void)isa;
#endif
    switch (type) {
    case ENERGON_TYPE_F32: return q_f32;
    case ENERGON_TYPE_F16: return energon_q_f16_portable;
    case ENERGON_TYPE_BF16: return energon_q_bf16_portable;
    case ENERGON_TYPE_Q4_0: return energon_q_q4_0_portable;
    case ENERGON_TYPE_Q4_1: return energon_q_q4_1_portable;
    case ENERGON_TYPE_Q5_0: return energon_q_q5_0_portable;
    case ENERGON_TYPE_Q5_1: return energon_q_q5_1_portable;
    case ENERGON_TYPE_Q8_0: return energon_q_q8_0_portable;
    case ENERGON_TYPE_Q8_K: return energon_q_q8_K_portable;
    case ENERGON_TYPE_Q2_K: return energon_q_q2_K_portable;
    case ENERGON_TYPE_Q3_K: return energon_q_q3_K_portable;
    case ENERGON_TYPE_Q4_K: return energon_q_q4_K_portable;
    case ENERGON_TYPE_Q5_K: return energon_q_q5_K_portable;
    case ENERGON_TYPE_Q6_K: return energon_q_q6_K_portable;
    default: return NULL;
    }
}

static energon_isa clamp_isa(energon_isa isa) {
    energon_isa best = energon_cpu_best_isa();
    return isa > best ? best : isa;
}

int energon_can_dequantize(uint32_t type) { return decoder(type, ENERGON_ISA_PORTABLE) != NULL; }
int energon_can_quantize(uint32_t type) { return encoder(type, ENERGON_ISA_PORTABLE) != NULL; }

int energon_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n, energon_isa isa) {
    energon_dequantize_fn fn = decoder(type, clamp_isa(isa));
    int64_t block = block_size(type);
    if (!fn || block == 0 || n < 0 || n % block != 0) return -1;
    fn(src, dst, n);
    return 0;
}

int energon_quantize_row(uint32_t type, const float *src, void *dst, int64_t n, energon_isa isa) {
    energon_quantize_fn fn = encoder(type, clamp_isa(isa));
    int64_t block = block_size(type);
    if (!fn || block == 0 || n < 0 || n % block != 0) return -1;
    fn(src, dst, n);
    return 0;
}

// Per-format entry points at the best level, for callers that know their format statically.
#define DEFINE_BEST_DECODER(suffix, type)                                       \
    void energon_dequantize_row_##suffix(const void *src, float *dst, int64_t n) { \
        decoder(type, energon_cpu_best_isa())(src, dst, n);                      \
    }
DEFINE_BEST_DECODER(f32, ENERGON_TYPE_F32)
DEFINE_BEST_DECODER(f16, ENERGON_TYPE_F16)
DEFINE_BEST_DECODER(bf16, ENERGON_TYPE_BF16)
DEFINE_BEST_DECODER(q4_0, ENERGON_TYPE_Q4_0)
DEFINE_BEST_DECODER(q4_1, ENERGON_TYPE_Q4_1)
DEFINE_BEST_DECODER(q5_0, ENERGON_TYPE_Q5_0)
DEFINE_BEST_DECODER(q5_1, ENERGON_TYPE_Q5_1)
DEFINE_BEST_DECODER(q8_0, ENERGON_TYPE_Q8_0)
DEFINE_BEST_DECODER(q8_1, ENERGON_TYPE_Q8_1)
DEFINE_BEST_DECODER(q2_K, ENERGON_TYPE_Q2_K)
DEFINE_BEST_DECODER(q3_K, ENERGON_TYPE_Q3_K)
DEFINE_BEST_DECODER(q4_K, ENERGON_TYPE_Q4_K)
DEFINE_BEST_DECODER(q5_K, ENERGON_TYPE_Q5_K)
DEFINE_BEST_DECODER(q6_K, ENERGON_TYPE_Q6_K)
DEFINE_BEST_DECODER(q8_K, ENERGON_TYPE_Q8_K)

#define DEFINE_BEST_ENCODER(suffix, type)                                       \
    void energon_quantize_row_##suffix(const float *src, void *dst, int64_t n) { \
        encoder(type, energon_cpu_best_isa())(src, dst, n);                      \
    }
DEFINE_BEST_ENCODER(f16, ENERGON_TYPE_F16)
DEFINE_BEST_ENCODER(bf16, ENERGON_TYPE_BF16)
DEFINE_BEST_ENCODER(q4_0, ENERGON_TYPE_Q4_0)
DEFINE_BEST_ENCODER(q4_1, ENERGON_TYPE_Q4_1)
DEFINE_BEST_ENCODER(q5_0, ENERGON_TYPE_Q5_0)
DEFINE_BEST_ENCODER(q5_1, ENERGON_TYPE_Q5_1)
DEFINE_BEST_ENCODER(q8_0, ENERGON_TYPE_Q8_0)
DEFINE_BEST_ENCODER(q8_K, ENERGON_TYPE_Q8_K)
DEFINE_BEST_ENCODER(q2_K, ENERGON_TYPE_Q2_K)
DEFINE_BEST_ENCODER(q3_K, ENERGON_TYPE_Q3_K)
DEFINE_BEST_ENCODER(q4_K, ENERGON_TYPE_Q4_K)
DEFINE_BEST_ENCODER(q5_K, ENERGON_TYPE_Q5_K)
DEFINE_BEST_ENCODER(q6_K, ENERGON_TYPE_Q6_K)
