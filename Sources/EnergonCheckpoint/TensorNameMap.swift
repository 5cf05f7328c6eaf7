/// The one table per architecture family between llama.cpp's GGUF tensor names (the names model
/// code is written against) and Hugging Face names.
///
/// Names are mapped by stem: the final `.weight`/`.bias` is kept as is, a `blk.N.` prefix becomes
/// the family's HF layer prefix, and the stem is looked up in the family's global or per-layer
/// table. A family may try several HF root prefixes (GPT-2 checkpoints come with and without
/// `transformer.`).
public enum TensorNameMap {
    struct Table {
        /// HF prefix of block `N` (`#` stands for the number).
        let layerPrefix: String
        /// GGUF stem -> HF stem for tensors outside the blocks.
        let global: [String: String]
        /// GGUF stem -> HF stem inside a block.
        let layer: [String: String]
        /// Root prefixes to try in order for HF names (not applied to `lm_head`).
        let roots: [String]
    }

    static let llamaLayer: [String: String] = [
        "attn_norm": "input_layernorm",
        "attn_q": "self_attn.q_proj",
        "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_norm": "post_attention_layernorm",
        "ffn_gate": "mlp.gate_proj",
        "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    ]

    static let llamaGlobal: [String: String] = [
        "token_embd": "model.embed_tokens",
        "output_norm": "model.norm",
        "output": "lm_head",
    ]

    static func table(_ family: ArchitectureFamily) -> Table {
        switch family {
        case .llama, .qwen2:
            return Table(layerPrefix: "model.layers.#.", global: llamaGlobal, layer: llamaLayer, roots: [""])
        case .gemma3:
            var layer = llamaLayer
            layer["ffn_norm"] = "pre_feedforward_layernorm"
            layer["post_attention_norm"] = "post_attention_layernorm"
            layer["post_ffw_norm"] = "post_feedforward_layernorm"
            layer["attn_q_norm"] = "self_attn.q_norm"
            layer["attn_k_norm"] = "self_attn.k_norm"
            // Multimodal Gemma 3 folders nest the text model.
            return Table(layerPrefix: "model.layers.#.", global: llamaGlobal, layer: layer,
                         roots: ["", "language_model.", "model.language_model."])
        case .gpt2:
            return Table(layerPrefix: "h.#.", global: [
                "token_embd": "wte", "position_embd": "wpe", "output_norm": "ln_f", "output": "lm_head",
            ], layer: [
                "attn_norm": "ln_1", "attn_qkv": "attn.c_attn", "attn_output": "attn.c_proj",
                "ffn_norm": "ln_2", "ffn_up": "mlp.c_fc", "ffn_down": "mlp.c_proj",
            ], roots: ["transformer.", ""])
        case .opt:
            return Table(layerPrefix: "model.decoder.layers.#.", global: [
                "token_embd": "model.decoder.embed_tokens", "position_embd": "model.decoder.embed_positions",
                "output_norm": "model.decoder.final_layer_norm", "output": "lm_head",
            ], layer: [
                "attn_norm": "self_attn_layer_norm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
                "attn_v": "self_attn.v_proj", "attn_output": "self_attn.out_proj", "ffn_norm": "final_layer_norm",
                "ffn_up": "fc1", "ffn_down": "fc2",
            ], roots: [""])
        case .bert:
            return Table(layerPrefix: "encoder.layer.#.", global: [
                "token_embd": "embeddings.word_embeddings", "token_types": "embeddings.token_type_embeddings",
                "position_embd": "embeddings.position_embeddings", "token_embd_norm": "embeddings.LayerNorm",
            ], layer: [
                "attn_q": "attention.self.query", "attn_k": "attention.self.key", "attn_v": "attention.self.value",
                "attn_output": "attention.output.dense", "attn_output_norm": "attention.output.LayerNorm",
                "ffn_up": "intermediate.dense", "ffn_down": "output.dense", "layer_output_norm": "output.LayerNorm",
            ], roots: ["", "bert."])
        }
    }

    /// The HF names a GGUF tensor name may have in `family`, most likely first; empty if the name
    /// is not in the family's table.
    public static func huggingFaceCandidates(forGGUF name: String, family: ArchitectureFamily) -> [String] {
        let table = table(family)
        var stem = name
        var suffix = ""
        for ending in [".weight", ".bias"] where name.hasSuffix(ending) {
            stem = String(name.dropLast(ending.count))
            suffix = ending
        }
        let mapped: String
        if stem.hasPrefix("blk.") {
            let rest = stem.dropFirst(4)
            guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]), layer >= 0,
                  let hfStem = table.layer[String(rest[rest.index(after: dot)...])] else { return [] }
            mapped = table.layerPrefix.split(separator: "#", omittingEmptySubsequences: false).joined(separator: String(layer)) + hfStem
        } else {
            guard let hfStem = table.global[stem] else { return [] }
            if hfStem == "lm_head" { return ["lm_head\(suffix)"] }
            mapped = hfStem
        }
        return table.roots.map { "\($0)\(mapped)\(suffix)" }
    }

    /// HF name -> GGUF name for every tensor the family's table can name in a model of
    /// `layerCount` blocks (for display; loading goes the other way).
    public static func ggufNames(family: ArchitectureFamily, layerCount: Int) -> [String: String] {
        let table = table(family)
        var stems = Array(table.global.keys)
        for layer in 0..<layerCount { stems += table.layer.keys.map { "blk.\(layer).\($0)" } }
        var result: [String: String] = [:]
        for stem in stems {
            for ending in [".weight", ".bias"] {
                for candidate in huggingFaceCandidates(forGGUF: stem + ending, family: family) { result[candidate] = stem + ending }
            }
        }
        return result
    }
}
