extension HuggingFaceTokenizer {
    /// Encodes text into token ids (see `Tokenizer.encode(_:addSpecialTokens:parseSpecialTokens:)`).
    public func encode(_ text: String, addSpecialTokens: Bool, parseSpecialTokens: Bool) -> [Int32] {
        let utf8 = Array(text.utf8)
        var output: [Int32] = []
        output.reserveCapacity(utf8.count / 3 + 4)
        if addSpecialTokens { output += templatePrefix }
        utf8.withUnsafeBufferPointer { bytes in
            var fragments = addedTokens.partition(bytes, parseSpecial: parseSpecialTokens)
            if !stripAround.isEmpty { fragments = strip(fragments, bytes: bytes) }
            var cache = WordCache()
            for fragment in fragments {
                switch fragment {
                case .token(let id):
                    output.append(id)
                case .text(let range):
                    encodeText(UnsafeBufferPointer(rebasing: bytes[range]), atOrigin: range.lowerBound == 0,
                               cache: &cache, into: &output)
                }
            }
        }
        if addSpecialTokens { output += templateSuffix }
        return output
    }

    /// Applies added tokens' `lstrip`/`rstrip`: whitespace next to them joins the token.
    private func strip(_ fragments: [TextFragment], bytes: UnsafeBufferPointer<UInt8>) -> [TextFragment] {
        var result = fragments
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }
        for (index, fragment) in fragments.enumerated() {
            guard case .token(let id) = fragment, let rule = stripAround[id] else { continue }
            if rule.left, index > 0, case .text(let range) = result[index - 1] {
                var end = range.upperBound
                while end > range.lowerBound && isSpace(bytes[end - 1]) { end -= 1 }
                result[index - 1] = .text(range.lowerBound..<end)
            }
            if rule.right, index + 1 < result.count, case .text(let range) = result[index + 1] {
                var start = range.lowerBound
                while start < range.upperBound && isSpace(bytes[start]) { start += 1 }
                result[index + 1] = .text(start..<range.upperBound)
            }
        }
        return result.filter { if case .text(let range) = $0 { !range.isEmpty } else { true } }
    }

    private func encodeText(_ bytes: UnsafeBufferPointer<UInt8>, atOrigin: Bool, cache: inout WordCache,
                            into output: inout [Int32]) {
        if bytes.isEmpty { return }
        if let fastRules, case .byteLevelBPE(let bpe) = model {
            // Same path as GGUF byte-level BPE: split code points in place, encode byte ranges.
            let codePoints = CodePoints(bytes)
            let flags = codePoints.values.map { UnicodeFlags.of($0).rawValue }
            let words = codePoints.values.withUnsafeBufferPointer { values in
                flags.withUnsafeBufferPointer { fastRules.split(values, flags: $0) }
            }
            for word in words {
                let start = Int(codePoints.offsets[word.lowerBound]), end = Int(codePoints.offsets[word.upperBound])
                cache.encode(UnsafeBufferPointer(rebasing: bytes[start..<end]), into: &output) { bpe.encodeWord($0, into: &$1) }
            }
            return
        }
        var text = String(decoding: bytes, as: UTF8.self)
        for normalizer in normalizers { text = normalizer.apply(text) }
        var pieces = [text.unicodeScalars.map(\.value)]
        for step in steps { pieces = step.apply(pieces, atOrigin: atOrigin) }
        for piece in pieces where !piece.isEmpty {
            var wordBytes: [UInt8] = []
            for value in piece { appendUTF8(value, to: &wordBytes) }
            wordBytes.withUnsafeBufferPointer { word in
                switch model {
                case .byteLevelBPE(let bpe):
                    cache.encode(word, into: &output) { bpe.encodeWord($0, into: &$1) }
                case .characterBPE(let merger, let unknownID, let byteFallback, let fuseUnknown):
                    cache.encode(word, into: &output) { word, output in
                        encodeCharacterBPE(piece, merger: merger, unknownID: unknownID, byteFallback: byteFallback,
                                           fuseUnknown: fuseUnknown, into: &output)
                    }
                case .wordPiece(let unknownID, let prefix, let maximumCharacters):
                    encodeWordPiece(piece, unknownID: unknownID, prefix: Array(prefix.utf8),
                                    maximumCharacters: maximumCharacters, into: &output)
                }
            }
        }
    }

    private func encodeCharacterBPE(_ piece: [UInt32], merger: BytePairMerger, unknownID: Int32?, byteFallback: [Int32]?,
                                    fuseUnknown: Bool, into output: inout [Int32]) {
        var symbols: [Int32] = []
        var character: [UInt8] = []
        for value in piece {
            character.removeAll(keepingCapacity: true)
            appendUTF8(value, to: &character)
            if let id = character.withUnsafeBufferPointer({ textTable.lookup($0) }) {
                symbols.append(id)
            } else if let byteFallback {
                for byte in character { symbols.append(byteFallback[Int(byte)]) }
            } else if let unknownID {
                if !(fuseUnknown && symbols.last == unknownID) { symbols.append(unknownID) }
            }
        }
        merger.merge(&symbols)
        output += symbols
    }

    /// Greedy longest-match-first WordPiece over one word, as `tokenizers`' WordPiece model.
    private func encodeWordPiece(_ piece: [UInt32], unknownID: Int32, prefix: [UInt8], maximumCharacters: Int,
                                 into output: inout [Int32]) {
        if piece.count > maximumCharacters {
            output.append(unknownID)
            return
        }
        var offsets: [Int] = [0]
        var bytes: [UInt8] = []
        for value in piece {
            appendUTF8(value, to: &bytes)
            offsets.append(bytes.count)
        }
        var found: [Int32] = []
        var start = 0
        var candidate: [UInt8] = []
        while start < piece.count {
            var end = piece.count
            var match: Int32? = nil
            while start < end {
                candidate.removeAll(keepingCapacity: true)
                if start > 0 { candidate += prefix }
                candidate += bytes[offsets[start]..<offsets[end]]
                if let id = candidate.withUnsafeBufferPointer({ textTable.lookup($0) }) {
                    match = id
                    break
                }
                end -= 1
            }
            guard let match else {
                output.append(unknownID)
                return
            }
            found.append(match)
            start = end
        }
        output += found
    }
}
