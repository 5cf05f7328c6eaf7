// Weight allocations on transparent huge pages (see energon_memory.h for why).
#include "energon_memory.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#define ENERGON_HUGE_PAGE ((size_t)2 << 20)

/// Whether an allocation of `bytes` gets a huge-page-aligned mapping of its own.
static int energon_weights_are_mapped(size_t bytes) {
#if defined(__linux__)
    return bytes >= ENERGON_HUGE_PAGE;
#else
    (void)bytes;
    return 0;
#endif
}

void *energon_alloc_weights(size_t bytes) {
    if (bytes == 0) bytes = 1;
#if defined(__linux__)
    if (energon_weights_are_mapped(bytes)) {
        // Map one extra huge page so an aligned start exists, then unmap the slack on both sides:
        // the kernel can only back 2 MiB-aligned 2 MiB ranges with huge pages.
        size_t rounded = (bytes + ENERGON_HUGE_PAGE - 1) & ~(ENERGON_HUGE_PAGE - 1);
        size_t span = rounded + ENERGON_HUGE_PAGE;
        void *mapping = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mapping == MAP_FAILED) return NULL;
        uintptr_t start = ((uintptr_t)mapping + ENERGON_HUGE_PAGE - 1) & ~(uintptr_t)(ENERGON_HUGE_PAGE - 1);
        size_t head = start - (uintptr_t)mapping;
        if (head > 0) munmap(mapping, head);
        size_t tail = span - head - rounded;
        if (tail > 0) munmap((void *)(start + rounded), tail);
        // Advice only: without THP (or with it disabled) the memory is ordinary pages.
        (void)madvise((void *)start, rounded, MADV_HUGEPAGE);
        return (void *)start;
    }
#endif
    void *pointer = NULL;
    size_t padded = (bytes + 63) & ~(size_t)63;
    if (posix_memalign(&pointer, 64, padded) != 0) return NULL;
    memset(pointer, 0, padded);
    return pointer;
}

void energon_free_weights(void *pointer, size_t bytes) {
    if (pointer == NULL) return;
    if (bytes == 0) bytes = 1;
#if defined(__linux__)
    if (energon_weights_are_mapped(bytes)) {
        size_t rounded = (bytes + ENERGON_HUGE_PAGE - 1) & ~(ENERGON_HUGE_PAGE - 1);
        munmap(pointer, rounded);
        return;
    }
#endif
    free(pointer);
}
