// Merging split-K partial attention results (energon_attention_partial_f32 / _f16): separate from
// ops_attention.c only to keep that file a readable size.
#include "energon_ops.h"
#include "ops_math.h"

void energon_attention_merge_f32(const float *partial_outputs, const float *maxima, const float *sums,
                                 int32_t parts, int32_t heads, int32_t head_dimension, float *output) {
    for (int32_t h = 0; h < heads; h++) {
        float maximum = -INFINITY;
        for (int32_t p = 0; p < parts; p++) {
            float m = maxima[(size_t)p * heads + h];
            maximum = m > maximum ? m : maximum;
        }
        float *out = output + (size_t)h * head_dimension;
        for (int32_t d = 0; d < head_dimension; d++) out[d] = 0.0f;
        if (maximum == -INFINITY) continue;  // no keys at all: zeros, as the single-pass kernel gives
        float total = 0.0f;
        for (int32_t p = 0; p < parts; p++) {
            // Rescale each part to the common maximum; an empty part has weight exp(-inf) = 0.
            float weight = energon_exp_scalar(maxima[(size_t)p * heads + h] - maximum);
            if (weight == 0.0f) continue;
            total += weight * sums[(size_t)p * heads + h];
            const float *part = partial_outputs + ((size_t)p * heads + h) * head_dimension;
            for (int32_t d = 0; d < head_dimension; d++) out[d] += weight * part[d];
        }
        float inverse = 1.0f / total;
        for (int32_t d = 0; d < head_dimension; d++) out[d] *= inverse;
    }
}
