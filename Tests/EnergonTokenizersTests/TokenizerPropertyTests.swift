import EnergonTokenizers
import Testing

/// Properties over many random strings (fixed seed): lossless vocabularies round-trip, and the
/// GGUF and tokenizer.json front ends of the same SmolLM2 vocabulary agree.
@Suite struct TokenizerPropertyTests {
    /// SplitMix64: deterministic across platforms.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var value = state
            value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
            value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
            return value ^ (value >> 31)
        }
    }

    /// Code-point ranges drawn from: ASCII, Latin-1 and accents, combining marks, Greek, Cyrillic,
    /// Arabic, Devanagari, Thai, Hangul, CJK, emoji and modifiers, joiners, odd whitespace.
    static let ranges: [ClosedRange<UInt32>] = [
        0x20...0x7E, 0x20...0x7E, 0x20...0x7E, 0x09...0x0D, 0xA0...0xFF, 0x300...0x36F, 0x391...0x3C9,
        0x410...0x44F, 0x621...0x64A, 0x660...0x669, 0x905...0x939, 0xE01...0xE3A, 0xAC00...0xD7A3,
        0x4E00...0x9FFF, 0x1F300...0x1F64F, 0x1F3FB...0x1F3FF, 0x200B...0x200D, 0x2000...0x200A,
        0x3000...0x3000, 0xFE0F...0xFE0F, 0x1F1E6...0x1F1FF,
    ]

    static func randomStrings(count: Int, seed: UInt64) -> [String] {
        var generator = Generator(state: seed)
        return (0..<count).map { _ in
            let length = Int.random(in: 0...40, using: &generator)
            var scalars = String.UnicodeScalarView()
            for _ in 0..<length {
                let range = ranges.randomElement(using: &generator)!  // invariant: ranges is not empty
                if let scalar = Unicode.Scalar(UInt32.random(in: range, using: &generator)) { scalars.append(scalar) }
            }
            return String(scalars)
        }
    }

    @Test(arguments: [TestModels.smolLM2, TestModels.gemma3])
    func ggufVocabulariesAreLossless(model: String) throws {
        let tokenizer = try TestModels.ggufTokenizer(model)
        for text in Self.randomStrings(count: 2000, seed: 42) {
            for parseSpecial in [true, false] {
                let ids = tokenizer.encode(text, addSpecialTokens: false, parseSpecialTokens: parseSpecial)
                #expect(tokenizer.decode(ids) == text, "\(model): \(text.unicodeScalars.map { String($0.value, radix: 16) }) parse special: \(parseSpecial)")
                #expect(ids.allSatisfy { $0 >= 0 && Int($0) < tokenizer.vocabularySize })
            }
        }
    }

    @Test func ggufAndTokenizerJSONAgreeOnSmolLM2() throws {
        let gguf = try TestModels.ggufTokenizer(TestModels.smolLM2)
        let json = try TokenizerLoader.load(folder: TestModels.path(TestModels.smolLM2Folder))
        #expect(gguf.vocabularySize == json.vocabularySize)
        for text in Self.randomStrings(count: 2000, seed: 7) {
            #expect(gguf.encode(text, addSpecialTokens: false) == json.encode(text, addSpecialTokens: false),
                    "\(text.debugDescription)")
        }
    }
}
