#!/usr/bin/env python3
"""Writes tensor-less copies of a GGUF file's metadata with `tokenizer.ggml.pre` replaced, so the
pre-tokenizers llama.cpp has for other model families (gpt-2, llama3 / llama-bpe, qwen2, default)
can be checked against llama-tokenize on a real byte-level BPE vocabulary (SmolLM2's).

  python3 scripts/make_vocab_variants.py SOURCE.gguf OUT_DIR
writes OUT_DIR/SmolLM2-vocab-<pre>.gguf for each pre value.
"""
import os
import sys

from gguf import GGUFReader, GGUFValueType, GGUFWriter

PRE_VALUES = ["gpt-2", "llama-bpe", "qwen2", "default"]


def main():
    source, out_dir = sys.argv[1], sys.argv[2]
    reader = GGUFReader(source)
    arch = reader.fields["general.architecture"].contents()
    os.makedirs(out_dir, exist_ok=True)
    for pre in PRE_VALUES:
        path = os.path.join(out_dir, f"SmolLM2-vocab-{pre}.gguf")
        writer = GGUFWriter(path + ".tmp", arch)
        for name, field in reader.fields.items():
            if name.startswith("GGUF.") or name == "general.architecture":
                continue
            value = pre if name == "tokenizer.ggml.pre" else field.contents()
            vtype = field.types[0]
            sub_type = field.types[-1] if vtype == GGUFValueType.ARRAY else None
            writer.add_key_value(name, value, vtype, sub_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
