// Packed weight layouts (see energon_matmul.h and matmul_internal.h): packing at load time,
// unpacking back to the base format, and the dispatch of packed jobs. The fast packed kernel is
// in matmul_packed_avx512.c; every other level (and the prefill GEMM) unpacks a few rows at a
// time into scratch and runs the base format's kernels on them, so results are the same.
#include "matmul_internal.h"

#if defined(__linux__)
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

int energon_matmul_packable(uint32_t dtype) {
    return dtype == MM_Q4_0 || dtype == MM_Q4_1 || dtype == MM_Q5_0 || dtype == MM_Q8_0 || dtype == MM_Q4_K;
}

size_t energon_matmul_packed_bytes(uint32_t dtype, size_t rows, size_t in) {
    if (!energon_matmul_packable(dtype) || in % mm_group_size(dtype) != 0) return 0;
    size_t groups = rows / ENERGON_MATMUL_PACK_ROWS, tail = rows % ENERGON_MATMUL_PACK_ROWS;
    return groups * mm_packed_group_bytes(dtype, in) + tail * (in / mm_group_size(dtype)) * mm_group_bytes(dtype);
}

/// Row `r` of Q4_K super-block `g` of a packed group, to or from a stored 144-byte block.
static void mm_packed_copy_k4(uint8_t *group, size_t g, size_t r, uint8_t *block, int to_packed) {
    uint8_t *super = group + g * MM_PACKED_K4_BYTES;
    uint8_t *d = super + 2048, *dmin = super + 2080, *scale = super + 2112, *min = super + 2240;
    uint8_t *packed_scales = block + 4, *qs = block + 16;
    if (to_packed) {
        memcpy(d + 2 * r, block, 2);
        memcpy(dmin + 2 * r, block + 2, 2);
        uint64_t scales, mins;
        mm_k4_unpack(packed_scales, &scales, &mins);
        for (int s = 0; s < 8; s++) {
            scale[16 * s + r] = (uint8_t)(scales >> (8 * s));
            min[16 * s + r] = (uint8_t)(mins >> (8 * s));
        }
        for (int c = 0; c < 4; c++)
            for (int j = 0; j < 8; j++) memcpy(super + 512 * c + 64 * j + 4 * r, qs + 32 * c + 4 * j, 4);
    } else {
        memcpy(block, d + 2 * r, 2);
        memcpy(block + 2, dmin + 2 * r, 2);
        // The inverse of mm_k4_unpack: every bit of the 12 bytes is a scale or min bit.
        for (int j = 0; j < 4; j++) {
            uint8_t sc_low = scale[16 * j + r], m_low = min[16 * j + r];
            uint8_t sc_high = scale[16 * (j + 4) + r], m_high = min[16 * (j + 4) + r];
            packed_scales[j] = (uint8_t)((sc_low & 63) | ((sc_high >> 4) << 6));
            packed_scales[j + 4] = (uint8_t)((m_low & 63) | ((m_high >> 4) << 6));
            packed_scales[j + 8] = (uint8_t)((sc_high & 0xF) | ((m_high & 0xF) << 4));
        }
        for (int c = 0; c < 4; c++)
            for (int j = 0; j < 8; j++) memcpy(qs + 32 * c + 4 * j, super + 512 * c + 64 * j + 4 * r, 4);
    }
}

/// The bytes of row `r` (0..15) of block `b` in a packed group: its d (and m) fields and its 16
/// (nibble formats) or 32 (Q8_0) quant bytes, copied to or from a base-format block at `block` (`to_packed` chooses the direction).
static void mm_packed_copy_block(uint32_t base, uint8_t *group, size_t blocks, size_t b, size_t r, uint8_t *block,
                                 int to_packed) {
    if (base == MM_Q4_K) {
        mm_packed_copy_k4(group, b, r, block, to_packed);
        return;
    }
    const uint8_t *quants_c, *d_c, *m_c;
    mm_packed_block(base, group, blocks, b, &quants_c, &d_c, &m_c);
    uint8_t *quants = (uint8_t *)quants_c, *d = (uint8_t *)d_c, *m = (uint8_t *)m_c;
    int has_min = base == MM_Q4_1, fifth = base == MM_Q5_0;
    uint8_t *qs = block + (has_min ? 4 : fifth ? 6 : 2);
    int words = base == MM_Q8_0 ? 8 : 4;
    uint8_t *high = quants + 256 + 4 * r;  // Q5_0: this row's 4 bytes of fifth bits
    if (to_packed) {
        memcpy(d + 2 * r, block, 2);
        if (has_min) memcpy(m + 2 * r, block + 2, 2);
        for (int j = 0; j < words; j++) memcpy(quants + 64 * j + 4 * r, qs + 4 * j, 4);
        if (fifth) {
            uint32_t qh = mm_load_u32(block + 2);
            for (int k = 0; k < 4; k++) {
                uint8_t bits = 0;
                for (int j = 0; j < 4; j++)
                    bits |= (uint8_t)((((qh >> (4 * j + k)) & 1) << j) | (((qh >> (16 + 4 * j + k)) & 1) << (4 + j)));
                high[k] = bits;
            }
        }
    } else {
        memcpy(block, d + 2 * r, 2);
        if (has_min) memcpy(block + 2, m + 2 * r, 2);
        for (int j = 0; j < words; j++) memcpy(qs + 4 * j, quants + 64 * j + 4 * r, 4);
        if (fifth) {
            uint32_t qh = 0;
            for (int k = 0; k < 4; k++)
                for (int j = 0; j < 4; j++)
                    qh |= (uint32_t)((high[k] >> j) & 1) << (4 * j + k) | (uint32_t)((high[k] >> (4 + j)) & 1) << (16 + 4 * j + k);
            memcpy(block + 2, &qh, 4);
        }
    }
}

void energon_matmul_pack(uint32_t dtype, const uint8_t *weight, size_t rows, size_t in, uint8_t *destination) {
    if (!energon_matmul_packable(dtype) || in % mm_group_size(dtype) != 0) return;
    size_t blocks = in / mm_group_size(dtype), block_bytes = mm_group_bytes(dtype), row_bytes = blocks * block_bytes;
    size_t group_bytes = mm_packed_group_bytes(dtype, in), groups = rows / ENERGON_MATMUL_PACK_ROWS;
    for (size_t g = 0; g < groups; g++) {
        uint8_t *group = destination + g * group_bytes;
        memset(group, 0, group_bytes);  // the padding of a lone last block
        for (size_t r = 0; r < ENERGON_MATMUL_PACK_ROWS; r++) {
            const uint8_t *row = weight + (g * ENERGON_MATMUL_PACK_ROWS + r) * row_bytes;
            for (size_t b = 0; b < blocks; b++)
                mm_packed_copy_block(dtype, group, blocks, b, r, (uint8_t *)(row + b * block_bytes), 1);
        }
    }
    size_t tail = rows - groups * ENERGON_MATMUL_PACK_ROWS;
    memcpy(destination + groups * group_bytes, weight + groups * ENERGON_MATMUL_PACK_ROWS * row_bytes, tail * row_bytes);
}

void energon_matmul_unpack_rows(uint32_t dtype, const uint8_t *packed, size_t rows, size_t in, size_t first,
                                size_t count, uint8_t *destination) {
    if (!energon_matmul_packable(dtype) || in % mm_group_size(dtype) != 0) return;
    size_t blocks = in / mm_group_size(dtype), block_bytes = mm_group_bytes(dtype), row_bytes = blocks * block_bytes;
    size_t group_bytes = mm_packed_group_bytes(dtype, in), groups = rows / ENERGON_MATMUL_PACK_ROWS;
    size_t full = groups * ENERGON_MATMUL_PACK_ROWS;
    for (size_t o = first; o < first + count && o < rows; o++) {
        uint8_t *row = destination + (o - first) * row_bytes;
        if (o >= full) {
            memcpy(row, packed + groups * group_bytes + (o - full) * row_bytes, row_bytes);
            continue;
        }
        uint8_t *group = (uint8_t *)packed + (o / ENERGON_MATMUL_PACK_ROWS) * group_bytes;
        for (size_t b = 0; b < blocks; b++)
            mm_packed_copy_block(dtype, group, blocks, b, o % ENERGON_MATMUL_PACK_ROWS, row + b * block_bytes, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch of packed jobs

// Rows unpacked at a time for the GEMM (its row block: each unpacked chunk is one GEMM call
// that streams every token past it) and for the row kernels of the other levels.
#define MM_UNPACK_ROWS_GEMM 64
#define MM_UNPACK_ROWS_MATVEC 16

/// The job over unpacked rows that the packed rows [first, first + count) turn into.
static energon_matmul_job mm_unpacked_job(const energon_matmul_job *job, const uint8_t *rows, size_t first, size_t count) {
    energon_matmul_job sub = *job;
    sub.dtype = mm_packed_base(job->dtype);
    sub.weight = rows;
    sub.rows = count;
    sub.output = job->output + first;
    return sub;
}

size_t mm_packed_scratch_bytes(const energon_matmul_job *job) {
    energon_matmul_job sub = mm_unpacked_job(job, job->weight, 0, MM_UNPACK_ROWS_GEMM);
    size_t inner = (energon_matmul_scratch_bytes(&sub) + 63) & ~(size_t)63;
    return inner + MM_UNPACK_ROWS_GEMM * job->row_bytes + 64;
}

void mm_packed_rows(const energon_matmul_job *job, size_t row_begin, size_t row_end, void *scratch) {
    uint32_t base = mm_packed_base(job->dtype);
    size_t groups = job->rows / ENERGON_MATMUL_PACK_ROWS, full = groups * ENERGON_MATMUL_PACK_ROWS;
    if (row_end > full) {
        // The last rows % 16 rows are stored in the base format after the groups.
        size_t from = row_begin > full ? row_begin : full;
        energon_matmul_job tail = mm_unpacked_job(job, job->weight + groups * mm_packed_group_bytes(base, job->in), full,
                                                  job->rows - full);
        energon_matmul_rows(&tail, from - full, row_end - full, scratch);
        row_end = full;
    }
    if (row_begin >= row_end) return;
    energon_matmul_job probe = mm_unpacked_job(job, job->weight, 0, job->rows);
    int gemm = mm_uses_gemm(&probe);
#if defined(__x86_64__)
    if (job->isa >= ENERGON_ISA_AVX512 && !gemm) {
        mm_packed_rows_avx512(job, row_begin, row_end);
        return;
    }
    if (gemm && row_begin % ENERGON_MATMUL_PACK_ROWS == 0 && row_end % ENERGON_MATMUL_PACK_ROWS == 0) {
        // Whole groups (the tail was split off above): the GEMM builds its panels straight
        // from the packed layout.
        mm_gemm_avx512(job, row_begin, row_end, scratch);
        return;
    }
#endif
    // Unpack a few rows into scratch and run the base format's kernels on them.
    size_t chunk = gemm ? MM_UNPACK_ROWS_GEMM : MM_UNPACK_ROWS_MATVEC;
    energon_matmul_job sizing = mm_unpacked_job(job, job->weight, 0, MM_UNPACK_ROWS_GEMM);
    size_t inner = (energon_matmul_scratch_bytes(&sizing) + 63) & ~(size_t)63;
    uint8_t *rows = (uint8_t *)(((uintptr_t)scratch + inner + 63) & ~(uintptr_t)63);
    for (size_t first = row_begin; first < row_end; first += chunk) {
        size_t count = row_end - first < chunk ? row_end - first : chunk;
        energon_matmul_unpack_rows(base, job->weight, job->rows, job->in, first, count, rows);
        energon_matmul_job sub = mm_unpacked_job(job, rows, first, count);
        energon_matmul_rows(&sub, 0, count, scratch);
    }
}

// ---------------------------------------------------------------------------------------------
// Releasing the pages of a weight that was copied

size_t energon_release_mapped_pages(const void *data, size_t bytes) {
#if defined(__linux__)
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || bytes == 0) return 0;
    uintptr_t start = ((uintptr_t)data + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t end = ((uintptr_t)data + bytes) & ~((uintptr_t)page - 1);
    if (end <= start) return 0;
    // Only a range inside one file-backed mapping (inode != 0) is dropped: its pages come back
    // from the file if read again, whereas dropping anonymous memory would zero it.
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps) return 0;
    char line[512];
    int file_backed = 0;
    while (fgets(line, sizeof line, maps)) {
        unsigned long low, high, offset, inode;
        char permissions[8], device[16];
        if (sscanf(line, "%lx-%lx %7s %lx %15s %lu", &low, &high, permissions, &offset, device, &inode) != 6) continue;
        if (low <= start && end <= high) {
            file_backed = inode != 0;
            break;
        }
    }
    fclose(maps);
    if (!file_backed) return 0;
    if (madvise((void *)start, end - start, MADV_DONTNEED) != 0) return 0;
    return end - start;
#else
    (void)data;
    (void)bytes;
    return 0;
#endif
}
