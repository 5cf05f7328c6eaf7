#!/usr/bin/env python3
"""Writes a Hugging Face tokenizer.json (+ tokenizer_config.json) for SmolLM2 from its GGUF file.

It carries the GGUF vocabulary, merges and special tokens over to the layout of SmolLM2's own
tokenizer.json (Digits + ByteLevel pre-tokenizer, byte-level BPE, ByteLevel decoder), using only
the standard library and the `gguf` package, so scripts/fetch_models.sh can run it offline.

  python3 scripts/make_hf_tokenizer.py MODEL.gguf OUT_FOLDER
"""
import json
import os
import sys

from gguf import GGUFReader


def main():
    gguf_path, folder = sys.argv[1], sys.argv[2]
    reader = GGUFReader(gguf_path)

    def field(name):
        return reader.fields[name].contents()

    tokens = field("tokenizer.ggml.tokens")
    types = field("tokenizer.ggml.token_type")
    merges = field("tokenizer.ggml.merges")
    bos = tokens[field("tokenizer.ggml.bos_token_id")]
    eos = tokens[field("tokenizer.ggml.eos_token_id")]
    added = [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i, (t, kind) in enumerate(zip(tokens, types)) if kind == 3
    ]
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        ]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": {t: i for i, t in enumerate(tokens)},
            "merges": list(merges),
        },
    }
    config = {"add_prefix_space": False, "bos_token": bos, "eos_token": eos, "unk_token": tokens[0],
              "model_max_length": 8192, "tokenizer_class": "GPT2Tokenizer", "clean_up_tokenization_spaces": False}
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)


if __name__ == "__main__":
    main()
