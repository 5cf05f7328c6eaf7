import EnergonTokenizers
import Testing

/// Token ids against the `tokenizers` PyPI package (Fixtures/tokenizers/*.tokenizers.json, made by
/// scripts/make_tokenizer_fixtures.py) for tokenizer.json files: SmolLM2's (from the fetched
/// models) and two small ones trained with `tokenizers` and committed (byte-level BPE with the
/// Llama 3 split regex; BERT WordPiece; Llama 2 style character BPE with byte fallback; Mistral style Metaspace with added tokens).
@Suite struct TokenizerHuggingFaceTests {
    /// (fixture, folder, lossless): lossless tokenizers must round-trip every text.
    static let cases: [(String, String, Bool)] = [
        ("smollm2-hf", "models", true),
        ("bpe-llama3-split", "fixture", true),
        ("wordpiece-bert", "fixture", false),
        ("spm-llama2-bytefallback", "fixture", true),
        ("spm-metaspace-first", "fixture", false),
    ]

    static func tokenizer(_ name: String, _ location: String) throws -> HuggingFaceTokenizer {
        if location == "models" {
            return try TokenizerLoader.load(folder: TestModels.path(TestModels.smolLM2Folder))
        }
        guard let folder = TokenizerFixture.folder(name) else {
            throw TokenizerError.unreadableFile(path: name, reason: "fixture folder not in the test bundle")
        }
        return try TokenizerLoader.load(folder: folder)
    }

    @Test(arguments: cases)
    func idsMatchTokenizersPackage(name: String, location: String, lossless: Bool) throws {
        let fixture = try TokenizerFixture.load(name + ".tokenizers.json")
        let tokenizer = try Self.tokenizer(name, location)
        for testCase in fixture.cases {
            #expect(tokenizer.encode(testCase.text, addSpecialTokens: true, parseSpecialTokens: true) == testCase.ids,
                    "text: \(testCase.text.debugDescription)")
            if let expected = testCase.ids_no_special {
                #expect(tokenizer.encode(testCase.text, addSpecialTokens: false, parseSpecialTokens: true) == expected,
                        "no special: \(testCase.text.debugDescription)")
            }
        }
    }

    @Test(arguments: cases)
    func decodeRoundTripsAndStreams(name: String, location: String, lossless: Bool) throws {
        let fixture = try TokenizerFixture.load(name + ".tokenizers.json")
        let tokenizer = try Self.tokenizer(name, location)
        for testCase in fixture.cases {
            let ids = tokenizer.encode(testCase.text, addSpecialTokens: false, parseSpecialTokens: true)
            if lossless {
                #expect(tokenizer.decode(ids) == testCase.text, "text: \(testCase.text.debugDescription)")
            }
            var decoder = StreamingDecoder(tokenizer: tokenizer)
            var streamed = ""
            for (index, id) in ids.enumerated() {
                streamed += decoder.feed(id)
                let whole = tokenizer.decodeBytes(Array(ids[0...index]))
                #expect(Array(streamed.utf8) == Array(whole.prefix(streamed.utf8.count)))
            }
            streamed += decoder.finish()
            #expect(streamed == tokenizer.decode(ids))
        }
    }

    @Test func specialTokenMetadata() throws {
        let smol = try Self.tokenizer("smollm2-hf", "models")
        #expect(smol.bosTokenID == smol.tokenID("<|im_start|>"))
        #expect(smol.eosTokenIDs.contains(smol.tokenID("<|im_end|>") ?? -1))
        #expect(!smol.addsBOS)
        let bert = try Self.tokenizer("wordpiece-bert", "fixture")
        let ids = bert.encode("hello", addSpecialTokens: true)
        #expect(ids.first == bert.tokenID("[CLS]") && ids.last == bert.tokenID("[SEP]"))
    }

    /// Vocabulary keys are byte-exact: canonically equivalent spellings and a lone U+FEFF stay distinct.
    @Test func vocabularyKeysAreByteExact() throws {
        let json = #"{"pre_tokenizer": {"type": "WhitespaceSplit"}, "model": {"type": "WordPiece", "unk_token": "[UNK]", "#
            + #""vocab": {"[UNK]": 0, "é": 1, "é": 2, "﻿": 3, "\#u{FEFF}x": 4}}}"#
        let folder = try TokenizerMalformedInputTests.writeFolder(["tokenizer.json": json])
        let tokenizer = try TokenizerLoader.load(folder: folder)
        #expect(tokenizer.vocabularySize == 5)
        #expect(tokenizer.encode("\u{E9} e\u{301} \u{FEFF} \u{FEFF}x", addSpecialTokens: false) == [1, 2, 3, 4])
    }
}
