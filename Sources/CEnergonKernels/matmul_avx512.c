// AVX-512 (F/BW/VL/DQ + VNNI) matmul kernels for decode: activation quantization, and
// row-by-row dot products for a few tokens. The packed GEMM for many tokens is in
// matmul_avx512_gemm.c.
//
// Every quantized format is expanded, 64 weights at a time, into unsigned bytes u in natural
// element order, so one `vpdpbusd` against 64 int8 activations gives 16 int32 partial sums
// where each 128-bit lane belongs to one run of 16 weights sharing one (scale, offset) pair.
// The lane sums are turned into floats and scaled per lane (scale * activation scale), and the
// offset term is applied once per 16 weights using the activation block sums.
#include "matmul_avx512_expand.h"

#if defined(__x86_64__)
#include <math.h>

// ---------------------------------------------------------------------------------------------
// Activation quantization

MM_AVX512 void mm_quantize_rows_avx512(const float *input, size_t in, size_t rows, void *destination) {
    size_t stride = energon_matmul_quantized_row_bytes(in);
    size_t blocks = in / 32;
    const __m512 sign_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
    for (size_t r = 0; r < rows; r++) {
        const float *x = input + r * in;
        uint8_t *row = (uint8_t *)destination + r * stride;
        float *d = (float *)(row + in), *s32 = d + blocks, *s16 = s32 + blocks;
        for (size_t b = 0; b < blocks; b++) {
            __m512 low = _mm512_loadu_ps(x + 32 * b), high = _mm512_loadu_ps(x + 32 * b + 16);
            __m512 magnitude = _mm512_max_ps(_mm512_and_ps(low, sign_mask), _mm512_and_ps(high, sign_mask));
            float amax = _mm512_reduce_max_ps(magnitude);
            float scale = amax / 127.0f;
            __m512 inverse = _mm512_set1_ps(scale > 0 ? 1.0f / scale : 0.0f);
            // Round to nearest even (the default MXCSR mode), like nearbyintf in the portable path.
            __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(low, inverse));
            __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(high, inverse));
            _mm_storeu_si128((__m128i *)(row + 32 * b), _mm512_cvtepi32_epi8(q0));
            _mm_storeu_si128((__m128i *)(row + 32 * b + 16), _mm512_cvtepi32_epi8(q1));
            int sum0 = _mm512_reduce_add_epi32(q0), sum1 = _mm512_reduce_add_epi32(q1);
            d[b] = scale;
            s16[2 * b] = scale * (float)sum0;
            s16[2 * b + 1] = scale * (float)sum1;
            s32[b] = scale * (float)(sum0 + sum1);
        }
        mm_fill_split(row, in);
    }
}

// How far ahead (bytes) the float row kernels prefetch the weight stream. Each row is read once, in
// order, and rows follow each other in memory, so the address simply runs ahead of the current
// position. The hardware prefetchers alone leave too few lines in flight for a DRAM-resident
// weight when the loop spends several instructions per line (the out-of-order window, not the
// bus, then limits the read rate).
#define MM_ROW_PREFETCH 6144

/// Prefetches the `lines` cache lines that start MM_ROW_PREFETCH bytes after `p`. (The quantized
/// row kernels are compute-bound, and there the extra instructions cost more than they gain.)
MM_AVX512 static inline void mm512_prefetch_ahead(const uint8_t *p, int lines) {
    for (int line = 0; line < lines; line++) _mm_prefetch((const char *)(p + MM_ROW_PREFETCH + 64 * line), _MM_HINT_T0);
}

// ---------------------------------------------------------------------------------------------
// Float weights: direct dot products.

MM_AVX512 static inline __m512 mm512_load_weights(uint32_t dtype, const uint8_t *row, size_t i) {
    if (dtype == MM_F32) return _mm512_loadu_ps((const float *)row + i);
    __m256i halves = _mm256_loadu_si256((const __m256i *)(row + 2 * i));
    if (dtype == MM_F16) return _mm512_cvtph_ps(halves);
    // bf16 is the top half of an f32.
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
}

MM_AVX512 static inline __m512 mm512_load_weights_masked(uint32_t dtype, const uint8_t *row, size_t i, __mmask16 mask) {
    if (dtype == MM_F32) return _mm512_maskz_loadu_ps(mask, (const float *)row + i);
    __m256i halves = _mm256_maskz_loadu_epi16(mask, row + 2 * i);
    if (dtype == MM_F16) return _mm512_cvtph_ps(halves);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
}

MM_AVX512 static float mm512_dot_float(uint32_t dtype, const uint8_t *row, const float *x, size_t in) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
    size_t i = 0;
    // Four independent accumulators hide the FMA latency.
    size_t element_bytes = dtype == MM_F32 ? 4 : 2;
    for (; i + 64 <= in; i += 64) {
        mm512_prefetch_ahead(row + element_bytes * i, (int)element_bytes * 64 / 64);
        acc0 = _mm512_fmadd_ps(mm512_load_weights(dtype, row, i), _mm512_loadu_ps(x + i), acc0);
        acc1 = _mm512_fmadd_ps(mm512_load_weights(dtype, row, i + 16), _mm512_loadu_ps(x + i + 16), acc1);
        acc2 = _mm512_fmadd_ps(mm512_load_weights(dtype, row, i + 32), _mm512_loadu_ps(x + i + 32), acc2);
        acc3 = _mm512_fmadd_ps(mm512_load_weights(dtype, row, i + 48), _mm512_loadu_ps(x + i + 48), acc3);
    }
    for (; i < in; i += 16) {
        size_t left = in - i;
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        acc0 = _mm512_fmadd_ps(mm512_load_weights_masked(dtype, row, i, mask), _mm512_maskz_loadu_ps(mask, x + i), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

/// Adds one super-block's products with one activation row: lane group k (4 int32 lanes) of
/// the product of chunk c takes weight scale 4c + k times the activation scale of its block.
MM_AVX512 static inline void mm512_super_accumulate(const mm512_super *super, const mm_a32_row *x, size_t group,
                                                    __m512 *accumulator, __m512 *correction) {
    const __m512i twice = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    __m512 xd = _mm512_permutexvar_ps(twice, _mm512_castps256_ps512(_mm256_loadu_ps(x->d + 8 * group)));
    __m512 scale = _mm512_mul_ps(super->scale, xd);
    *correction = _mm512_fmadd_ps(super->offset, _mm512_loadu_ps(x->s16 + 16 * group), *correction);
    const int8_t *q = x->q + 256 * group;
    for (int c = 0; c < 4; c++) {
        const __m512i spread = _mm512_set_epi32(4 * c + 3, 4 * c + 3, 4 * c + 3, 4 * c + 3, 4 * c + 2, 4 * c + 2, 4 * c + 2,
                                                4 * c + 2, 4 * c + 1, 4 * c + 1, 4 * c + 1, 4 * c + 1, 4 * c, 4 * c, 4 * c, 4 * c);
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), super->u[c], _mm512_loadu_si512((const void *)(q + 64 * c)));
        accumulator[c & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(spread, scale), accumulator[c & 1]);
    }
}

/// Accumulates 64 expanded weights (elements first .. first + 63) against `tokens` activation rows.
/// `lanes` masks the activation bytes that exist (all 64, or the first 32 for a lone last block).
MM_AVX512 static inline void mm512_accumulate(__m512i u, __m128 scale, __m128 offset, const mm_a32_row *x,
                                              size_t first, int tokens, __mmask64 lanes,
                                              __m512 *accumulator, __m128 *correction) {
    // Lane group k (4 int32 lanes = 16 weights) takes scale k.
    const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    size_t block = first / 32;
    for (int t = 0; t < tokens; t++) {
        __m512i q = _mm512_maskz_loadu_epi8(lanes, x[t].q + first);
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, q);
        __m128 xd;
        if (lanes == ~(__mmask64)0) {
            __m128 pair = _mm_castpd_ps(_mm_load_sd((const double *)(x[t].d + block)));
            xd = _mm_unpacklo_ps(pair, pair);  // [dA, dA, dB, dB]
        } else {
            xd = _mm_set_ps(0, 0, x[t].d[block], x[t].d[block]);
        }
        __m512 lane_scale = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_mul_ps(scale, xd)));
        accumulator[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), lane_scale, accumulator[t]);
        __m128 sums = lanes == ~(__mmask64)0 ? _mm_loadu_ps(x[t].s16 + first / 16)
                                             : _mm_castpd_ps(_mm_load_sd((const double *)(x[t].s16 + first / 16)));
        correction[t] = _mm_fmadd_ps(offset, sums, correction[t]);
    }
}

/// Adds four blocks' products with one activation row to `accumulator` (float lanes) and
/// `correction` (per block).
MM_AVX512 static inline void mm512_quad_accumulate(const mm512_quad *quad, const mm_a32_row *x, size_t block,
                                                   __m512 *accumulator, __m128 *correction) {
    __m128 xd = _mm_loadu_ps(x->d + block);
    __m128 scale = _mm_mul_ps(quad->scale, xd);
    *correction = _mm_fmadd_ps(quad->offset, _mm_loadu_ps(x->s32 + block), *correction);
    if (quad->natural) {
        // Lanes 0-7 / 8-15 of each product belong to the first / second block of its half.
        const __m512i spread_low = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
        const __m512i spread_high = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);
        __m512 wide = _mm512_castps128_ps512(scale);
        const int8_t *q = x->q + 32 * block;
        __m512i dot_low = _mm512_dpbusd_epi32(_mm512_setzero_si512(), quad->low, _mm512_loadu_si512((const void *)q));
        __m512i dot_high = _mm512_dpbusd_epi32(_mm512_setzero_si512(), quad->high, _mm512_loadu_si512((const void *)(q + 64)));
        *accumulator = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_low), _mm512_permutexvar_ps(spread_low, wide), *accumulator);
        *accumulator = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_high), _mm512_permutexvar_ps(spread_high, wide), *accumulator);
    } else {
        // Activations in split order: lane b = elements 0..15 (low) or 16..31 (high) of block b.
        __m512i x_low = _mm512_loadu_si512((const void *)(x->split + 32 * block));
        __m512i x_high = _mm512_loadu_si512((const void *)(x->split + 32 * block + 64));
        __m512i dot = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), quad->low, x_low), quad->high, x_high);
        const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
        *accumulator = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(scale)), *accumulator);
    }
}

/// Dot products of `R` consecutive quantized weight rows with `T` activation rows (R * T <= 4):
/// result[r * T + t]. Several rows per step give independent FMA chains and share the
/// activation loads; several tokens share each expanded weight group.
MM_AVX512 static inline __attribute__((always_inline)) void
mm512_quantized_rows_tile(uint32_t dtype, const uint8_t *row, size_t row_bytes, size_t in, const mm_a32_row *x,
                          int R, int T, float *result) {
    __m512 accumulator[4];
    __m128 correction[4];
    for (int i = 0; i < R * T; i++) {
        accumulator[i] = _mm512_setzero_ps();
        correction[i] = _mm_setzero_ps();
    }
    if (mm_group_size(dtype) == 32) {
        size_t blocks = in / 32, block = 0;
        __m128 quad_correction[4];
        for (int i = 0; i < R * T; i++) quad_correction[i] = _mm_setzero_ps();
        const size_t block_bytes = mm_group_bytes(dtype);
        for (; block + 4 <= blocks; block += 4) {
            for (int r = 0; r < R; r++) {
                if (T == 1) mm512_prefetch_ahead(row + (size_t)r * row_bytes + block * block_bytes, (int)((4 * block_bytes + 63) / 64));
                mm512_quad quad = mm512_expand_quad(dtype, row + (size_t)r * row_bytes, block);
                for (int t = 0; t < T; t++)
                    mm512_quad_accumulate(&quad, &x[t], block, &accumulator[r * T + t], &quad_correction[r * T + t]);
            }
        }
        const __m128 ratio = _mm_set1_ps(mm_quad_offset_ratio(dtype));
        for (int i = 0; i < R * T; i++) correction[i] = _mm_mul_ps(quad_correction[i], ratio);
        for (int r = 0; r < R; r++) {
            const uint8_t *weights = row + (size_t)r * row_bytes;
            size_t tail = block;
            for (; tail + 2 <= blocks; tail += 2) {
                __m128 scale, offset;
                __m512i u = mm512_expand_pair32(dtype, weights, tail, &scale, &offset);
                mm512_accumulate(u, scale, offset, x, 32 * tail, T, ~(__mmask64)0, &accumulator[r * T], &correction[r * T]);
            }
            if (tail < blocks) {
                // A lone last block: expand it alone so nothing past the row is read.
                uint8_t values[64] = {0};
                float sc[16] = {0}, of[16] = {0};
                mm_expand_group(dtype, weights, tail, values, sc, of);
                mm512_accumulate(_mm512_loadu_si512((const void *)values), _mm_loadu_ps(sc), _mm_loadu_ps(of), x,
                                 32 * tail, T, (__mmask64)0xFFFFFFFFu, &accumulator[r * T], &correction[r * T]);
            }
        }
    } else {
        size_t groups = in / 256;
        __m512 pair[4][2], wide_correction[4];
        for (int i = 0; i < R * T; i++) pair[i][0] = pair[i][1] = wide_correction[i] = _mm512_setzero_ps();
        const size_t super_bytes = mm_group_bytes(dtype);
        for (size_t g = 0; g < groups; g++) {
            for (int r = 0; r < R; r++) {
                // One decoded token leaves the expansion little to hide memory latency behind,
                // so the stream is prefetched ahead as in the float kernels (Q6_K 34 -> 41 GB/s
                // per core); with more tokens the arithmetic hides it.
                if (T == 1) mm512_prefetch_ahead(row + (size_t)r * row_bytes + g * super_bytes, (int)((super_bytes + 63) / 64));
                mm512_super super = mm512_expand_k(dtype, row + (size_t)r * row_bytes, g);
                for (int t = 0; t < T; t++) mm512_super_accumulate(&super, &x[t], g, pair[r * T + t], &wide_correction[r * T + t]);
            }
        }
        for (int i = 0; i < R * T; i++)
            accumulator[i] = _mm512_add_ps(_mm512_add_ps(pair[i][0], pair[i][1]), wide_correction[i]);
    }
    for (int i = 0; i < R * T; i++) {
        __m128 c = correction[i];
        c = _mm_add_ps(c, _mm_movehl_ps(c, c));
        c = _mm_add_ss(c, _mm_movehdup_ps(c));
        result[i] = _mm512_reduce_add_ps(accumulator[i]) + _mm_cvtss_f32(c);
    }
}

/// Rows [row_begin, row_end) against `count` activation rows; inlined once per (format, count)
/// pair so the format switch and the token loops resolve at compile time.
MM_AVX512 static inline __attribute__((always_inline)) void
mm512_rows_loop(const energon_matmul_job *job, size_t row_begin, size_t row_end, const mm_a32_row *x,
                size_t t0, uint32_t dtype, int count) {
    // One row per step: interleaving several rows (R > 1) helped in cache but broke the single
    // sequential stream the hardware prefetcher follows through a DRAM-resident weight (3x slower).
    const int R = 1;
    size_t o = row_begin;
    for (; o + (size_t)R <= row_end; o += (size_t)R) {
        float result[4];
        mm512_quantized_rows_tile(dtype, job->weight + o * job->row_bytes, job->row_bytes, job->in, x, R, count, result);
        for (int r = 0; r < R; r++)
            for (int t = 0; t < count; t++) job->output[(t0 + (size_t)t) * job->output_stride + o + (size_t)r] = result[r * count + t];
    }
    for (; o < row_end; o++) {
        float result[4];
        mm512_quantized_rows_tile(dtype, job->weight + o * job->row_bytes, job->row_bytes, job->in, x, 1, count, result);
        for (int t = 0; t < count; t++) job->output[(t0 + (size_t)t) * job->output_stride + o] = result[t];
    }
}

#define MM_ROWS_FOR_FORMAT(format)                                                              \
    case format:                                                                                \
        switch (count) {                                                                        \
        case 1: mm512_rows_loop(job, row_begin, row_end, x, t0, format, 1); break;              \
        case 2: mm512_rows_loop(job, row_begin, row_end, x, t0, format, 2); break;              \
        case 3: mm512_rows_loop(job, row_begin, row_end, x, t0, format, 3); break;              \
        default: mm512_rows_loop(job, row_begin, row_end, x, t0, format, 4); break;             \
        }                                                                                       \
        break;

MM_AVX512 static void mm512_quantized_rows(const energon_matmul_job *job, size_t all_begin, size_t all_end) {
    size_t stride = energon_matmul_quantized_row_bytes(job->in);
    // Chunks of about 16 KiB of rows outside, token groups inside: a chunk comes from memory once
    // and stays in L1 for every further 4 tokens (up to 4 tokens share each expanded weight group
    // while it is in registers), so a batch of 8-39 tokens reads the weight from DRAM once.
    size_t chunk = job->row_bytes >= 16384 ? 1 : 16384 / job->row_bytes;
    for (size_t row_begin = all_begin; row_begin < all_end; row_begin += chunk) {
    size_t row_end = all_end - row_begin < chunk ? all_end : row_begin + chunk;
    for (size_t t0 = 0; t0 < job->tokens; t0 += 4) {
        int count = (int)(job->tokens - t0 < 4 ? job->tokens - t0 : 4);
        mm_a32_row x[8];
        for (int t = 0; t < count; t++) x[t] = mm_a32_view(job->quantized + (t0 + (size_t)t) * stride, job->in);
        switch (job->dtype) {
            MM_ROWS_FOR_FORMAT(MM_Q8_0)
            MM_ROWS_FOR_FORMAT(MM_Q4_0)
            MM_ROWS_FOR_FORMAT(MM_Q4_1)
            MM_ROWS_FOR_FORMAT(MM_Q5_0)
            MM_ROWS_FOR_FORMAT(MM_Q5_1)
            MM_ROWS_FOR_FORMAT(MM_Q4_K)
            MM_ROWS_FOR_FORMAT(MM_Q5_K)
            MM_ROWS_FOR_FORMAT(MM_Q6_K)
            MM_ROWS_FOR_FORMAT(MM_Q2_K)
            MM_ROWS_FOR_FORMAT(MM_Q3_K)
        default: break;
        }
    }
    }
}

MM_AVX512 void mm_rows_avx512(const energon_matmul_job *job, size_t row_begin, size_t row_end, void *scratch) {
    (void)scratch;
    if (!energon_matmul_needs_quantized_input(job->dtype)) {
        for (size_t o = row_begin; o < row_end; o++) {
            const uint8_t *row = job->weight + o * job->row_bytes;
            for (size_t t = 0; t < job->tokens; t++)
                job->output[t * job->output_stride + o] = mm512_dot_float(job->dtype, row, job->input + t * job->in, job->in);
        }
        return;
    }
    mm512_quantized_rows(job, row_begin, row_end);
}

// The machine's read bandwidth as the kernels can reach it: the same software prefetch distance
// as the weight streams, so the matvec ratios compare like with like (without it this probe reads
// only about half of what the prefetching kernels stream on this machine).
MM_AVX512 double mm_read_pass_avx512(const void *data, size_t bytes) {
    const __m512i *p = (const __m512i *)data;
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    for (size_t i = 0; i + 4 <= bytes / 64; i += 4) {
        mm512_prefetch_ahead((const uint8_t *)(p + i), 4);
        a = _mm512_add_epi64(a, _mm512_load_si512(p + i));
        b = _mm512_add_epi64(b, _mm512_load_si512(p + i + 1));
        c = _mm512_add_epi64(c, _mm512_load_si512(p + i + 2));
        d = _mm512_add_epi64(d, _mm512_load_si512(p + i + 3));
    }
    return (double)_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
}

#endif
