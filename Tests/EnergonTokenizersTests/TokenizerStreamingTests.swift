import EnergonTokenizers
import Testing

/// The streaming decoder holds a token that ends inside a UTF-8 character until it is complete.
@Suite struct TokenizerStreamingTests {
    /// A byte-level vocabulary of single bytes only: every multi-byte character spans tokens.
    static func byteTokenizer() throws -> GGUFTokenizer {
        try TokenizerMalformedInputTests.load(TokenizerMalformedInputTests.validMetadata())
    }

    @Test func multiByteCharactersAreHeldUntilComplete() throws {
        let tokenizer = try Self.byteTokenizer()
        for text in ["é", "中", "👩‍💻", "a€b", "🇫🇷x"] {
            let ids = tokenizer.encode(text, addSpecialTokens: false)
            #expect(ids.count == text.utf8.count, "one token per byte: \(text)")
            var decoder = StreamingDecoder(tokenizer: tokenizer)
            var deltas: [String] = []
            for id in ids { deltas.append(decoder.feed(id)) }
            #expect(decoder.finish() == "")
            #expect(deltas.joined() == text)
            // A delta is non-empty exactly when a character's last byte arrives.
            let utf8 = Array(text.utf8)
            for (index, delta) in deltas.enumerated() {
                let endsCharacter = index + 1 == utf8.count || utf8[index + 1] & 0xC0 != 0x80
                #expect(delta.isEmpty != endsCharacter, "byte \(index) of \(text)")
            }
        }
    }

    @Test func truncatedCharacterBecomesReplacementOnFinish() throws {
        let tokenizer = try Self.byteTokenizer()
        let ids = tokenizer.encode("a€", addSpecialTokens: false)
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        #expect(decoder.feed(Array(ids.dropLast())) == "a")
        #expect(decoder.finish() == "\u{FFFD}")
        #expect(tokenizer.decode(Array(ids.dropLast())) == "a\u{FFFD}")
    }

    @Test func invalidBytesAreNotHeld() throws {
        let tokenizer = try Self.byteTokenizer()
        // 0xFF can never start a character; 0xE2 0x28 is a broken sequence.
        let ff = tokenizer.encode("\u{FF}", addSpecialTokens: false)  // bytes C3 BF
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        #expect(decoder.feed(ff[1]) == "\u{FFFD}")  // lone continuation byte
        let euro = tokenizer.encode("€(", addSpecialTokens: false)  // E2 82 AC 28
        #expect(decoder.feed(euro[0]) == "")
        #expect(decoder.feed(euro[3]) == "\u{FFFD}(")
    }
}
