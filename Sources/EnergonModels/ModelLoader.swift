import EnergonCheckpoint
import EnergonCore
import EnergonDistributed
import EnergonTokenizers
import Foundation

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

    /// Opens a `.gguf` file or a Hugging Face folder (`config.json`, `*.safetensors`,
    /// `tokenizer.json`), reads its configuration and tokenizer, and builds the model.
    /// - Parameters:
    ///   - path: a `.gguf` file or a Hugging Face folder.
    ///   - parallel: where this worker sits in the tp × pp grid.
    ///   - layers: the blocks this worker holds (`nil` = all).
    public static func load(path: String, parallel: ParallelContext = .serial, layers: Range<Int>? = nil) throws -> LoadedModel {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            return try loadHuggingFace(folder: path, parallel: parallel, layers: layers)
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
        let weights = WeightSource(gguf: file)
        let model = try ModelRegistry.build(configuration: configuration, weights: weights, parallel: parallel, layers: layers)
        let tokenizer = try TokenizerLoader.load(gguf: file)
        return LoadedModel(model: model, tokenizer: tokenizer,
                           chatTemplate: file.metadata["tokenizer.chat_template"]?.string,
                           path: path, weightBytes: file.totalTensorBytes)
    }

    private static func loadHuggingFace(folder: String, parallel: ParallelContext, layers: Range<Int>?) throws -> LoadedModel {
        let configurationPath = folder + "/config.json"
        let hfConfiguration = try ModelConfiguration(huggingFaceConfigAt: configurationPath)
        let configuration = try ModelRegistry.configuration(huggingFace: hfConfiguration, source: configurationPath)
        let store = try SafetensorsFolder(path: folder)
        let weights = WeightSource(huggingFace: store, configuration: hfConfiguration)
        let model = try ModelRegistry.build(configuration: configuration, weights: weights, parallel: parallel, layers: layers)
        let tokenizer = try TokenizerLoader.load(folder: folder)
        return LoadedModel(model: model, tokenizer: tokenizer, chatTemplate: chatTemplate(folder: folder),
                           path: folder, weightBytes: store.storedTensors.reduce(0) { $0 + $1.byteCount })
    }

    /// The chat template of a Hugging Face folder: `chat_template.jinja`, else the
    /// `chat_template` string of `tokenizer_config.json`.
    private static func chatTemplate(folder: String) -> String? {
        if let text = try? String(contentsOfFile: folder + "/chat_template.jinja", encoding: .utf8) { return text }
        guard let data = FileManager.default.contents(atPath: folder + "/tokenizer_config.json"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object["chat_template"] as? String
    }
}
