#!/usr/bin/env python3
"""Writes tiny random Hugging Face model folders and their llama.cpp GGUF conversions, used by
EnergonCheckpointTests to check the GGUF <-> HF tensor-name tables and checkpoint quirks (the Llama
q/k permutation, Gemma's `1 + w` norms, GPT-2's transposed Conv1D weights) against the real converter.

    python3 scripts/make_hf_fixture.py LLAMA_CPP_DIR

LLAMA_CPP_DIR holds llama.cpp's convert_hf_to_gguf.py, conversion/ and gguf-py/ (for example the
vendor/llama.cpp folder of the llama_cpp_python sdist). Needs torch, transformers, safetensors.
Each family gets Fixtures/hf/<family>/ (config.json, *.safetensors; the llama folder is sharded with
an index) and Fixtures/hf/<family>.gguf (F32). The converter's vocabulary step is replaced by a stub
(the tiny models have no real tokenizer); the tensor conversion is llama.cpp's own.
"""
import json
import os
import shutil
import sys

import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "EnergonCheckpointTests", "Fixtures", "hf")


def models():
    common = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    yield "llama", transformers.LlamaForCausalLM(transformers.LlamaConfig(**common, tie_word_embeddings=False)), "12KB"
    yield "qwen2", transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**common, tie_word_embeddings=True)), None
    yield "gemma3", transformers.Gemma3ForCausalLM(transformers.Gemma3TextConfig(
        **common, head_dim=8, sliding_window=16, query_pre_attn_scalar=8)), None
    yield "gpt2", transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=64, n_embd=16, n_layer=2, n_head=4, n_positions=64, n_ctx=64, bos_token_id=0, eos_token_id=0)), None
    yield "bert", transformers.BertModel(transformers.BertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32,
        max_position_embeddings=64, type_vocab_size=2), add_pooling_layer=False), None
    yield "opt", transformers.OPTForCausalLM(transformers.OPTConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=2, ffn_dim=32, num_attention_heads=4,
        max_position_embeddings=64, word_embed_proj_dim=16)), None


def convert(llama_cpp: str, folder: str, outfile: str) -> None:
    if llama_cpp not in sys.path:
        sys.path.insert(0, llama_cpp)
        sys.path.insert(1, os.path.join(llama_cpp, "gguf-py"))
    import convert_hf_to_gguf as converter

    original = converter.get_model_class

    def without_vocabulary(*args, **kwargs):
        model_class = original(*args, **kwargs)
        model_class.set_vocab = lambda self: self.gguf_writer.add_tokenizer_model("none")
        return model_class

    converter.get_model_class = without_vocabulary
    sys.argv = ["convert_hf_to_gguf.py", folder, "--outtype", "f32", "--outfile", outfile]
    converter.main()


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    llama_cpp = sys.argv[1]
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    for family, model, shard in models():
        folder = os.path.join(OUT, family)
        shutil.rmtree(folder, ignore_errors=True)
        # Random weights at a visible scale (norm weights are ones at init; perturb them too so
        # a missing `1 + w` or transpose shows).
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.copy_(torch.randn_like(parameter) * 0.5)
        kwargs = {"max_shard_size": shard} if shard else {}
        model.save_pretrained(folder, safe_serialization=True, **kwargs)
        for extra in ("generation_config.json",):
            path = os.path.join(folder, extra)
            if os.path.exists(path):
                os.remove(path)
        tokenizer = os.path.join(folder, "tokenizer.json")
        if family == "gemma3":
            # The Gemma converter trims token_embd to the tokenizer's size; a stub of the full size keeps it whole.
            with open(tokenizer, "w") as f:
                json.dump({"model": {"vocab": {f"t{i}": i for i in range(64)}}, "added_tokens": []}, f)
        if family != "opt":  # llama.cpp has no OPT converter; its table is checked against HF names only
            convert(llama_cpp, folder, os.path.join(OUT, f"{family}.gguf"))
        if os.path.exists(tokenizer):
            os.remove(tokenizer)
    for name in sorted(os.listdir(OUT)):
        print(name)


if __name__ == "__main__":
    main()
