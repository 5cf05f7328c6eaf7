// AVX-512 VNNI matvec over packed Q4_0 / Q4_1 / Q5_0 / Q8_0 / Q4_K weights (layout in matmul_internal.h).
//
// Why a packed layout: in the row-major format a 32-weight block is 16 bytes of nibbles plus an
// f16 scale, so a row-by-row kernel spends most of its instructions on per-block scalar work
// (loading and converting scales, shuffling blocks into lanes, reducing lanes at the end) and
// runs compute-bound at ~20 GB/s per core, well under the memory bandwidth. With 16 rows
// interleaved, zmm j of a block holds bytes 4j..4j+3 of all 16 rows (one row per int32 lane):
// the low and high nibbles are two `and`s and a shift away from `vpdpbusd` operands, each
// `vpdpbusd` takes its 4 activation bytes as a broadcast, the 16 row scales are one `vcvtph2ps`,
// and the sums land in the lanes of their rows, so a block of 16 rows (288 bytes of Q4_0) costs
// about 30 instructions instead of about 120.
#include "matmul_avx512_expand.h"

#if defined(__x86_64__)

/// How far ahead (bytes) the weight stream is prefetched: the loop retires few instructions per
/// byte, but a DRAM-resident weight needs many lines in flight to reach the bus bandwidth.
#define MM_PACKED_PREFETCH 6144

/// Adds one 32-input block of a 16-row group to each token's lane sums: acc += d_row * d_x *
/// dot(u, q) and corr += m_row * (d_x * sum q) (m = d for Q4_0 and Q8_0, whose offsets -8 d and
/// -128 d are applied once at the end).
MM_AVX512 static inline __attribute__((always_inline)) void
mm512_packed_block(uint32_t base, const uint8_t *nibbles, const uint8_t *d16, const uint8_t *m16, const mm_a32_row *x,
                   size_t b, int T, __m512 *acc, __m512 *corr) {
    int has_min = base == MM_Q4_1;
    if (base == MM_Q8_0) {
        // Elements 4j..4j+3 of each row in zmm j, as int8 + 128 (unsigned for vpdpbusd).
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        __m512i w[8];
        for (int j = 0; j < 8; j++) w[j] = _mm512_xor_si512(_mm512_loadu_si512((const void *)(nibbles + 64 * j)), flip);
        __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)d16));
        for (int t = 0; t < T; t++) {
            const int32_t *q = (const int32_t *)(x[t].q + 32 * b);
            __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[0], _mm512_set1_epi32(q[0]));
            __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[1], _mm512_set1_epi32(q[1]));
            s0 = _mm512_dpbusd_epi32(s0, w[2], _mm512_set1_epi32(q[2]));
            s1 = _mm512_dpbusd_epi32(s1, w[3], _mm512_set1_epi32(q[3]));
            s0 = _mm512_dpbusd_epi32(s0, w[4], _mm512_set1_epi32(q[4]));
            s1 = _mm512_dpbusd_epi32(s1, w[5], _mm512_set1_epi32(q[5]));
            s0 = _mm512_dpbusd_epi32(s0, w[6], _mm512_set1_epi32(q[6]));
            s1 = _mm512_dpbusd_epi32(s1, w[7], _mm512_set1_epi32(q[7]));
            __m512 sum = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
            acc[t] = _mm512_fmadd_ps(sum, _mm512_mul_ps(d, _mm512_set1_ps(x[t].d[b])), acc[t]);
            corr[t] = _mm512_fmadd_ps(d, _mm512_set1_ps(x[t].s32[b]), corr[t]);
        }
        return;
    }
    __m512i low[4], high[4];
    mm512_packed_nibbles(base, nibbles, low, high);
    __m512i l0 = low[0], l1 = low[1], l2 = low[2], l3 = low[3], h0 = high[0], h1 = high[1], h2 = high[2], h3 = high[3];
    __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)d16));
    __m512 m = has_min ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)m16)) : d;
    for (int t = 0; t < T; t++) {
        const int32_t *q = (const int32_t *)(x[t].q + 32 * b);
        // Two chains of four so consecutive vpdpbusd do not wait on each other.
        __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), l0, _mm512_set1_epi32(q[0]));
        __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), h0, _mm512_set1_epi32(q[4]));
        s0 = _mm512_dpbusd_epi32(s0, l1, _mm512_set1_epi32(q[1]));
        s1 = _mm512_dpbusd_epi32(s1, h1, _mm512_set1_epi32(q[5]));
        s0 = _mm512_dpbusd_epi32(s0, l2, _mm512_set1_epi32(q[2]));
        s1 = _mm512_dpbusd_epi32(s1, h2, _mm512_set1_epi32(q[6]));
        s0 = _mm512_dpbusd_epi32(s0, l3, _mm512_set1_epi32(q[3]));
        s1 = _mm512_dpbusd_epi32(s1, h3, _mm512_set1_epi32(q[7]));
        __m512 sum = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
        acc[t] = _mm512_fmadd_ps(sum, _mm512_mul_ps(d, _mm512_set1_ps(x[t].d[b])), acc[t]);
        corr[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(x[t].s32[b]), corr[t]);
    }
}

/// The 16 rows of one packed group against `T` activation rows: result[16 t + r].
MM_AVX512 static inline __attribute__((always_inline)) void
mm512_packed_group(uint32_t base, const uint8_t *group, size_t blocks, const mm_a32_row *x, int T, float *result) {
    int has_min = base == MM_Q4_1;
    size_t pair_bytes = mm_packed_pair_bytes(base), q = mm_packed_quant_bytes(base);
    __m512 acc0[4], acc1[4], corr[4];
    for (int t = 0; t < T; t++) acc0[t] = acc1[t] = corr[t] = _mm512_setzero_ps();
    const uint8_t *unit = group;
    size_t b = 0;
    for (; b + 2 <= blocks; b += 2, unit += pair_bytes) {
        for (size_t line = 0; line < pair_bytes; line += 64) _mm_prefetch((const char *)(unit + MM_PACKED_PREFETCH + line), _MM_HINT_T0);
        // Blocks b and b + 1 go to separate accumulators (two FMA chains).
        mm512_packed_block(base, unit, unit + 2 * q, unit + 2 * q + 64, x, b, T, acc0, corr);
        mm512_packed_block(base, unit + q, unit + 2 * q + 32, unit + 2 * q + 96, x, b + 1, T, acc1, corr);
    }
    if (b < blocks) mm512_packed_block(base, unit, unit + q, unit + q + 32, x, b, T, acc0, corr);
    for (int t = 0; t < T; t++) {
        __m512 sum = _mm512_add_ps(acc0[t], acc1[t]);
        sum = has_min ? _mm512_add_ps(sum, corr[t])
                      : _mm512_fmadd_ps(corr[t], _mm512_set1_ps(mm_packed_offset_ratio(base)), sum);
        _mm512_storeu_ps(result + 16 * t, sum);
    }
}

/// The 16 rows of one packed Q4_K group against `T` activation rows: result[16 t + r]. Per
/// sub-block s the integer dot products are scaled by scale_s * d_x (per row, per token); per
/// super-block the sums meet d and the min terms min_s * (d_x * sum q) meet dmin.
MM_AVX512 static inline __attribute__((always_inline)) void
mm512_packed_k4_group(const uint8_t *group, size_t supers, const mm_a32_row *x, int T, float *result) {
    const __m512i mask = _mm512_set1_epi8(0x0F);
    __m512 acc[4], corr[4];
    for (int t = 0; t < T; t++) acc[t] = corr[t] = _mm512_setzero_ps();
    for (size_t g = 0; g < supers; g++) {
        const uint8_t *super = group + g * MM_PACKED_K4_BYTES;
        for (size_t line = 0; line < MM_PACKED_K4_BYTES; line += 64)
            _mm_prefetch((const char *)(super + MM_PACKED_PREFETCH + line), _MM_HINT_T0);
        __m512 scaled[4][2], mins[4];
        for (int t = 0; t < T; t++) scaled[t][0] = scaled[t][1] = mins[t] = _mm512_setzero_ps();
        for (int c = 0; c < 4; c++) {
            __m512i low[8], high[8];
            for (int j = 0; j < 8; j++) {
                __m512i w = _mm512_loadu_si512((const void *)(super + 512 * c + 64 * j));
                low[j] = _mm512_and_si512(w, mask);
                high[j] = _mm512_and_si512(_mm512_srli_epi16(w, 4), mask);
            }
            for (int half = 0; half < 2; half++) {
                int s = 2 * c + half;
                __m512i *u = half ? high : low;
                __m512 scale = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(super + 2112 + 16 * s))));
                __m512 min = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(super + 2240 + 16 * s))));
                size_t block = 8 * g + (size_t)s;
                for (int t = 0; t < T; t++) {
                    const int32_t *q = (const int32_t *)(x[t].q + 32 * block);
                    __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[0], _mm512_set1_epi32(q[0]));
                    __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[1], _mm512_set1_epi32(q[1]));
                    s0 = _mm512_dpbusd_epi32(s0, u[2], _mm512_set1_epi32(q[2]));
                    s1 = _mm512_dpbusd_epi32(s1, u[3], _mm512_set1_epi32(q[3]));
                    s0 = _mm512_dpbusd_epi32(s0, u[4], _mm512_set1_epi32(q[4]));
                    s1 = _mm512_dpbusd_epi32(s1, u[5], _mm512_set1_epi32(q[5]));
                    s0 = _mm512_dpbusd_epi32(s0, u[6], _mm512_set1_epi32(q[6]));
                    s1 = _mm512_dpbusd_epi32(s1, u[7], _mm512_set1_epi32(q[7]));
                    __m512 sum = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
                    scaled[t][half] = _mm512_fmadd_ps(sum, _mm512_mul_ps(scale, _mm512_set1_ps(x[t].d[block])), scaled[t][half]);
                    mins[t] = _mm512_fmadd_ps(min, _mm512_set1_ps(x[t].s32[block]), mins[t]);
                }
            }
        }
        __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(super + 2048)));
        __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(super + 2080)));
        for (int t = 0; t < T; t++) {
            acc[t] = _mm512_fmadd_ps(d, _mm512_add_ps(scaled[t][0], scaled[t][1]), acc[t]);
            corr[t] = _mm512_fmadd_ps(dmin, mins[t], corr[t]);
        }
    }
    for (int t = 0; t < T; t++) _mm512_storeu_ps(result + 16 * t, _mm512_sub_ps(acc[t], corr[t]));
}

MM_AVX512 void mm_packed_rows_avx512(const energon_matmul_job *job, size_t row_begin, size_t row_end) {
    uint32_t base = mm_packed_base(job->dtype);
    size_t in = job->in, blocks = in / 32, group_bytes = mm_packed_group_bytes(base, in);
    size_t stride = energon_matmul_quantized_row_bytes(in);
    // Row groups outside, token groups inside: a group's bytes (16 rows, 9-35 KiB for the model
    // shapes here) come from memory once and stay in L1/L2 for every further 4 tokens, so a batch
    // of 8-39 tokens reads the weight from DRAM once instead of once per 4 tokens.
    for (size_t g = row_begin / ENERGON_MATMUL_PACK_ROWS; g * ENERGON_MATMUL_PACK_ROWS < row_end; g++) {
        const uint8_t *group = job->weight + g * group_bytes;
        for (size_t t0 = 0; t0 < job->tokens; t0 += 4) {
            int count = (int)(job->tokens - t0 < 4 ? job->tokens - t0 : 4);
            mm_a32_row x[4];
            for (int t = 0; t < count; t++) x[t] = mm_a32_view(job->quantized + (t0 + (size_t)t) * stride, in);
            float result[4 * ENERGON_MATMUL_PACK_ROWS];
            // Constant (format, token count) pairs so the loops above unroll and stay in registers.
            switch ((base == MM_Q4_1 ? 4 : base == MM_Q8_0 ? 8 : base == MM_Q5_0 ? 12 : base == MM_Q4_K ? 16 : 0) + count - 1) {
            case 0: mm512_packed_group(MM_Q4_0, group, blocks, x, 1, result); break;
            case 1: mm512_packed_group(MM_Q4_0, group, blocks, x, 2, result); break;
            case 2: mm512_packed_group(MM_Q4_0, group, blocks, x, 3, result); break;
            case 3: mm512_packed_group(MM_Q4_0, group, blocks, x, 4, result); break;
            case 4: mm512_packed_group(MM_Q4_1, group, blocks, x, 1, result); break;
            case 5: mm512_packed_group(MM_Q4_1, group, blocks, x, 2, result); break;
            case 6: mm512_packed_group(MM_Q4_1, group, blocks, x, 3, result); break;
            case 7: mm512_packed_group(MM_Q4_1, group, blocks, x, 4, result); break;
            case 8: mm512_packed_group(MM_Q8_0, group, blocks, x, 1, result); break;
            case 9: mm512_packed_group(MM_Q8_0, group, blocks, x, 2, result); break;
            case 10: mm512_packed_group(MM_Q8_0, group, blocks, x, 3, result); break;
            case 11: mm512_packed_group(MM_Q8_0, group, blocks, x, 4, result); break;
            case 12: mm512_packed_group(MM_Q5_0, group, blocks, x, 1, result); break;
            case 13: mm512_packed_group(MM_Q5_0, group, blocks, x, 2, result); break;
            case 14: mm512_packed_group(MM_Q5_0, group, blocks, x, 3, result); break;
            case 15: mm512_packed_group(MM_Q5_0, group, blocks, x, 4, result); break;
            case 16: mm512_packed_k4_group(group, in / 256, x, 1, result); break;
            case 17: mm512_packed_k4_group(group, in / 256, x, 2, result); break;
            case 18: mm512_packed_k4_group(group, in / 256, x, 3, result); break;
            default: mm512_packed_k4_group(group, in / 256, x, 4, result); break;
            }
            size_t first = g * ENERGON_MATMUL_PACK_ROWS;
            size_t low = row_begin > first ? row_begin : first;
            size_t high = row_end < first + ENERGON_MATMUL_PACK_ROWS ? row_end : first + ENERGON_MATMUL_PACK_ROWS;
            for (int t = 0; t < count; t++) {
                float *out = job->output + (t0 + (size_t)t) * job->output_stride;
                if (low == first && high == first + ENERGON_MATMUL_PACK_ROWS) {
                    _mm512_storeu_ps(out + first, _mm512_loadu_ps(result + 16 * t));
                } else {
                    for (size_t o = low; o < high; o++) out[o] = result[16 * t + (o - first)];
                }
            }
        }
    }
}

#endif
