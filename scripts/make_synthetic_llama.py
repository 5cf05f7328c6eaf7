#!/usr/bin/env python3
"""Writes a Llama-shape GGUF with random Q8_0 weights and SmolLM2's tokenizer, for speed
measurements where compute dominates (docs/BENCHMARKS.md, "Parallel runtime over MPI"). Its text
is noise; only its shape matters.

  python3 scripts/make_synthetic_llama.py SMOLLM2.gguf OUT.gguf [--hidden 2048 --layers 8
      --heads 16 --kv-heads 4 --intermediate 5632]

Defaults: ~560 M parameters (~600 MB in Q8_0), head dimension 128, SmolLM2's 49 152 tokens.
"""
import argparse
import os

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import quantize


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("tokenizer_source")
    parser.add_argument("output")
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    reader = GGUFReader(args.tokenizer_source)
    vocabulary = len(reader.fields["tokenizer.ggml.tokens"].data)
    head_dim = args.hidden // args.heads
    rng = np.random.default_rng(args.seed)

    writer = GGUFWriter(args.output + ".tmp", "llama")
    writer.add_name(f"synthetic-llama-{args.hidden}x{args.layers}")
    writer.add_context_length(4096)
    writer.add_embedding_length(args.hidden)
    writer.add_block_count(args.layers)
    writer.add_feed_forward_length(args.intermediate)
    writer.add_head_count(args.heads)
    writer.add_head_count_kv(args.kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(7)  # mostly Q8_0
    for name, field in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        writer.add_key_value(name, field.contents(), vtype, field.types[-1] if vtype == GGUFValueType.ARRAY else None)

    def q8(name, rows, columns, scale):
        # Small random weights keep activations finite through the layers; the values are noise.
        data = (rng.standard_normal((rows, columns), dtype=np.float32) * scale).astype(np.float32)
        writer.add_tensor(name, quantize(data, GGMLQuantizationType.Q8_0), raw_shape=(rows, columns * 34 // 32),
                          raw_dtype=GGMLQuantizationType.Q8_0)

    def ones(name, count):
        writer.add_tensor(name, np.ones(count, dtype=np.float32))

    h, kv = args.hidden, args.kv_heads * head_dim
    q8("token_embd.weight", vocabulary, h, 0.02)
    for layer in range(args.layers):
        prefix = f"blk.{layer}."
        ones(prefix + "attn_norm.weight", h)
        q8(prefix + "attn_q.weight", h, h, h ** -0.5)
        q8(prefix + "attn_k.weight", kv, h, h ** -0.5)
        q8(prefix + "attn_v.weight", kv, h, h ** -0.5)
        q8(prefix + "attn_output.weight", h, h, h ** -0.5)
        ones(prefix + "ffn_norm.weight", h)
        q8(prefix + "ffn_gate.weight", args.intermediate, h, h ** -0.5)
        q8(prefix + "ffn_up.weight", args.intermediate, h, h ** -0.5)
        q8(prefix + "ffn_down.weight", h, args.intermediate, args.intermediate ** -0.5)
    ones("output_norm.weight", h)
    q8("output.weight", vocabulary, h, h ** -0.5)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(args.output + ".tmp", args.output)


if __name__ == "__main__":
    main()
