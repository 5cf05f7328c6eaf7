#!/usr/bin/env python3
"""Writes tensor-less copies of a GGUF file's metadata with `tokenizer.ggml.pre` replaced, so the
pre-tokenizers llama.cpp has for other model families (gpt-2, llama3 / llama-bpe, qwen2, default)
can be checked against llama-tokenize on a real byte-level BPE vocabulary (SmolLM2's).

  python3 scripts/make_vocab_variants.py SOURCE.gguf OUT_DIR [WORDPIECE_TOKENIZER_JSON]
writes OUT_DIR/SmolLM2-vocab-<pre>.gguf for each pre value, and, given a WordPiece tokenizer.json,
OUT_DIR/bert-vocab.gguf (committed as Tests/EnergonTokenizersTests/Fixtures/tokenizers/bert-vocab.gguf):
that vocabulary converted as llama.cpp's conversion/bert.py does
(`##x` -> `x`, other normal tokens -> `▁x`, special tokens kept, tokenizer.ggml.model = bert).
Also, if gemma-3-270m-q4_k_m.gguf sits next to SOURCE, OUT_DIR/gemma3-vocab-space-prefix.gguf:
Gemma 3's vocabulary with add_space_prefix = true, the SentencePiece setting of Llama 2 / Mistral.
"""
import json
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
    gemma = os.path.join(os.path.dirname(source), "gemma-3-270m-q4_k_m.gguf")
    if os.path.exists(gemma):
        write_space_prefix_variant(gemma, os.path.join(out_dir, "gemma3-vocab-space-prefix.gguf"))
    if len(sys.argv) > 3:
        write_bert(reader, arch, sys.argv[3], os.path.join(out_dir, "bert-vocab.gguf"))


def write_space_prefix_variant(source, path):
    """Gemma 3's SentencePiece vocabulary with add_space_prefix = true (Llama 2 / Mistral style)."""
    reader = GGUFReader(source)
    writer = GGUFWriter(path + ".tmp", reader.fields["general.architecture"].contents())
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        value = True if name == "tokenizer.ggml.add_space_prefix" else field.contents()
        vtype = field.types[0]
        writer.add_key_value(name, value, vtype, field.types[-1] if vtype == GGUFValueType.ARRAY else None)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(path + ".tmp", path)


def write_bert(reader, arch, tokenizer_json, path):
    data = json.load(open(tokenizer_json, encoding="utf-8"))
    vocab = data["model"]["vocab"]
    special = {t["id"] for t in data["added_tokens"] if t["special"]}
    tokens, types = [], []
    for text, index in sorted(vocab.items(), key=lambda item: item[1]):
        assert index == len(tokens)
        if index in special:
            tokens.append(text); types.append(3)
        else:
            tokens.append(text[2:] if text.startswith("##") else "\u2581" + text); types.append(1)
    ids = {text: index for text, index in vocab.items()}
    writer = GGUFWriter(path + ".tmp", arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name.startswith("tokenizer.") or name == "general.architecture":
            continue
        vtype = field.types[0]
        writer.add_key_value(name, field.contents(), vtype, field.types[-1] if vtype == GGUFValueType.ARRAY else None)
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_bos_token_id(ids["[CLS]"])
    writer.add_sep_token_id(ids["[SEP]"])
    writer.add_unk_token_id(ids["[UNK]"])
    writer.add_pad_token_id(ids["[PAD]"])
    writer.add_mask_token_id(ids["[MASK]"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
