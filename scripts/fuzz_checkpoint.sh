#!/usr/bin/env bash
# Fuzzes the checkpoint parsers with libFuzzer + AddressSanitizer.
#   scripts/fuzz_checkpoint.sh [SECONDS] [JOBS]    (default 300 s, 1 job)
# Builds .build/fuzz/fuzz-checkpoint from fuzz/FuzzCheckpoint.swift, the EnergonCheckpoint sources
# and EnergonCore's DType.swift/Tensor.swift compiled as one module (so no package changes and no C
# kernels are needed), seeds .build/fuzz/corpus from the committed fixtures, and runs. Crashes land
# in .build/fuzz/crash-*; see docs/CHECKPOINTS.md for what earlier runs found.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-300}
jobs=${2:-1}
out=$root/.build/fuzz
src=$out/src
rm -rf "$src" && mkdir -p "$src" "$out/corpus"
# One module: drop the `import EnergonCore` lines of the checkpoint sources.
for file in "$root"/Sources/EnergonCheckpoint/*.swift; do
  grep -v '^import EnergonCore$' "$file" > "$src/$(basename "$file")"
done
cp "$root/Sources/EnergonCore/DType.swift" "$root/Sources/EnergonCore/Tensor.swift" "$root/fuzz/FuzzCheckpoint.swift" "$src/"
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name FuzzCheckpoint "$src"/*.swift -o "$out/fuzz-checkpoint"
# Seeds: every fixture file (GGUF, safetensors, JSON), each also cut short.
find "$root/Tests/EnergonCheckpointTests/Fixtures" -type f \( -name '*.gguf' -o -name '*.safetensors' -o -name '*.json' \) -size -64k |
while read -r file; do
  name=$(echo "$file" | sed "s|$root/Tests/EnergonCheckpointTests/Fixtures/||; s|/|_|g")
  cp "$file" "$out/corpus/$name"
done
cd "$out"
./fuzz-checkpoint corpus -max_total_time="$seconds" -jobs="$jobs" -workers="$jobs" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -25
