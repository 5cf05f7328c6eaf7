// AVX-512 GEMM for many tokens (prefill): each weight tile is loaded once per group of 8
// tokens and used for all of them, so the work is compute-bound, not bandwidth-bound.
//
// Quantized weights: 16 output rows are expanded into a packed panel where, for every
// 32-input block, zmm j holds bytes 4j..4j+3 of the 16 rows (one row per int32 lane). Then
// `vpdpbusd(acc, panel_j, broadcast(x[t][4j..4j+3]))` adds 4 products to each row's lane, so a
// block costs 8 instructions per token for 16 rows x 32 inputs, and the per-row scales are a
// plain vector multiply. Float weights: 32 rows x 512 inputs are converted to f32 in [k][row]
// order and an 8-token x 32-row register tile of FMAs runs over them.
#include "matmul_avx512_expand.h"

#if defined(__x86_64__)

// Words (4 bytes) of one packed 32-input block of a 16-row panel: 8 x 16 words of unsigned
// bytes, then scale[2][16] and offset[2][16] floats (one per 16 inputs and row).
#define MM_PANEL_BLOCK_WORDS (128 + 64)

// Rows packed together (quantized: 4 panels of 16; float: 4 panels of 32) and inputs per packed
// chunk: the packed chunk stays in L2 while every token streams past it, and a group of 8
// tokens' activations stays in L1 while it meets every panel of the chunk.
#define MM_QUANT_ROW_BLOCK 64
#define MM_QUANT_K_BLOCK 512
#define MM_FLOAT_ROW_BLOCK 128
#define MM_FLOAT_K_BLOCK 256

size_t mm_gemm_scratch_bytes_avx512(const energon_matmul_job *job) {
    if (energon_matmul_needs_quantized_input(job->dtype)) {
        return (MM_QUANT_ROW_BLOCK / MM_PANEL_ROWS) * (MM_QUANT_K_BLOCK / 32) * MM_PANEL_BLOCK_WORDS * 4 + 128;
    }
    return (size_t)MM_FLOAT_ROW_BLOCK * MM_FLOAT_K_BLOCK * 4 + 128;
}

// ---------------------------------------------------------------------------------------------
// Quantized GEMM

/// Expands blocks [first, first + count) of one weight row into natural-order bytes and per-16
/// scales and offsets (count <= MM_QUANT_K_BLOCK / 32; K-quant chunks start on super-blocks).
MM_AVX512 static void mm_expand_row_chunk(uint32_t dtype, const uint8_t *row, size_t first, size_t count,
                                          uint8_t *u, float *scale, float *offset) {
    if (mm_group_size(dtype) == 256) {
        for (size_t g = first / 8; g < (first + count) / 8; g++) {
            mm512_super super = mm512_expand_k(dtype, row, g);
            size_t at = g * 8 - first;
            for (int c = 0; c < 4; c++) _mm512_storeu_si512((void *)(u + 32 * at + 64 * c), super.u[c]);
            _mm512_storeu_ps(scale + 2 * at, super.scale);
            _mm512_storeu_ps(offset + 2 * at, super.offset);
        }
        return;
    }
    size_t b = 0;
    for (; b + 2 <= count; b += 2) {
        __m128 sc, of;
        __m512i values = mm512_expand_pair32(dtype, row, first + b, &sc, &of);
        _mm512_storeu_si512((void *)(u + 32 * b), values);
        _mm_storeu_ps(scale + 2 * b, sc);
        _mm_storeu_ps(offset + 2 * b, of);
    }
    if (b < count) mm_expand_group(dtype, row, first + b, u + 32 * b, scale + 2 * b, offset + 2 * b);
}

/// Transposes a 16 x 16 matrix of 32-bit values held as 16 rows, in place: afterwards m[j] holds
/// element j of every row. Three rounds of in-lane unpacks and 128-bit lane shuffles.
MM_AVX512 static inline void mm512_transpose16(__m512 m[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(m[2 * i], m[2 * i + 1]);      // per lane: a0 b0 a1 b1
        t[2 * i + 1] = _mm512_unpackhi_ps(m[2 * i], m[2 * i + 1]);  // a2 b2 a3 b3
    }
    for (int i = 0; i < 4; i++) {
        // u[4i + j], lane L: rows 4i..4i+3 at element 4L + j.
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int j = 0; j < 4; j++) {
        __m512 even_low = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88), odd_low = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
        __m512 even_high = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88), odd_high = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
        m[j] = _mm512_shuffle_f32x4(even_low, even_high, 0x88);
        m[8 + j] = _mm512_shuffle_f32x4(even_low, even_high, 0xDD);
        m[4 + j] = _mm512_shuffle_f32x4(odd_low, odd_high, 0x88);
        m[12 + j] = _mm512_shuffle_f32x4(odd_low, odd_high, 0xDD);
    }
}

/// Packs blocks [first, first + count) of rows [row, row + rows) (rows <= 16; missing rows are
/// zero) into a panel: per block, word j of row r at [16 j + r], then the per-16 scales and
/// offsets of the 16 rows. Rows are expanded one by one, then turned into columns 16 x 16 words
/// at a time.
MM_AVX512 static void mm_pack_panel(const energon_matmul_job *job, size_t row, size_t rows, size_t first, size_t count,
                                    uint32_t *panel) {
    uint8_t u[MM_PANEL_ROWS][MM_QUANT_K_BLOCK] __attribute__((aligned(64)));
    float scale[MM_PANEL_ROWS][MM_QUANT_K_BLOCK / 16] __attribute__((aligned(64)));
    float offset[MM_PANEL_ROWS][MM_QUANT_K_BLOCK / 16] __attribute__((aligned(64)));
    for (size_t r = 0; r < MM_PANEL_ROWS; r++) {
        if (r < rows) {
            mm_expand_row_chunk(job->dtype, job->weight + (row + r) * job->row_bytes, first, count, u[r], scale[r], offset[r]);
        } else {
            memset(u[r], 0, sizeof(u[r]));
            memset(scale[r], 0, sizeof(scale[r]));
            memset(offset[r], 0, sizeof(offset[r]));
        }
    }
    __m512 m[16];
    for (size_t b = 0; b < count; b += 2) {
        // Two blocks = 16 words per row; a lone last block leaves words 8..15 unused.
        for (int r = 0; r < 16; r++) m[r] = _mm512_load_ps((const float *)(u[r] + 32 * b));
        mm512_transpose16(m);
        uint32_t *block = panel + b * MM_PANEL_BLOCK_WORDS;
        for (int j = 0; j < 8; j++) _mm512_store_ps((float *)(block + 16 * j), m[j]);
        if (b + 1 < count)
            for (int j = 0; j < 8; j++) _mm512_store_ps((float *)(block + MM_PANEL_BLOCK_WORDS + 16 * j), m[8 + j]);
    }
    for (size_t column = 0; column < 2 * count; column += 16) {
        // Column c of the scales/offsets belongs to block c / 2, half c % 2.
        for (int which = 0; which < 2; which++) {
            float (*values)[MM_QUANT_K_BLOCK / 16] = which == 0 ? scale : offset;
            for (int r = 0; r < 16; r++) m[r] = _mm512_load_ps(values[r] + column);
            mm512_transpose16(m);
            for (size_t c = column; c < column + 16 && c < 2 * count; c++) {
                float *floats = (float *)(panel + (c / 2) * MM_PANEL_BLOCK_WORDS + 128);
                _mm512_store_ps(floats + 32 * which + 16 * (c % 2), m[c - column]);
            }
        }
    }
}

/// The panel of blocks [first, first + count) of the packed group that starts at row `row` (a
/// multiple of 16): the packed layout already keeps one row per int32 lane, so each block is its
/// four zmm of nibbles split into low (words 0..3) and high (words 4..7) nibbles, or its eight
/// zmm of Q8_0 bytes shifted to unsigned, with no transposes; the 16 row scales are one f16
/// conversion.
MM_AVX512 static void mm_pack_panel_packed(const energon_matmul_job *job, size_t row, size_t first, size_t count,
                                           uint32_t *panel) {
    uint32_t base = mm_packed_base(job->dtype);
    size_t blocks = job->in / 32;
    const uint8_t *group = job->weight + (row / MM_PANEL_ROWS) * mm_packed_group_bytes(base, job->in);
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    if (base == MM_Q4_K) {
        // Block first + k is sub-block s of super-block g: the low (even s) or high (odd s)
        // nibbles of chunk s / 2, scale d * scale_s, offset -dmin * min_s.
        const __m512i mask = _mm512_set1_epi8(0x0F);
        for (size_t k = 0; k < count; k++) {
            size_t b = first + k, s = b % 8;
            const uint8_t *super = group + (b / 8) * MM_PACKED_K4_BYTES;
            uint32_t *block = panel + k * MM_PANEL_BLOCK_WORDS;
            for (int j = 0; j < 8; j++) {
                __m512i w = _mm512_loadu_si512((const void *)(super + 512 * (s / 2) + 64 * j));
                _mm512_store_si512((void *)(block + 16 * j), _mm512_and_si512(s % 2 ? _mm512_srli_epi16(w, 4) : w, mask));
            }
            float *floats = (float *)(block + 128);
            __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(super + 2048)));
            __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(super + 2080)));
            __m512 scale = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(super + 2112 + 16 * s))));
            __m512 min = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(super + 2240 + 16 * s))));
            _mm512_store_ps(floats, _mm512_mul_ps(d, scale));
            _mm512_store_ps(floats + 32, _mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(dmin, min)));
        }
        return;
    }
    for (size_t k = 0; k < count; k++) {
        const uint8_t *quants, *d16, *m16;
        mm_packed_block(base, group, blocks, first + k, &quants, &d16, &m16);
        uint32_t *block = panel + k * MM_PANEL_BLOCK_WORDS;
        if (base == MM_Q8_0) {
            // int8 + 128 as uint8, offset -128 d (as mm512_expand_pair32).
            for (int j = 0; j < 8; j++)
                _mm512_store_si512((void *)(block + 16 * j), _mm512_xor_si512(_mm512_loadu_si512((const void *)(quants + 64 * j)), flip));
        } else {
            __m512i low[4], high[4];
            mm512_packed_nibbles(base, quants, low, high);
            for (int j = 0; j < 4; j++) {
                _mm512_store_si512((void *)(block + 16 * j), low[j]);
                _mm512_store_si512((void *)(block + 16 * (4 + j)), high[j]);
            }
        }
        float *floats = (float *)(block + 128);
        __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)d16));
        _mm512_store_ps(floats, d);
        _mm512_store_ps(floats + 32, base == MM_Q4_1 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)m16))
                                                     : _mm512_mul_ps(d, _mm512_set1_ps(mm_packed_offset_ratio(base))));
    }
}

/// output[t, row..row+16) for `T` tokens, from `blocks` packed blocks that start at input block
/// `first`; adds to the output when `accumulate` (a later input chunk).
MM_AVX512 static inline __attribute__((always_inline)) void
mm_gemm_tile(const uint32_t *panel, size_t first, size_t blocks, int per16, const uint8_t *quantized, size_t stride,
             size_t in, int T, float *output, size_t output_stride, __mmask16 rows, int accumulate) {
    __m512 acc[8];
    mm_a32_row x[8];
    for (int t = 0; t < T; t++) {
        acc[t] = accumulate ? _mm512_maskz_loadu_ps(rows, output + (size_t)t * output_stride) : _mm512_setzero_ps();
        x[t] = mm_a32_view(quantized + (size_t)t * stride, in);
    }
    for (size_t k = 0; k < blocks; k++) {
        const uint32_t *block = panel + k * MM_PANEL_BLOCK_WORDS;
        size_t b = first + k;
        __m512i w0 = _mm512_load_si512((const void *)(block + 0)), w1 = _mm512_load_si512((const void *)(block + 16));
        __m512i w2 = _mm512_load_si512((const void *)(block + 32)), w3 = _mm512_load_si512((const void *)(block + 48));
        __m512i w4 = _mm512_load_si512((const void *)(block + 64)), w5 = _mm512_load_si512((const void *)(block + 80));
        __m512i w6 = _mm512_load_si512((const void *)(block + 96)), w7 = _mm512_load_si512((const void *)(block + 112));
        const float *floats = (const float *)(block + 128);
        __m512 scale0 = _mm512_load_ps(floats), offset0 = _mm512_load_ps(floats + 32);
        if (!per16) {
            for (int t = 0; t < T; t++) {
                const int32_t *q = (const int32_t *)(x[t].q + 32 * b);
                __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w0, _mm512_set1_epi32(q[0]));
                __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w1, _mm512_set1_epi32(q[1]));
                s0 = _mm512_dpbusd_epi32(s0, w2, _mm512_set1_epi32(q[2]));
                s1 = _mm512_dpbusd_epi32(s1, w3, _mm512_set1_epi32(q[3]));
                s0 = _mm512_dpbusd_epi32(s0, w4, _mm512_set1_epi32(q[4]));
                s1 = _mm512_dpbusd_epi32(s1, w5, _mm512_set1_epi32(q[5]));
                s0 = _mm512_dpbusd_epi32(s0, w6, _mm512_set1_epi32(q[6]));
                s1 = _mm512_dpbusd_epi32(s1, w7, _mm512_set1_epi32(q[7]));
                __m512 sum = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
                acc[t] = _mm512_fmadd_ps(sum, _mm512_mul_ps(scale0, _mm512_set1_ps(x[t].d[b])), acc[t]);
                acc[t] = _mm512_fmadd_ps(offset0, _mm512_set1_ps(x[t].s32[b]), acc[t]);
            }
        } else {
            __m512 scale1 = _mm512_load_ps(floats + 16), offset1 = _mm512_load_ps(floats + 48);
            for (int t = 0; t < T; t++) {
                const int32_t *q = (const int32_t *)(x[t].q + 32 * b);
                __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w0, _mm512_set1_epi32(q[0]));
                __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w4, _mm512_set1_epi32(q[4]));
                s0 = _mm512_dpbusd_epi32(s0, w1, _mm512_set1_epi32(q[1]));
                s1 = _mm512_dpbusd_epi32(s1, w5, _mm512_set1_epi32(q[5]));
                s0 = _mm512_dpbusd_epi32(s0, w2, _mm512_set1_epi32(q[2]));
                s1 = _mm512_dpbusd_epi32(s1, w6, _mm512_set1_epi32(q[6]));
                s0 = _mm512_dpbusd_epi32(s0, w3, _mm512_set1_epi32(q[3]));
                s1 = _mm512_dpbusd_epi32(s1, w7, _mm512_set1_epi32(q[7]));
                __m512 d = _mm512_set1_ps(x[t].d[b]);
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_mul_ps(scale0, d), acc[t]);
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), _mm512_mul_ps(scale1, d), acc[t]);
                acc[t] = _mm512_fmadd_ps(offset0, _mm512_set1_ps(x[t].s16[2 * b]), acc[t]);
                acc[t] = _mm512_fmadd_ps(offset1, _mm512_set1_ps(x[t].s16[2 * b + 1]), acc[t]);
            }
        }
    }
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(output + (size_t)t * output_stride, rows, acc[t]);
}


MM_AVX512 static void mm_gemm_quantized(const energon_matmul_job *job, size_t row_begin, size_t row_end, void *scratch) {
    uint32_t *panels = (uint32_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    size_t panel_words = (MM_QUANT_K_BLOCK / 32) * MM_PANEL_BLOCK_WORDS;
    size_t blocks = job->in / 32, stride = energon_matmul_quantized_row_bytes(job->in);
    int per16 = mm_has_scale_per_16(job->dtype);
    for (size_t row0 = row_begin; row0 < row_end; row0 += MM_QUANT_ROW_BLOCK) {
        size_t block_rows = row_end - row0 < MM_QUANT_ROW_BLOCK ? row_end - row0 : MM_QUANT_ROW_BLOCK;
        size_t panel_count = (block_rows + MM_PANEL_ROWS - 1) / MM_PANEL_ROWS;
        __mmask16 masks[MM_QUANT_ROW_BLOCK / MM_PANEL_ROWS];
        for (size_t p = 0; p < panel_count; p++) {
            size_t rows = block_rows - p * MM_PANEL_ROWS < MM_PANEL_ROWS ? block_rows - p * MM_PANEL_ROWS : MM_PANEL_ROWS;
            masks[p] = rows == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rows) - 1);
        }
        for (size_t first = 0; first < blocks; first += MM_QUANT_K_BLOCK / 32) {
            size_t count = blocks - first < MM_QUANT_K_BLOCK / 32 ? blocks - first : MM_QUANT_K_BLOCK / 32;
            for (size_t p = 0; p < panel_count; p++) {
                size_t row = row0 + p * MM_PANEL_ROWS;
                if (mm_is_packed(job->dtype)) {
                    mm_pack_panel_packed(job, row, first, count, panels + p * panel_words);  // whole groups only
                } else {
                    mm_pack_panel(job, row, row_end - row < MM_PANEL_ROWS ? row_end - row : MM_PANEL_ROWS, first, count,
                                  panels + p * panel_words);
                }
            }
            int accumulate = first > 0;
            size_t t = 0;
            for (; t + 8 <= job->tokens; t += 8)
                for (size_t p = 0; p < panel_count; p++)
                    mm_gemm_tile(panels + p * panel_words, first, count, per16, job->quantized + t * stride, stride, job->in, 8,
                                 job->output + t * job->output_stride + row0 + p * MM_PANEL_ROWS, job->output_stride,
                                 masks[p], accumulate);
            // The last 1..7 tokens in one tile (a constant count per case, so the accumulators
            // stay in registers), rather than one token at a time.
            size_t rest = job->tokens - t;
            for (size_t p = 0; p < panel_count && rest > 0; p++) {
                const uint32_t *panel = panels + p * panel_words;
                const uint8_t *x = job->quantized + t * stride;
                float *out = job->output + t * job->output_stride + row0 + p * MM_PANEL_ROWS;
                switch (rest) {
                case 1: mm_gemm_tile(panel, first, count, per16, x, stride, job->in, 1, out, job->output_stride, masks[p], accumulate); break;
                case 2: mm_gemm_tile(panel, first, count, per16, x, stride, job->in, 2, out, job->output_stride, masks[p], accumulate); break;
                case 3: mm_gemm_tile(panel, first, count, per16, x, stride, job->in, 3, out, job->output_stride, masks[p], accumulate); break;
                case 4: mm_gemm_tile(panel, first, count, per16, x, stride, job->in, 4, out, job->output_stride, masks[p], accumulate); break;
                case 5: mm_gemm_tile(panel, first, count, per16, x, stride, job->in, 5, out, job->output_stride, masks[p], accumulate); break;
                case 6: mm_gemm_tile(panel, first, count, per16, x, stride, job->in, 6, out, job->output_stride, masks[p], accumulate); break;
                default: mm_gemm_tile(panel, first, count, per16, x, stride, job->in, 7, out, job->output_stride, masks[p], accumulate); break;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Float GEMM

/// Converts rows [row, row + count) x inputs [k0, k0 + kc) to f32 in [k][32 rows] order.
MM_AVX512 static void mm_pack_float_panel(const energon_matmul_job *job, size_t row, size_t count, size_t k0,
                                          size_t kc, float *panel) {
    __m512 m[16];
    for (size_t half = 0; half < 2; half++) {
        for (size_t k = 0; k < kc; k += 16) {
            size_t left = kc - k < 16 ? kc - k : 16;
            __mmask16 mask = left == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            for (size_t i = 0; i < 16; i++) {
                size_t r = 16 * half + i;
                if (r >= count) {
                    m[i] = _mm512_setzero_ps();
                    continue;
                }
                const uint8_t *weights = job->weight + (row + r) * job->row_bytes;
                size_t at = k0 + k;
                if (job->dtype == MM_F32) {
                    m[i] = _mm512_maskz_loadu_ps(mask, (const float *)weights + at);
                } else {
                    __m256i halves = _mm256_maskz_loadu_epi16(mask, weights + 2 * at);
                    m[i] = job->dtype == MM_F16 ? _mm512_cvtph_ps(halves)
                                                : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
                }
            }
            mm512_transpose16(m);
            for (size_t j = 0; j < left; j++) _mm512_store_ps(panel + (k + j) * MM_FLOAT_PANEL_ROWS + 16 * half, m[j]);
        }
    }
}

MM_AVX512 static inline __attribute__((always_inline)) void
mm_gemm_float_tile(const float *panel, size_t kc, const float *input, size_t in, int T, float *output,
                   size_t output_stride, __mmask16 rows0, __mmask16 rows1, int accumulate) {
    __m512 acc0[8], acc1[8];
    for (int t = 0; t < T; t++) {
        acc0[t] = _mm512_setzero_ps();
        acc1[t] = _mm512_setzero_ps();
    }
    for (size_t k = 0; k < kc; k++) {
        __m512 w0 = _mm512_load_ps(panel + k * MM_FLOAT_PANEL_ROWS);
        __m512 w1 = _mm512_load_ps(panel + k * MM_FLOAT_PANEL_ROWS + 16);
        for (int t = 0; t < T; t++) {
            __m512 x = _mm512_set1_ps(input[(size_t)t * in + k]);
            acc0[t] = _mm512_fmadd_ps(w0, x, acc0[t]);
            acc1[t] = _mm512_fmadd_ps(w1, x, acc1[t]);
        }
    }
    for (int t = 0; t < T; t++) {
        float *out = output + (size_t)t * output_stride;
        if (accumulate) {
            acc0[t] = _mm512_add_ps(acc0[t], _mm512_maskz_loadu_ps(rows0, out));
            acc1[t] = _mm512_add_ps(acc1[t], _mm512_maskz_loadu_ps(rows1, out + 16));
        }
        _mm512_mask_storeu_ps(out, rows0, acc0[t]);
        _mm512_mask_storeu_ps(out + 16, rows1, acc1[t]);
    }
}

MM_AVX512 static void mm_gemm_float(const energon_matmul_job *job, size_t row_begin, size_t row_end, void *scratch) {
    float *panels = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    size_t in = job->in, panel_floats = (size_t)MM_FLOAT_K_BLOCK * MM_FLOAT_PANEL_ROWS;
    for (size_t row0 = row_begin; row0 < row_end; row0 += MM_FLOAT_ROW_BLOCK) {
        size_t block_rows = row_end - row0 < MM_FLOAT_ROW_BLOCK ? row_end - row0 : MM_FLOAT_ROW_BLOCK;
        size_t panel_count = (block_rows + MM_FLOAT_PANEL_ROWS - 1) / MM_FLOAT_PANEL_ROWS;
        __mmask16 low[MM_FLOAT_ROW_BLOCK / MM_FLOAT_PANEL_ROWS], high[MM_FLOAT_ROW_BLOCK / MM_FLOAT_PANEL_ROWS];
        size_t counts[MM_FLOAT_ROW_BLOCK / MM_FLOAT_PANEL_ROWS];
        for (size_t p = 0; p < panel_count; p++) {
            size_t count = block_rows - p * MM_FLOAT_PANEL_ROWS;
            if (count > MM_FLOAT_PANEL_ROWS) count = MM_FLOAT_PANEL_ROWS;
            uint32_t bits = count >= 32 ? 0xFFFFFFFFu : (uint32_t)((1ull << count) - 1);
            counts[p] = count;
            low[p] = (__mmask16)(bits & 0xFFFF);
            high[p] = (__mmask16)(bits >> 16);
        }
        for (size_t k0 = 0; k0 < in; k0 += MM_FLOAT_K_BLOCK) {
            size_t kc = in - k0 < MM_FLOAT_K_BLOCK ? in - k0 : MM_FLOAT_K_BLOCK;
            for (size_t p = 0; p < panel_count; p++)
                mm_pack_float_panel(job, row0 + p * MM_FLOAT_PANEL_ROWS, counts[p], k0, kc, panels + p * panel_floats);
            int accumulate = k0 > 0;
            size_t t = 0;
            for (; t + 8 <= job->tokens; t += 8)
                for (size_t p = 0; p < panel_count; p++)
                    mm_gemm_float_tile(panels + p * panel_floats, kc, job->input + t * in + k0, in, 8,
                                       job->output + t * job->output_stride + row0 + p * MM_FLOAT_PANEL_ROWS,
                                       job->output_stride, low[p], high[p], accumulate);
            size_t rest = job->tokens - t;
            for (size_t p = 0; p < panel_count && rest > 0; p++) {
                const float *panel = panels + p * panel_floats;
                const float *x = job->input + t * in + k0;
                float *out = job->output + t * job->output_stride + row0 + p * MM_FLOAT_PANEL_ROWS;
                switch (rest) {
                case 1: mm_gemm_float_tile(panel, kc, x, in, 1, out, job->output_stride, low[p], high[p], accumulate); break;
                case 2: mm_gemm_float_tile(panel, kc, x, in, 2, out, job->output_stride, low[p], high[p], accumulate); break;
                case 3: mm_gemm_float_tile(panel, kc, x, in, 3, out, job->output_stride, low[p], high[p], accumulate); break;
                case 4: mm_gemm_float_tile(panel, kc, x, in, 4, out, job->output_stride, low[p], high[p], accumulate); break;
                case 5: mm_gemm_float_tile(panel, kc, x, in, 5, out, job->output_stride, low[p], high[p], accumulate); break;
                case 6: mm_gemm_float_tile(panel, kc, x, in, 6, out, job->output_stride, low[p], high[p], accumulate); break;
                default: mm_gemm_float_tile(panel, kc, x, in, 7, out, job->output_stride, low[p], high[p], accumulate); break;
                }
            }
        }
    }
}

void mm_gemm_avx512(const energon_matmul_job *job, size_t row_begin, size_t row_end, void *scratch) {
    if (energon_matmul_needs_quantized_input(job->dtype)) mm_gemm_quantized(job, row_begin, row_end, scratch);
    else mm_gemm_float(job, row_begin, row_end, scratch);
}

#endif
