import EnergonCheckpoint
import EnergonTokenizers
import Testing

/// Token ids against llama.cpp's llama-tokenize (Fixtures/tokenizers/*.llama-tokenize.json, made by
/// scripts/make_tokenizer_fixtures.py) on the real GGUF vocabularies of SmolLM2 and Gemma 3, and on
/// SmolLM2's vocabulary relabelled with other pre-tokenizers (scripts/make_vocab_variants.py).
@Suite struct TokenizerGGUFTests {
    /// (fixture, model file): SmolLM2 and Gemma 3 as shipped, and SmolLM2's vocabulary under the
    /// gpt-2, llama-bpe (Llama 3), qwen2 and default pre-tokenizers, and Gemma's with
    /// add_space_prefix = true (the Llama 2 / Mistral SentencePiece setting).
    static let models = [("smollm2", TestModels.smolLM2), ("gemma3", TestModels.gemma3)]
        + ["gpt-2", "llama-bpe", "qwen2", "default"].map { ("smollm2-vocab-" + $0, "SmolLM2-vocab-\($0).gguf") }
        + [("gemma3-vocab-space-prefix", "gemma3-vocab-space-prefix.gguf")]

    /// One test per model (loading a 262k-token vocabulary is the slow part): ids, round trip, streaming.
    @Test(arguments: models)
    func matchesLlamaTokenizeAndRoundTrips(fixtureName: String, model: String) throws {
        let fixture = try TokenizerFixture.load(fixtureName + ".llama-tokenize.json")
        let tokenizer = try TestModels.ggufTokenizer(model)
        #expect(fixture.model == model)
        for testCase in fixture.cases {
            let ids = tokenizer.encode(testCase.text, addSpecialTokens: true, parseSpecialTokens: true)
            #expect(ids == testCase.ids, "text: \(testCase.text.debugDescription)")
            if let expected = testCase.ids_no_parse_special {
                let plain = tokenizer.encode(testCase.text, addSpecialTokens: true, parseSpecialTokens: false)
                #expect(plain == expected, "no-parse-special text: \(testCase.text.debugDescription)")
            }
            // decode(encode(x)) == x. Every vocabulary here is lossless, except that with
            // add_space_prefix llama.cpp also prefixes a space after each special token (Gemma's
            // user-defined tokens include whitespace runs and HTML tags), which decoding keeps.
            let bare = tokenizer.encode(testCase.text, addSpecialTokens: false, parseSpecialTokens: true)
            let splitsOnSpecial = bare.contains { [.control, .userDefined].contains(tokenizer.tokenKind($0)) }
            if !(tokenizer.stripsLeadingSpaceOnDecode && splitsOnSpecial) {
                #expect(tokenizer.decode(bare) == testCase.text, "round trip: \(testCase.text.debugDescription)")
            }
            checkStreaming(tokenizer, ids)
        }
    }

    /// After every prefix, the streamed text is exactly the complete-character prefix of the whole
    /// decode of that prefix (at most one incomplete character held), and the end result is equal.
    func checkStreaming(_ tokenizer: some Tokenizer, _ ids: [Int32]) {
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        var streamed = ""
        for count in 0..<ids.count {
            streamed += decoder.feed(ids[count])
            let whole = tokenizer.decodeBytes(Array(ids[0...count]))
            #expect(Array(streamed.utf8) == Array(whole.prefix(streamed.utf8.count)))
            #expect(whole.count - streamed.utf8.count < 4, "held back more than one character")
        }
        streamed += decoder.finish()
        #expect(streamed == tokenizer.decode(ids))
    }

    /// The committed WordPiece vocabulary converted to a GGUF `bert` vocabulary (16 KB, in Fixtures).
    @Test func wordPieceGGUFMatchesLlamaTokenize() throws {
        let fixture = try TokenizerFixture.load("bert-vocab.llama-tokenize.json")
        guard let path = TokenizerFixture.folder("bert-vocab.gguf") else {
            throw TokenizerError.unreadableFile(path: "bert-vocab.gguf", reason: "fixture not in the test bundle")
        }
        let tokenizer = try TokenizerLoader.load(gguf: GGUFFile(path: path))
        #expect(tokenizer.algorithm == .wordPiece && tokenizer.addsBOS && tokenizer.addsSEP)
        for testCase in fixture.cases {
            #expect(tokenizer.encode(testCase.text, addSpecialTokens: true, parseSpecialTokens: true) == testCase.ids,
                    "text: \(testCase.text.debugDescription)")
            if let expected = testCase.ids_no_parse_special {
                #expect(tokenizer.encode(testCase.text, addSpecialTokens: true, parseSpecialTokens: false) == expected,
                        "no-parse-special text: \(testCase.text.debugDescription)")
            }
        }
    }

    @Test func specialTokenMetadataFollowsTheFile() throws {
        let smol = try TestModels.ggufTokenizer(TestModels.smolLM2)
        #expect(smol.algorithm == .bytePairEncoding && smol.preTokenizerName == "smollm")
        #expect(smol.bosTokenID == 1 && !smol.addsBOS && !smol.addsEOS)
        #expect(smol.eosTokenIDs.contains(2))  // <|im_end|>
        #expect(smol.tokenText(1) == "<|im_start|>" && smol.tokenKind(1) == .control)
        let chat = smol.encode("<|im_start|>user\nHi 👋<|im_end|>\n")
        #expect(smol.decode(chat, skipControlTokens: true) == "user\nHi 👋\n")
        var decoder = StreamingDecoder(tokenizer: smol, skipControlTokens: true)
        #expect(decoder.feed(chat) + decoder.finish() == "user\nHi 👋\n")
        #expect(smol.isControlToken(2) && !smol.isControlToken(chat[1]))
        let gemma = try TestModels.ggufTokenizer(TestModels.gemma3)
        #expect(gemma.algorithm == .sentencePiece)
        #expect(gemma.bosTokenID == 2 && gemma.addsBOS && !gemma.addsEOS)
        #expect(gemma.eosTokenIDs.isSuperset(of: [1, 106]))  // <eos>, <end_of_turn>
        #expect(gemma.encode("") == [2] && gemma.encode("", addSpecialTokens: false).isEmpty)
        #expect(gemma.tokenBytes(gemma.tokenID("<0x0A>") ?? -1) == [0x0A])
        // With add_space_prefix, a whole decode drops the first token's added space; a stream
        // that continues a prompt keeps it.
        let prefixed = try TestModels.ggufTokenizer("gemma3-vocab-space-prefix.gguf")
        let world = prefixed.encode("world", addSpecialTokens: false)
        #expect(prefixed.tokenText(world[0])?.hasPrefix("\u{2581}") == true && prefixed.decode(world) == "world")
        var continuing = StreamingDecoder(tokenizer: prefixed, continuesText: true)
        #expect(continuing.feed(world) + continuing.finish() == " world")
    }
}
