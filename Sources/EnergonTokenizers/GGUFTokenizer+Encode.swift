import Foundation

extension GGUFTokenizer {
    /// Encodes text into token ids (see `Tokenizer.encode(_:addSpecialTokens:parseSpecialTokens:)`).
    public func encode(_ text: String, addSpecialTokens: Bool, parseSpecialTokens: Bool) -> [Int32] {
        var utf8 = Array(text.utf8)
        return utf8.withUnsafeMutableBufferPointer { mutableBytes in
            let bytes = UnsafeBufferPointer(mutableBytes)
            let fragments = specialTokens.partition(bytes, parseSpecial: parseSpecialTokens)
            var output: [Int32] = []
            output.reserveCapacity(bytes.count / 3 + 4)
            if addSpecialTokens && addsBOS, let bosTokenID { output.append(bosTokenID) }
            switch engine {
            case .bytePair(let model, let preTokenizer):
                var cache = WordCache()
                for fragment in fragments {
                    switch fragment {
                    case .token(let id):
                        output.append(id)
                    case .text(let range):
                        encodeBytePair(UnsafeBufferPointer(rebasing: bytes[range]), model: model,
                                       preTokenizer: preTokenizer, cache: &cache, into: &output)
                    }
                }
            case .sentencePiece(let model):
                // llama.cpp prefixes a space at the start and after every special token.
                var previousWasSpecial = true
                var escaped: [UInt8] = []
                for fragment in fragments {
                    switch fragment {
                    case .token(let id):
                        output.append(id)
                        previousWasSpecial = true
                    case .text(let range):
                        escaped.removeAll(keepingCapacity: true)
                        if addSpacePrefix && previousWasSpecial { escaped.append(contentsOf: [0xE2, 0x96, 0x81]) }
                        for byte in bytes[range] {
                            if byte == 0x20 { escaped.append(contentsOf: [0xE2, 0x96, 0x81]) } else { escaped.append(byte) }
                        }
                        escaped.withUnsafeBufferPointer { model.encode($0, into: &output) }
                        previousWasSpecial = false
                    }
                }
            case .wordPiece(let model):
                for fragment in fragments {
                    switch fragment {
                    case .token(let id):
                        output.append(id)
                    case .text(let range):
                        model.encode(UnsafeBufferPointer(rebasing: bytes[range]), into: &output)
                    }
                }
                if addSpecialTokens && addsSEP, let separatorTokenID { output.append(separatorTokenID) }
                return output
            }
            if addSpecialTokens && addsEOS, let eosTokenID { output.append(eosTokenID) }
            return output
        }
    }

    private func encodeBytePair(_ bytes: UnsafeBufferPointer<UInt8>, model: ByteLevelBPE, preTokenizer: PreTokenizer,
                                cache: inout WordCache, into output: inout [Int32]) {
        let codePoints = CodePoints(bytes)
        let flags = codePoints.values.map { UnicodeFlags.of($0).rawValue }
        let words = codePoints.values.withUnsafeBufferPointer { values in
            flags.withUnsafeBufferPointer { preTokenizer.split(values, flags: $0) }
        }
        for word in words {
            let start = Int(codePoints.offsets[word.lowerBound])
            let end = Int(codePoints.offsets[word.upperBound])
            cache.encode(UnsafeBufferPointer(rebasing: bytes[start..<end]), into: &output) { word, output in
                model.encodeWord(word, into: &output)
            }
        }
    }
}

/// WordPiece as llama.cpp's `llm_tokenizer_wpm_session`: split into words (whitespace, then
/// punctuation, ASCII symbols and CJK characters alone), lowercase and strip accents, prefix each
/// word with `▁`, and take longest vocabulary matches left to right; a word with an unmatched
/// position becomes the unknown token.
struct WordPieceGGUF: Sendable {
    let textTable: ByteStringTable
    let unknownID: Int32
    let maximumTokenLength: Int
    let lowercase: Bool
    let stripAccents: Bool

    func encode(_ bytes: UnsafeBufferPointer<UInt8>, into output: inout [Int32]) {
        let codePoints = CodePoints(bytes)
        var words: [[UInt8]] = [[]]
        for value in codePoints.values {
            // llama.cpp's NFD table maps a precomposed letter to its base letter.
            let base = stripAccents ? Self.baseLetter(value) : value
            let flags = UnicodeFlags.of(base)
            if flags.contains(.whitespace) {
                if !words[words.count - 1].isEmpty { words.append([]) }
                continue
            }
            if base == 0 || base == 0xFFFD || flags.contains(.other) || (stripAccents && flags.contains(.mark)) { continue }
            var encoded: [UInt8] = []
            appendUTF8(lowercase ? Self.lowercase(base) : base, to: &encoded)
            if flags.contains(.punctuation) || (base < 0x7F && flags.contains(.symbol)) || Self.isChinese(base) {
                if !words[words.count - 1].isEmpty { words.append([]) }
                words[words.count - 1] = encoded
                words.append([])
            } else {
                words[words.count - 1].append(contentsOf: encoded)
            }
        }
        for word in words where !word.isEmpty {
            let prefixed: [UInt8] = [0xE2, 0x96, 0x81] + word
            let start = output.count
            prefixed.withUnsafeBufferPointer { buffer in
                var index = 0
                let count = buffer.count
                while index < count {
                    var matched = false
                    var end = min(count, index + maximumTokenLength + 1)
                    while end > index {
                        if let id = textTable.lookup(UnsafeBufferPointer(rebasing: buffer[index..<end])) {
                            output.append(id)
                            matched = true
                            index = end
                            break
                        }
                        end -= 1
                    }
                    if !matched {
                        output.removeSubrange(start...)
                        break
                    }
                }
            }
            if output.count == start { output.append(unknownID) }
        }
    }

    static func lowercase(_ value: UInt32) -> UInt32 {
        guard let scalar = Unicode.Scalar(value) else { return value }
        let mapping = scalar.properties.lowercaseMapping.unicodeScalars
        return mapping.count == 1 ? mapping.first!.value : value  // invariant: count checked
    }

    /// The first scalar of a code point's canonical decomposition (its base letter).
    static func baseLetter(_ value: UInt32) -> UInt32 {
        guard value >= 0xC0, let scalar = Unicode.Scalar(value) else { return value }
        let decomposed = String(scalar).decomposedStringWithCanonicalMapping.unicodeScalars
        return decomposed.first?.value ?? value
    }

    static func isChinese(_ value: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(value) || (0x3400...0x4DBF).contains(value) || (0x20000...0x2A6DF).contains(value)
            || (0x2A700...0x2B73F).contains(value) || (0x2B740...0x2B81F).contains(value)
            || (0x2B920...0x2CEAF).contains(value) || (0xF900...0xFAFF).contains(value)
            || (0x2F800...0x2FA1F).contains(value)
    }
}
