import EnergonCheckpoint
import EnergonTokenizers
import Foundation
import Testing

/// Malformed tokenizer data gives a typed `TokenizerError` naming the source and the key.
@Suite struct TokenizerMalformedInputTests {
    /// A small valid byte-level BPE vocabulary: the 256 byte characters, one merge.
    static func validMetadata() -> [String: GGUFValue] {
        let byteTokens = (0..<256).map { byte -> String in
            String(decoding: [UInt8](ByteLevelAlphabetForTests.character(byte)), as: UTF8.self)
        }
        let tokens = byteTokens + ["ab", "<|end|>"]
        return [
            "tokenizer.ggml.model": .string("gpt2"),
            "tokenizer.ggml.pre": .string("gpt2"),
            "tokenizer.ggml.tokens": .array(tokens.map { .string($0) }),
            "tokenizer.ggml.token_type": .array(tokens.indices.map { .int32($0 == tokens.count - 1 ? 3 : 1) }),
            "tokenizer.ggml.merges": .array([.string("a b")]),
            "tokenizer.ggml.eos_token_id": .uint32(UInt32(tokens.count - 1)),
        ]
    }

    static func load(_ metadata: [String: GGUFValue]) throws -> GGUFTokenizer {
        var writer = GGUFWriter()
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { writer.set(key, value) }
        let file = try GGUFFile(bytes: writer.bytes(), name: "test.gguf")
        return try TokenizerLoader.load(gguf: file)
    }

    @Test func validSyntheticVocabularyWorks() throws {
        let tokenizer = try Self.load(Self.validMetadata())
        #expect(tokenizer.encode("ab", addSpecialTokens: true) == [256])
        #expect(tokenizer.encode("ab<|end|>") == [256, 257])
        #expect(tokenizer.eosTokenIDs == [257])
    }

    static let broken: [(String, @Sendable (inout [String: GGUFValue]) -> Void, TokenizerError)] = [
        ("no model", { $0["tokenizer.ggml.model"] = nil },
         .missingKey(source: "test.gguf", key: "tokenizer.ggml.model")),
        ("model not a string", { $0["tokenizer.ggml.model"] = .uint32(2) },
         .invalidValue(source: "test.gguf", key: "tokenizer.ggml.model", reason: "is not a string")),
        ("unknown model", { $0["tokenizer.ggml.model"] = .string("nonsense") },
         .unsupported(source: "test.gguf", what: "tokenizer.ggml.model `nonsense`")),
        ("unknown pre", { $0["tokenizer.ggml.pre"] = .string("nonsense") },
         .unsupported(source: "test.gguf", what: "tokenizer.ggml.pre `nonsense`")),
        ("no tokens", { $0["tokenizer.ggml.tokens"] = nil },
         .missingKey(source: "test.gguf", key: "tokenizer.ggml.tokens")),
        ("tokens not strings", { $0["tokenizer.ggml.tokens"] = .array([.uint8(1)]) },
         .invalidValue(source: "test.gguf", key: "tokenizer.ggml.tokens", reason: "is not an array of strings")),
        ("empty tokens", { $0["tokenizer.ggml.tokens"] = .array([]); $0["tokenizer.ggml.token_type"] = nil },
         .invalidValue(source: "test.gguf", key: "tokenizer.ggml.tokens", reason: "is empty")),
        ("short token types", { $0["tokenizer.ggml.token_type"] = .array([.int32(1)]) },
         .invalidValue(source: "test.gguf", key: "tokenizer.ggml.token_type", reason: "has 1 entries for 258 tokens")),
        ("short scores", { $0["tokenizer.ggml.scores"] = .array([.float32(0)]) },
         .invalidValue(source: "test.gguf", key: "tokenizer.ggml.scores", reason: "has 1 entries for 258 tokens")),
        ("scores not numbers", { $0["tokenizer.ggml.scores"] = .array([.string("x")]) },
         .invalidValue(source: "test.gguf", key: "tokenizer.ggml.scores", reason: "is not an array of numbers")),
        ("no merges", { $0["tokenizer.ggml.merges"] = nil },
         .missingKey(source: "test.gguf", key: "tokenizer.ggml.merges")),
        ("bos id not an integer", { $0["tokenizer.ggml.bos_token_id"] = .string("1") },
         .invalidValue(source: "test.gguf", key: "tokenizer.ggml.bos_token_id", reason: "is not an integer")),
        ("token types not integers", { $0["tokenizer.ggml.token_type"] = .array([.string("x")]) },
         .invalidValue(source: "test.gguf", key: "tokenizer.ggml.token_type", reason: "is not an array of int32")),
        ("add_bos not a bool", { $0["tokenizer.ggml.add_bos_token"] = .uint8(1) },
         .invalidValue(source: "test.gguf", key: "tokenizer.ggml.add_bos_token", reason: "is not a boolean")),
    ]

    @Test(arguments: broken.indices)
    func brokenGGUFMetadataIsATypedError(index: Int) throws {
        let (name, mutate, expected) = Self.broken[index]
        var metadata = Self.validMetadata()
        mutate(&metadata)
        #expect(throws: expected, "\(name)") { try Self.load(metadata) }
    }

    static func writeFolder(_ files: [String: String]) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("energon-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (name, content) in files {
            try Data(content.utf8).write(to: folder.appendingPathComponent(name))
        }
        return folder.path
    }

    static let brokenJSON: [(String, String, String)] = [
        ("not JSON", "{\"model\": ", "malformed JSON (unexpected end of input at byte 10)"),
        ("not an object", "[1, 2]", "`` is not an object"),
        ("vocab missing", #"{"model": {"type": "BPE", "merges": []}}"#, "`model.vocab` is not an object"),
        ("bad id", #"{"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}}"#, "`model.vocab` maps `a`"),
        ("unknown model", #"{"model": {"type": "Unigram", "vocab": {"a": 0}}}"#, "unsupported model.type `Unigram`"),
        ("merge part unknown", #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}"#,
         "`model.merges` has merge #0 `a b` with a part not in the vocabulary"),
        ("bad pre-tokenizer", #"{"pre_tokenizer": {"type": "Nonsense"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}"#,
         "unsupported pre-tokenizer type `Nonsense` at pre_tokenizer"),
        ("unknown split regex", #"{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "x+"}, "behavior": "Isolated", "invert": false}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}"#,
         "unsupported Split regex at pre_tokenizer: x+"),
        ("wordpiece unk missing", #"{"model": {"type": "WordPiece", "vocab": {"a": 0}, "unk_token": "[UNK]"}}"#,
         "`model.unk_token` names `[UNK]`, which is not in the vocabulary"),
        ("absurd token id", #"{"model": {"type": "BPE", "vocab": {"a": 4000000000}, "merges": []}}"#,
         "`model.vocab` maps `a` to something other than a token id"),
        ("sparse token ids", #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 9000000}, "merges": []}}"#,
         "`model.vocab` has token id 9000000 for only 2 tokens"),
        ("absurd added token id", #"{"added_tokens": [{"id": 99999999, "content": "x"}], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}"#,
         "`added_tokens[0].id` is out of range"),
        ("added token id not an integer", #"{"added_tokens": [{"id": "1", "content": "x"}], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}"#,
         "`added_tokens[0].id` is not an integer"),
    ]

    @Test(arguments: brokenJSON.indices)
    func brokenTokenizerJSONIsATypedError(index: Int) throws {
        let (name, json, message) = Self.brokenJSON[index]
        let folder = try Self.writeFolder(["tokenizer.json": json])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do {
            _ = try TokenizerLoader.load(folder: folder)
            Issue.record("\(name): loaded without an error")
        } catch let error as TokenizerError {
            #expect(error.description.contains(folder + "/tokenizer.json"), "\(name): \(error)")
            #expect(error.description.contains(message), "\(name): \(error)")
        }
    }

    @Test func missingFilesAreTypedErrors() throws {
        let folder = try Self.writeFolder([:])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(throws: TokenizerError.unreadableFile(path: folder + "/tokenizer.json", reason: "no such file or not readable")) {
            try TokenizerLoader.load(folder: folder)
        }
        #expect(throws: TokenizerError.unreadableFile(path: folder + "/nothing", reason: "no such file or folder")) {
            try TokenizerLoader.load(path: folder + "/nothing")
        }
    }
}

/// GPT-2's byte alphabet, written independently of the library's table for the synthetic vocabulary.
enum ByteLevelAlphabetForTests {
    static func character(_ byte: Int) -> [UInt8] {
        let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
        var codePoint = UInt32(byte)
        if !printable {
            var shifted: UInt32 = 256
            for lower in 0..<byte {
                let lowerPrintable = (0x21...0x7E).contains(lower) || (0xA1...0xAC).contains(lower) || (0xAE...0xFF).contains(lower)
                if !lowerPrintable { shifted += 1 }
            }
            codePoint = shifted
        }
        return Array(String(Unicode.Scalar(codePoint)!).utf8)  // invariant: below U+0144
    }
}
