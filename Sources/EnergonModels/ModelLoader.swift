import EnergonCheckpoint
import EnergonCore
import EnergonDistributed
import EnergonTokenizers

/// A model opened from a checkpoint, with its tokenizer and chat template.
public final class LoadedModel: @unchecked Sendable {
    /// The network (this worker's share of it).
    public let model: any DecoderModel
    /// The tokenizer the checkpoint carries.
    public let tokenizer: any Tokenizer
    /// The chat template the checkpoint carries, if any (Jinja source).
    public let chatTemplate: String?
    /// The file or folder the model came from.
    public let path: String
    /// Bytes of weights this worker maps.
    public let weightBytes: Int

    init(model: any DecoderModel, tokenizer: any Tokenizer, chatTemplate: String?, path: String, weightBytes: Int) {
        self.model = model
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.path = path
        self.weightBytes = weightBytes
    }

    /// Opens a `.gguf` file, reads its configuration and tokenizer, and builds the model.
    /// - Parameters:
    ///   - path: a `.gguf` file.
    ///   - parallel: where this worker sits in the tp × pp grid.
    ///   - layers: the blocks this worker holds (`nil` = all).
    public static func load(path: String, parallel: ParallelContext = .serial, layers: Range<Int>? = nil) throws -> LoadedModel {
        let file = try GGUFFile(path: path)
        guard let architecture = file.architecture else {
            throw ModelError.missingKey("general.architecture", source: path)
        }
        guard let embedding = file.tensorInfo(named: "token_embd.weight"), embedding.shape.count == 2 else {
            throw ModelError.missingKey("token_embd.weight", source: path)
        }
        let configuration = try ModelRegistry.configuration(architecture: architecture, metadata: file.metadata,
                                                            vocabularySize: embedding.shape[0], source: path)
        let weights = WeightSource(gguf: file)
        let model = try ModelRegistry.build(configuration: configuration, weights: weights, parallel: parallel, layers: layers)
        let tokenizer = try TokenizerLoader.load(gguf: file)
        return LoadedModel(model: model, tokenizer: tokenizer,
                           chatTemplate: file.metadata["tokenizer.chat_template"]?.string,
                           path: path, weightBytes: file.totalTensorBytes)
    }
}
