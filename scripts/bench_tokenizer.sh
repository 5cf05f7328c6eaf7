#!/usr/bin/env bash
# Encode throughput of Energon's tokenizers against the `tokenizers` PyPI package, on the same
# text and the same tokenizer (SmolLM2's tokenizer.json from scripts/fetch_models.sh), in one run.
# Also checks that both produce identical ids. Needs: python3 with `tokenizers`, a release build.
#
#   scripts/bench_tokenizer.sh [REPEATS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
repeats=${1:-5}
models=${ENERGON_MODELS_DIR:-$root/models}
scripts/fetch_models.sh "$models" >/dev/null
swift build -c release --product energon >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ~530 KB: Python's English reference documentation (pydoc topics, code included) followed by the
# multilingual fixture texts (scripts, emoji, whitespace runs) repeated 20 times.
python3 - "$work/text.txt" <<'PY'
import sys, pydoc_data.topics as topics
sys.path.insert(0, "scripts")
from tokenizer_fixture_texts import TEXTS
text = "\n\n".join(topics.topics[k] for k in sorted(topics.topics)) + "\n".join(TEXTS * 20)
open(sys.argv[1], "w", encoding="utf-8", newline="").write(text)
PY

for model in "$models/SmolLM2-135M-Instruct-hf" "$models/SmolLM2-135M-Instruct.Q4_1.gguf" "$models/gemma-3-270m-q4_k_m.gguf"; do
  printf '%-40s ' "energon $(basename "$model"):"
  .build/release/energon tokenize --model "$model" --file "$work/text.txt" --benchmark "$repeats" \
    2>&1 >"$work/ids-$(basename "$model").txt" | sed 's/^encode: //'
done

python3 - "$work" "$models/SmolLM2-135M-Instruct-hf/tokenizer.json" "$repeats" <<'PY'
import sys, time, tokenizers
work, path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
tok = tokenizers.Tokenizer.from_file(path)
text = open(work + "/text.txt", encoding="utf-8", newline="").read()
size = len(text.encode())
def best(fn):
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); result = fn(); times.append(time.perf_counter() - start)
    return min(times), result
seconds, encoding = best(lambda: tok.encode(text))
print(f"{'tokenizers ' + tokenizers.__version__ + ' encode(text):':40} {size} bytes -> {len(encoding.ids)} tokens, "
      f"best of {repeats}: {seconds:.4f} s, {size / seconds / 1e6:.2f} MB/s")
lines = text.split("\n")
seconds, _ = best(lambda: tok.encode_batch(lines))
print(f"{'tokenizers encode_batch(lines):':40} {len(lines)} lines, all cores, best of {repeats}: {seconds:.4f} s, "
      f"{size / seconds / 1e6:.2f} MB/s")
ours = list(map(int, open(work + "/ids-SmolLM2-135M-Instruct-hf.txt").read().split()))
print("identical ids (energon tokenizer.json vs tokenizers):", ours == encoding.ids)
PY
