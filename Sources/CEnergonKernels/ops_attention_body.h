// The attention kernel body, included once per ISA level by ops_attention.c with
// ENERGON_ATTENTION_TARGET (the target attribute) and ENERGON_ATTENTION_NAME(name) (the level
// suffix) defined, and the level's helpers available under those suffixed names:
//   scores(q, key_rows, count, dimension, scale, out)        out[j] = scale * q . key_rows[j]
//   accumulate(out, weights, value_rows, count, dimension)   out += sum_j weights[j] * value_rows[j]
//   scores_pair / accumulate_pair, scores_triple / accumulate_triple: the same for 2 or 3 heads
//   scale(y, a, count), row_max(x, count), exp_sum(x, count, shift), softcap(x, count, cap)
//
// Flash-attention style online softmax: keys are visited in chunks of ENERGON_ATTENTION_CHUNK.
// For each query head we keep the running maximum m and the running denominator l; a chunk with
// a larger maximum rescales the accumulated output and l by exp(m_old - m_new) before adding its
// own terms, so every exp argument is <= 0 (no overflow) and one pass over K/V suffices.
// All query heads of a KV group are processed together so each chunk's key and value rows are
// located once and stay in L1/L2 for every head of the group.

ENERGON_ATTENTION_TARGET static void ENERGON_ATTENTION_NAME(attention)(
    const float *q, const float *const *key_blocks, const float *const *value_blocks, int64_t first_position,
    int64_t end_position, const energon_attention_shape *shape, float *output, float *scratch, int normalize) {
    const int64_t dimension = shape->head_dimension;
    const int64_t heads = shape->group_heads;
    const int64_t block_size = shape->block_size;
    float *scores = scratch;                                   // [heads, CHUNK]
    float *maxima = scratch + heads * ENERGON_ATTENTION_CHUNK;  // [heads]
    float *sums = maxima + heads;                              // [heads]
    const float *key_rows[ENERGON_ATTENTION_CHUNK];
    const float *value_rows[ENERGON_ATTENTION_CHUNK];
    for (int64_t h = 0; h < heads; h++) {
        maxima[h] = -INFINITY;
        sums[h] = 0.0f;
        for (int64_t d = 0; d < dimension; d++) output[h * dimension + d] = 0.0f;
    }
    int64_t block = first_position / block_size, row = first_position % block_size;
    for (int64_t chunk_start = first_position; chunk_start < end_position; chunk_start += ENERGON_ATTENTION_CHUNK) {
        int64_t chunk = end_position - chunk_start;
        if (chunk > ENERGON_ATTENTION_CHUNK) chunk = ENERGON_ATTENTION_CHUNK;
        // Row addresses of the chunk, walking the block table (no division per key).
        for (int64_t j = 0; j < chunk; j++) {
            int64_t offset = row * shape->row_stride + shape->head_offset;
            key_rows[j] = key_blocks[block] + offset;
            value_rows[j] = value_blocks[block] + offset;
            if (++row == block_size) {
                row = 0;
                block++;
            }
        }
        // Heads two or three at a time (they share every key/value load): groups of 3 take one
        // triple, larger groups pairs, with a triple for an odd remainder.
        for (int64_t h = 0; h < heads;) {
            const int64_t remaining = heads - h;
            const int64_t rows = remaining == 3 ? 3 : (remaining >= 2 ? 2 : 1);
            float *weights = scores + h * ENERGON_ATTENTION_CHUNK;
            const float *query = q + h * dimension;
            if (rows == 3)
                ENERGON_ATTENTION_NAME(scores_triple)(query, query + dimension, query + 2 * dimension, key_rows, chunk,
                                                      dimension, shape->scale, weights,
                                                      weights + ENERGON_ATTENTION_CHUNK,
                                                      weights + 2 * ENERGON_ATTENTION_CHUNK);
            else if (rows == 2)
                ENERGON_ATTENTION_NAME(scores_pair)(query, query + dimension, key_rows, chunk, dimension, shape->scale,
                                                    weights, weights + ENERGON_ATTENTION_CHUNK);
            else
                ENERGON_ATTENTION_NAME(scores)(query, key_rows, chunk, dimension, shape->scale, weights);
            for (int64_t r = h; r < h + rows; r++) {
                float *row_weights = scores + r * ENERGON_ATTENTION_CHUNK;
                if (shape->softcap > 0.0f) ENERGON_ATTENTION_NAME(softcap)(row_weights, chunk, shape->softcap);
                float chunk_max = ENERGON_ATTENTION_NAME(row_max)(row_weights, chunk);
                float new_max = chunk_max > maxima[r] ? chunk_max : maxima[r];
                // exp(-inf) is 0 on the first chunk, which also clears the (zero) accumulator.
                float correction = energon_exp_scalar(maxima[r] - new_max);
                float chunk_sum = ENERGON_ATTENTION_NAME(exp_sum)(row_weights, chunk, new_max);
                sums[r] = sums[r] * correction + chunk_sum;
                if (correction != 1.0f) ENERGON_ATTENTION_NAME(scale)(output + r * dimension, correction, dimension);
                maxima[r] = new_max;
            }
            float *out = output + h * dimension;
            if (rows == 3)
                ENERGON_ATTENTION_NAME(accumulate_triple)(out, out + dimension, out + 2 * dimension, weights,
                                                          weights + ENERGON_ATTENTION_CHUNK,
                                                          weights + 2 * ENERGON_ATTENTION_CHUNK, value_rows, chunk,
                                                          dimension);
            else if (rows == 2)
                ENERGON_ATTENTION_NAME(accumulate_pair)(out, out + dimension, weights, weights + ENERGON_ATTENTION_CHUNK,
                                                        value_rows, chunk, dimension);
            else
                ENERGON_ATTENTION_NAME(accumulate)(out, weights, value_rows, chunk, dimension);
            h += rows;
        }
    }
    // A partial call (split-K) leaves the output unnormalised; its state stays in maxima/sums.
    if (!normalize) return;
    for (int64_t h = 0; h < heads; h++) {
        if (sums[h] > 0.0f) ENERGON_ATTENTION_NAME(scale)(output + h * dimension, 1.0f / sums[h], dimension);
    }
}
