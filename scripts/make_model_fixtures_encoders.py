#!/usr/bin/env python3
"""Makes the tiny-model fixtures of GPT-2, OPT and BERT in Tests/EnergonModelsTests/Fixtures
(manifest: models-extra.json; scripts/make_model_fixtures.py makes the others).

For each architecture: a tiny random model in Hugging Face transformers (PyTorch, CPU, fp32),
saved twice: as a GGUF file named the way llama.cpp's converter names it, and as a Hugging Face
folder (config.json + model.safetensors, via save_pretrained). Then what transformers computes
for a fixed token sequence: logits for the decoders (GPT-2, OPT), the last hidden states for
the encoder (BERT). Energon's tests load both and compare (relative error <= 1e-4).

GGUF layouts:
- gpt2 (llama.cpp's GPT2Model converter): token_embd, position_embd, blk.N.{attn_norm, attn_qkv,
  attn_output, ffn_norm, ffn_up, ffn_down}.{weight,bias}, output_norm; HF Conv1D weights
  transposed to [out, in]; keys gpt2.{context_length, embedding_length, feed_forward_length,
  block_count, attention.head_count, attention.layer_norm_epsilon}.
- bert (llama.cpp's BertModel converter): token_embd, token_types, position_embd, token_embd_norm,
  blk.N.{attn_q, attn_k, attn_v, attn_output, attn_output_norm, ffn_up, ffn_down,
  layer_output_norm}; keys as gpt2 plus bert.attention.causal = false, bert.pooling_type = 1 (mean).
- opt (llama.cpp has no OPT converter; this one follows its conventions for the similar gpt2/
  starcoder archs): token_embd, position_embd (the HF table verbatim, [context_length + 2, hidden]:
  OPT looks position p up at row p + 2), blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output,
  ffn_norm, ffn_up, ffn_down}.{weight,bias}, output_norm, output (only if untied); keys as gpt2
  (context_length = max_position_embeddings).

Requires: torch (CPU), transformers, gguf, numpy, safetensors.
Run: python3 scripts/make_model_fixtures_encoders.py
"""
import json
import os
import sys

import numpy as np
import torch
import gguf

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "EnergonModelsTests", "Fixtures")
TOKENS = [1, 17, 42, 99, 3, 64, 120, 7, 88, 45, 23, 101]
TYPE_IDS = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
PREFIX = 7  # BERT: also the hidden states of the first 7 tokens alone


def randomize(model, seed):
    """Larger-than-default random weights, so the outputs are far from uniform. Norm scales
    near 1, everything else (biases included) N(0, 0.08^2)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            is_norm = any(part in name for part in ("ln_", "layer_norm", "LayerNorm", "ln_f"))
            if is_norm and name.endswith("weight"):
                parameter.copy_(torch.rand(parameter.shape, generator=generator) * 0.5 + 0.75)
            else:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.08)


def tensor(writer, name, value):
    writer.add_tensor(name, np.ascontiguousarray(value.detach().float().numpy().astype(np.float32)))


def common_keys(writer, arch, context, hidden, ffn, layers, heads, eps):
    writer.add_uint32(f"{arch}.context_length", context)
    writer.add_uint32(f"{arch}.embedding_length", hidden)
    writer.add_uint32(f"{arch}.feed_forward_length", ffn)
    writer.add_uint32(f"{arch}.block_count", layers)
    writer.add_uint32(f"{arch}.attention.head_count", heads)
    writer.add_float32(f"{arch}.attention.layer_norm_epsilon", eps)


def write_gpt2(writer, model, c):
    common_keys(writer, "gpt2", c.n_positions, c.n_embd, c.n_inner or 4 * c.n_embd, c.n_layer, c.n_head,
                c.layer_norm_epsilon)
    s = model.state_dict()
    tensor(writer, "token_embd.weight", s["transformer.wte.weight"])
    tensor(writer, "position_embd.weight", s["transformer.wpe.weight"])
    for i in range(c.n_layer):
        h = f"transformer.h.{i}."
        for gguf_name, hf_name, transpose in [
            ("attn_norm", "ln_1", False), ("attn_qkv", "attn.c_attn", True), ("attn_output", "attn.c_proj", True),
            ("ffn_norm", "ln_2", False), ("ffn_up", "mlp.c_fc", True), ("ffn_down", "mlp.c_proj", True)]:
            weight = s[h + hf_name + ".weight"]
            tensor(writer, f"blk.{i}.{gguf_name}.weight", weight.t() if transpose else weight)
            tensor(writer, f"blk.{i}.{gguf_name}.bias", s[h + hf_name + ".bias"])
    tensor(writer, "output_norm.weight", s["transformer.ln_f.weight"])
    tensor(writer, "output_norm.bias", s["transformer.ln_f.bias"])


def write_opt(writer, model, c):
    common_keys(writer, "opt", c.max_position_embeddings, c.hidden_size, c.ffn_dim, c.num_hidden_layers,
                c.num_attention_heads, 1e-5)  # OPT's nn.LayerNorm uses the PyTorch default epsilon
    s = model.state_dict()
    d = "model.decoder."
    tensor(writer, "token_embd.weight", s[d + "embed_tokens.weight"])
    tensor(writer, "position_embd.weight", s[d + "embed_positions.weight"])
    for i in range(c.num_hidden_layers):
        h = f"{d}layers.{i}."
        for gguf_name, hf_name in [
            ("attn_norm", "self_attn_layer_norm"), ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
            ("attn_v", "self_attn.v_proj"), ("attn_output", "self_attn.out_proj"), ("ffn_norm", "final_layer_norm"),
            ("ffn_up", "fc1"), ("ffn_down", "fc2")]:
            tensor(writer, f"blk.{i}.{gguf_name}.weight", s[h + hf_name + ".weight"])
            tensor(writer, f"blk.{i}.{gguf_name}.bias", s[h + hf_name + ".bias"])
    tensor(writer, "output_norm.weight", s[d + "final_layer_norm.weight"])
    tensor(writer, "output_norm.bias", s[d + "final_layer_norm.bias"])
    if not c.tie_word_embeddings:
        tensor(writer, "output.weight", s["lm_head.weight"])


def write_bert(writer, model, c):
    common_keys(writer, "bert", c.max_position_embeddings, c.hidden_size, c.intermediate_size, c.num_hidden_layers,
                c.num_attention_heads, c.layer_norm_eps)
    writer.add_bool("bert.attention.causal", False)
    writer.add_uint32("bert.pooling_type", 1)
    s = model.state_dict()
    e = "embeddings."
    tensor(writer, "token_embd.weight", s[e + "word_embeddings.weight"])
    tensor(writer, "token_types.weight", s[e + "token_type_embeddings.weight"])
    tensor(writer, "position_embd.weight", s[e + "position_embeddings.weight"])
    tensor(writer, "token_embd_norm.weight", s[e + "LayerNorm.weight"])
    tensor(writer, "token_embd_norm.bias", s[e + "LayerNorm.bias"])
    for i in range(c.num_hidden_layers):
        h = f"encoder.layer.{i}."
        for gguf_name, hf_name in [
            ("attn_q", "attention.self.query"), ("attn_k", "attention.self.key"), ("attn_v", "attention.self.value"),
            ("attn_output", "attention.output.dense"), ("attn_output_norm", "attention.output.LayerNorm"),
            ("ffn_up", "intermediate.dense"), ("ffn_down", "output.dense"), ("layer_output_norm", "output.LayerNorm")]:
            tensor(writer, f"blk.{i}.{gguf_name}.weight", s[h + hf_name + ".weight"])
            tensor(writer, f"blk.{i}.{gguf_name}.bias", s[h + hf_name + ".bias"])


def save(name, arch, writer_fn, model, config, encoder=False):
    model.eval()
    with torch.no_grad():
        if encoder:
            output = model(torch.tensor([TOKENS]), token_type_ids=torch.tensor([TYPE_IDS]),
                           attention_mask=torch.ones(1, len(TOKENS), dtype=torch.long))
            values = output.last_hidden_state[0].float().numpy()
            # A shorter sequence (its own attention span) and the mean-pooled, L2-normalised embedding.
            prefix = model(torch.tensor([TOKENS[:PREFIX]]), token_type_ids=torch.tensor([TYPE_IDS[:PREFIX]]))
            prefix = prefix.last_hidden_state[0].float().numpy()
            pooled = torch.nn.functional.normalize(output.last_hidden_state[0].mean(0), dim=0).float().numpy()
        else:
            values = model(torch.tensor([TOKENS])).logits[0].float().numpy()
    path = os.path.join(OUT, f"{name}.gguf")
    writer = gguf.GGUFWriter(path, arch)
    writer_fn(writer, model, config)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    folder = os.path.join(OUT, f"{name}-hf")
    model.save_pretrained(folder, safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(folder, extra)):
            os.remove(os.path.join(folder, extra))
    values.astype("<f4").tofile(os.path.join(OUT, f"{name}.expected.f32"))
    case = {"name": name, "architecture": arch, "tokens": TOKENS, "columns": int(values.shape[1]),
            "gguf": f"{name}.gguf", "huggingFace": f"{name}-hf", "expected": f"{name}.expected.f32",
            "encoder": encoder}
    if encoder:
        prefix.astype("<f4").tofile(os.path.join(OUT, f"{name}.prefix.f32"))
        pooled.astype("<f4").tofile(os.path.join(OUT, f"{name}.pooled.f32"))
        case.update({"typeIDs": TYPE_IDS, "prefixLength": PREFIX, "prefixExpected": f"{name}.prefix.f32",
                     "pooled": f"{name}.pooled.f32"})
    return case


def bert_tokenizer_case(model, folder):
    """A 128-entry WordPiece vocabulary saved next to the tiny BERT (tokenizer.json etc.), a
    sentence, the ids transformers' tokenizer gives it, and the pooled embedding of those ids."""
    from transformers import BertTokenizerFast
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "energon", "runs", "on", "cpu",
             "a", "model", "of", "text", "embed", "##ding", "##s", "##ed", ",", ".", "!", "?"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + letters + ["##" + l for l in letters]
    vocabulary += [f"[unused{i}]" for i in range(128 - len(vocabulary))]
    vocab_path = os.path.join(folder, "vocab.txt")
    with open(vocab_path, "w") as f:
        f.write("\n".join(vocabulary) + "\n")
    tokenizer = BertTokenizerFast(vocab={token: index for index, token in enumerate(vocabulary)}, do_lower_case=True)
    tokenizer.save_pretrained(folder)
    text = "The quick brown fox jumps over the lazy dog, embeddings on CPU!"
    ids = tokenizer(text)["input_ids"]
    with torch.no_grad():
        hidden = model(torch.tensor([ids])).last_hidden_state[0]
    pooled = torch.nn.functional.normalize(hidden.mean(0), dim=0).float().numpy()
    pooled.astype("<f4").tofile(os.path.join(OUT, "tiny-bert.text.pooled.f32"))
    return {"text": text, "textIDs": ids, "textPooled": "tiny-bert.text.pooled.f32"}


def main():
    import transformers
    from transformers import (BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, OPTConfig, OPTForCausalLM)
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    cases = []

    c = GPT2Config(vocab_size=128, n_positions=64, n_embd=32, n_layer=2, n_head=4, n_inner=None,
                   activation_function="gelu_new", layer_norm_epsilon=1e-5, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
    c._attn_implementation = "eager"
    m = GPT2LMHeadModel(c).float()
    randomize(m, 11)
    m.tie_weights()
    cases.append(save("tiny-gpt2", "gpt2", write_gpt2, m, c))

    c = OPTConfig(vocab_size=128, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
                  max_position_embeddings=64, do_layer_norm_before=True, word_embed_proj_dim=32,
                  activation_function="relu", dropout=0, attention_dropout=0, tie_word_embeddings=True,
                  enable_bias=True, pad_token_id=1)
    c._attn_implementation = "eager"
    m = OPTForCausalLM(c).float()
    randomize(m, 12)
    m.tie_weights()
    cases.append(save("tiny-opt", "opt", write_opt, m, c))

    c = BertConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                   max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu", layer_norm_eps=1e-12,
                   hidden_dropout_prob=0, attention_probs_dropout_prob=0)
    c._attn_implementation = "eager"
    m = BertModel(c, add_pooling_layer=False).float()
    randomize(m, 13)
    case = save("tiny-bert", "bert", write_bert, m, c, encoder=True)
    case.update(bert_tokenizer_case(m, os.path.join(OUT, "tiny-bert-hf")))
    cases.append(case)

    with open(os.path.join(OUT, "models-extra.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "cases": cases}, f, indent=1)
    print("wrote", [c["name"] for c in cases])


if __name__ == "__main__":
    sys.exit(main())
