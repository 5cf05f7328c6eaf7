// The attention kernel body, included once per ISA level by ops_attention.c with
// ENERGON_ATTENTION_TARGET (the target attribute) and ENERGON_ATTENTION_NAME(name) (the level
// suffix) defined, and the level's helpers (dot, axpy, scale, row max, exp-and-sum, softcap)
// available under those suffixed names.
//
// Flash-attention style online softmax: keys are visited in chunks of ENERGON_ATTENTION_CHUNK.
// For each query head we keep the running maximum m and the running denominator l; a chunk with
// a larger maximum rescales the accumulated output and l by exp(m_old - m_new) before adding its
// own terms, so every exp argument is <= 0 (no overflow) and one pass over K/V suffices.
// All query heads of a KV group are processed together so each key and value row is read from
// memory once per group rather than once per query head.

ENERGON_ATTENTION_TARGET static void ENERGON_ATTENTION_NAME(attention)(
    const float *q, const float *const *key_blocks, const float *const *value_blocks, int64_t first_position,
    int64_t end_position, const energon_attention_shape *shape, float *output, float *scratch) {
    const int64_t dimension = shape->head_dimension;
    const int64_t heads = shape->group_heads;
    const int64_t block_size = shape->block_size;
    float *scores = scratch;                                   // [heads, CHUNK]
    float *maxima = scratch + heads * ENERGON_ATTENTION_CHUNK;  // [heads]
    float *sums = maxima + heads;                              // [heads]
    for (int64_t h = 0; h < heads; h++) {
        maxima[h] = -INFINITY;
        sums[h] = 0.0f;
        for (int64_t d = 0; d < dimension; d++) output[h * dimension + d] = 0.0f;
    }
    for (int64_t chunk_start = first_position; chunk_start < end_position; chunk_start += ENERGON_ATTENTION_CHUNK) {
        int64_t chunk = end_position - chunk_start;
        if (chunk > ENERGON_ATTENTION_CHUNK) chunk = ENERGON_ATTENTION_CHUNK;
        // Scores: scale * q_h . k_j for every head of the group.
        for (int64_t j = 0; j < chunk; j++) {
            int64_t position = chunk_start + j;
            const float *key = key_blocks[position / block_size] + (position % block_size) * shape->row_stride +
                               shape->head_offset;
            for (int64_t h = 0; h < heads; h++)
                scores[h * ENERGON_ATTENTION_CHUNK + j] =
                    ENERGON_ATTENTION_NAME(dot)(q + h * dimension, key, dimension) * shape->scale;
        }
        for (int64_t h = 0; h < heads; h++) {
            float *row = scores + h * ENERGON_ATTENTION_CHUNK;
            if (shape->softcap > 0.0f) ENERGON_ATTENTION_NAME(softcap)(row, chunk, shape->softcap);
            float chunk_max = ENERGON_ATTENTION_NAME(row_max)(row, chunk);
            float new_max = chunk_max > maxima[h] ? chunk_max : maxima[h];
            // exp(-inf) is 0 on the first chunk, which also clears the (zero) accumulator.
            float correction = energon_exp_scalar(maxima[h] - new_max);
            float chunk_sum = ENERGON_ATTENTION_NAME(exp_sum)(row, chunk, new_max);
            sums[h] = sums[h] * correction + chunk_sum;
            if (correction != 1.0f) ENERGON_ATTENTION_NAME(scale)(output + h * dimension, correction, dimension);
            maxima[h] = new_max;
        }
        // Weighted values: out_h += p_hj * v_j, each value row loaded once for the whole group.
        for (int64_t j = 0; j < chunk; j++) {
            int64_t position = chunk_start + j;
            const float *value = value_blocks[position / block_size] +
                                 (position % block_size) * shape->row_stride + shape->head_offset;
            for (int64_t h = 0; h < heads; h++)
                ENERGON_ATTENTION_NAME(axpy)(output + h * dimension, scores[h * ENERGON_ATTENTION_CHUNK + j], value,
                                             dimension);
        }
    }
    for (int64_t h = 0; h < heads; h++) {
        if (sums[h] > 0.0f) ENERGON_ATTENTION_NAME(scale)(output + h * dimension, 1.0f / sums[h], dimension);
    }
}
