#!/usr/bin/env python3
"""Makes the token-id fixtures of Tests/EnergonTokenizersTests/Fixtures/tokenizers/.

References (independent of Energon):
  * llama.cpp's `llama-tokenize` (built by ../shared/tools/llamacpp-anchor.sh) for the GGUF
    vocabularies of SmolLM2 (byte-level BPE) and Gemma 3 (SentencePiece), and SmolLM2's
    vocabulary re-labelled with the gpt-2 / llama-bpe / qwen2 / default pre-tokenizers
    (scripts/make_vocab_variants.py), with special-token parsing on (its default) and off,
    BOS/EOS as the model's metadata says;
  * the `tokenizers` PyPI package for tokenizer.json files: the SmolLM2 tokenizer.json that
    scripts/make_hf_tokenizer.py writes from the GGUF, and small BPE / WordPiece tokenizers
    trained here with `tokenizers` itself (committed, they are small).

Usage:
  python3 scripts/make_tokenizer_fixtures.py --llama-bin DIR --models DIR
    (--models is where scripts/fetch_models.sh put the .gguf files and the HF folder)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tokenizer_fixture_texts import TEXTS  # noqa: E402

EXTRA_TEXTS = ["[INST] Hello [/INST] world", "a[INST]b [/INST]  c"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "EnergonTokenizersTests", "Fixtures", "tokenizers")

GGUF_MODELS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
    # SmolLM2's vocabulary with other pre-tokenizers (scripts/make_vocab_variants.py).
    "smollm2-vocab-gpt-2": "SmolLM2-vocab-gpt-2.gguf",
    "smollm2-vocab-llama-bpe": "SmolLM2-vocab-llama-bpe.gguf",
    "smollm2-vocab-qwen2": "SmolLM2-vocab-qwen2.gguf",
    "smollm2-vocab-default": "SmolLM2-vocab-default.gguf",
    # Gemma's vocabulary with add_space_prefix = true (Llama 2 / Mistral SentencePiece setting).
    "gemma3-vocab-space-prefix": "gemma3-vocab-space-prefix.gguf",
    # The committed WordPiece vocabulary as a GGUF `bert` vocabulary (make_vocab_variants.py,
    # committed next to the fixtures: it is 16 KB of metadata, no tensors).
    "bert-vocab": os.path.join(OUT, "bert-vocab.gguf"),
}


def llama_tokenize(binary, model, text, parse_special):
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(text.encode("utf-8"))
        path = f.name
    try:
        args = [binary, "-m", model, "-f", path, "--no-escape", "--ids", "--log-disable"]
        if not parse_special:
            args.append("--no-parse-special")
        out = subprocess.run(args, check=True, capture_output=True).stdout.decode()
    finally:
        os.unlink(path)
    line = [l for l in out.splitlines() if l.startswith("[")][-1]
    return json.loads(line)


def write(name, payload):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def sha256(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def gguf_fixtures(llama_bin, models, keys=None):
    binary = os.path.join(llama_bin, "llama-tokenize")
    for key, file in GGUF_MODELS.items():
        if keys and key not in keys:
            continue
        model = file if os.path.isabs(file) else os.path.join(models, file)
        cases = []
        for text in TEXTS:
            cases.append({
                "text": text,
                "ids": llama_tokenize(binary, model, text, True),
                "ids_no_parse_special": llama_tokenize(binary, model, text, False),
            })
        write(f"{key}.llama-tokenize.json", {
            "reference": "llama.cpp llama-tokenize 0.3.36 (llama-cpp-python sdist), -f FILE --no-escape --ids",
            "model": os.path.basename(file),
            "model_sha256": sha256(model),
            "add_special": True,
            "cases": cases,
        })


def hf_cases(tokenizer):
    cases = []
    for text in TEXTS + EXTRA_TEXTS:
        cases.append({
            "text": text,
            "ids": tokenizer.encode(text, add_special_tokens=True).ids,
            "ids_no_special": tokenizer.encode(text, add_special_tokens=False).ids,
        })
    return cases


def train_small_tokenizers():
    """Trains the two small committed tokenizer.json files with `tokenizers` itself."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers, Regex

    corpus = list(TEXTS) * 3
    # WordPiece, as BERT (uncased): BertNormalizer + BertPreTokenizer + [CLS] $A [SEP].
    wp = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    wp.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                               strip_accents=None, lowercase=True)
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wp.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=900, min_frequency=1,
                                        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    wp.train_from_iterator(corpus, trainer)
    cls, sep = wp.token_to_id("[CLS]"), wp.token_to_id("[SEP]")
    wp.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    # Byte-level BPE with the Llama 3 split regex (Split + ByteLevel without its own regex),
    # two added special tokens, and a TemplateProcessing that adds a BOS.
    bpe = Tokenizer(models.BPE())
    llama3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(llama3), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, min_frequency=1,
                                  special_tokens=["<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(corpus, trainer)
    bos = bpe.token_to_id("<|begin_of_text|>")
    bpe.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B:1",
        special_tokens=[("<|begin_of_text|>", bos)])
    # SentencePiece-style BPE as Llama 2's tokenizer.json: Prepend("▁") + Replace(" ", "▁")
    # normalizer, no pre-tokenizer, character-level BPE with <0xNN> byte fallback and fused <unk>,
    # a "<s> $A" template, and the Replace/ByteFallback/Fuse/Strip decoder.
    sp = Tokenizer(models.BPE())
    sp.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    trainer = trainers.BpeTrainer(vocab_size=800, min_frequency=1, special_tokens=["<unk>", "<s>", "</s>"])
    sp.train_from_iterator(corpus, trainer)
    trained = sp.get_vocab()
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for text, _ in sorted(trained.items(), key=lambda item: item[1]):
        if text not in vocab:
            vocab[text] = len(vocab)
    merges = json.loads(sp.to_str())["model"]["merges"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in merges]
    llama2 = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    llama2.normalizer = sp.normalizer
    llama2.add_special_tokens(["<unk>", "<s>", "</s>"])
    llama2.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", 1)])
    llama2.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                        decoders.Strip(" ", 1, 0)])
    # Metaspace pre-tokenizer as Mistral's tokenizer.json (prepend_scheme "first", no split),
    # the same vocabulary and merges, a Metaspace decoder.
    mistral = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    mistral.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    mistral.add_special_tokens(["<unk>", "<s>", "</s>"])
    mistral.add_tokens(["[INST]", "[/INST]"])
    mistral.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", 1)])
    mistral.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    return {"wordpiece-bert": wp, "bpe-llama3-split": bpe, "spm-llama2-bytefallback": llama2,
            "spm-metaspace-first": mistral}


def hf_fixtures(models):
    from tokenizers import Tokenizer
    import tokenizers
    small = train_small_tokenizers()
    for name, tok in small.items():
        folder = os.path.join(OUT, name)
        os.makedirs(folder, exist_ok=True)
        # Training is not deterministic across runs (ties): keep a committed tokenizer.json, since
        # bert-vocab.gguf is derived from the WordPiece one. Delete the folder to retrain.
        if not os.path.exists(os.path.join(folder, "tokenizer.json")):
            tok.save(os.path.join(folder, "tokenizer.json"), pretty=False)
        reloaded = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        write(f"{name}.tokenizers.json", {
            "reference": f"tokenizers {tokenizers.__version__} (PyPI), encode(text, add_special_tokens=...)",
            "tokenizer": f"{name}/tokenizer.json",
            "cases": hf_cases(reloaded),
        })
    folder = os.path.join(models, "SmolLM2-135M-Instruct-hf")
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    write("smollm2-hf.tokenizers.json", {
        "reference": f"tokenizers {tokenizers.__version__} (PyPI), encode(text, add_special_tokens=...)",
        "tokenizer": "models/SmolLM2-135M-Instruct-hf/tokenizer.json (scripts/make_hf_tokenizer.py)",
        "tokenizer_sha256": sha256(os.path.join(folder, "tokenizer.json")),
        "cases": hf_cases(tok),
    })


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--llama-bin", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--only", choices=["gguf", "hf"], default=None)
    parser.add_argument("--gguf", nargs="*", default=None, help="only these GGUF fixture keys")
    args = parser.parse_args()
    if args.only in (None, "gguf"):
        gguf_fixtures(args.llama_bin, args.models, args.gguf)
    if args.only in (None, "hf"):
        hf_fixtures(args.models)


if __name__ == "__main__":
    main()
