// The attention kernel body, included once per ISA level by ops_attention.c with
// ENERGON_ATTENTION_TARGET (the target attribute) and ENERGON_ATTENTION_NAME(name) (the level
// suffix) defined, and the level's helpers available under those suffixed names:
//   scores(q, key_rows, count, dimension, scale, out)        out[j] = scale * q . key_rows[j]
//   accumulate(out, weights, value_rows, count, dimension)   out += sum_j weights[j] * value_rows[j]
//   scores_pair / accumulate_pair, scores_triple / accumulate_triple: the same for 2 or 3 rows
//   scale(y, a, count), row_max(x, count), exp_sum(x, count, shift), softcap(x, count, cap)
//
// Flash-attention style online softmax: keys are visited in chunks of ENERGON_ATTENTION_CHUNK.
// For each query row we keep the running maximum m and the running denominator l; a chunk with
// a larger maximum rescales the accumulated output and l by exp(m_old - m_new) before adding its
// own terms, so every exp argument is <= 0 (no overflow) and one pass over K/V suffices. The
// state does not depend on the order keys arrive in, which lets a call cover its rows' shared
// key range with multi-row kernels and each row's own extra keys separately.
//
// A call takes any rows that read the same KV head: the query heads of a KV group, and for a
// prefill several consecutive tokens (their causal ranges differ by a few keys at the end, and
// with a sliding window at the start). Rows are processed three or two at a time, so each key
// and value vector loaded feeds several FMAs; the kernel is load-bound with one row.
//
// With ENERGON_ATTENTION_HALF defined the cache holds IEEE half rows (an F16 KV cache) and the
// functions get a `_half` infix. Each chunk's key and value head slices are then widened once
// to f32 (F16C `vcvtph2ps`, helper half_rows) into scratch that stays in L1/L2, and the f32
// helpers run on that copy: every converted key serves all the call's rows (2-3 per multi-row
// kernel, several kernels per chunk), so converting per chunk costs one conversion per loaded
// half instead of one per FMA, while DRAM traffic, which dominates at depth, is halved.
// Queries, scores and accumulation stay f32.

//
// A level that also defines ENERGON_ATTENTION_HALF_DIRECT (AVX-512) instead provides
// scores_half, accumulate_half and their _pair/_triple forms, which take the half rows and
// widen each vector in a register just before its FMAs: no copy through memory at all.

#ifdef ENERGON_ATTENTION_HALF
#define ENERGON_ATTENTION_KV uint16_t
#define ENERGON_ATTENTION_KERNEL(name) ENERGON_ATTENTION_NAME(name##_half)
#else
#define ENERGON_ATTENTION_KV float
#define ENERGON_ATTENTION_KERNEL(name) ENERGON_ATTENTION_NAME(name)
#endif
#if defined(ENERGON_ATTENTION_HALF) && defined(ENERGON_ATTENTION_HALF_DIRECT)
#define ENERGON_ATTENTION_ROW uint16_t  // the scores/accumulate helpers read cache rows as stored
#define ENERGON_ATTENTION_HELPER(name) ENERGON_ATTENTION_NAME(name##_half)
#else
#define ENERGON_ATTENTION_ROW float
#define ENERGON_ATTENTION_HELPER(name) ENERGON_ATTENTION_NAME(name)
#endif

/// Online-softmax update of `count` rows (indices `list`) over keys lo ..< hi. `converted`
/// (half caches only) holds 2 * CHUNK * head_dimension floats.
ENERGON_ATTENTION_TARGET static void ENERGON_ATTENTION_KERNEL(attention_range)(
    int64_t lo, int64_t hi, const int64_t *list, int64_t count, const float *const *queries, float *const *outputs,
    const ENERGON_ATTENTION_KV *const *key_blocks, const ENERGON_ATTENTION_KV *const *value_blocks,
    const energon_attention_shape *shape, float *scores, float *maxima, float *sums, float *converted) {
    const int64_t dimension = shape->head_dimension;
    const int64_t block_size = shape->block_size;
    const ENERGON_ATTENTION_ROW *key_rows[ENERGON_ATTENTION_CHUNK];
    const ENERGON_ATTENTION_ROW *value_rows[ENERGON_ATTENTION_CHUNK];
    int64_t block = lo / block_size, row = lo % block_size;
#ifdef ENERGON_ATTENTION_HALF
    // A second block-table walker runs one chunk ahead, prefetching: the conversion loop keeps
    // few cache misses in flight (each row's stores wait on its loads), so without prefetching
    // it runs far below memory bandwidth, slower than the f32 path that reads twice the bytes.
    const int64_t row_bytes = dimension * (int64_t)sizeof(ENERGON_ATTENTION_KV);
    int64_t ahead = lo, ahead_block = block, ahead_row = row;
#endif
    for (int64_t chunk_start = lo; chunk_start < hi; chunk_start += ENERGON_ATTENTION_CHUNK) {
        int64_t chunk = hi - chunk_start;
        if (chunk > ENERGON_ATTENTION_CHUNK) chunk = ENERGON_ATTENTION_CHUNK;
#ifdef ENERGON_ATTENTION_HALF
        // Prefetch through the end of the next chunk (the first time, this chunk too).
        int64_t ahead_end = chunk_start + 2 * ENERGON_ATTENTION_CHUNK;
        if (ahead_end > hi) ahead_end = hi;
        for (; ahead < ahead_end; ahead++) {
            int64_t offset = ahead_row * shape->row_stride + shape->head_offset;
            for (int64_t byte = 0; byte < row_bytes; byte += 64) {
                __builtin_prefetch((const char *)(key_blocks[ahead_block] + offset) + byte);
                __builtin_prefetch((const char *)(value_blocks[ahead_block] + offset) + byte);
            }
            if (++ahead_row == block_size) {
                ahead_row = 0;
                ahead_block++;
            }
        }
#endif
        // Row addresses of the chunk, walking the block table (no division per key).
#if defined(ENERGON_ATTENTION_HALF) && !defined(ENERGON_ATTENTION_HALF_DIRECT)
        const ENERGON_ATTENTION_KV *key_sources[ENERGON_ATTENTION_CHUNK];
        const ENERGON_ATTENTION_KV *value_sources[ENERGON_ATTENTION_CHUNK];
#endif
        for (int64_t j = 0; j < chunk; j++) {
            int64_t offset = row * shape->row_stride + shape->head_offset;
#if defined(ENERGON_ATTENTION_HALF) && !defined(ENERGON_ATTENTION_HALF_DIRECT)
            key_sources[j] = key_blocks[block] + offset;
            value_sources[j] = value_blocks[block] + offset;
#else
            (void)converted;
            key_rows[j] = key_blocks[block] + offset;
            value_rows[j] = value_blocks[block] + offset;
#endif
            if (++row == block_size) {
                row = 0;
                block++;
            }
        }
#if defined(ENERGON_ATTENTION_HALF) && !defined(ENERGON_ATTENTION_HALF_DIRECT)
        for (int64_t j = 0; j < chunk; j++) {
            float *key_copy = converted + j * dimension;
            ENERGON_ATTENTION_NAME(half_rows)(key_sources[j], key_copy, dimension);
            key_rows[j] = key_copy;
        }
        for (int64_t j = 0; j < chunk; j++) {
            float *value_copy = converted + (ENERGON_ATTENTION_CHUNK + j) * dimension;
            ENERGON_ATTENTION_NAME(half_rows)(value_sources[j], value_copy, dimension);
            value_rows[j] = value_copy;
        }
#endif
        // Groups of 3 take one triple, larger counts pairs, with a triple for an odd remainder.
        for (int64_t i = 0; i < count;) {
            const int64_t remaining = count - i;
            const int64_t batch = remaining == 3 ? 3 : (remaining >= 2 ? 2 : 1);
            const int64_t r0 = list[i], r1 = list[i + (batch > 1)], r2 = list[i + (batch > 2 ? 2 : 0)];
            float *weights0 = scores, *weights1 = scores + ENERGON_ATTENTION_CHUNK;
            float *weights2 = scores + 2 * ENERGON_ATTENTION_CHUNK;
            if (batch == 3)
                ENERGON_ATTENTION_HELPER(scores_triple)(queries[r0], queries[r1], queries[r2], key_rows, chunk, dimension,
                                                      shape->scale, weights0, weights1, weights2);
            else if (batch == 2)
                ENERGON_ATTENTION_HELPER(scores_pair)(queries[r0], queries[r1], key_rows, chunk, dimension, shape->scale,
                                                    weights0, weights1);
            else
                ENERGON_ATTENTION_HELPER(scores)(queries[r0], key_rows, chunk, dimension, shape->scale, weights0);
            for (int64_t slot = 0; slot < batch; slot++) {
                const int64_t r = list[i + slot];
                float *row_weights = scores + slot * ENERGON_ATTENTION_CHUNK;
                if (shape->softcap > 0.0f) ENERGON_ATTENTION_NAME(softcap)(row_weights, chunk, shape->softcap);
                float chunk_max = ENERGON_ATTENTION_NAME(row_max)(row_weights, chunk);
                float new_max = chunk_max > maxima[r] ? chunk_max : maxima[r];
                // exp(-inf) is 0 on the first chunk, which also clears the (zero) accumulator.
                float correction = energon_exp_scalar(maxima[r] - new_max);
                float chunk_sum = ENERGON_ATTENTION_NAME(exp_sum)(row_weights, chunk, new_max);
                sums[r] = sums[r] * correction + chunk_sum;
                if (correction != 1.0f) ENERGON_ATTENTION_NAME(scale)(outputs[r], correction, dimension);
                maxima[r] = new_max;
            }
            if (batch == 3)
                ENERGON_ATTENTION_HELPER(accumulate_triple)(outputs[r0], outputs[r1], outputs[r2], weights0, weights1,
                                                          weights2, value_rows, chunk, dimension);
            else if (batch == 2)
                ENERGON_ATTENTION_HELPER(accumulate_pair)(outputs[r0], outputs[r1], weights0, weights1, value_rows, chunk,
                                                        dimension);
            else
                ENERGON_ATTENTION_HELPER(accumulate)(outputs[r0], weights0, value_rows, chunk, dimension);
            i += batch;
        }
    }
}

/// Attention of `rows` query rows sharing one KV head; row r sees keys firsts[r] ..< ends[r].
/// Scratch: [3 * CHUNK scores][rows maxima][rows sums], then for a half cache [2 * CHUNK *
/// head_dimension converted keys and values]. With normalize == 0 the outputs stay
/// unnormalised and maxima/sums hold each row's softmax state (split-K).
ENERGON_ATTENTION_TARGET static void ENERGON_ATTENTION_KERNEL(attention_rows)(
    int64_t rows, const float *const *queries, float *const *outputs, const int64_t *firsts, const int64_t *ends,
    const ENERGON_ATTENTION_KV *const *key_blocks, const ENERGON_ATTENTION_KV *const *value_blocks,
    const energon_attention_shape *shape, float *scratch, int normalize) {
    const int64_t dimension = shape->head_dimension;
    float *scores = scratch;
    float *maxima = scratch + 3 * ENERGON_ATTENTION_CHUNK;
    float *sums = maxima + rows;
    float *converted = sums + rows;
    int64_t all[ENERGON_ATTENTION_MAX_ROWS];
    int64_t common_first = 0, common_end = INT64_MAX;
    for (int64_t r = 0; r < rows; r++) {
        maxima[r] = -INFINITY;
        sums[r] = 0.0f;
        for (int64_t d = 0; d < dimension; d++) outputs[r][d] = 0.0f;
        all[r] = r;
        common_first = firsts[r] > common_first ? firsts[r] : common_first;
        common_end = ends[r] < common_end ? ends[r] : common_end;
    }
    if (common_first < common_end) {
        ENERGON_ATTENTION_KERNEL(attention_range)(common_first, common_end, all, rows, queries, outputs, key_blocks,
                                                value_blocks, shape, scores, maxima, sums, converted);
    } else {
        common_first = common_end = INT64_MAX;  // nothing shared: each row takes its whole range below
    }
    for (int64_t r = 0; r < rows; r++) {
        int64_t before_end = ends[r] < common_first ? ends[r] : common_first;
        if (firsts[r] < before_end)
            ENERGON_ATTENTION_KERNEL(attention_range)(firsts[r], before_end, all + r, 1, queries, outputs, key_blocks,
                                                    value_blocks, shape, scores, maxima, sums, converted);
        int64_t after_first = firsts[r] > common_end ? firsts[r] : common_end;
        if (common_end != INT64_MAX && after_first < ends[r])
            ENERGON_ATTENTION_KERNEL(attention_range)(after_first, ends[r], all + r, 1, queries, outputs, key_blocks,
                                                    value_blocks, shape, scores, maxima, sums, converted);
    }
    if (!normalize) return;
    for (int64_t r = 0; r < rows; r++) {
        if (sums[r] > 0.0f) ENERGON_ATTENTION_NAME(scale)(outputs[r], 1.0f / sums[r], dimension);
    }
}

#undef ENERGON_ATTENTION_KV
#undef ENERGON_ATTENTION_KERNEL
#undef ENERGON_ATTENTION_ROW
#undef ENERGON_ATTENTION_HELPER
