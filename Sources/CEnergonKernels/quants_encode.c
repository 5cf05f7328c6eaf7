// Portable encoders, bit-exact with the `gguf` Python package's `gguf.quants.quantize` (which
// mirrors ggml's `quantize_row_*_ref`) and, for Q8_K, ggml's `quantize_row_q8_K_ref`.
//
// The details that decide the bits:
// - scales are computed and applied in f32; only the stored d and m are rounded to f16, and the
//   codes are computed with the f32 reciprocal, not the rounded f16 scale;
// - Q8_0 rounds half away from zero (`roundf`); Q4/Q5 add 8.5 / 16.5 (or 0.5) and truncate,
//   then clamp to the top code; Q8_K rounds half to even (ggml's `nearest_int`);
// - Q4_0/Q5_0 take the *signed* value of largest magnitude (its first occurrence) and divide it
//   by -8 / -16, so that value maps to code 0 and the other side gets one code more.
#include "quants_internal.h"

#include <float.h>
#include <math.h>

void energon_q_f16_portable(const float *src, void *dst, int64_t n) {
    uint8_t *bytes = (uint8_t *)dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = energon_float_to_half(src[i]);
        memcpy(bytes + 2 * i, &h, 2);
    }
}

void energon_q_bf16_portable(const float *src, void *dst, int64_t n) {
    uint8_t *bytes = (uint8_t *)dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = energon_float_to_bf16(src[i]);
        memcpy(bytes + 2 * i, &h, 2);
    }
}

static inline void store_half(uint16_t *field, float value) {
    uint16_t h = energon_float_to_half(value);
    memcpy(field, &h, 2);
}

/// The value of largest magnitude in `x[0..<count]`, keeping its sign; the first one wins a tie
/// (numpy's argmax, which gguf-py uses; for an all-zero block that is x[0] itself).
static inline float signed_absolute_max(const float *x, int count) {
    float best = x[0], magnitude = fabsf(x[0]);
    for (int j = 1; j < count; j++) {
        if (fabsf(x[j]) > magnitude) { magnitude = fabsf(x[j]); best = x[j]; }
    }
    return best;
}

static inline void minimum_maximum(const float *x, int count, float *minimum, float *maximum) {
    float low = FLT_MAX, high = -FLT_MAX;
    for (int j = 0; j < count; j++) {
        if (x[j] < low) low = x[j];
        if (x[j] > high) high = x[j];
    }
    *minimum = low;
    *maximum = high;
}

void energon_q_q4_0_portable(const float *src, void *dst, int64_t n) {
    block_q4_0 *y = (block_q4_0 *)dst;
    for (int64_t b = 0; b < n / ENERGON_QK; b++, src += ENERGON_QK) {
        const float d = signed_absolute_max(src, ENERGON_QK) / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_half(&y[b].d, d);
        for (int j = 0; j < 16; j++) {
            const float x0 = src[j] * id, x1 = src[j + 16] * id;
            int q0 = (int)(x0 + 8.5f), q1 = (int)(x1 + 8.5f);  // truncation; the sum is >= 0
            q0 = q0 > 15 ? 15 : q0;
            q1 = q1 > 15 ? 15 : q1;
            y[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void energon_q_q4_1_portable(const float *src, void *dst, int64_t n) {
    block_q4_1 *y = (block_q4_1 *)dst;
    for (int64_t b = 0; b < n / ENERGON_QK; b++, src += ENERGON_QK) {
        float minimum, maximum;
        minimum_maximum(src, ENERGON_QK, &minimum, &maximum);
        const float d = (maximum - minimum) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_half(&y[b].d, d);
        store_half(&y[b].m, minimum);
        for (int j = 0; j < 16; j++) {
            const float x0 = (src[j] - minimum) * id, x1 = (src[j + 16] - minimum) * id;
            int q0 = (int)(x0 + 0.5f), q1 = (int)(x1 + 0.5f);
            q0 = q0 > 15 ? 15 : q0;
            q1 = q1 > 15 ? 15 : q1;
            y[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void energon_q_q5_0_portable(const float *src, void *dst, int64_t n) {
    block_q5_0 *y = (block_q5_0 *)dst;
    for (int64_t b = 0; b < n / ENERGON_QK; b++, src += ENERGON_QK) {
        const float d = signed_absolute_max(src, ENERGON_QK) / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_half(&y[b].d, d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const float x0 = src[j] * id, x1 = src[j + 16] * id;
            int q0 = (int)(x0 + 16.5f), q1 = (int)(x1 + 16.5f);
            q0 = q0 > 31 ? 31 : q0;
            q1 = q1 > 31 ? 31 : q1;
            y[b].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + 16);
        }
        memcpy(y[b].qh, &qh, 4);
    }
}

void energon_q_q5_1_portable(const float *src, void *dst, int64_t n) {
    block_q5_1 *y = (block_q5_1 *)dst;
    for (int64_t b = 0; b < n / ENERGON_QK; b++, src += ENERGON_QK) {
        float minimum, maximum;
        minimum_maximum(src, ENERGON_QK, &minimum, &maximum);
        const float d = (maximum - minimum) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_half(&y[b].d, d);
        store_half(&y[b].m, minimum);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const float x0 = (src[j] - minimum) * id, x1 = (src[j + 16] - minimum) * id;
            int q0 = (int)(x0 + 0.5f), q1 = (int)(x1 + 0.5f);
            q0 = q0 > 31 ? 31 : q0;
            q1 = q1 > 31 ? 31 : q1;
            y[b].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + 16);
        }
        memcpy(y[b].qh, &qh, 4);
    }
}

void energon_q_q8_0_portable(const float *src, void *dst, int64_t n) {
    block_q8_0 *y = (block_q8_0 *)dst;
    for (int64_t b = 0; b < n / ENERGON_QK; b++, src += ENERGON_QK) {
        float amax = 0.0f;
        for (int j = 0; j < ENERGON_QK; j++) amax = fmaxf(amax, fabsf(src[j]));
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        store_half(&y[b].d, d);
        for (int j = 0; j < ENERGON_QK; j++) y[b].qs[j] = (int8_t)roundf(src[j] * id);
    }
}

/// ggml's `nearest_int`: adding 1.5 * 2^23 leaves the integer part, rounded half to even by the
/// FPU, in the low mantissa bits (valid for |value| < 2^22).
static inline int nearest_int(float value) {
    float shifted = value + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &shifted, 4);
    return (bits & 0x007FFFFF) - 0x00400000;
}

void energon_q_q8_K_portable(const float *src, void *dst, int64_t n) {
    block_q8_K *y = (block_q8_K *)dst;
    for (int64_t b = 0; b < n / ENERGON_QK_K; b++, src += ENERGON_QK_K) {
        float maximum = 0.0f, amax = 0.0f;
        for (int j = 0; j < ENERGON_QK_K; j++) {
            if (fabsf(src[j]) > amax) { amax = fabsf(src[j]); maximum = src[j]; }
        }
        if (amax == 0.0f) {
            // ggml leaves bsums untouched here; zero them so the block is fully defined.
            memset(&y[b], 0, sizeof(block_q8_K));
            continue;
        }
        // -127 (not -128) keeps every code in [-127, 127], so |code| fits a signed byte both ways.
        const float iscale = -127.0f / maximum;
        for (int j = 0; j < ENERGON_QK_K; j++) {
            int v = nearest_int(iscale * src[j]);
            y[b].qs[j] = (int8_t)(v > 127 ? 127 : v);
        }
        for (int g = 0; g < ENERGON_QK_K / 16; g++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y[b].qs[16 * g + l];
            y[b].bsums[g] = (int16_t)sum;
        }
        y[b].d = 1.0f / iscale;
    }
}
