import Foundation

/// A tokenizer read from a Hugging Face `tokenizer.json`, tokenizing as the `tokenizers` library:
/// added tokens split out first (leftmost-longest), then normalizers, pre-tokenizers, the model
/// (BPE or WordPiece) and the post-processor template.
public struct HuggingFaceTokenizer: Tokenizer {
    enum Model: Sendable {
        /// BPE over bytes (the pre-tokenizer includes ByteLevel).
        case byteLevelBPE(ByteLevelBPE)
        /// BPE over characters with optional `<0xNN>` byte fallback (Llama 2 / Mistral style).
        case characterBPE(BytePairMerger, unknownID: Int32?, byteFallback: [Int32]?, fuseUnknown: Bool)
        /// WordPiece (BERT).
        case wordPiece(unknownID: Int32, prefix: String, maximumCharacters: Int)
    }

    enum Decoding: Sendable {
        case byteLevel
        case wordPiece(prefix: String)
        case metaspace(marker: String)
        case plain
    }

    let texts: [String]
    let pieces: [[UInt8]]
    let textTable: ByteStringTable
    let addedTokens: SpecialTokenMatcher
    let stripAround: [Int32: (left: Bool, right: Bool)]
    let normalizers: [HFNormalizer]
    let steps: [HFPreTokenizerStep]
    /// The whole pre-tokenizer is regex rules over raw text: take the fast code-point path.
    let fastRules: PreTokenizer?
    let model: Model
    let templatePrefix: [Int32]
    let templateSuffix: [Int32]
    let leadingSpaceStrip: Bool
    let specialIDs: Set<Int32>

    /// The beginning-of-sequence token, if the model has one.
    public let bosTokenID: Int32?
    /// The tokens that end generation (EOS, end-of-turn, ...).
    public let eosTokenIDs: Set<Int32>
    /// Whether encoding with special tokens starts with the BOS token (the post-processor template's prefix has it).
    public var addsBOS: Bool { bosTokenID.map { templatePrefix.contains($0) } ?? false }
    /// Whether encoding with special tokens ends with an EOS token (the template's suffix has one).
    public var addsEOS: Bool { templateSuffix.contains { eosTokenIDs.contains($0) } }
    /// Number of token ids.
    public var vocabularySize: Int { texts.count }
    /// Whether decoding drops one leading space of the first token (added at encoding).
    public var stripsLeadingSpaceOnDecode: Bool { leadingSpaceStrip }

    /// Reads `tokenizer.json` (and, if present, `tokenizer_config.json` for the BOS/EOS names) from a folder.
    ///
    /// - Throws: `TokenizerError` naming the file and field that is missing, malformed or unsupported.
    public init(folder: String) throws {
        let file = folder + "/tokenizer.json"
        let root = try JSONNode.parse(file: file)
        _ = try root.members()
        let configFile = folder + "/tokenizer_config.json"
        let config = FileManager.default.fileExists(atPath: configFile) ? try JSONNode.parse(file: configFile) : nil
        try self.init(root: root, config: config)
    }

    init(root: JSONNode, config: JSONNode?) throws {
        let modelNode = root["model"]
        let modelType = try modelNode["type"].optionalString() ?? (modelNode["merges"].isNull ? "WordPiece" : "BPE")

        // Vocabulary: model vocab plus added tokens (which may extend it).
        var idToText: [Int: String] = [:]
        for (text, value) in try modelNode["vocab"].members() {
            guard let id = try? value.int(), id >= 0, id < Self.maximumTokenID else {
                throw modelNode["vocab"].error("maps `\(text)` to something other than a token id")
            }
            idToText[id] = text
        }
        var addedEntries: [SpecialTokenMatcher.Entry] = []
        var stripAround: [Int32: (left: Bool, right: Bool)] = [:]
        var specialIDs = Set<Int32>()
        for node in try root["added_tokens"].isNull ? [] : root["added_tokens"].array() {
            let id = try node["id"].int()
            let content = try node["content"].string()
            guard id >= 0, id < Self.maximumTokenID else { throw node["id"].error("is out of range") }
            idToText[id] = content
            let special = try node["special"].bool(default: false)
            if special { specialIDs.insert(Int32(id)) }
            addedEntries.append(.init(id: Int32(id), bytes: Array(content.utf8), alwaysParsed: !special))
            let left = try node["lstrip"].bool(default: false), right = try node["rstrip"].bool(default: false)
            if left || right { stripAround[Int32(id)] = (left, right) }
        }
        let count = (idToText.keys.max() ?? -1) + 1
        guard count > 0 else { throw modelNode["vocab"].error("is empty") }
        // Real vocabularies number their tokens densely; a far-out id would only inflate the tables.
        guard count <= idToText.count * 2 + 1024 else {
            throw modelNode["vocab"].error("has token id \(count - 1) for only \(idToText.count) tokens")
        }
        var texts = [String](repeating: "", count: count)
        var table = ByteStringTable(capacity: count)
        for (id, text) in idToText.sorted(by: { $0.key < $1.key }) {
            texts[id] = text
            table.insert(text.utf8, value: Int32(id))
        }

        let (steps, byteLevel) = try HFPreTokenizerStep.parse(root["pre_tokenizer"])
        let normalizers = try HFNormalizer.parse(root["normalizer"])
        func tokenID(_ node: JSONNode) throws -> Int32? {
            guard let text = try node.optionalString() else { return nil }
            guard let id = table.lookup(text.utf8) else { throw node.error("names `\(text)`, which is not in the vocabulary") }
            return id
        }

        switch modelType {
        case "BPE":
            for key in ["continuing_subword_prefix", "end_of_word_suffix"] where !modelNode[key].isNull {
                if try modelNode[key].string() != "" {
                    throw TokenizerError.unsupported(source: root.file, what: "model.\(key)")
                }
            }
            var merges: [(Substring, Substring)] = []
            for node in try modelNode["merges"].array() {
                if let line = node.stringValue {
                    guard let space = line.utf8.dropFirst().firstIndex(of: 0x20) else { throw node.error("has no space") }
                    merges.append((line[line.startIndex..<space], line[line.index(after: space)...]))
                } else {
                    let pair = try node.array()
                    guard pair.count == 2 else { throw node.error("is not a pair") }
                    merges.append((Substring(try pair[0].string()), Substring(try pair[1].string())))
                }
            }
            let ignoreMerges = try modelNode["ignore_merges"].bool(default: false)
            if byteLevel {
                model = .byteLevelBPE(ByteLevelBPE(textTable: table, vocabularySize: count, merges: merges,
                                                   ignoreMerges: ignoreMerges))
            } else {
                var merger = BytePairMerger()
                for (rank, pair) in merges.enumerated() {
                    guard let left = table.lookup(pair.0.utf8), let right = table.lookup(pair.1.utf8),
                          let merged = table.lookup((pair.0 + pair.1).utf8) else {
                        throw modelNode["merges"].error("has merge #\(rank) `\(pair.0) \(pair.1)` with a part not in the vocabulary")
                    }
                    merger.add(left: left, right: right, rank: Int32(rank), merged: merged)
                }
                var fallback: [Int32]? = nil
                if try modelNode["byte_fallback"].bool(default: false) {
                    fallback = try (0..<256).map { byte in
                        let hex = "<0x" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2) + ">"
                        guard let id = table.lookup(hex.utf8) else {
                            throw modelNode["byte_fallback"].error("is set but `\(hex)` is not in the vocabulary")
                        }
                        return id
                    }
                }
                model = .characterBPE(merger, unknownID: try tokenID(modelNode["unk_token"]), byteFallback: fallback,
                                      fuseUnknown: try modelNode["fuse_unk"].bool(default: false))
            }
        case "WordPiece":
            guard let unknown = try tokenID(modelNode["unk_token"]) else {
                throw TokenizerError.missingKey(source: root.file, key: "model.unk_token")
            }
            model = .wordPiece(unknownID: unknown, prefix: try modelNode["continuing_subword_prefix"].optionalString() ?? "##",
                               maximumCharacters: try modelNode["max_input_chars_per_word"].optionalInt() ?? 100)
        default:
            throw TokenizerError.unsupported(source: root.file, what: "model.type `\(modelType)`")
        }

        // Post-processor: the ids around the sequence in the single-sequence template.
        var prefix: [Int32] = [], suffix: [Int32] = []
        try Self.parseTemplate(root["post_processor"], table: table, prefix: &prefix, suffix: &suffix)

        // Decoding rule from the decoder type.
        let decoding = try Self.decoding(root["decoder"], byteLevel: byteLevel)
        var pieces: [[UInt8]] = []
        pieces.reserveCapacity(count)
        for (id, text) in texts.enumerated() {
            let isAdded = addedEntries.contains { $0.id == Int32(id) }
            switch decoding {
            case .byteLevel:
                pieces.append(isAdded ? Array(text.utf8) : ByteLevelAlphabet.decode(text) ?? Array(text.utf8))
            case .wordPiece(let continuation):
                if isAdded { pieces.append(Array((" " + text).utf8)) }
                else if text.utf8.starts(with: continuation.utf8) { pieces.append(Array(text.utf8.dropFirst(continuation.utf8.count))) }
                else { pieces.append(Array((" " + text).utf8)) }
            case .metaspace(let marker):
                let utf8 = Array(text.utf8)
                if !isAdded, utf8.count == 6, utf8.starts(with: Array("<0x".utf8)), utf8.last == UInt8(ascii: ">"),
                   let byte = UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16) {
                    pieces.append([byte])
                } else {
                    pieces.append(Array(text.replacingBytes(marker, with: " ").utf8))
                }
            case .plain:
                pieces.append(Array(text.utf8))
            }
        }
        switch decoding {
        case .wordPiece, .metaspace: leadingSpaceStrip = true
        default: leadingSpaceStrip = false
        }

        // BOS/EOS: from tokenizer_config.json when present, else from the template.
        var bos: Int32? = nil, eos: Int32? = nil
        if let config {
            bos = try Self.configToken(config["bos_token"], table: table)
            eos = try Self.configToken(config["eos_token"], table: table)
        }
        if bos == nil, let first = prefix.first { bos = first }
        var endOfGeneration = Set<Int32>()
        if let eos { endOfGeneration.insert(eos) }
        for id in specialIDs where GGUFTokenizer.endOfGenerationTexts.contains(texts[Int(id)]) { endOfGeneration.insert(id) }

        var fast: PreTokenizer? = nil
        if normalizers.isEmpty, steps.allSatisfy({ if case .rules = $0 { true } else { false } }),
           case .byteLevelBPE = model {
            fast = PreTokenizer(rules: steps.flatMap { step -> [PreTokenizer.Rule] in
                if case .rules(let rules) = step { return rules.rules }
                return []
            })
        }

        self.texts = texts
        self.pieces = pieces
        self.textTable = table
        self.addedTokens = SpecialTokenMatcher(entries: addedEntries, semantics: .leftmostLongest)
        self.stripAround = stripAround
        self.normalizers = normalizers
        self.steps = steps
        self.fastRules = fast
        self.templatePrefix = prefix
        self.templateSuffix = suffix
        self.bosTokenID = bos
        self.eosTokenIDs = endOfGeneration
        self.specialIDs = specialIDs
    }

    /// Ids at or above this are rejected: the table of token texts is sized by the largest id, and
    /// real vocabularies stay far below it (the largest have about 256k entries).
    static let maximumTokenID = 1 << 24

    static func configToken(_ node: JSONNode, table: ByteStringTable) throws -> Int32? {
        if node.isNull { return nil }
        let text = try node.stringValue ?? node["content"].string()
        return table.lookup(text.utf8)
    }

    static func parseTemplate(_ node: JSONNode, table: ByteStringTable, prefix: inout [Int32], suffix: inout [Int32]) throws {
        if node.isNull { return }
        let type = try node["type"].string()
        switch type {
        case "Sequence":
            for child in try node["processors"].array() {
                try parseTemplate(child, table: table, prefix: &prefix, suffix: &suffix)
            }
        case "ByteLevel":
            break
        case "TemplateProcessing":
            var seenSequence = false
            for item in try node["single"].array() {
                if !item["Sequence"].isNull { seenSequence = true; continue }
                let name = try item["SpecialToken"]["id"].string()
                let ids = try node["special_tokens"][name]["ids"].array().map { Int32(try $0.int()) }
                if seenSequence { suffix += ids } else { prefix += ids }
            }
        case "BertProcessing", "RobertaProcessing":
            let cls = try node["cls"].array(), sep = try node["sep"].array()
            guard cls.count == 2, sep.count == 2 else { throw node.error("cls/sep are not [token, id] pairs") }
            prefix.append(Int32(try cls[1].int()))
            suffix.append(Int32(try sep[1].int()))
        default:
            throw TokenizerError.unsupported(source: node.file, what: "post_processor type `\(type)` at \(node.path)")
        }
    }

    static func decoding(_ node: JSONNode, byteLevel: Bool) throws -> Decoding {
        if node.isNull { return byteLevel ? .byteLevel : .plain }
        let type = try node["type"].string()
        switch type {
        case "ByteLevel": return .byteLevel
        case "WordPiece": return .wordPiece(prefix: try node["prefix"].optionalString() ?? "##")
        case "Metaspace": return .metaspace(marker: try node["replacement"].optionalString() ?? "\u{2581}")
        case "Sequence":
            for child in try node["decoders"].array() {
                let childType = try child["type"].string()
                if childType == "ByteLevel" { return .byteLevel }
                if childType == "Replace" || childType == "Metaspace" { return .metaspace(marker: "\u{2581}") }
            }
            return .plain
        default:
            return byteLevel ? .byteLevel : .plain
        }
    }

    /// Added tokens marked `special` (what `skip_special_tokens` drops).
    public func isControlToken(_ id: Int32) -> Bool { specialIDs.contains(id) }
    /// The vocabulary entry of a token as the file stores it, or nil outside the vocabulary.
    public func tokenText(_ id: Int32) -> String? { id >= 0 && Int(id) < texts.count ? texts[Int(id)] : nil }
    /// The bytes a token contributes to decoded text, or nil outside the vocabulary.
    public func tokenBytes(_ id: Int32) -> [UInt8]? { id >= 0 && Int(id) < pieces.count ? pieces[Int(id)] : nil }
    /// The id of a vocabulary entry given as the file stores it, or nil.
    public func tokenID(_ text: String) -> Int32? { textTable.lookup(text.utf8) }
    /// Decodes ids into text; invalid UTF-8 becomes U+FFFD, unknown ids are skipped.
    public func decode(_ ids: [Int32]) -> String { String(decoding: decodeBytes(ids), as: UTF8.self) }
}
