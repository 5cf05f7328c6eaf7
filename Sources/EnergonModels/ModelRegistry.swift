import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// One line per architecture: how to read its hyperparameters and how to build it.
public enum ModelRegistry {
    /// Builds a model from a configuration, a weight source, the parallel context and the
    /// layers this worker holds (`nil` = all).
    public typealias Builder = @Sendable (DecoderConfiguration, WeightSource, ParallelContext, Range<Int>?) throws -> any DecoderModel

    struct Entry: Sendable {
        let family: Family
        let build: Builder
    }

    /// Families whose GGUF hyperparameters are read the same way.
    enum Family: Sendable { case llama, qwen2, gemma3, gpt2, opt, bert }

    static let entries: [String: Entry] = [
        "llama": Entry(family: .llama, build: { try LlamaModel(configuration: $0, weights: $1, parallel: $2, layers: $3) }),
        "mistral": Entry(family: .llama, build: { try LlamaModel(configuration: $0, weights: $1, parallel: $2, layers: $3) }),
        "qwen2": Entry(family: .qwen2, build: { try LlamaModel(configuration: $0, weights: $1, parallel: $2, layers: $3) }),
        "gemma3": Entry(family: .gemma3, build: { try Gemma3Model(configuration: $0, weights: $1, parallel: $2, layers: $3) }),
        "gpt2": Entry(family: .gpt2, build: { try GPT2Model(configuration: $0, weights: $1, parallel: $2, layers: $3) }),
        "opt": Entry(family: .opt, build: { try OPTModel(configuration: $0, weights: $1, parallel: $2, layers: $3) }),
    ]

    /// Builds an encoder (all layers, no pipeline split) from a configuration, a weight source
    /// and the parallel context.
    public typealias EncoderBuilder = @Sendable (DecoderConfiguration, WeightSource, ParallelContext) throws -> any EncoderModel

    struct EncoderEntry: Sendable {
        let family: Family
        let build: EncoderBuilder
    }

    /// Encoder-only architectures (they return hidden states, not logits).
    static let encoderEntries: [String: EncoderEntry] = [
        "bert": EncoderEntry(family: .bert, build: { try BERTModel(configuration: $0, weights: $1, parallel: $2) }),
    ]

    /// Encoder architecture names that can be built.
    public static var supportedEncoderArchitectures: [String] { encoderEntries.keys.sorted() }

    /// Architecture names that can be built.
    public static var supportedArchitectures: [String] { entries.keys.sorted() }

    /// Reads the configuration of `architecture` from GGUF metadata.
    /// - Parameter vocabularySize: rows of the token embedding (GGUF stores no vocab size key for every architecture).
    public static func configuration(architecture: String, metadata: [String: GGUFValue], vocabularySize: Int,
                                     source: String) throws -> DecoderConfiguration {
        guard let family = entries[architecture]?.family ?? encoderEntries[architecture]?.family else {
            throw ModelError.unsupportedArchitecture(architecture, supported: supportedArchitectures + supportedEncoderArchitectures)
        }
        let m = GGUFMetadataReader(metadata: metadata, architecture: architecture, source: source)
        let hidden = try m.int("embedding_length")
        let heads = try m.int("attention.head_count")
        let headDimension = try m.optionalInt("attention.key_length") ?? (heads > 0 ? hidden / heads : 0)
        var configuration = DecoderConfiguration(
            architecture: architecture,
            vocabularySize: vocabularySize,
            hiddenSize: hidden,
            intermediateSize: try m.int("feed_forward_length"),
            layerCount: try m.int("block_count"),
            headCount: heads,
            kvHeadCount: try m.optionalInt("attention.head_count_kv") ?? heads,
            headDimension: headDimension,
            normEpsilon: try m.float(family.usesLayerNorm ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon"),
            ropeBase: try m.optionalFloat("rope.freq_base") ?? 10_000,
            ropeLocalBase: try m.optionalFloat("rope.freq_base") ?? 10_000,
            rotaryDimensions: try m.optionalInt("rope.dimension_count") ?? headDimension,
            ropeStyle: .normal,
            ropeFrequencyScale: 1,
            contextLength: try m.int("context_length"),
            slidingWindow: nil,
            slidingWindowPattern: 0,
            activation: .silu,
            attentionScale: 1 / Float(headDimension).squareRoot(),
            embeddingScale: 1,
            attentionLogitSoftcap: nil,
            finalLogitSoftcap: nil)
        if let factor = try m.optionalFloat("rope.scaling.factor"), factor > 0,
           metadata["\(architecture).rope.scaling.type"]?.string ?? "linear" == "linear" {
            configuration.ropeFrequencyScale = 1 / factor
        }
        switch family {
        case .llama:
            // llama.cpp's converter permutes Llama q/k rows so the "normal" (adjacent-pair) rotation applies.
            configuration.ropeStyle = .normal
        case .qwen2:
            configuration.ropeStyle = .neox
        case .gemma3:
            configuration.ropeStyle = .neox
            configuration.activation = .geluTanh
            configuration.embeddingScale = Float(hidden).squareRoot()
            configuration.slidingWindow = try m.optionalInt("attention.sliding_window")
            configuration.slidingWindowPattern = 6
            configuration.ropeLocalBase = 10_000
        case .gpt2, .opt, .bert:
            // Learned absolute positions, no rotary embedding. OPT's ReLU is fixed in OPTModel.
            configuration.rotaryDimensions = 0
            configuration.activation = family == .bert ? .geluErf : .geluTanh
        }
        try configuration.validate()
        return configuration
    }

    /// Reads the configuration of a Hugging Face checkpoint from its parsed `config.json`.
    /// Llama-family q/k weights are permuted by `WeightSource` on the way in, so HF and GGUF
    /// checkpoints run the same model code with the same rotary layout.
    public static func configuration(huggingFace c: ModelConfiguration, source: String) throws -> DecoderConfiguration {
        guard let family = c.family,
              let registered = entries[family.rawValue]?.family ?? encoderEntries[family.rawValue]?.family else {
            throw ModelError.unsupportedArchitecture(c.modelType, supported: supportedArchitectures + supportedEncoderArchitectures)
        }
        let headDimension = c.headDimension
        // transformers ≥ 5 writes `rope_parameters` (per layer type for Gemma 3) instead of `rope_theta`.
        let ropeParameters = c.extra["rope_parameters"]?.object
        let globalTheta = c.ropeTheta ?? ropeParameters?["rope_theta"]?.double
            ?? ropeParameters?["full_attention"]?.object?["rope_theta"]?.double ?? 10_000
        let localTheta = c.extra["rope_local_base_freq"]?.double
            ?? ropeParameters?["sliding_attention"]?.object?["rope_theta"]?.double ?? 10_000
        var configuration = DecoderConfiguration(
            architecture: family.rawValue,
            vocabularySize: c.vocabularySize,
            hiddenSize: c.hiddenSize,
            intermediateSize: c.intermediateSize,
            layerCount: c.layerCount,
            headCount: c.attentionHeadCount,
            kvHeadCount: c.keyValueHeadCount,
            headDimension: headDimension,
            normEpsilon: Float(c.normEpsilon),
            ropeBase: Float(globalTheta),
            ropeLocalBase: Float(globalTheta),
            rotaryDimensions: headDimension,
            ropeStyle: .normal,
            ropeFrequencyScale: 1,
            contextLength: c.maxPositionEmbeddings ?? 4096,
            slidingWindow: nil,
            slidingWindowPattern: 0,
            activation: .silu,
            attentionScale: 1 / Float(headDimension).squareRoot(),
            embeddingScale: 1,
            attentionLogitSoftcap: nil,
            finalLogitSoftcap: nil)
        if let scaling = c.ropeScaling, scaling.type == "linear", let factor = scaling.factor, factor > 0 {
            configuration.ropeFrequencyScale = Float(1 / factor)
        }
        switch registered {
        case .llama:
            configuration.ropeStyle = .normal
        case .qwen2:
            configuration.ropeStyle = .neox
        case .gemma3:
            configuration.ropeStyle = .neox
            configuration.activation = .geluTanh
            configuration.embeddingScale = Float(c.hiddenSize).squareRoot()
            configuration.slidingWindow = c.slidingWindow
            configuration.slidingWindowPattern = c.extra["sliding_window_pattern"]?.int ?? 6
            if let kinds = c.extra["layer_types"]?.array?.compactMap(\.string), kinds.count == c.layerCount {
                configuration.slidingLayers = kinds.map { $0 == "sliding_attention" }
            }
            configuration.ropeLocalBase = Float(localTheta)
            if let scalar = c.extra["query_pre_attn_scalar"]?.double, scalar > 0 {
                configuration.attentionScale = Float(1 / scalar.squareRoot())
            }
        case .gpt2, .opt, .bert:
            // Learned absolute positions, no rotary embedding. OPT's ReLU is fixed in OPTModel.
            configuration.rotaryDimensions = 0
            configuration.activation = registered == .bert ? .geluErf : .geluTanh
            if registered == .opt {
                if c.extra["do_layer_norm_before"]?.bool == false {
                    throw ModelError.invalidValue(key: "do_layer_norm_before", value: "false", reason: "\(source): post-norm OPT (350M) is not supported")
                }
                if let projection = c.extra["word_embed_proj_dim"]?.int, projection != c.hiddenSize {
                    throw ModelError.invalidValue(key: "word_embed_proj_dim", value: String(projection),
                                                  reason: "\(source): embedding projections (project_in/out) are not supported")
                }
            }
        }
        try configuration.validate()
        return configuration
    }

    /// Builds the encoder for `configuration.architecture` (`bert`).
    public static func buildEncoder(configuration: DecoderConfiguration, weights: WeightSource,
                                    parallel: ParallelContext = .serial) throws -> any EncoderModel {
        guard let entry = encoderEntries[configuration.architecture] else {
            throw ModelError.unsupportedArchitecture(configuration.architecture, supported: supportedEncoderArchitectures)
        }
        let model = try entry.build(configuration, weights, parallel)
        weights.store.releaseResidentPages()
        return model
    }

    /// Builds the model for `configuration.architecture`.
    public static func build(configuration: DecoderConfiguration, weights: WeightSource,
                             parallel: ParallelContext = .serial, layers: Range<Int>? = nil) throws -> any DecoderModel {
        guard let entry = entries[configuration.architecture] else {
            throw ModelError.unsupportedArchitecture(configuration.architecture, supported: supportedArchitectures)
        }
        let model = try entry.build(configuration, weights, parallel, layers)
        // The weights now live in prepared copies (or are read back on demand): leave none of
        // the file's pages resident.
        weights.store.releaseResidentPages()
        return model
    }
}

extension ModelRegistry.Family {
    /// GGUF stores LayerNorm epsilon as `attention.layer_norm_epsilon`, RMSNorm's as `..._rms_epsilon`.
    var usesLayerNorm: Bool { self == .gpt2 || self == .opt || self == .bert }
}
