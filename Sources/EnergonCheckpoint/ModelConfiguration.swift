/// RoPE scaling as `config.json` (`rope_scaling`) or GGUF (`{arch}.rope.scaling.*`) describes it.
public struct RopeScaling: Sendable, Equatable {
    /// `rope_type` / `type` (`linear`, `dynamic`, `yarn`, `llama3`, ...).
    public var type: String
    /// The scaling factor, if given.
    public var factor: Double?
    /// Every field as written (for type-specific parameters such as `low_freq_factor`).
    public var fields: [String: JSONValue]

    /// Memberwise initializer.
    public init(type: String, factor: Double?, fields: [String: JSONValue]) {
        self.type = type
        self.factor = factor
        self.fields = fields
    }
}

/// A model's hyperparameters, architecture-neutral, from a Hugging Face `config.json` or from
/// GGUF metadata. Keys with different names per architecture (GPT-2's `n_embd`, OPT's `ffn_dim`,
/// BERT's `layer_norm_eps`) land in the same fields; everything else stays in `extra`.
public struct ModelConfiguration: Sendable, Equatable {
    /// `architectures` (HF class names, e.g. `LlamaForCausalLM`); empty for GGUF.
    public var architectures: [String]
    /// `model_type` (HF) or `general.architecture` (GGUF): `llama`, `qwen2`, `gemma3`, `gpt2`...
    public var modelType: String
    /// Model width (`hidden_size`, `n_embd`, `{arch}.embedding_length`).
    public var hiddenSize: Int
    /// Feed-forward width (`intermediate_size`, `ffn_dim`, `n_inner`, `{arch}.feed_forward_length`).
    public var intermediateSize: Int
    /// Number of transformer blocks.
    public var layerCount: Int
    /// Query heads.
    public var attentionHeadCount: Int
    /// Key/value heads (equal to `attentionHeadCount` without grouped-query attention).
    public var keyValueHeadCount: Int
    /// Width of one head (`head_dim`, or `hiddenSize / attentionHeadCount`).
    public var headDimension: Int
    /// Vocabulary size.
    public var vocabularySize: Int
    /// Epsilon of the RMS or layer norms.
    public var normEpsilon: Double
    /// RoPE base frequency, for rotary models.
    public var ropeTheta: Double?
    /// RoPE scaling, if any.
    public var ropeScaling: RopeScaling?
    /// Longest context the model was trained for.
    public var maxPositionEmbeddings: Int?
    /// True when the output projection reuses the token embedding.
    public var tieWordEmbeddings: Bool
    /// Sliding-window attention span, if used.
    public var slidingWindow: Int?
    /// Beginning-of-sequence token id.
    public var bosTokenID: Int?
    /// End-of-sequence token ids (HF allows a list).
    public var eosTokenIDs: [Int]
    /// The activation (`silu`, `gelu_pytorch_tanh`, `gelu_new`, `relu`...).
    public var hiddenActivation: String?
    /// Every key of the (text) configuration as written; for GGUF the `{arch}.` metadata with the
    /// prefix removed (`rope.freq_base`, `attention.sliding_window`...).
    public var extra: [String: JSONValue]

    /// The tensor-naming family of `modelType`, if Energon knows it.
    public var family: ArchitectureFamily? { ArchitectureFamily(modelType: modelType) }

    /// Reads `config.json` at `path`.
    /// - Throws: `CheckpointError.badJSON`, `.missingKey` or `.badKey` naming the key.
    public init(huggingFaceConfigAt path: String) throws {
        try self.init(json: FileSystem.readJSON(path), path: path)
    }

    /// Reads a parsed `config.json`; `path` names it in errors. A multimodal config's
    /// `text_config` (Gemma 3, ...) supplies the language-model fields.
    public init(json: JSONValue, path: String) throws {
        guard case var .object(root) = json else { throw CheckpointError.badKey(path: path, key: "(root)", message: "config is not a JSON object") }
        let architectures = root["architectures"]?.array?.compactMap(\.string) ?? []
        if case let .object(text)? = root["text_config"] {
            for (key, value) in text { root[key] = value }
        }
        let keys = KeyReader(members: root, path: path)
        self.architectures = architectures
        modelType = try keys.string("model_type")
        hiddenSize = try keys.positive("hidden_size", "n_embd", "d_model")
        layerCount = try keys.positive("num_hidden_layers", "n_layer", "num_layers")
        attentionHeadCount = try keys.positive("num_attention_heads", "n_head")
        keyValueHeadCount = try keys.optionalPositive("num_key_value_heads") ?? attentionHeadCount
        if let inner = try keys.optionalPositive("intermediate_size", "ffn_dim", "n_inner") {
            intermediateSize = inner
        } else if modelType == "gpt2" {
            intermediateSize = 4 * hiddenSize  // GPT-2 writes `n_inner: null` for the default 4x
        } else {
            throw CheckpointError.missingKey(path: path, key: "intermediate_size")
        }
        headDimension = try keys.optionalPositive("head_dim") ?? hiddenSize / attentionHeadCount
        vocabularySize = try keys.positive("vocab_size")
        normEpsilon = try keys.optionalDouble("rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon", "norm_eps") ?? 1e-5
        ropeTheta = try keys.optionalDouble("rope_theta")
        if let scaling = root["rope_scaling"], case let .object(fields) = scaling {
            guard let type = fields["rope_type"]?.string ?? fields["type"]?.string else {
                throw CheckpointError.badKey(path: path, key: "rope_scaling", message: "has no `rope_type` or `type`")
            }
            ropeScaling = RopeScaling(type: type, factor: fields["factor"]?.double, fields: fields)
        } else {
            ropeScaling = nil
        }
        maxPositionEmbeddings = try keys.optionalPositive("max_position_embeddings", "n_positions")
        tieWordEmbeddings = try keys.optionalBool("tie_word_embeddings") ?? (modelType == "gpt2" || modelType == "opt" || modelType.hasPrefix("gemma"))
        slidingWindow = try keys.optionalPositive("sliding_window")
        bosTokenID = try keys.optionalInt("bos_token_id")
        switch root["eos_token_id"] {
        case nil, .null?: eosTokenIDs = []
        case let .int(value)?: eosTokenIDs = [value]
        case let .array(values)?:
            eosTokenIDs = try values.map {
                guard let id = $0.int else { throw CheckpointError.badKey(path: path, key: "eos_token_id", message: "list holds a non-integer") }
                return id
            }
        case let other?: throw CheckpointError.badKey(path: path, key: "eos_token_id", message: "expected an integer or a list, found \(other)")
        }
        hiddenActivation = root["hidden_act"]?.string ?? root["hidden_activation"]?.string ?? root["activation_function"]?.string
        extra = root
        try validate(path: path)
    }

    /// Reads the hyperparameters from a GGUF file's `{general.architecture}.*` metadata.
    /// - Throws: `.missingKey` or `.badKey` naming the metadata key.
    public init(gguf file: GGUFFile) throws {
        let path = file.path
        guard let architecture = file.architecture else { throw CheckpointError.missingKey(path: path, key: "general.architecture") }
        let metadata = file.metadata
        func int(_ key: String) throws -> Int? {
            guard let value = metadata["\(architecture).\(key)"] else { return nil }
            guard let result = value.int, result > 0 else {
                throw CheckpointError.badKey(path: path, key: "\(architecture).\(key)", message: "expected a positive integer, found \(value.summary())")
            }
            return result
        }
        func required(_ key: String) throws -> Int {
            guard let value = try int(key) else { throw CheckpointError.missingKey(path: path, key: "\(architecture).\(key)") }
            return value
        }
        func double(_ key: String) throws -> Double? {
            guard let value = metadata["\(architecture).\(key)"] else { return nil }
            // A float32 holds a decimal constant (1e-5); its shortest decimal form is the intended value.
            if case let .float32(single) = value { return Double("\(single)") ?? Double(single) }
            guard let result = value.double else {
                throw CheckpointError.badKey(path: path, key: "\(architecture).\(key)", message: "expected a number, found \(value.summary())")
            }
            return result
        }
        architectures = []
        modelType = architecture
        hiddenSize = try required("embedding_length")
        layerCount = try required("block_count")
        attentionHeadCount = try required("attention.head_count")
        keyValueHeadCount = try int("attention.head_count_kv") ?? attentionHeadCount
        // GGUF may store feed_forward_length per layer as an array; every layer the same is required here.
        if let lengths = metadata["\(architecture).feed_forward_length"]?.ints, let first = lengths.first {
            guard lengths.allSatisfy({ $0 == first }) else {
                throw CheckpointError.unsupported(path: path, message: "per-layer feed_forward_length values differ")
            }
            intermediateSize = first
        } else {
            intermediateSize = try required("feed_forward_length")
        }
        headDimension = try int("attention.key_length") ?? hiddenSize / attentionHeadCount
        if let vocabulary = try int("vocab_size") {
            vocabularySize = vocabulary
        } else if let tokens = metadata["tokenizer.ggml.tokens"]?.array {
            vocabularySize = tokens.count
        } else if let rows = file.tensorInfo(named: "token_embd.weight")?.shape.first {
            vocabularySize = rows
        } else {
            throw CheckpointError.missingKey(path: path, key: "\(architecture).vocab_size")
        }
        normEpsilon = try double("attention.layer_norm_rms_epsilon") ?? double("attention.layer_norm_epsilon") ?? 1e-5
        ropeTheta = try double("rope.freq_base")
        if let type = metadata["\(architecture).rope.scaling.type"]?.string, type != "none" {
            ropeScaling = RopeScaling(type: type, factor: try double("rope.scaling.factor"), fields: [:])
        } else {
            ropeScaling = nil
        }
        maxPositionEmbeddings = try int("context_length")
        tieWordEmbeddings = file.tensorInfo(named: "output.weight") == nil
        slidingWindow = try int("attention.sliding_window")
        bosTokenID = metadata["tokenizer.ggml.bos_token_id"]?.int
        eosTokenIDs = metadata["tokenizer.ggml.eos_token_id"]?.int.map { [$0] } ?? []
        hiddenActivation = nil
        var extra: [String: JSONValue] = [:]
        for (key, value) in metadata where key.hasPrefix("\(architecture).") {
            extra[String(key.dropFirst(architecture.count + 1))] = value.json
        }
        self.extra = extra
        try validate(path: path)
    }

    private func validate(path: String) throws {
        guard attentionHeadCount % keyValueHeadCount == 0 else {
            throw CheckpointError.badKey(path: path, key: "num_key_value_heads",
                                         message: "\(keyValueHeadCount) does not divide num_attention_heads \(attentionHeadCount)")
        }
        guard headDimension > 0 else {
            throw CheckpointError.badKey(path: path, key: "head_dim", message: "hidden size \(hiddenSize) over \(attentionHeadCount) heads leaves no head width")
        }
        guard normEpsilon > 0, normEpsilon < 1 else {
            throw CheckpointError.badKey(path: path, key: "rms_norm_eps", message: "\(normEpsilon) is not a small positive number")
        }
    }
}

/// Typed reads of `config.json` members with errors naming the key; several spellings of a key
/// (architectures disagree) are tried in order.
struct KeyReader {
    let members: [String: JSONValue]
    let path: String

    func first(_ keys: [String]) -> (String, JSONValue)? {
        for key in keys { if let value = members[key], value != .null { return (key, value) } }
        return nil
    }

    func string(_ key: String) throws -> String {
        guard let value = members[key] else { throw CheckpointError.missingKey(path: path, key: key) }
        guard let text = value.string else { throw CheckpointError.badKey(path: path, key: key, message: "expected a string, found \(value)") }
        return text
    }

    func positive(_ keys: String...) throws -> Int {
        guard let value = try optionalPositive(keys) else { throw CheckpointError.missingKey(path: path, key: keys[0]) }
        return value
    }

    func optionalPositive(_ keys: String...) throws -> Int? { try optionalPositive(keys) }

    func optionalPositive(_ keys: [String]) throws -> Int? {
        guard let (key, value) = first(keys) else { return nil }
        guard let number = value.int, number > 0 else {
            throw CheckpointError.badKey(path: path, key: key, message: "expected a positive integer, found \(value)")
        }
        return number
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard let (_, value) = first([key]) else { return nil }
        guard let number = value.int else { throw CheckpointError.badKey(path: path, key: key, message: "expected an integer, found \(value)") }
        return number
    }

    func optionalDouble(_ keys: String...) throws -> Double? {
        guard let (key, value) = first(keys) else { return nil }
        guard let number = value.double else { throw CheckpointError.badKey(path: path, key: key, message: "expected a number, found \(value)") }
        return number
    }

    func optionalBool(_ key: String) throws -> Bool? {
        guard let (_, value) = first([key]) else { return nil }
        guard let flag = value.bool else { throw CheckpointError.badKey(path: path, key: key, message: "expected true or false, found \(value)") }
        return flag
    }
}

extension GGUFValue {
    /// The value as JSON (u64 values beyond `Int.max` become doubles).
    public var json: JSONValue {
        switch self {
        case let .string(value): .string(value)
        case let .bool(value): .bool(value)
        case let .float32(value): .double(Double(value))
        case let .float64(value): .double(value)
        case let .array(elements): .array(elements.map(\.json))
        case let .uint64(value): Int(exactly: value).map { .int($0) } ?? .double(Double(value))
        default: .int(int ?? 0)  // invariant: every other case is an integer that fits in Int
        }
    }
}
