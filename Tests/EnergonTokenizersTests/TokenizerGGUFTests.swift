import EnergonTokenizers
import Testing

/// Token ids against llama.cpp's llama-tokenize (Fixtures/tokenizers/*.llama-tokenize.json, made by
/// scripts/make_tokenizer_fixtures.py) on the real GGUF vocabularies of SmolLM2 and Gemma 3.
@Suite struct TokenizerGGUFTests {
    static let models = [("smollm2", TestModels.smolLM2), ("gemma3", TestModels.gemma3)]

    @Test(arguments: models)
    func idsMatchLlamaTokenize(fixtureName: String, model: String) throws {
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
        }
    }

    @Test(arguments: models)
    func decodeRoundTrips(fixtureName: String, model: String) throws {
        let fixture = try TokenizerFixture.load(fixtureName + ".llama-tokenize.json")
        let tokenizer = try TestModels.ggufTokenizer(model)
        for testCase in fixture.cases {
            let ids = tokenizer.encode(testCase.text, addSpecialTokens: false, parseSpecialTokens: true)
            #expect(tokenizer.decode(ids) == testCase.text, "text: \(testCase.text.debugDescription)")
        }
    }

    @Test(arguments: models)
    func streamingEqualsWholeDecoding(fixtureName: String, model: String) throws {
        let fixture = try TokenizerFixture.load(fixtureName + ".llama-tokenize.json")
        let tokenizer = try TestModels.ggufTokenizer(model)
        for testCase in fixture.cases {
            let ids = tokenizer.encode(testCase.text, addSpecialTokens: true, parseSpecialTokens: true)
            var decoder = StreamingDecoder(tokenizer: tokenizer)
            var streamed = ""
            for count in 0..<ids.count {
                let delta = decoder.feed(ids[count])
                streamed += delta
                // What has been emitted is exactly the complete-character prefix of the whole decode.
                let whole = tokenizer.decodeBytes(Array(ids[0...count]))
                #expect(Array(streamed.utf8) == Array(whole.prefix(streamed.utf8.count)))
                #expect(whole.count - streamed.utf8.count < 4, "held back more than one character")
            }
            streamed += decoder.finish()
            #expect(streamed == tokenizer.decode(ids), "text: \(testCase.text.debugDescription)")
        }
    }
}
