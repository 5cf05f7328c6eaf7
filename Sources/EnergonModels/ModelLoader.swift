import EnergonCheckpoint
import EnergonCore
import EnergonDistributed
import EnergonTokenizers
import Foundation

/// An opened checkpoint (a `.gguf` file or a Hugging Face folder): its configuration, tokenizer
/// and chat template, and fresh `WeightSource`s for the ranks that build shards of it.
public final class Checkpoint: @unchecked Sendable {
    /// The file or folder.
    public let path: String
    /// The model's hyperparameters.
    public let configuration: DecoderConfiguration
    /// The tokenizer the checkpoint carries.
    public let tokenizer: any Tokenizer
    /// The chat template the checkpoint carries, if any (Jinja source).
    public let chatTemplate: String?
    /// Bytes of all weights in the checkpoint.
    public let weightBytes: Int
    private let makeWeights: @Sendable () -> WeightSource

    private init(path: String, configuration: DecoderConfiguration, tokenizer: any Tokenizer, chatTemplate: String?,
                 weightBytes: Int, makeWeights: @escaping @Sendable () -> WeightSource) {
        self.path = path
        self.configuration = configuration
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.weightBytes = weightBytes
        self.makeWeights = makeWeights
    }

    /// A fresh weight source (each rank keeps its own accounting of what it used).
    public func weights() -> WeightSource { makeWeights() }

    /// Opens a `.gguf` file or a Hugging Face folder (`config.json`, `*.safetensors`, `tokenizer.json`).
    public static func open(path: String) throws -> Checkpoint {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            return try openHuggingFace(folder: path)
        }
        let file = try GGUFFile(path: path)
        guard let architecture = file.architecture else {
            throw ModelError.missingKey("general.architecture", source: path)
        }
        guard let embedding = file.tensorInfo(named: "token_embd.weight"), embedding.shape.count == 2 else {
            throw ModelError.missingKey("token_embd.weight", source: path)
        }
        let configuration = try ModelRegistry.configuration(architecture: architecture, metadata: file.metadata,
                                                            vocabularySize: embedding.shape[0], source: path)
        let tokenizer = try TokenizerLoader.load(gguf: file)
        return Checkpoint(path: path, configuration: configuration, tokenizer: tokenizer,
                          chatTemplate: file.metadata["tokenizer.chat_template"]?.string,
                          weightBytes: file.totalTensorBytes, makeWeights: { WeightSource(gguf: file) })
    }

    private static func openHuggingFace(folder: String) throws -> Checkpoint {
        let configurationPath = folder + "/config.json"
        let hfConfiguration = try ModelConfiguration(huggingFaceConfigAt: configurationPath)
        let configuration = try ModelRegistry.configuration(huggingFace: hfConfiguration, source: configurationPath)
        let store = try SafetensorsFolder(path: folder)
        let tokenizer = try TokenizerLoader.load(folder: folder)
        return Checkpoint(path: folder, configuration: configuration, tokenizer: tokenizer,
                          chatTemplate: chatTemplate(folder: folder),
                          weightBytes: store.storedTensors.reduce(0) { $0 + $1.byteCount },
                          makeWeights: { WeightSource(huggingFace: store, configuration: hfConfiguration) })
    }

    /// The chat template of a Hugging Face folder: `chat_template.jinja`, else the
    /// `chat_template` string of `tokenizer_config.json`.
    private static func chatTemplate(folder: String) -> String? {
        if let text = try? String(contentsOfFile: folder + "/chat_template.jinja", encoding: .utf8) { return text }
        guard let data = FileManager.default.contents(atPath: folder + "/tokenizer_config.json"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object["chat_template"] as? String
    }

    /// Builds a runner for a tp × pp grid: the serial runner at 1 × 1, else thread ranks of
    /// this process.
    /// - Parameters:
    ///   - threadsPerRank: compute threads of each rank.
    ///   - contextLength: positions the KV cache holds (default: the model's, at most 4096).
    ///   - kvCacheType: element type of the KV cache, `.f16` (llama.cpp's default) or `.f32`.
    ///   - batchesInFlight: batches a pipeline holds at once (default: one per stage; 1 makes it blocking).
    ///   - cacheBlocks: KV-cache blocks (default: enough for `contextLength` positions); an engine
    ///     serving several sequences wants more.
    public func makeRunner(tensorParallel: Int = 1, pipelineStages: Int = 1, layersPerStage: [Int]? = nil,
                           threadsPerRank: Int, isa: ISA = .best, contextLength: Int? = nil,
                           blockSize: Int = 16, kvCacheType: DType = .f16, batchesInFlight: Int? = nil,
                           cacheBlocks: Int? = nil) throws -> any ModelRunner {
        try RunnerFactory.make(configuration: configuration, weights: { self.weights() }, tensorParallel: tensorParallel,
                               pipelineStages: pipelineStages, layersPerStage: layersPerStage, threadsPerRank: threadsPerRank,
                               isa: isa, contextLength: contextLength, blockSize: blockSize, kvCacheType: kvCacheType,
                               batchesInFlight: batchesInFlight, cacheBlocks: cacheBlocks)
    }
}

/// Builds the in-process runner for a model given by its configuration and weights (what
/// `Checkpoint.makeRunner` does, for callers without a checkpoint), and the KV-cache geometry
/// every runner of a run must share.
public enum RunnerFactory {
    /// Positions per block and blocks for `contextLength` positions (default: the model's, at
    /// most 4096), at least `cacheBlocks` blocks.
    public static func cacheGeometry(configuration: DecoderConfiguration, contextLength: Int?, blockSize: Int = 16,
                                     cacheBlocks: Int? = nil) -> (blockSize: Int, blockCount: Int) {
        let length = max(1, min(contextLength ?? min(configuration.contextLength, 4096), configuration.contextLength))
        return (blockSize, max(cacheBlocks ?? 0, (length + blockSize - 1) / blockSize))
    }

    /// The serial runner at 1 × 1, else thread ranks of this process (see `Checkpoint.makeRunner`).
    public static func make(configuration: DecoderConfiguration, weights: @escaping () -> WeightSource,
                            tensorParallel: Int = 1, pipelineStages: Int = 1, layersPerStage: [Int]? = nil,
                            threadsPerRank: Int, isa: ISA = .best, contextLength: Int? = nil, blockSize: Int = 16,
                            kvCacheType: DType = .f16, batchesInFlight: Int? = nil,
                            cacheBlocks: Int? = nil) throws -> any ModelRunner {
        let (blockSize, blockCount) = cacheGeometry(configuration: configuration, contextLength: contextLength,
                                                    blockSize: blockSize, cacheBlocks: cacheBlocks)
        // Weights are laid out for the level the runner computes at.
        return try MatMul.$preparationISA.withValue(isa) {
            try make(configuration: configuration, weights: weights, tensorParallel: tensorParallel,
                     pipelineStages: pipelineStages, layersPerStage: layersPerStage, threadsPerRank: threadsPerRank,
                     isa: isa, blockSize: blockSize, blockCount: blockCount, kvCacheType: kvCacheType,
                     batchesInFlight: batchesInFlight)
        }
    }

    private static func make(configuration: DecoderConfiguration, weights: @escaping () -> WeightSource,
                             tensorParallel: Int, pipelineStages: Int, layersPerStage: [Int]?, threadsPerRank: Int,
                             isa: ISA, blockSize: Int, blockCount: Int, kvCacheType: DType,
                             batchesInFlight: Int?) throws -> any ModelRunner {
        if tensorParallel == 1 && pipelineStages == 1 {
            let model = try ModelRegistry.build(configuration: configuration, weights: weights())
            return SerialRunner(model: model, context: ComputeContext(threads: threadsPerRank, isa: isa),
                                blockSize: blockSize, blockCount: blockCount, kvCacheType: kvCacheType)
        }
        let grid = try ParallelGrid(configuration: configuration, tensorParallel: tensorParallel,
                                    pipelineStages: pipelineStages, layersPerStage: layersPerStage,
                                    weightBlocks: ParallelGrid.WeightBlocks(weights(), configuration: configuration))
        return try LocalParallelRunner(configuration: configuration, grid: grid, threadsPerRank: threadsPerRank,
                                       weights: weights, blockSize: blockSize, blockCount: blockCount,
                                       kvCacheType: kvCacheType, batchesInFlight: batchesInFlight, isa: isa)
    }
}

/// A model opened from a checkpoint and built whole (one worker), with its tokenizer.
public final class LoadedModel: @unchecked Sendable {
    /// The network (this worker's share of it).
    public let model: any DecoderModel
    /// The tokenizer the checkpoint carries.
    public let tokenizer: any Tokenizer
    /// The chat template the checkpoint carries, if any (Jinja source).
    public let chatTemplate: String?
    /// The file or folder the model came from.
    public let path: String
    /// Bytes of weights in the checkpoint.
    public let weightBytes: Int

    init(model: any DecoderModel, checkpoint: Checkpoint) {
        self.model = model
        tokenizer = checkpoint.tokenizer
        chatTemplate = checkpoint.chatTemplate
        path = checkpoint.path
        weightBytes = checkpoint.weightBytes
    }

    /// Opens a `.gguf` file or a Hugging Face folder and builds the model.
    /// - Parameters:
    ///   - path: a `.gguf` file or a Hugging Face folder.
    ///   - parallel: where this worker sits in the tp × pp grid.
    ///   - layers: the blocks this worker holds (`nil` = all).
    public static func load(path: String, parallel: ParallelContext = .serial, layers: Range<Int>? = nil) throws -> LoadedModel {
        let checkpoint = try Checkpoint.open(path: path)
        let model = try ModelRegistry.build(configuration: checkpoint.configuration, weights: checkpoint.weights(),
                                            parallel: parallel, layers: layers)
        return LoadedModel(model: model, checkpoint: checkpoint)
    }
}
