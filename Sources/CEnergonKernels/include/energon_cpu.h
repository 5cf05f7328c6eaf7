// CPU feature detection and tiny helpers shared by every kernel file.
#ifndef ENERGON_CPU_H
#define ENERGON_CPU_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction-set levels the kernels are written for, best last. Every kernel has a
/// portable version; the x86 levels exist only on x86-64 builds.
typedef enum {
    ENERGON_ISA_PORTABLE = 0,   ///< plain C, any CPU (arm64 included)
    ENERGON_ISA_AVX2 = 1,       ///< AVX2 + FMA + F16C
    ENERGON_ISA_AVX512 = 2,     ///< AVX-512 F/BW/VL/DQ + VNNI (+ BF16 where present)
} energon_isa;

/// The best level this CPU supports (detected once, cached).
energon_isa energon_cpu_best_isa(void);

/// Whether the CPU has AVX512_BF16 (`vdpbf16ps`).
int energon_cpu_has_avx512bf16(void);

/// A short human-readable list of detected features, e.g. "avx2 fma f16c avx512f avx512vnni".
const char *energon_cpu_feature_string(void);

/// Spin-wait hint (`pause` on x86, `yield` on arm64).
static inline void energon_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#ifdef __cplusplus
}
#endif
#endif
