import EnergonCheckpoint
import EnergonCore

/// The hyperparameters of a decoder-only transformer, architecture-neutral. Built from GGUF
/// metadata (`<arch>.block_count`, ...) or a Hugging Face `config.json`.
public struct DecoderConfiguration: Sendable, Equatable {
    /// How positions enter the model.
    public enum RoPEStyle: Sendable, Equatable {
        /// Pairs (2i, 2i+1): llama.cpp's layout for Llama GGUFs, whose q/k rows were permuted at conversion.
        case normal
        /// Pairs (i, i + d/2): GPT-NeoX, Qwen2, Gemma, and HF Llama checkpoints.
        case neox
    }

    /// The MLP activation (of the gate, for gated MLPs).
    public enum Activation: Sendable, Equatable {
        case silu, geluTanh, geluErf
    }

    /// Registry key of the architecture (`llama`, `qwen2`, `gemma3`, ...).
    public var architecture: String
    /// Tokens in the vocabulary (rows of the embedding).
    public var vocabularySize: Int
    /// Width of the residual stream.
    public var hiddenSize: Int
    /// Width of the MLP.
    public var intermediateSize: Int
    /// Transformer blocks.
    public var layerCount: Int
    /// Query heads.
    public var headCount: Int
    /// Key/value heads (fewer than `headCount` for grouped-query attention).
    public var kvHeadCount: Int
    /// Width of one head.
    public var headDimension: Int
    /// Epsilon of the norms.
    public var normEpsilon: Float
    /// RoPE frequency base of global layers.
    public var ropeBase: Float
    /// RoPE base of sliding-window layers (Gemma 3 uses 10 000 there, 1 000 000 on global layers).
    public var ropeLocalBase: Float
    /// Leading dimensions of each head that rotate (partial rotary when < `headDimension`).
    public var rotaryDimensions: Int
    /// Which dimensions pair up in the rotation.
    public var ropeStyle: RoPEStyle
    /// Linear RoPE scaling (1 / factor).
    public var ropeFrequencyScale: Float
    /// Longest sequence the model was trained for.
    public var contextLength: Int
    /// Sliding-window size of local layers (nil = every layer is global).
    public var slidingWindow: Int?
    /// Every `slidingWindowPattern`-th layer is global (Gemma 3: 6); 0 = all layers use the window.
    public var slidingWindowPattern: Int
    /// Which layers use the sliding window, when the checkpoint lists them (overrides the pattern).
    public var slidingLayers: [Bool]? = nil
    /// The MLP activation.
    public var activation: Activation
    /// Attention score scale (usually 1/√headDimension).
    public var attentionScale: Float
    /// Multiplier applied to token embeddings (Gemma: √hiddenSize).
    public var embeddingScale: Float
    /// tanh soft-capping of attention scores (Gemma 2), if any.
    public var attentionLogitSoftcap: Float?
    /// tanh soft-capping of the output logits, if any.
    public var finalLogitSoftcap: Float?

    /// Whether `layer` attends within the sliding window.
    public func isSlidingLayer(_ layer: Int) -> Bool {
        guard slidingWindow != nil else { return false }
        if let slidingLayers, layer < slidingLayers.count { return slidingLayers[layer] }
        if slidingWindowPattern <= 0 { return true }
        return (layer + 1) % slidingWindowPattern != 0
    }

    /// Checks the values fit together; the message names the key.
    public func validate() throws {
        func require(_ ok: Bool, _ key: String, _ value: Int, _ reason: String) throws {
            if !ok { throw ModelError.invalidValue(key: key, value: String(value), reason: reason) }
        }
        try require(hiddenSize > 0, "embedding_length", hiddenSize, "must be positive")
        try require(layerCount > 0, "block_count", layerCount, "must be positive")
        try require(headCount > 0, "attention.head_count", headCount, "must be positive")
        try require(kvHeadCount > 0 && headCount % kvHeadCount == 0, "attention.head_count_kv", kvHeadCount,
                    "must divide the head count \(headCount)")
        try require(headDimension > 0 && headDimension % 2 == 0, "attention.key_length", headDimension, "must be even and positive")
        try require(rotaryDimensions >= 0 && rotaryDimensions <= headDimension && rotaryDimensions % 2 == 0,
                    "rope.dimension_count", rotaryDimensions, "must be even and ≤ head dimension \(headDimension)")
        try require(intermediateSize > 0, "feed_forward_length", intermediateSize, "must be positive")
        try require(vocabularySize > 0, "vocab_size", vocabularySize, "must be positive")
        try require(contextLength > 0, "context_length", contextLength, "must be positive")
    }
}

/// Reads GGUF metadata keys with the architecture prefix, with errors that name the key.
struct GGUFMetadataReader {
    let metadata: [String: GGUFValue]
    let architecture: String
    let source: String

    func int(_ key: String) throws -> Int {
        let full = "\(architecture).\(key)"
        guard let value = metadata[full] else { throw ModelError.missingKey(full, source: source) }
        guard let int = value.int else {
            throw ModelError.invalidValue(key: full, value: "\(value)", reason: "expected an integer")
        }
        return int
    }

    func optionalInt(_ key: String) throws -> Int? {
        metadata["\(architecture).\(key)"] == nil ? nil : try int(key)
    }

    func float(_ key: String) throws -> Float {
        let full = "\(architecture).\(key)"
        guard let value = metadata[full] else { throw ModelError.missingKey(full, source: source) }
        guard let float = value.float else {
            throw ModelError.invalidValue(key: full, value: "\(value)", reason: "expected a number")
        }
        return float
    }

    func optionalFloat(_ key: String) throws -> Float? {
        metadata["\(architecture).\(key)"] == nil ? nil : try float(key)
    }
}
