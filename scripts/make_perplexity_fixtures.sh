#!/usr/bin/env bash
# Reference perplexities from llama.cpp's llama-perplexity (the oracle), for the real-model tests
# (Tests/EnergonModelsTests/Fixtures/perplexity.json): GPL-3 text, 512-token chunks, first 4 chunks.
set -euo pipefail
bin=$(../shared/tools/llamacpp-anchor.sh)
models=$(../shared/tools/llamacpp-anchor.sh --models)
text=/usr/share/common-licenses/GPL-3
out=Tests/EnergonModelsTests/Fixtures/perplexity.json
{
  echo '{"text": "/usr/share/common-licenses/GPL-3", "context": 512, "chunks": 4, "llama_cpp": "0.3.36 (llama-cpp-python sdist)", "perplexity": {'
  first=1
  for f in SmolLM2-135M-Instruct.Q4_1 SmolLM2-135M-Instruct.Q8_0 SmolLM2-135M-Instruct.F16 SmolLM2-135M-Instruct.F32 \
           SmolLM2-135M-Instruct.Q4_0 gemma-3-270m-q4_k_m; do
    ppl=$("$bin/llama-perplexity" -m "$models/$f.gguf" -f "$text" -c 512 --chunks 4 -t 2 2>&1 |
          sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
    [[ $first == 1 ]] || echo ','
    first=0
    printf '  "%s.gguf": %s' "$f" "$ppl"
  done
  echo '}}'
} > "$out"
cat "$out"
