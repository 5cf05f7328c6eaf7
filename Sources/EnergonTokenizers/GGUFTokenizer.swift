/// A tokenizer built from a GGUF vocabulary, tokenizing exactly as llama.cpp (`llama-vocab.cpp`):
/// byte-level BPE (`gpt2`), SentencePiece BPE (`llama`) or WordPiece (`bert`).
public struct GGUFTokenizer: Tokenizer {
    /// The vocabulary algorithm.
    public enum Algorithm: String, Sendable {
        /// `tokenizer.ggml.model = gpt2`: byte-level BPE with GPT-2 merges.
        case bytePairEncoding
        /// `tokenizer.ggml.model = llama`: SentencePiece BPE with scores and byte fallback.
        case sentencePiece
        /// `tokenizer.ggml.model = bert`: WordPiece.
        case wordPiece
    }

    enum Engine: Sendable {
        case bytePair(ByteLevelBPE, PreTokenizer)
        case sentencePiece(SentencePieceBPE)
        case wordPiece(WordPieceGGUF)
    }

    /// The vocabulary algorithm.
    public let algorithm: Algorithm
    /// The `tokenizer.ggml.pre` value in effect (BPE only).
    public let preTokenizerName: String?
    let texts: [String]
    let kinds: [TokenKind]
    let pieces: [[UInt8]]
    let textTable: ByteStringTable
    let specialTokens: SpecialTokenMatcher
    let engine: Engine
    /// SentencePiece: prefix a space to text at the start and after every special token.
    let addSpacePrefix: Bool

    /// The beginning-of-sequence token, if the model has one.
    public let bosTokenID: Int32?
    /// The tokens that end generation (EOS, end-of-turn, ...).
    public let eosTokenIDs: Set<Int32>
    /// The EOS token proper (`tokenizer.ggml.eos_token_id`), appended when `addsEOS`.
    public let eosTokenID: Int32?
    /// The unknown token, if any.
    public let unknownTokenID: Int32?
    /// The separator token appended by WordPiece vocabularies when `addsSEP`.
    public let separatorTokenID: Int32?
    /// Whether encoding with special tokens starts with the BOS token.
    public let addsBOS: Bool
    /// Whether encoding with special tokens ends with the EOS token.
    public let addsEOS: Bool
    /// Whether WordPiece encoding appends the separator token.
    public let addsSEP: Bool

    /// Number of token ids.
    public var vocabularySize: Int { texts.count }
    /// Whether decoding drops one leading space of the first token (added at encoding).
    public var stripsLeadingSpaceOnDecode: Bool { addSpacePrefix }

    /// Builds a tokenizer from GGUF tokenizer metadata.
    ///
    /// - Throws: `TokenizerError` naming the source and key when a field is missing, has the wrong
    ///   length, or names an unsupported model or pre-tokenizer.
    public init(metadata: VocabularyMetadata) throws {
        let source = metadata.source
        let count = metadata.tokens.count
        guard count > 0 else {
            throw TokenizerError.invalidValue(source: source, key: "tokenizer.ggml.tokens", reason: "is empty")
        }
        guard count < Int(Int32.max) else {
            throw TokenizerError.invalidValue(source: source, key: "tokenizer.ggml.tokens", reason: "has \(count) entries")
        }
        if let scores = metadata.scores, scores.count < count {
            throw TokenizerError.invalidValue(source: source, key: "tokenizer.ggml.scores",
                                              reason: "has \(scores.count) entries for \(count) tokens")
        }
        if let types = metadata.tokenTypes, types.count < count {
            throw TokenizerError.invalidValue(source: source, key: "tokenizer.ggml.token_type",
                                              reason: "has \(types.count) entries for \(count) tokens")
        }

        // Defaults per model, as llama_vocab::impl::load sets them before reading the keys.
        var bos: Int64?, eos: Int64?, unknown: Int64?, separator: Int64?
        var addBOS = false, addEOS = false, addSEP = false, spacePrefix = false
        var ignoreMerges = false
        let algorithm: Algorithm
        switch metadata.model {
        case "llama":
            algorithm = .sentencePiece
            (bos, eos, unknown) = (1, 2, 0)
            (addBOS, spacePrefix) = (true, true)
        case "bert":
            algorithm = .wordPiece
            (bos, unknown, separator) = (101, 100, 102)
            (addBOS, addSEP) = (true, true)
        case "gpt2":
            algorithm = .bytePairEncoding
            (bos, eos) = (11, 11)
            switch metadata.pre ?? "default" {
            case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2":
                (ignoreMerges, addBOS) = (true, true)
            case "tekken":
                (ignoreMerges, addBOS) = (true, true)
            case "chameleon":
                addBOS = true
            default:
                break
            }
        default:
            throw TokenizerError.unsupported(source: source, what: "tokenizer.ggml.model `\(metadata.model)`")
        }
        if algorithm != .bytePairEncoding, let spacePrefixKey = metadata.addSpacePrefix { spacePrefix = spacePrefixKey }
        func checked(_ value: Int64?, _ fallback: Int64?) -> Int32? {
            if let value, value >= 0, value < Int64(count) { return Int32(value) }
            if let fallback, fallback >= 0, fallback < Int64(count) { return Int32(fallback) }
            return nil
        }
        let bosID = checked(metadata.bosTokenID, bos)
        let eosID = checked(metadata.eosTokenID, eos)
        let unknownID = checked(metadata.unknownTokenID, unknown)
        let separatorID = checked(metadata.separatorTokenID, separator)
        addBOS = metadata.addBOS ?? addBOS
        addEOS = metadata.addEOS ?? addEOS
        addSEP = metadata.addSEP ?? addSEP
        if addBOS && bosID == nil {
            throw TokenizerError.invalidValue(source: source, key: "tokenizer.ggml.bos_token_id",
                                              reason: "is missing or out of range but add_bos_token is set")
        }
        if addEOS && eosID == nil {
            throw TokenizerError.invalidValue(source: source, key: "tokenizer.ggml.eos_token_id",
                                              reason: "is missing or out of range but add_eos_token is set")
        }

        // Token kinds, with llama.cpp's by-name fixes: end-of-turn style tokens become control.
        var kinds = [TokenKind](repeating: .normal, count: count)
        if let types = metadata.tokenTypes {
            for index in 0..<count { kinds[index] = TokenKind(rawValue: types[index]) ?? .undefined }
        }
        var textTable = ByteStringTable(capacity: count)
        for (index, text) in metadata.tokens.enumerated() {
            // llama.cpp renames empty tokens so they never match text.
            let stored = text.isEmpty ? "[EMPTY_\(index)]" : text
            textTable.insert(stored.utf8, value: Int32(index))
        }
        var endOfGeneration = Set<Int32>()
        for text in Self.endOfGenerationTexts {
            guard let id = textTable.lookup(text.utf8) else { continue }
            endOfGeneration.insert(id)
            if kinds[Int(id)] != .control && kinds[Int(id)] != .userDefined { kinds[Int(id)] = .control }
        }
        if let eosID { endOfGeneration.insert(eosID) }
        if let eot = metadata.eotTokenID, eot >= 0, eot < Int64(count) { endOfGeneration.insert(Int32(eot)) }
        if let eom = metadata.eomTokenID, eom >= 0, eom < Int64(count) { endOfGeneration.insert(Int32(eom)) }

        // Special tokens: control, user-defined and unknown, longest first.
        var specialIDs = (0..<count).filter { [.control, .userDefined, .unknown].contains(kinds[$0]) }
        specialIDs.sort { metadata.tokens[$0].utf8.count != metadata.tokens[$1].utf8.count
            ? metadata.tokens[$0].utf8.count > metadata.tokens[$1].utf8.count : $0 < $1 }
        let specialEntries = specialIDs.map {
            SpecialTokenMatcher.Entry(id: Int32($0), bytes: Array(metadata.tokens[$0].utf8),
                                      alwaysParsed: kinds[$0] == .userDefined)
        }

        let engine: Engine
        var pieces: [[UInt8]] = []
        pieces.reserveCapacity(count)
        switch algorithm {
        case .bytePairEncoding:
            let preName = metadata.pre ?? "default"
            guard let pre = PreTokenizer.llamaCpp(named: preName) else {
                throw TokenizerError.unsupported(source: source, what: "tokenizer.ggml.pre `\(preName)`")
            }
            guard let mergeStrings = metadata.merges else {
                throw TokenizerError.missingKey(source: source, key: "tokenizer.ggml.merges")
            }
            let merges: [(Substring, Substring)] = mergeStrings.map { line in
                // Split at the first space after the first character, as llama.cpp does.
                let utf8 = line.utf8
                if !utf8.isEmpty, let space = utf8.dropFirst(1).firstIndex(of: 0x20) {
                    return (Substring(line[line.startIndex..<space]), Substring(line[line.index(after: space)...]))
                }
                return ("", "")
            }
            engine = .bytePair(ByteLevelBPE(textTable: textTable, vocabularySize: count, merges: merges,
                                            ignoreMerges: ignoreMerges), pre)
            for (index, text) in metadata.tokens.enumerated() {
                pieces.append(Self.piece(text, kind: kinds[index], algorithm: algorithm))
            }
        case .sentencePiece:
            var byteTokens = [Int32](repeating: -1, count: 256)
            for byte in 0..<256 {
                let hex = "<0x" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2) + ">"
                byteTokens[byte] = textTable.lookup(hex.utf8) ?? textTable.lookup([UInt8(byte)]) ?? -1
            }
            let scores = metadata.scores ?? [Float](repeating: 0, count: count)
            engine = .sentencePiece(SentencePieceBPE(textTable: textTable, scores: Array(scores.prefix(count)),
                                                     byteTokens: byteTokens))
            for (index, text) in metadata.tokens.enumerated() {
                pieces.append(Self.piece(text, kind: kinds[index], algorithm: algorithm))
            }
        case .wordPiece:
            guard let unknownID else {
                throw TokenizerError.missingKey(source: source, key: "tokenizer.ggml.unknown_token_id")
            }
            let longest = metadata.tokens.reduce(0) { max($0, $1.utf8.count) }
            let lowercase = metadata.normalizerLowercase ?? true
            engine = .wordPiece(WordPieceGGUF(textTable: textTable, unknownID: unknownID, maximumTokenLength: longest,
                                              lowercase: lowercase,
                                              stripAccents: metadata.normalizerStripAccents ?? lowercase))
            for (index, text) in metadata.tokens.enumerated() {
                pieces.append(Self.piece(text, kind: kinds[index], algorithm: algorithm))
            }
        }

        self.algorithm = algorithm
        self.preTokenizerName = algorithm == .bytePairEncoding ? (metadata.pre ?? "default") : nil
        self.texts = metadata.tokens
        self.kinds = kinds
        self.pieces = pieces
        self.textTable = textTable
        self.specialTokens = SpecialTokenMatcher(entries: specialEntries, semantics: .longestTokenFirst)
        self.engine = engine
        self.addSpacePrefix = algorithm == .sentencePiece && spacePrefix
        self.bosTokenID = bosID
        self.eosTokenID = eosID
        self.eosTokenIDs = endOfGeneration
        self.unknownTokenID = unknownID
        self.separatorTokenID = separatorID
        self.addsBOS = addBOS
        self.addsEOS = addEOS
        self.addsSEP = algorithm == .wordPiece && addSEP && separatorID != nil
    }

    /// Token texts llama.cpp treats as end of generation (and forces to control type).
    static let endOfGenerationTexts = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
        "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
    ]

    /// The bytes a token decodes to (llama.cpp's `token_to_piece` with special tokens rendered).
    static func piece(_ text: String, kind: TokenKind, algorithm: Algorithm) -> [UInt8] {
        switch kind {
        case .control, .userDefined, .unknown:
            return Array(text.utf8)
        case .normal:
            switch algorithm {
            case .bytePairEncoding:
                var bytes: [UInt8] = []
                for scalar in text.unicodeScalars {
                    if let byte = ByteLevelAlphabet.byte(for: scalar.value) {
                        bytes.append(byte)
                    } else {
                        appendUTF8(scalar.value, to: &bytes)
                    }
                }
                return bytes
            case .sentencePiece, .wordPiece:
                return Array(text.replacingBytes("\u{2581}", with: " ").utf8)
            }
        case .byte:
            let utf8 = Array(text.utf8)
            if utf8.count == 6, let value = UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16) {
                return [value]
            }
            return []
        case .undefined, .unused:
            return []
        }
    }

    /// The vocabulary entry of a token as the file stores it, or nil outside the vocabulary.
    public func tokenText(_ id: Int32) -> String? {
        id >= 0 && Int(id) < texts.count ? texts[Int(id)] : nil
    }

    /// The bytes a token contributes to decoded text, or nil outside the vocabulary.
    public func tokenBytes(_ id: Int32) -> [UInt8]? {
        id >= 0 && Int(id) < pieces.count ? pieces[Int(id)] : nil
    }

    /// The id of a vocabulary entry given as the file stores it, or nil.
    public func tokenID(_ text: String) -> Int32? {
        textTable.lookup(text.utf8)
    }

    /// Control and unknown tokens (llama.cpp renders them only with `special = true`).
    public func isControlToken(_ id: Int32) -> Bool {
        guard let kind = tokenKind(id) else { return false }
        return kind == .control || kind == .unknown
    }

    /// The kind of a token, or nil for ids outside the vocabulary.
    public func tokenKind(_ id: Int32) -> TokenKind? {
        id >= 0 && Int(id) < kinds.count ? kinds[Int(id)] : nil
    }

    /// Decodes ids into text; invalid UTF-8 becomes U+FFFD, unknown ids are skipped.
    public func decode(_ ids: [Int32]) -> String {
        String(decoding: decodeBytes(ids), as: UTF8.self)
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
