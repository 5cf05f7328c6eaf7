#!/usr/bin/env python3
"""Writes a sparse multi-GB GGUF shaped like an 8B Llama (Q4_K weights, 128k-token vocabulary)
with the `gguf` package, for timing `energon inspect --time-open` (opening must not read weights).
The tensor data is a hole (zero bytes, no disk blocks).

    python3 scripts/make_sparse_gguf.py /tmp/sparse-8b.gguf
"""
import sys

import numpy as np
import gguf


def main() -> None:
    path = sys.argv[1]
    hidden, ffn, layers, vocab, kv = 4096, 14336, 32, 128256, 1024
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_block_count(layers)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(32)
    writer.add_head_count_kv(8)
    writer.add_context_length(8192)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(500000.0)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"token{i}" for i in range(vocab)])
    writer.add_token_types([1] * vocab)
    writer.add_token_merges([f"a{i} b{i}" for i in range(280000)])
    q4k = gguf.GGMLQuantizationType.Q4_K

    def add(name, rows, columns, qtype=q4k):
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        # With raw_dtype, gguf-py takes the shape in bytes: (rows, bytes per row).
        writer.add_tensor_info(name, (rows, columns // block * size), np.dtype(np.uint8), rows * columns // block * size, raw_dtype=qtype)

    add("token_embd.weight", vocab, hidden)
    add("output.weight", vocab, hidden)
    writer.add_tensor_info("output_norm.weight", (hidden,), np.dtype(np.float32), hidden * 4)
    for layer in range(layers):
        add(f"blk.{layer}.attn_q.weight", hidden, hidden)
        add(f"blk.{layer}.attn_k.weight", kv, hidden)
        add(f"blk.{layer}.attn_v.weight", kv, hidden)
        add(f"blk.{layer}.attn_output.weight", hidden, hidden)
        add(f"blk.{layer}.ffn_gate.weight", ffn, hidden)
        add(f"blk.{layer}.ffn_up.weight", ffn, hidden)
        add(f"blk.{layer}.ffn_down.weight", hidden, ffn)
        for norm in ("attn_norm", "ffn_norm"):
            writer.add_tensor_info(f"blk.{layer}.{norm}.weight", (hidden,), np.dtype(np.float32), hidden * 4)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    end = writer.fout[0].tell()
    writer.close()
    total = end
    reader_alignment = 32
    total = (total + reader_alignment - 1) // reader_alignment * reader_alignment
    sizes = []
    for tensors in writer.tensors:
        for info in tensors.values():
            sizes.append((info.nbytes + reader_alignment - 1) // reader_alignment * reader_alignment)
    with open(path, "r+b") as f:
        f.truncate(total + sum(sizes))
    print(path, total + sum(sizes), "bytes")


if __name__ == "__main__":
    main()
