import Foundation

/// One `tokenizer.json` normalizer step, applied to the text between added tokens.
enum HFNormalizer: Sendable {
    case nfc, nfd, nfkc, nfkd, lowercase, stripAccents
    case strip(left: Bool, right: Bool)
    case prepend(String)
    case replace(String, String)
    case bert(cleanText: Bool, chineseCharacters: Bool, stripAccents: Bool, lowercase: Bool)

    static func parse(_ node: JSONNode) throws -> [HFNormalizer] {
        if node.isNull { return [] }
        let type = try node["type"].string()
        switch type {
        case "Sequence":
            return try node["normalizers"].array().flatMap { try parse($0) }
        case "NFC": return [.nfc]
        case "NFD": return [.nfd]
        case "NFKC": return [.nfkc]
        case "NFKD": return [.nfkd]
        case "Lowercase": return [.lowercase]
        case "StripAccents": return [.stripAccents]
        case "Strip":
            return [.strip(left: try node["strip_left"].bool(default: true), right: try node["strip_right"].bool(default: true))]
        case "Prepend": return [.prepend(try node["prepend"].string())]
        case "Replace":
            guard let pattern = try node["pattern"]["String"].optionalString() else {
                throw TokenizerError.unsupported(source: node.file, what: "\(node.path).pattern (only String patterns)")
            }
            return [.replace(pattern, try node["content"].string())]
        case "BertNormalizer":
            let lowercase = try node["lowercase"].bool(default: true)
            let strip = node["strip_accents"].isNull ? lowercase : try node["strip_accents"].bool(default: lowercase)
            return [.bert(cleanText: try node["clean_text"].bool(default: true),
                          chineseCharacters: try node["handle_chinese_chars"].bool(default: true),
                          stripAccents: strip, lowercase: lowercase)]
        default:
            throw TokenizerError.unsupported(source: node.file, what: "normalizer type `\(type)` at \(node.path)")
        }
    }

    func apply(_ text: String) -> String {
        switch self {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        case .lowercase: return text.lowercased()
        case .stripAccents:
            return String(String.UnicodeScalarView(text.unicodeScalars.filter { $0.properties.generalCategory != .nonspacingMark }))
        case .strip(let left, let right):
            var scalars = Substring(text).unicodeScalars[...]
            if left { while let first = scalars.first, first.properties.isWhitespace { scalars.removeFirst() } }
            if right { while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() } }
            return String(String.UnicodeScalarView(scalars))
        case .prepend(let prefix): return text.isEmpty ? text : prefix + text
        case .replace(let pattern, let content): return text.replacingBytes(pattern, with: content)
        case .bert(let cleanText, let chineseCharacters, let stripAccents, let lowercase):
            var scalars = String.UnicodeScalarView()
            for scalar in text.unicodeScalars {
                if cleanText {
                    if scalar.value == 0 || scalar.value == 0xFFFD || Self.isBertControl(scalar) { continue }
                    if Self.isBertWhitespace(scalar) { scalars.append(" "); continue }
                }
                if chineseCharacters && WordPieceGGUF.isChinese(scalar.value) {
                    scalars.append(" ")
                    scalars.append(scalar)
                    scalars.append(" ")
                    continue
                }
                scalars.append(scalar)
            }
            var result = String(scalars)
            if stripAccents { result = HFNormalizer.stripAccents.apply(result.decomposedStringWithCanonicalMapping) }
            if lowercase { result = result.lowercased() }
            return result
        }
    }

    static func isBertWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar.properties.isWhitespace
    }

    static func isBertControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }
}

/// One `tokenizer.json` pre-tokenizer step. Steps re-split the pieces the previous ones made.
enum HFPreTokenizerStep: Sendable {
    /// Regex rules implemented by `PreTokenizer` (ByteLevel's GPT-2 regex, Digits, known Splits).
    case rules(PreTokenizer)
    /// ByteLevel: optionally prefix a space to each piece (its regex, if any, is a `.rules` step).
    case byteLevelPrefixSpace
    /// BertPreTokenizer: split on whitespace (dropped) and isolate punctuation.
    case bert
    /// WhitespaceSplit: split on whitespace, dropping it.
    case whitespaceSplit
    /// Whitespace: `\w+|[^\w\s]+`.
    case whitespace
    /// Metaspace: spaces become the replacement character, which starts each word.
    case metaspace(replacement: String, prependScheme: String, split: Bool)

    static func parse(_ node: JSONNode) throws -> (steps: [HFPreTokenizerStep], byteLevel: Bool) {
        if node.isNull { return ([], false) }
        let type = try node["type"].string()
        switch type {
        case "Sequence":
            var steps: [HFPreTokenizerStep] = []
            var byteLevel = false
            for child in try node["pretokenizers"].array() {
                let parsed = try parse(child)
                steps += parsed.steps
                byteLevel = byteLevel || parsed.byteLevel
            }
            return (steps, byteLevel)
        case "ByteLevel":
            var steps: [HFPreTokenizerStep] = []
            if try node["add_prefix_space"].bool(default: true) { steps.append(.byteLevelPrefixSpace) }
            if try node["use_regex"].bool(default: true) { steps.append(.rules(PreTokenizer(rules: [.gpt2]))) }
            return (steps, true)
        case "Digits":
            let individual = try node["individual_digits"].bool(default: false)
            return ([.rules(PreTokenizer(rules: [individual ? .isolateEachNumber : .isolateNumberRuns]))], false)
        case "Split":
            let behavior = try node["behavior"].string()
            guard behavior == "Isolated", try !node["invert"].bool(default: false),
                  let pattern = try node["pattern"]["Regex"].optionalString() else {
                throw TokenizerError.unsupported(source: node.file, what: "Split pre-tokenizer at \(node.path) (only Isolated known regexes)")
            }
            guard let rule = knownRegexes[pattern] else {
                throw TokenizerError.unsupported(source: node.file, what: "Split regex at \(node.path): \(pattern)")
            }
            return ([.rules(PreTokenizer(rules: [rule]))], false)
        case "BertPreTokenizer": return ([.bert], false)
        case "WhitespaceSplit": return ([.whitespaceSplit], false)
        case "Whitespace": return ([.whitespace], false)
        case "Metaspace":
            let replacement = try node["replacement"].optionalString() ?? "\u{2581}"
            var scheme = try node["prepend_scheme"].optionalString() ?? "always"
            if !node["add_prefix_space"].isNull { scheme = try node["add_prefix_space"].bool(default: true) ? scheme : "never" }
            return ([.metaspace(replacement: replacement, prependScheme: scheme, split: try node["split"].bool(default: true))], false)
        default:
            throw TokenizerError.unsupported(source: node.file, what: "pre-tokenizer type `\(type)` at \(node.path)")
        }
    }

    /// The Split regexes real tokenizer.json files use, mapped to hand-written rules.
    static let knownRegexes: [String: PreTokenizer.Rule] = [
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
            .llama3(maximumDigits: 3),
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
            .llama3(maximumDigits: 1),
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+": .gpt2,
        "\\p{N}": .isolateEachNumber,
    ]

    /// Applies the step to code-point pieces.
    ///
    /// - Parameters:
    ///   - pieces: The pieces of one stretch of text between added tokens.
    ///   - atOrigin: The stretch starts at the beginning of the input (Metaspace's "first" scheme
    ///     prefixes only there, as `tokenizers` checks for original offset 0).
    func apply(_ pieces: [[UInt32]], atOrigin: Bool) -> [[UInt32]] {
        var output: [[UInt32]] = []
        output.reserveCapacity(pieces.count)
        switch self {
        case .rules(let preTokenizer):
            for piece in pieces {
                let flags = piece.map { UnicodeFlags.of($0).rawValue }
                let words = piece.withUnsafeBufferPointer { values in
                    flags.withUnsafeBufferPointer { preTokenizer.split(values, flags: $0) }
                }
                for word in words { output.append(Array(piece[word])) }
            }
        case .byteLevelPrefixSpace:
            for piece in pieces { output.append(piece.first == 0x20 ? piece : [0x20] + piece) }
        case .bert:
            for piece in pieces {
                var current: [UInt32] = []
                for value in piece {
                    let flags = UnicodeFlags.of(value)
                    if flags.contains(.whitespace) {
                        if !current.isEmpty { output.append(current); current = [] }
                    } else if flags.contains(.punctuation) || (value < 0x80 && flags.contains(.symbol)) {
                        if !current.isEmpty { output.append(current); current = [] }
                        output.append([value])
                    } else {
                        current.append(value)
                    }
                }
                if !current.isEmpty { output.append(current) }
            }
        case .whitespaceSplit:
            for piece in pieces {
                var current: [UInt32] = []
                for value in piece {
                    if UnicodeFlags.of(value).contains(.whitespace) {
                        if !current.isEmpty { output.append(current); current = [] }
                    } else {
                        current.append(value)
                    }
                }
                if !current.isEmpty { output.append(current) }
            }
        case .whitespace:
            // \w+|[^\w\s]+ : runs of word characters, runs of other non-space characters.
            for piece in pieces {
                var current: [UInt32] = []
                var currentIsWord = false
                for value in piece {
                    let flags = UnicodeFlags.of(value)
                    if flags.contains(.whitespace) {
                        if !current.isEmpty { output.append(current); current = [] }
                        continue
                    }
                    let isWord = !flags.isDisjoint(with: [.letter, .number, .mark]) || value == 0x5F
                    if !current.isEmpty && isWord != currentIsWord { output.append(current); current = [] }
                    current.append(value)
                    currentIsWord = isWord
                }
                if !current.isEmpty { output.append(current) }
            }
        case .metaspace(let replacement, let prependScheme, let split):
            let marker = replacement.unicodeScalars.first?.value ?? 0x2581
            for (index, piece) in pieces.enumerated() {
                var replaced = piece.map { $0 == 0x20 ? marker : $0 }
                if (prependScheme == "always" || (prependScheme == "first" && index == 0 && atOrigin)) && replaced.first != marker {
                    replaced.insert(marker, at: 0)
                }
                guard split else { output.append(replaced); continue }
                var current: [UInt32] = []
                for value in replaced {
                    if value == marker && !current.isEmpty { output.append(current); current = [] }
                    current.append(value)
                }
                if !current.isEmpty { output.append(current) }
            }
        }
        return output
    }
}
