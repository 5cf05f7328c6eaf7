#include "energon_cpu.h"

#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
static int detect_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static int detect_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni");
}
#endif

energon_isa energon_cpu_best_isa(void) {
    static int cached = -1;
    if (cached >= 0) return (energon_isa)cached;
    int level = ENERGON_ISA_PORTABLE;
#if defined(__x86_64__) || defined(__i386__)
    if (detect_avx2()) level = ENERGON_ISA_AVX2;
    if (level == ENERGON_ISA_AVX2 && detect_avx512()) level = ENERGON_ISA_AVX512;
#endif
    cached = level;
    return (energon_isa)level;
}

int energon_cpu_has_avx512bf16(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return energon_cpu_best_isa() == ENERGON_ISA_AVX512 && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

const char *energon_cpu_feature_string(void) {
    static char buffer[256];
    if (buffer[0]) return buffer;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    const char *names[] = {"sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                           "avx512dq", "avx512vnni", "avx512bf16", "avx512vbmi"};
    int supported[] = {
        __builtin_cpu_supports("sse4.2"), __builtin_cpu_supports("avx"), __builtin_cpu_supports("avx2"),
        __builtin_cpu_supports("fma"), __builtin_cpu_supports("f16c"), __builtin_cpu_supports("avx512f"),
        __builtin_cpu_supports("avx512bw"), __builtin_cpu_supports("avx512vl"),
        __builtin_cpu_supports("avx512dq"), __builtin_cpu_supports("avx512vnni"),
        __builtin_cpu_supports("avx512bf16"), __builtin_cpu_supports("avx512vbmi")};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!supported[i]) continue;
        if (buffer[0]) strncat(buffer, " ", sizeof(buffer) - strlen(buffer) - 1);
        strncat(buffer, names[i], sizeof(buffer) - strlen(buffer) - 1);
    }
#else
    strncpy(buffer, "portable", sizeof(buffer) - 1);
#endif
    if (!buffer[0]) strncpy(buffer, "baseline", sizeof(buffer) - 1);
    return buffer;
}
