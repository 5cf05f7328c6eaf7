import EnergonCheckpoint
import Foundation

/// Loads the tokenizer of a model from a GGUF file or a Hugging Face folder.
public enum TokenizerLoader {
    /// Loads a model path: a `.gguf` file, or a folder with `tokenizer.json`.
    ///
    /// - Parameter path: The model path given on the command line.
    /// - Throws: `TokenizerError`, or the `CheckpointError` of an unreadable GGUF file.
    public static func load(path: String) throws -> any Tokenizer {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TokenizerError.unreadableFile(path: path, reason: "no such file or folder")
        }
        if isDirectory.boolValue { return try load(folder: path) }
        return try load(gguf: GGUFFile(path: path))
    }

    /// Loads a Hugging Face folder's `tokenizer.json` (and `tokenizer_config.json` if present).
    ///
    /// - Throws: `TokenizerError` naming the file and field that is missing, malformed or unsupported.
    public static func load(folder: String) throws -> HuggingFaceTokenizer {
        try HuggingFaceTokenizer(folder: folder)
    }

    /// Builds the tokenizer described by a GGUF file's `tokenizer.ggml.*` metadata.
    ///
    /// - Throws: `TokenizerError` naming the file and key that is missing or malformed.
    public static func load(gguf file: GGUFFile) throws -> GGUFTokenizer {
        try GGUFTokenizer(metadata: vocabularyMetadata(gguf: file))
    }

    /// Reads the `tokenizer.ggml.*` keys of a GGUF file, checking each one's type.
    public static func vocabularyMetadata(gguf file: GGUFFile) throws -> VocabularyMetadata {
        let source = file.path
        let metadata = file.metadata
        func value(_ key: String) -> GGUFValue? { metadata["tokenizer.ggml." + key] }
        func string(_ key: String) throws -> String? {
            guard let entry = value(key) else { return nil }
            guard let text = entry.string else {
                throw TokenizerError.invalidValue(source: source, key: "tokenizer.ggml." + key, reason: "is not a string")
            }
            return text
        }
        func integer(_ key: String) throws -> Int64? {
            guard let entry = value(key) else { return nil }
            guard let number = entry.int else {
                throw TokenizerError.invalidValue(source: source, key: "tokenizer.ggml." + key, reason: "is not an integer")
            }
            return Int64(number)
        }
        func boolean(_ key: String) throws -> Bool? {
            guard let entry = value(key) else { return nil }
            guard let flag = entry.bool else {
                throw TokenizerError.invalidValue(source: source, key: "tokenizer.ggml." + key, reason: "is not a boolean")
            }
            return flag
        }
        func strings(_ key: String) throws -> [String]? {
            guard let entry = value(key) else { return nil }
            guard let list = entry.strings else {
                throw TokenizerError.invalidValue(source: source, key: "tokenizer.ggml." + key, reason: "is not an array of strings")
            }
            return list
        }
        guard let model = try string("model") else {
            throw TokenizerError.missingKey(source: source, key: "tokenizer.ggml.model")
        }
        guard let tokens = try strings("tokens") else {
            throw TokenizerError.missingKey(source: source, key: "tokenizer.ggml.tokens")
        }
        var result = VocabularyMetadata(source: source, model: model, pre: try string("pre"), tokens: tokens)
        if let entry = value("scores") {
            guard let scores = entry.floats else {
                throw TokenizerError.invalidValue(source: source, key: "tokenizer.ggml.scores", reason: "is not an array of numbers")
            }
            result.scores = scores
        }
        if let entry = value("token_type") {
            guard let types = entry.ints, types.allSatisfy({ Int32(exactly: $0) != nil }) else {
                throw TokenizerError.invalidValue(source: source, key: "tokenizer.ggml.token_type", reason: "is not an array of int32")
            }
            result.tokenTypes = types.map { Int32($0) }
        }
        result.merges = try strings("merges")
        result.bosTokenID = try integer("bos_token_id")
        result.eosTokenID = try integer("eos_token_id")
        result.eotTokenID = try integer("eot_token_id")
        result.eomTokenID = try integer("eom_token_id")
        result.unknownTokenID = try integer("unknown_token_id")
        result.separatorTokenID = try integer("seperator_token_id")
        result.paddingTokenID = try integer("padding_token_id")
        result.addBOS = try boolean("add_bos_token")
        result.addEOS = try boolean("add_eos_token")
        result.addSEP = try boolean("add_sep_token")
        result.addSpacePrefix = try boolean("add_space_prefix")
        result.normalizerLowercase = try boolean("normalizer.lowercase")
        result.normalizerStripAccents = try boolean("normalizer.strip_accents")
        return result
    }
}
