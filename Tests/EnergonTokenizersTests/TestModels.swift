import EnergonCheckpoint
import EnergonTokenizers
import Foundation

/// Where the real test models live: `ENERGON_MODELS_DIR`, or `<package root>/models`
/// (scripts/fetch_models.sh puts them there; `make test` runs it).
enum TestModels {
    static var directory: String {
        if let value = ProcessInfo.processInfo.environment["ENERGON_MODELS_DIR"], !value.isEmpty { return value }
        // This file is <root>/Tests/EnergonTokenizersTests/TestModels.swift.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent("models").path
    }

    static func path(_ name: String) -> String { directory + "/" + name }

    static let smolLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"
    static let gemma3 = "gemma-3-270m-q4_k_m.gguf"
    static let smolLM2Folder = "SmolLM2-135M-Instruct-hf"

    /// Loads a GGUF model's tokenizer; a missing file is an error naming the fetch script.
    static func ggufTokenizer(_ name: String) throws -> GGUFTokenizer {
        let file = path(name)
        guard FileManager.default.fileExists(atPath: file) else {
            throw MissingModel(path: file)
        }
        return try TokenizerLoader.load(gguf: GGUFFile(path: file))
    }

    struct MissingModel: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path) is missing: run scripts/fetch_models.sh (or set ENERGON_MODELS_DIR)" }
    }
}

/// One fixture file of Fixtures/tokenizers/.
struct TokenizerFixture: Decodable {
    struct Case: Decodable {
        let text: String
        let ids: [Int32]
        let ids_no_parse_special: [Int32]?
        let ids_no_special: [Int32]?
    }
    let reference: String
    let model: String?
    let model_sha256: String?
    let cases: [Case]

    static func load(_ name: String) throws -> TokenizerFixture {
        guard let url = Bundle.module.url(forResource: "Fixtures/tokenizers/" + name, withExtension: nil) else {
            throw TokenizerError.unreadableFile(path: name, reason: "fixture not in the test bundle")
        }
        return try JSONDecoder().decode(TokenizerFixture.self, from: Data(contentsOf: url))
    }

    static func folder(_ name: String) -> String? {
        Bundle.module.url(forResource: "Fixtures/tokenizers/" + name, withExtension: nil)?.path
    }
}
