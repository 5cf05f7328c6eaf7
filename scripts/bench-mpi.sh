#!/usr/bin/env bash
# The parallel runtime over MPI against its baselines (docs/BENCHMARKS.md, "Parallel runtime over MPI"):
#   1. all-reduce latency: MPIProcessGroup vs a plain MPI_Allreduce loop (2 processes) vs
#      LocalProcessGroup (2 thread ranks), for 576 and 576 × 64 floats;
#   2. `energon bench` on SmolLM2: pp 2 over MPI (2 processes × 1 thread) vs pp 2 in process
#      (2 thread ranks × 1 thread) vs 1 rank × 2 threads, and tp 3 over MPI vs in process;
#   3. the same on a synthetic Llama-shape model where compute dominates (hidden 2048, 8 layers,
#      16 heads / 4 KV heads, MLP 5632, Q8_0, ~600 MB; written by scripts/make_synthetic_llama.py
#      from SmolLM2's tokenizer on first use): tp 2 and pp 2 over MPI vs in process vs 1 rank × 2 threads.
#
#   scripts/bench-mpi.sh [MODEL]
# Environment: ENERGON (binary, default .build/release/energon, built with `--traits MPI`),
# PROMPT_TOKENS (128), GEN_TOKENS (64), REPETITIONS (3), ITERATIONS (5000).
# Run it on a quiet machine: MPI ranks and compute threads busy-poll, so load skews everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
energon=${ENERGON:-.build/release/energon}
model=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
prompt=${PROMPT_TOKENS:-128}
gen=${GEN_TOKENS:-64}
reps=${REPETITIONS:-3}
iterations=${ITERATIONS:-5000}
export ENERGON_MPI_STATS=1  # rank 0 of MPI runs prints where its forward time went
mpirun=(mpirun --allow-run-as-root --oversubscribe -x ENERGON_MPI_STATS)
# The model rows leave placement to the kernel (${MPI_BIND:-none}): ranks bound to a core cannot move
# off a core other work holds, which halved their compute on a shared machine.
mpirun_models=("${mpirun[@]}" --bind-to "${MPI_BIND:-none}")

if [ ! -x "$energon" ]; then
  echo "no $energon: swift build -c release --traits MPI --product energon" >&2; exit 1
fi
if ! "${mpirun[@]}" -np 1 "$energon" mpi-collectives --iterations 10 --floats 1 >/dev/null 2>&1; then
  echo "$energon was built without MPI (or mpirun is missing): swift build -c release --traits MPI --product energon" >&2
  exit 1
fi

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "## all-reduce latency"
"${mpirun[@]}" -np 2 "$energon" mpi-collectives --floats 576 36864 --iterations "$iterations"
for floats in 576 36864; do
  "$energon" bench-sync --threads 2 --floats "$floats" --iterations "$iterations" | grep LocalProcessGroup
done
echo
echo "## energon bench $(basename "$model"), pp$prompt / tg$gen, $reps repetitions"
bench=(bench --model "$model" --prompt-tokens "$prompt" --gen-tokens "$gen" --repetitions "$reps" --json)
row() { # label, command... (MPI rows also print rank 0's time split, from ENERGON_MPI_STATS)
  local label=$1; shift
  local out err
  out=$(mktemp); err=$(mktemp)
  "$@" >"$out" 2>"$err" || { echo "| $label | failed: $(tail -1 "$err") | |"; rm -f "$out" "$err"; return; }
  local split
  split=$(grep -o 'mpi rank 0: .*' "$err" | sed 's/^mpi rank 0: [0-9]* forward passes, //' || true)
  python3 -c "import json,sys; o=json.loads(sys.argv[2]); print('| %s | %.1f ± %.1f | %.1f ± %.1f | %s |' % (sys.argv[1], o['prompt_tokens_per_second'], o['prompt_tokens_per_second_stddev'], o['generation_tokens_per_second'], o['generation_tokens_per_second_stddev'], sys.argv[3]))" "$label" "$(tail -1 "$out")" "$split"
  rm -f "$out" "$err"
}
echo "| layout | pp tokens/s | tg tokens/s | rank 0 per forward pass (all passes) |"
echo "|---|--:|--:|---|"
row "1 rank × 2 threads" "$energon" "${bench[@]}" --threads 2
row "1 rank × 1 thread" "$energon" "${bench[@]}" --threads 1
row "pp 2 in process (2 thread ranks × 1 thread)" "$energon" "${bench[@]}" --threads 1 --pp 2
row "pp 2 over MPI (2 processes × 1 thread)" "${mpirun_models[@]}" -np 2 "$energon" "${bench[@]}" --threads 1 --pp 2
row "tp 3 in process (3 thread ranks × 1 thread)" "$energon" "${bench[@]}" --threads 1 --tp 3
row "tp 3 over MPI (3 processes × 1 thread)" "${mpirun_models[@]}" -np 3 "$energon" "${bench[@]}" --threads 1 --tp 3
echo
synthetic=${SYNTHETIC:-models/synthetic-llama-2048x8.Q8_0.gguf}
if [ ! -f "$synthetic" ]; then
  python3 scripts/make_synthetic_llama.py "$model" "$synthetic"
fi
echo "## energon bench $(basename "$synthetic"), pp$prompt / tg$gen, $reps repetitions"
bench=(bench --model "$synthetic" --prompt-tokens "$prompt" --gen-tokens "$gen" --repetitions "$reps" --json)
echo "| layout | pp tokens/s | tg tokens/s | rank 0 per forward pass (all passes) |"
echo "|---|--:|--:|---|"
row "1 rank × 2 threads" "$energon" "${bench[@]}" --threads 2
row "tp 2 in process (2 thread ranks × 1 thread)" "$energon" "${bench[@]}" --threads 1 --tp 2
row "tp 2 over MPI (2 processes × 1 thread)" "${mpirun_models[@]}" -np 2 "$energon" "${bench[@]}" --threads 1 --tp 2
row "pp 2 in process (2 thread ranks × 1 thread)" "$energon" "${bench[@]}" --threads 1 --pp 2
row "pp 2 over MPI (2 processes × 1 thread)" "${mpirun_models[@]}" -np 2 "$energon" "${bench[@]}" --threads 1 --pp 2
echo
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
