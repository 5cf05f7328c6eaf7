#!/usr/bin/env python3
"""Makes the tiny-model fixtures of Tests/EnergonModelsTests/Fixtures.

For each architecture: a tiny random model in Hugging Face transformers (PyTorch, CPU, fp32),
its weights written as a GGUF file exactly as llama.cpp's converter names (and, for Llama,
permutes) them, and the logits transformers computes for a fixed token sequence. Energon's
tests load the GGUF, run the same tokens and compare logits (relative error <= 1e-4).

Requires: torch (CPU), transformers, gguf, numpy.   Run: python3 scripts/make_model_fixtures.py
"""
import json
import os
import sys

import numpy as np
import torch
import gguf

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "EnergonModelsTests", "Fixtures")
TOKENS = [1, 17, 42, 99, 3, 64, 120, 7, 88, 45, 23, 101]


def randomize(model, seed):
    """Larger-than-default random weights, so the logits are far from uniform."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.copy_(torch.rand(parameter.shape, generator=generator) * 0.5 + 0.75)
            else:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.08)


def llama_permute(weights, heads):
    # llama.cpp's convert_hf_to_gguf.py LlamaModel.permute: rows of each head reordered so the
    # "normal" (adjacent pair) RoPE applies to what HF rotates as halves.
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def save(name, arch, writer_fn, model, config):
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([TOKENS])).logits[0].float().numpy()
    path = os.path.join(OUT, f"{name}.gguf")
    writer = gguf.GGUFWriter(path, arch)
    writer_fn(writer, model, config)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    logits.astype("<f4").tofile(os.path.join(OUT, f"{name}.logits.f32"))
    # The same weights as a Hugging Face folder (config.json + model.safetensors).
    model.save_pretrained(os.path.join(OUT, f"{name}-hf"), safe_serialization=True)
    for extra in ("generation_config.json",):
        path = os.path.join(OUT, f"{name}-hf", extra)
        if os.path.exists(path):
            os.remove(path)
    return {"name": name, "architecture": arch, "tokens": TOKENS, "vocabulary": int(logits.shape[1]),
            "gguf": f"{name}.gguf", "huggingFace": f"{name}-hf", "logits": f"{name}.logits.f32"}


def tensor(writer, name, value):
    writer.add_tensor(name, np.ascontiguousarray(value.detach().float().numpy().astype(np.float32)))


def write_llama_like(arch, permute):
    def write(writer, model, c):
        p = arch
        writer.add_uint32(f"{p}.context_length", c.max_position_embeddings)
        writer.add_uint32(f"{p}.embedding_length", c.hidden_size)
        writer.add_uint32(f"{p}.block_count", c.num_hidden_layers)
        writer.add_uint32(f"{p}.feed_forward_length", c.intermediate_size)
        writer.add_uint32(f"{p}.attention.head_count", c.num_attention_heads)
        writer.add_uint32(f"{p}.attention.head_count_kv", c.num_key_value_heads)
        writer.add_float32(f"{p}.attention.layer_norm_rms_epsilon", c.rms_norm_eps)
        writer.add_float32(f"{p}.rope.freq_base", c.rope_theta if hasattr(c, "rope_theta") else c.rope_parameters["rope_theta"])
        s = model.state_dict()
        tensor(writer, "token_embd.weight", s["model.embed_tokens.weight"])
        for i in range(c.num_hidden_layers):
            h = f"model.layers.{i}."
            q, k = s[h + "self_attn.q_proj.weight"], s[h + "self_attn.k_proj.weight"]
            if permute:
                q = llama_permute(q, c.num_attention_heads)
                k = llama_permute(k, c.num_key_value_heads)
            tensor(writer, f"blk.{i}.attn_norm.weight", s[h + "input_layernorm.weight"])
            tensor(writer, f"blk.{i}.attn_q.weight", q)
            tensor(writer, f"blk.{i}.attn_k.weight", k)
            tensor(writer, f"blk.{i}.attn_v.weight", s[h + "self_attn.v_proj.weight"])
            for b in ("q", "k", "v"):
                if h + f"self_attn.{b}_proj.bias" in s:
                    tensor(writer, f"blk.{i}.attn_{b}.bias", s[h + f"self_attn.{b}_proj.bias"])
            tensor(writer, f"blk.{i}.attn_output.weight", s[h + "self_attn.o_proj.weight"])
            tensor(writer, f"blk.{i}.ffn_norm.weight", s[h + "post_attention_layernorm.weight"])
            tensor(writer, f"blk.{i}.ffn_gate.weight", s[h + "mlp.gate_proj.weight"])
            tensor(writer, f"blk.{i}.ffn_up.weight", s[h + "mlp.up_proj.weight"])
            tensor(writer, f"blk.{i}.ffn_down.weight", s[h + "mlp.down_proj.weight"])
        tensor(writer, "output_norm.weight", s["model.norm.weight"])
        if not c.tie_word_embeddings:
            tensor(writer, "output.weight", s["lm_head.weight"])
    return write


def write_gemma3(writer, model, c):
    p = "gemma3"
    writer.add_uint32(f"{p}.context_length", c.max_position_embeddings)
    writer.add_uint32(f"{p}.embedding_length", c.hidden_size)
    writer.add_uint32(f"{p}.block_count", c.num_hidden_layers)
    writer.add_uint32(f"{p}.feed_forward_length", c.intermediate_size)
    writer.add_uint32(f"{p}.attention.head_count", c.num_attention_heads)
    writer.add_uint32(f"{p}.attention.head_count_kv", c.num_key_value_heads)
    writer.add_uint32(f"{p}.attention.key_length", c.head_dim)
    writer.add_uint32(f"{p}.attention.value_length", c.head_dim)
    writer.add_float32(f"{p}.attention.layer_norm_rms_epsilon", c.rms_norm_eps)
    writer.add_float32(f"{p}.rope.freq_base", 1_000_000.0)
    writer.add_uint32(f"{p}.attention.sliding_window", c.sliding_window)
    s = model.state_dict()
    # Gemma RMSNorm multiplies by (1 + w); llama.cpp's converter stores w + 1.
    norm = lambda t: t + 1
    tensor(writer, "token_embd.weight", s["model.embed_tokens.weight"])
    for i in range(c.num_hidden_layers):
        h = f"model.layers.{i}."
        tensor(writer, f"blk.{i}.attn_norm.weight", norm(s[h + "input_layernorm.weight"]))
        tensor(writer, f"blk.{i}.attn_q.weight", s[h + "self_attn.q_proj.weight"])
        tensor(writer, f"blk.{i}.attn_k.weight", s[h + "self_attn.k_proj.weight"])
        tensor(writer, f"blk.{i}.attn_v.weight", s[h + "self_attn.v_proj.weight"])
        tensor(writer, f"blk.{i}.attn_q_norm.weight", norm(s[h + "self_attn.q_norm.weight"]))
        tensor(writer, f"blk.{i}.attn_k_norm.weight", norm(s[h + "self_attn.k_norm.weight"]))
        tensor(writer, f"blk.{i}.attn_output.weight", s[h + "self_attn.o_proj.weight"])
        tensor(writer, f"blk.{i}.post_attention_norm.weight", norm(s[h + "post_attention_layernorm.weight"]))
        tensor(writer, f"blk.{i}.ffn_norm.weight", norm(s[h + "pre_feedforward_layernorm.weight"]))
        tensor(writer, f"blk.{i}.post_ffw_norm.weight", norm(s[h + "post_feedforward_layernorm.weight"]))
        tensor(writer, f"blk.{i}.ffn_gate.weight", s[h + "mlp.gate_proj.weight"])
        tensor(writer, f"blk.{i}.ffn_up.weight", s[h + "mlp.up_proj.weight"])
        tensor(writer, f"blk.{i}.ffn_down.weight", s[h + "mlp.down_proj.weight"])
    tensor(writer, "output_norm.weight", norm(s["model.norm.weight"]))


def main():
    import transformers
    from transformers import (Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM,
                              Qwen2Config, Qwen2ForCausalLM)
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    cases = []

    c = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
                    max_position_embeddings=64, tie_word_embeddings=False)
    m = LlamaForCausalLM(c).float()
    randomize(m, 1)
    cases.append(save("tiny-llama", "llama", write_llama_like("llama", True), m, c))

    c = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=4, rms_norm_eps=1e-5, rope_theta=100000.0,
                    max_position_embeddings=64, tie_word_embeddings=True)
    m = LlamaForCausalLM(c).float()
    randomize(m, 2)
    m.tie_weights()
    cases.append(save("tiny-llama-tied", "llama", write_llama_like("llama", True), m, c))

    c = Qwen2Config(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1000000.0,
                    max_position_embeddings=64, tie_word_embeddings=False)
    m = Qwen2ForCausalLM(c).float()
    randomize(m, 3)
    cases.append(save("tiny-qwen2", "qwen2", write_llama_like("qwen2", False), m, c))

    c = Gemma3TextConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=6,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6,
                         rope_theta=1000000.0, rope_local_base_freq=10000.0, sliding_window=4,
                         query_pre_attn_scalar=16, max_position_embeddings=64, final_logit_softcapping=None,
                         attn_logit_softcapping=None, hidden_activation="gelu_pytorch_tanh")
    c._attn_implementation = "eager"
    m = Gemma3ForCausalLM(c).float()
    randomize(m, 4)
    m.tie_weights()
    cases.append(save("tiny-gemma3", "gemma3", write_gemma3, m, c))

    with open(os.path.join(OUT, "models.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "cases": cases}, f, indent=1)
    print("wrote", [c["name"] for c in cases])


if __name__ == "__main__":
    sys.exit(main())
