#!/usr/bin/env python3
"""Perplexity of a GGUF model computed by Hugging Face transformers (PyTorch, fp32, weights
dequantized from the GGUF) with llama.cpp's chunking: an independent reference that has no
activation quantization and no f16 KV cache.

    python3 scripts/hf_perplexity.py MODEL.gguf TOKENS.txt [--context 512] [--chunks 4] [--bos ID]

TOKENS.txt holds the text's token ids, space-separated (e.g. `energon tokenize --model MODEL.gguf
--file TEXT --no-special`, which equals llama-tokenize's ids).
"""
import argparse
import math
import os

import torch
from transformers import AutoModelForCausalLM


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("tokens")
    p.add_argument("--context", type=int, default=512)
    p.add_argument("--chunks", type=int, default=4)
    p.add_argument("--bos", type=int, default=None, help="replace each chunk's first token by this id")
    a = p.parse_args()
    ids = [int(t) for t in open(a.tokens).read().split()]
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(a.model)),
                                                 gguf_file=os.path.basename(a.model), torch_dtype=torch.float32)
    model.eval()
    first = a.context // 2
    nll, count = 0.0, 0
    with torch.no_grad():
        for chunk in range(min(a.chunks, len(ids) // a.context)):
            x = ids[chunk * a.context:(chunk + 1) * a.context]
            if a.bos is not None:
                x[0] = a.bos
            logits = model(torch.tensor([x])).logits[0].double()
            logp = torch.log_softmax(logits, dim=-1)
            for j in range(first, a.context - 1):
                nll -= logp[j, x[j + 1]].item()
                count += 1
            print(f"[{chunk + 1}] {math.exp(nll / count):.4f}", flush=True)
    print(f"perplexity: {math.exp(nll / count):.4f}")


if __name__ == "__main__":
    main()
