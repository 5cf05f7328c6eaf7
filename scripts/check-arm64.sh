#!/usr/bin/env bash
# Compiles every C kernel for aarch64 Linux (syntax and types, no code generation), with the host's
# glibc headers standing in for an arm64 sysroot: shows that the portable paths build on arm64
# (x86 code is behind `#if defined(__x86_64__)`). Warnings about pointer/uintptr_t sizes come
# from the x86 glibc headers seen without __x86_64__, not from the kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
clang=$(dirname "$(readlink -f "$(command -v swift)")")/clang
stubs=$(mktemp -d)
trap 'rm -rf "$stubs"' EXIT
mkdir -p "$stubs/gnu" && touch "$stubs/gnu/stubs-32.h"
status=0
for file in Sources/CEnergonKernels/*.c; do
    "$clang" --target=aarch64-linux-gnu -fsyntax-only -Wno-void-pointer-to-int-cast -Wno-int-to-void-pointer-cast -ISources/CEnergonKernels/include \
        -isystem "$stubs" -isystem /usr/include -isystem /usr/include/x86_64-linux-gnu "$file" || status=1
done
[[ $status == 0 ]] && echo "all $(ls Sources/CEnergonKernels/*.c | wc -l) kernel files compile for aarch64-linux-gnu"
exit $status
