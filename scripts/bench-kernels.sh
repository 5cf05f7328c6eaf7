#!/usr/bin/env bash
# Reproduces the "Kernels" section of docs/BENCHMARKS.md: `energon bench-kernels` at 1 and 2
# threads, then llama.cpp's llama-bench (pp512) on SmolLM2-135M in the same weight formats, in the
# same run so both see the same machine state. llama.cpp comes from ../shared/tools/llamacpp-anchor.sh
# (override with LLAMACPP_ANCHOR=path); without it only Energon's figures are printed.
#
#   scripts/bench-kernels.sh [seconds-per-measurement]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-1}
swift build -c release --product energon >&2
uptime
for threads in 1 2; do
    .build/release/energon bench-kernels --threads "$threads" --seconds "$seconds"
done
anchor=${LLAMACPP_ANCHOR:-../shared/tools/llamacpp-anchor.sh}
if [[ -x $anchor ]] && bin=$("$anchor" 2>/dev/null) && models=$("$anchor" --models 2>/dev/null); then
    for format in Q8_0 Q4_0 Q4_1 F16; do
        "$bin/llama-bench" -m "$models/SmolLM2-135M-Instruct.$format.gguf" -t 1,2 -p 512 -n 0 -r 3 -o md 2>/dev/null |
            grep -E "pp512|model" || true
    done
else
    echo "llama.cpp anchor not available: skipping the llama-bench comparison" >&2
fi
uptime
