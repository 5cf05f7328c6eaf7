/// A model on disk, whichever format: a `.gguf` file or a Hugging Face folder (`config.json` and
/// safetensors). The entry point for `energon` commands and model loading.
public final class ModelCheckpoint: @unchecked Sendable {
    /// The file or folder opened.
    public let path: String
    /// GGUF or Hugging Face.
    public let format: WeightSource.Format
    /// The GGUF file, for the GGUF format.
    public let gguf: GGUFFile?
    /// The safetensors weights, for the Hugging Face format.
    public let folder: SafetensorsFolder?
    /// The hyperparameters (from GGUF metadata or `config.json`).
    public let configuration: ModelConfiguration

    /// Opens `path`: a GGUF file, or a folder with `config.json` and safetensors weights (a path
    /// to that folder's `config.json`, index or a `.safetensors` file opens the folder).
    /// - Throws: `CheckpointError` naming the file and problem.
    public init(path given: String) throws {
        var path = given
        let name = given.split(separator: "/").last.map(String.init) ?? given
        if name == "config.json" || name.hasSuffix(".safetensors") || name == SafetensorsFolder.indexName {
            let folder = given.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            path = folder.isEmpty ? (given.hasPrefix("/") ? "/" : ".") : folder
        }
        self.path = path
        if FileSystem.isDirectory(path) {
            let configPath = "\(path)/config.json"
            guard FileSystem.isRegularFile(configPath) else {
                throw CheckpointError.io(path: path, message: "a Hugging Face model folder needs config.json")
            }
            format = .huggingFace
            configuration = try ModelConfiguration(huggingFaceConfigAt: configPath)
            folder = try SafetensorsFolder(path: path)
            gguf = nil
        } else {
            format = .gguf
            let file = try GGUFFile(path: path)
            gguf = file
            folder = nil
            configuration = try ModelConfiguration(gguf: file)
        }
    }

    /// The tensors, whichever format.
    public var store: any TensorStore {
        // invariant: init sets exactly one of gguf and folder.
        if let gguf { return gguf }
        return folder!
    }

    /// A fresh weight source (with its own accounting) over the checkpoint.
    public func weights() -> WeightSource {
        WeightSource(store: store, format: format, family: configuration.family, configuration: configuration)
    }
}
