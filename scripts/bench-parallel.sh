#!/usr/bin/env bash
# Reproduces the "Parallel runtime (in-process)" section of docs/BENCHMARKS.md (issue 5): on
# SmolLM2-135M (Q4_1) and on a synthetic 1.2B-parameter Llama-shape model (Q8_0, random weights,
# written once by `energon make-synthetic`):
#   - `energon bench` (prompt and generation speed) at 1 rank × 2 threads, tp 2 (2 ranks × 1
#     thread) and pp 2 (2 stages × 1 thread), and the tp 2 / serial ratio (goal ≥ 0.9×);
#   - `energon bench-parallel` at tp 2: per-token milliseconds each rank spends inside
#     collectives (communication, waiting for the peer included) and outside them (compute).
# The machine is shared: the load average is printed before and after; run it in a quiet window.
#
#   scripts/bench-parallel.sh            # PROMPT=128 GEN=32 REPS=3 by default
set -euo pipefail
cd "$(dirname "$0")/.."
prompt=${PROMPT:-128}
gen=${GEN:-32}
reps=${REPS:-3}
swift build -c release ${SWIFT_TRAITS:+--traits $SWIFT_TRAITS} --product energon >&2
energon=.build/release/energon

find_model() {
    for folder in ${ENERGON_MODELS_DIR:-} models "$HOME/.cache/energon-anchor/models"; do
        if [[ -n $folder && -f $folder/$1 ]]; then echo "$folder/$1"; return; fi
    done
    echo "missing $1: run scripts/fetch_models.sh" >&2
    exit 1
}
smol=$(find_model SmolLM2-135M-Instruct.Q4_1.gguf)
synthetic=models/synthetic-llama-1.2b.Q8_0.gguf
if [[ ! -f $synthetic ]]; then
    mkdir -p models
    $energon make-synthetic --output "$synthetic" --tokenizer-from "$smol" --format q8_0 >&2
fi

# The tokens/s of test $2 (pp128, tg32) in the markdown table of `energon bench` output $1.
rate() { awk -F'|' -v test="$2" '$4 ~ test { split($5, a, " "); print a[1] }' <<<"$1"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs"
for model in "$smol" "$synthetic"; do
    echo
    echo "## $(basename "$model")"
    serial=$($energon bench --model "$model" --threads 2 --prompt-tokens "$prompt" --gen-tokens "$gen" --repetitions "$reps")
    tensor=$($energon bench --model "$model" --threads 1 --tp 2 --prompt-tokens "$prompt" --gen-tokens "$gen" --repetitions "$reps")
    pipeline=$($energon bench --model "$model" --threads 1 --pp 2 --prompt-tokens "$prompt" --gen-tokens "$gen" --repetitions "$reps")
    echo "| grid | pp$prompt tokens/s | tg$gen tokens/s |"
    echo "| --- | ---: | ---: |"
    for row in "1 rank × 2 threads:$serial" "tp 2 (2 ranks × 1 thread):$tensor" "pp 2 (2 stages × 1 thread):$pipeline"; do
        echo "| ${row%%:*} | $(rate "${row#*:}" "pp$prompt") | $(rate "${row#*:}" "tg$gen") |"
    done
    awk -v ps="$(rate "$serial" "pp$prompt")" -v pt="$(rate "$tensor" "pp$prompt")" \
        -v gs="$(rate "$serial" "tg$gen")" -v gt="$(rate "$tensor" "tg$gen")" \
        'BEGIN { printf "tp 2 / (1 rank × 2 threads): prompt %.2f×, generation %.2f× (goal ≥ 0.9×)\n", pt / ps, gt / gs }'
    echo
    $energon bench-parallel --model "$model" --threads 1 --tp 2 --prompt-tokens 32 --gen-tokens "$gen" --repetitions "$reps"
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
