// K-quant encoders (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K), producing the same bytes as ggml's
// `quantize_row_q*_K_ref`, which is what `llama-quantize` writes when no importance matrix is
// given. Those are searches over candidate scales scored in f32, so matching them bit for bit
// needs every product, sum and division in ggml's order and no fused multiply-add (see the
// FP_CONTRACT pragma in quants_internal.h); ggml's reference code is built without FMA.
//
// Shared vocabulary: a super-block of 256 values splits into sub-blocks (16 of 16 or 8 of 32);
// each sub-block gets a float scale (and for the "min" formats a float offset) from a fit,
// then those floats are themselves quantized to 4/6/8 bits against one f16 super-scale, and
// finally every value is re-coded against its *quantized* sub-block scale.
#include "quants_internal.h"

#include <math.h>

/// Groups whose largest magnitude is below this are treated as all zero (ggml's GROUP_MAX_EPS).
#define GROUP_EPSILON 1e-15f

/// Round half to even for |value| < 2^22 by letting the FPU round value + 1.5 * 2^23 (ggml's
/// `nearest_int`; the same bit trick keeps out-of-range values identical to ggml's too).
static inline int round_nearest(float value) {
    float shifted = value + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &shifted, 4);
    return (bits & 0x007FFFFF) - 0x00400000;
}

static inline int clamp_int(int value, int low, int high) { return value < low ? low : (value > high ? high : value); }

static inline void store_half(uint16_t *field, float value) {
    uint16_t h = energon_float_to_half(value);
    memcpy(field, &h, 2);
}

static inline float load_half(const uint16_t *field) {
    uint16_t h;
    memcpy(&h, field, 2);
    return energon_half_to_float(h);
}

/// Fits x ~ scale * code + offset with codes in 0...top and offset <= 0, minimising the
/// weighted squared (or, with `absolute_error`, absolute) error over `steps + 1` candidate
/// reciprocal scales (top + low_bias + step_size * k) / range. Returns the scale, writes the codes to
/// `codes` and -offset to `negated_offset` (ggml's make_qkx2_quants).
static float fit_scale_and_offset(int count, int top, const float *x, const float *weights, uint8_t *codes,
                                  float *negated_offset, uint8_t *trial, float low_bias, float step_size,
                                  int steps, int absolute_error) {
    float low = x[0], high = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < count; i++) {
        if (x[i] < low) low = x[i];
        if (x[i] > high) high = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (low > 0) low = 0;  // the offset only ever shifts down
    if (high == low) {
        memset(codes, 0, (size_t)count);
        *negated_offset = -low;
        return 0.0f;
    }
    float iscale = (float)top / (high - low);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < count; i++) {
        int code = clamp_int(round_nearest(iscale * (x[i] - low)), 0, top);
        codes[i] = (uint8_t)code;
        float diff = scale * (float)codes[i] + low - x[i];
        diff = absolute_error ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (steps < 1) {
        *negated_offset = -low;
        return scale;
    }
    for (int step = 0; step <= steps; step++) {
        // `low` moves when a candidate wins, and later candidates are measured from it.
        iscale = (low_bias + step_size * (float)step + (float)top) / (high - low);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < count; i++) {
            int code = clamp_int(round_nearest(iscale * (x[i] - low)), 0, top);
            trial[i] = (uint8_t)code;
            float w = weights[i];
            sum_l += w * (float)code;
            sum_l2 += w * (float)code * (float)code;
            sum_xl += w * (float)code * x[i];
        }
        // Weighted least squares for (scale, offset) given these codes.
        float determinant = sum_w * sum_l2 - sum_l * sum_l;
        if (determinant > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / determinant;
            float this_offset = (sum_l2 * sum_x - sum_l * sum_xl) / determinant;
            if (this_offset > 0) {
                this_offset = 0;
                this_scale = sum_xl / sum_l2;
            }
            float error = 0;
            for (int i = 0; i < count; i++) {
                float diff = this_scale * (float)trial[i] + this_offset - x[i];
                diff = absolute_error ? fabsf(diff) : diff * diff;
                error += weights[i] * diff;
            }
            if (error < best_error) {
                memcpy(codes, trial, (size_t)count);
                best_error = error;
                scale = this_scale;
                low = this_offset;
            }
        }
    }
    *negated_offset = -low;
    return scale;
}

/// Symmetric fit x ~ scale * (code - half) with codes in 0..<2*half, weights x^2: start from
/// the largest-magnitude value mapping to -half, then try 18 nearby reciprocal scales and keep
/// the best least-squares one (ggml's make_qx_quants with rmse_type 1).
static float fit_symmetric_scale(int count, int half, const float *x, int8_t *codes) {
    float max = 0, amax = 0;
    for (int i = 0; i < count; i++) {
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    }
    if (amax < GROUP_EPSILON) {
        memset(codes, 0, (size_t)count);
        return 0.0f;
    }
    float iscale = (float)(-half) / max;
    float sum_lx = 0, sum_l2 = 0;
    for (int i = 0; i < count; i++) {
        int level = clamp_int(round_nearest(iscale * x[i]), -half, half - 1);
        codes[i] = (int8_t)(level + half);
        float w = x[i] * x[i];
        sum_lx += w * x[i] * (float)level;
        sum_l2 += w * (float)level * (float)level;
    }
    float scale = sum_l2 != 0 ? sum_lx / sum_l2 : 0.0f;
    float best = scale * sum_lx;
    for (int step = -9; step <= 9; step++) {
        if (step == 0) continue;
        iscale = -((float)half + 0.1f * (float)step) / max;
        sum_lx = sum_l2 = 0;
        for (int i = 0; i < count; i++) {
            int level = clamp_int(round_nearest(iscale * x[i]), -half, half - 1);
            float w = x[i] * x[i];
            sum_lx += w * x[i] * (float)level;
            sum_l2 += w * (float)level * (float)level;
        }
        if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
            for (int i = 0; i < count; i++) {
                codes[i] = (int8_t)(half + clamp_int(round_nearest(iscale * x[i]), -half, half - 1));
            }
            scale = sum_lx / sum_l2;
            best = scale * sum_lx;
        }
    }
    return scale;
}

/// Q3_K's sub-block fit: symmetric 3-bit levels in -4...3, refined by up to five passes of
/// coordinate descent on the weighted least-squares score (ggml's make_q3_quants, do_rmse).
/// Codes come back biased by +4.
static float fit_q3_scale(const float *x, int8_t *codes) {
    const int count = 16, half = 4;
    float max = 0, amax = 0;
    for (int i = 0; i < count; i++) {
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    }
    if (amax < GROUP_EPSILON) {
        memset(codes, 0, (size_t)count);
        return 0.0f;
    }
    float iscale = (float)(-half) / max;
    float sum_lx = 0, sum_l2 = 0;
    for (int i = 0; i < count; i++) {
        int level = clamp_int(round_nearest(iscale * x[i]), -half, half - 1);
        codes[i] = (int8_t)level;
        float w = x[i] * x[i];
        sum_lx += w * x[i] * (float)level;
        sum_l2 += w * (float)level * (float)level;
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < count; i++) {
            float w = x[i] * x[i];
            float without_lx = sum_lx - w * x[i] * (float)codes[i];
            if (without_lx > 0) {
                float without_l2 = sum_l2 - w * (float)codes[i] * (float)codes[i];
                int level = clamp_int(round_nearest(x[i] * without_l2 / without_lx), -half, half - 1);
                if (level != codes[i]) {
                    without_lx += w * x[i] * (float)level;
                    without_l2 += w * (float)level * (float)level;
                    // Accept when lx^2 / l2 (the explained energy) grows.
                    if (without_l2 > 0 && without_lx * without_lx * sum_l2 > sum_lx * sum_lx * without_l2) {
                        codes[i] = (int8_t)level;
                        sum_lx = without_lx;
                        sum_l2 = without_l2;
                        changed++;
                    }
                }
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < count; i++) codes[i] = (int8_t)(codes[i] + half);
    return sum_l2 > 0.0f ? sum_lx / sum_l2 : 0.0f;
}

void energon_q_q2_K_portable(const float *src, void *dst, int64_t n) {
    block_q2_K *y = (block_q2_K *)dst;
    uint8_t codes[ENERGON_QK_K], trial[16];
    float weights[16], offsets[16], scales[16];
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++, src += ENERGON_QK_K) {
        float max_scale = 0, max_offset = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(src[16 * j + l]);
            scales[j] = fit_scale_and_offset(16, 3, src + 16 * j, weights, codes + 16 * j, &offsets[j], trial,
                                             -0.5f, 0.1f, 15, 1);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (offsets[j] > max_offset) max_offset = offsets[j];
        }
        // Sub-block scales and offsets become 4-bit multiples of d = max/15 and dmin = max/15.
        if (max_scale > 0) {
            float iscale = 15.0f / max_scale;
            for (int j = 0; j < 16; j++) y[b].scales[j] = (uint8_t)round_nearest(iscale * scales[j]);
            store_half(&y[b].d, max_scale / 15.0f);
        } else {
            memset(y[b].scales, 0, 16);
            store_half(&y[b].d, 0.0f);
        }
        if (max_offset > 0) {
            float iscale = 15.0f / max_offset;
            for (int j = 0; j < 16; j++) y[b].scales[j] |= (uint8_t)(round_nearest(iscale * offsets[j]) << 4);
            store_half(&y[b].dmin, max_offset / 15.0f);
        } else {
            store_half(&y[b].dmin, 0.0f);
        }
        for (int j = 0; j < 16; j++) {
            const float d = load_half(&y[b].d) * (float)(y[b].scales[j] & 0xF);
            if (d == 0) continue;  // keep the fit's codes, as ggml does
            const float dm = load_half(&y[b].dmin) * (float)(y[b].scales[j] >> 4);
            for (int l = 0; l < 16; l++) codes[16 * j + l] = (uint8_t)clamp_int(round_nearest((src[16 * j + l] + dm) / d), 0, 3);
        }
        for (int half = 0; half < 2; half++) {
            const uint8_t *c = codes + 128 * half;
            for (int l = 0; l < 32; l++) {
                y[b].qs[32 * half + l] = (uint8_t)(c[l] | (c[l + 32] << 2) | (c[l + 64] << 4) | (c[l + 96] << 6));
            }
        }
    }
}

void energon_q_q3_K_portable(const float *src, void *dst, int64_t n) {
    block_q3_K *y = (block_q3_K *)dst;
    int8_t codes[ENERGON_QK_K];
    float scales[16];
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++, src += ENERGON_QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = fit_q3_scale(src + 16 * j, codes + 16 * j);
            if (fabsf(scales[j]) > amax) { amax = fabsf(scales[j]); max_scale = scales[j]; }
        }
        memset(y[b].scales, 0, 12);
        if (max_scale != 0) {
            // Signed 6-bit sub-block scales (bias 32): low nibbles in bytes 0-7, top 2 bits of
            // scale j in bits 2*(j/4) of byte 8 + j%4.
            float iscale = -32.0f / max_scale;
            for (int j = 0; j < 16; j++) {
                int8_t level = (int8_t)round_nearest(iscale * scales[j]);
                level = (int8_t)(clamp_int(level, -32, 31) + 32);
                if (j < 8) y[b].scales[j] = (uint8_t)(level & 0xF);
                else y[b].scales[j - 8] |= (uint8_t)((level & 0xF) << 4);
                y[b].scales[j % 4 + 8] |= (uint8_t)((level >> 4) << (2 * (j / 4)));
            }
            store_half(&y[b].d, 1 / iscale);
        } else {
            store_half(&y[b].d, 0.0f);
        }
        for (int j = 0; j < 16; j++) {
            int low = j < 8 ? y[b].scales[j] & 0xF : y[b].scales[j - 8] >> 4;
            int scale = (low | (((y[b].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
            float d = load_half(&y[b].d) * (float)scale;
            if (d == 0) continue;
            for (int l = 0; l < 16; l++) codes[16 * j + l] = (int8_t)(clamp_int(round_nearest(src[16 * j + l] / d), -4, 3) + 4);
        }
        // Bit 2 of code e goes to bit e/32 of hmask[e%32]; the low 2 bits pack like Q2_K.
        memset(y[b].hmask, 0, 32);
        for (int e = 0; e < ENERGON_QK_K; e++) {
            if (codes[e] > 3) {
                y[b].hmask[e % 32] |= (uint8_t)(1 << (e / 32));
                codes[e] = (int8_t)(codes[e] - 4);
            }
        }
        for (int half = 0; half < 2; half++) {
            const int8_t *c = codes + 128 * half;
            for (int l = 0; l < 32; l++) {
                y[b].qs[32 * half + l] = (uint8_t)(c[l] | (c[l + 32] << 2) | (c[l + 64] << 4) | (c[l + 96] << 6));
            }
        }
    }
}

/// Shared by Q4_K and Q5_K: fits the eight 32-value sub-blocks, packs their 6-bit scales and
/// offsets, stores d and dmin, and leaves the final codes (0...top) in `codes`.
static void encode_k_scales_offsets(const float *x, uint8_t *scale_bytes, uint16_t *d_field, uint16_t *dmin_field,
                                    uint8_t *codes, int top, float low_bias, int steps) {
    uint8_t trial[32];
    float weights[32], offsets[8], scales[8];
    float max_scale = 0, max_offset = 0;
    for (int j = 0; j < 8; j++) {
        // Weight each value by the sub-block's RMS plus its own magnitude.
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float rms = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = rms + fabsf(x[32 * j + l]);
        scales[j] = fit_scale_and_offset(32, top, x + 32 * j, weights, codes + 32 * j, &offsets[j], trial,
                                         low_bias, 0.1f, steps, 0);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (offsets[j] > max_offset) max_offset = offsets[j];
    }
    float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    float inv_offset = max_offset > 0 ? 63.0f / max_offset : 0.0f;
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)round_nearest(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)round_nearest(inv_offset * offsets[j]);
        ls = ls > 63 ? 63 : ls;
        lm = lm > 63 ? 63 : lm;
        if (j < 4) {
            scale_bytes[j] = ls;
            scale_bytes[j + 4] = lm;
        } else {  // bytes 0-7 were written for j < 4 before these ORs
            scale_bytes[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scale_bytes[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scale_bytes[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    store_half(d_field, max_scale / 63.0f);
    store_half(dmin_field, max_offset / 63.0f);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        energon_k_scale_min(j, scale_bytes, &sc, &m);
        const float d = load_half(d_field) * (float)sc;
        if (d == 0) continue;
        const float dm = load_half(dmin_field) * (float)m;
        for (int l = 0; l < 32; l++) codes[32 * j + l] = (uint8_t)clamp_int(round_nearest((x[32 * j + l] + dm) / d), 0, top);
    }
}

void energon_q_q4_K_portable(const float *src, void *dst, int64_t n) {
    block_q4_K *y = (block_q4_K *)dst;
    uint8_t codes[ENERGON_QK_K];
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++, src += ENERGON_QK_K) {
        encode_k_scales_offsets(src, y[b].scales, &y[b].d, &y[b].dmin, codes, 15, -1.0f, 20);
        for (int chunk = 0; chunk < 4; chunk++) {
            for (int l = 0; l < 32; l++) {
                y[b].qs[32 * chunk + l] = (uint8_t)(codes[64 * chunk + l] | (codes[64 * chunk + 32 + l] << 4));
            }
        }
    }
}

void energon_q_q5_K_portable(const float *src, void *dst, int64_t n) {
    block_q5_K *y = (block_q5_K *)dst;
    uint8_t codes[ENERGON_QK_K];
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++, src += ENERGON_QK_K) {
        encode_k_scales_offsets(src, y[b].scales, &y[b].d, &y[b].dmin, codes, 31, -0.5f, 15);
        memset(y[b].qh, 0, 32);
        for (int chunk = 0; chunk < 4; chunk++) {
            for (int l = 0; l < 32; l++) {
                int first = codes[64 * chunk + l], second = codes[64 * chunk + 32 + l];
                // Bit 4 of sub-block s's code goes to bit s of qh[l].
                if (first > 15) { first -= 16; y[b].qh[l] |= (uint8_t)(1 << (2 * chunk)); }
                if (second > 15) { second -= 16; y[b].qh[l] |= (uint8_t)(2 << (2 * chunk)); }
                y[b].qs[32 * chunk + l] = (uint8_t)(first | (second << 4));
            }
        }
    }
}

void energon_q_q6_K_portable(const float *src, void *dst, int64_t n) {
    block_q6_K *y = (block_q6_K *)dst;
    int8_t codes[ENERGON_QK_K];
    float scales[16];
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++, src += ENERGON_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = fit_symmetric_scale(16, 32, src + 16 * j, codes + 16 * j);
            if (fabsf(scales[j]) > max_abs_scale) { max_abs_scale = fabsf(scales[j]); max_scale = scales[j]; }
        }
        if (max_abs_scale < GROUP_EPSILON) {
            memset(&y[b], 0, sizeof(block_q6_K));
            continue;
        }
        // Signed 8-bit sub-block scales against d = max_scale / -128.
        float iscale = -128.0f / max_scale;
        store_half(&y[b].d, 1 / iscale);
        for (int j = 0; j < 16; j++) {
            int level = round_nearest(iscale * scales[j]);
            y[b].scales[j] = (int8_t)(level > 127 ? 127 : level);
        }
        for (int j = 0; j < 16; j++) {
            float d = load_half(&y[b].d) * (float)y[b].scales[j];
            if (d == 0) continue;
            for (int l = 0; l < 16; l++) codes[16 * j + l] = (int8_t)(clamp_int(round_nearest(src[16 * j + l] / d), -32, 31) + 32);
        }
        // In each half of 128: element 32k + l puts its low nibble in nibble k/2 of
        // ql[32*(k%2) + l] and its top 2 bits in bits 2k of qh[l].
        for (int half = 0; half < 2; half++) {
            const int8_t *c = codes + 128 * half;
            uint8_t *ql = y[b].ql + 64 * half, *qh = y[b].qh + 32 * half;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((c[l] & 0xF) | ((c[l + 64] & 0xF) << 4));
                ql[l + 32] = (uint8_t)((c[l + 32] & 0xF) | ((c[l + 96] & 0xF) << 4));
                qh[l] = (uint8_t)((c[l] >> 4) | ((c[l + 32] >> 4) << 2) | ((c[l + 64] >> 4) << 4) | ((c[l + 96] >> 4) << 6));
            }
        }
    }
}
