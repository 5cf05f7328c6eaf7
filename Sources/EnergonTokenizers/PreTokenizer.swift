/// Splits text into words before byte-pair encoding, as the regexes of a `tokenizer.ggml.pre`
/// value (or a `tokenizer.json` `Split`/`ByteLevel` pre-tokenizer) do.
///
/// Each regex is implemented by hand over code points and `UnicodeFlags`, following the
/// hand-written matchers of llama.cpp's `unicode.cpp` (`unicode_regex_split_custom_gpt2` and
/// friends), so no regex engine runs in the hot path. A pre-tokenizer is a list of rules applied
/// in turn: each rule re-splits every segment the previous rule produced, never joining two.
public struct PreTokenizer: Sendable, Equatable {
    /// One splitting regex.
    public enum Rule: Sendable, Equatable {
        /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` (GPT-2).
        case gpt2
        /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
        /// with N = `maximumDigits` (3 for Llama 3, 1 for Qwen2).
        case llama3(maximumDigits: Int)
        /// `\p{N}`: every number code point on its own.
        case isolateEachNumber
        /// `\p{N}+`: runs of number code points.
        case isolateNumberRuns
        /// `[\p{P}\$\+<=>\^~\|]+`: runs of punctuation and those ASCII symbols.
        case isolatePunctuationRuns
        /// `[0-9][0-9][0-9]`: groups of three ASCII digits, left to right.
        case isolateASCIIDigitTriples
    }

    /// The rules, applied in order.
    public var rules: [Rule]

    /// Makes a pre-tokenizer from rules.
    public init(rules: [Rule]) {
        self.rules = rules
    }

    /// The pre-tokenizer llama.cpp uses for a `tokenizer.ggml.pre` value, or nil if Energon does
    /// not implement it.
    ///
    /// - Parameter name: The `tokenizer.ggml.pre` string (missing means "default").
    public static func llamaCpp(named name: String) -> PreTokenizer? {
        let llama3 = PreTokenizer(rules: [.llama3(maximumDigits: 3)])
        let gpt2Digits = PreTokenizer(rules: [.isolateEachNumber, .gpt2])
        switch name {
        case "default", "":
            return PreTokenizer(rules: [
                .isolatePunctuationRuns, .gpt2, .isolateNumberRuns, .isolateASCIIDigitTriples,
            ])
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
             "dbrx", "smaug-bpe":
            return llama3
        case "qwen2", "stablelm2", "hunyuan", "deepseek-r1-qwen", "megrez":
            return PreTokenizer(rules: [.llama3(maximumDigits: 1)])
        case "gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais", "trillion", "granite-docling":
            return PreTokenizer(rules: [.gpt2])
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b":
            return gpt2Digits
        default:
            return nil
        }
    }

    /// Splits code points into words, returned as ranges of code point indices in order.
    func split(_ codePoints: UnsafeBufferPointer<UInt32>, flags: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        var segments = [0..<codePoints.count]
        if codePoints.isEmpty { return [] }
        for rule in rules {
            var next: [Range<Int>] = []
            next.reserveCapacity(codePoints.count / 3 + 4)
            for segment in segments {
                var splitter = SegmentSplitter(codePoints: codePoints, flags: flags, segment: segment)
                splitter.run(rule)
                next.append(contentsOf: splitter.words)
            }
            segments = next
        }
        return segments
    }
}

/// Splits one segment by one rule; mirrors llama.cpp's `_get_cpt`/`_get_flags`/`_add_token`.
private struct SegmentSplitter {
    let codePoints: UnsafeBufferPointer<UInt32>
    let flags: UnsafeBufferPointer<UInt8>
    let start: Int
    let end: Int
    var previousEnd: Int
    var words: [Range<Int>] = []

    init(codePoints: UnsafeBufferPointer<UInt32>, flags: UnsafeBufferPointer<UInt8>, segment: Range<Int>) {
        self.codePoints = codePoints
        self.flags = flags
        self.start = segment.lowerBound
        self.end = segment.upperBound
        self.previousEnd = segment.lowerBound
    }

    static let outOfRange: UInt32 = 0xFFFF_FFFF

    @inline(__always) func codePoint(_ position: Int) -> UInt32 {
        position >= start && position < end ? codePoints[position] : Self.outOfRange
    }

    @inline(__always) func flagsAt(_ position: Int) -> UnicodeFlags {
        position >= start && position < end ? UnicodeFlags(rawValue: flags[position]) : []
    }

    /// Ends the current word at `position`; returns its length.
    @discardableResult
    @inline(__always) mutating func addWord(_ position: Int) -> Int {
        let length = position - previousEnd
        if length > 0 { words.append(previousEnd..<position) }
        previousEnd = position
        return length
    }

    mutating func run(_ rule: PreTokenizer.Rule) {
        switch rule {
        case .gpt2: gpt2()
        case .llama3(let maximumDigits): llama3(maximumDigits: maximumDigits)
        case .isolateEachNumber: isolate(runs: false) { codePoint, flags in Self.isCollapsedNumber(codePoint, flags) }
        case .isolateNumberRuns: isolate(runs: true) { codePoint, flags in Self.isCollapsedNumber(codePoint, flags) }
        case .isolatePunctuationRuns: isolate(runs: true) { codePoint, flags in Self.isPunctuationClass(codePoint, flags) }
        case .isolateASCIIDigitTriples: asciiDigitTriples()
        }
    }

    /// `\p{N}` as llama.cpp's collapsed std::regex sees it: ASCII 0-9, or a non-ASCII number.
    @inline(__always) static func isCollapsedNumber(_ codePoint: UInt32, _ flags: UnicodeFlags) -> Bool {
        codePoint < 0x80 ? (codePoint >= 0x30 && codePoint <= 0x39) : (flags.contains(.number) && !flags.contains(.whitespace))
    }

    /// `[\p{P}\$\+<=>\^~\|]` as llama.cpp's collapsed std::regex sees it.
    @inline(__always) static func isPunctuationClass(_ codePoint: UInt32, _ flags: UnicodeFlags) -> Bool {
        if codePoint < 0x80 {
            switch UInt8(codePoint) {
            case UInt8(ascii: "$"), UInt8(ascii: "+"), UInt8(ascii: "<"), UInt8(ascii: "="), UInt8(ascii: ">"),
                 UInt8(ascii: "^"), UInt8(ascii: "~"), UInt8(ascii: "|"):
                return true
            default:
                return flags.contains(.punctuation)
            }
        }
        return flags.contains(.punctuation) && !flags.contains(.whitespace)
    }

    /// Isolates matches of a one-character class (each match alone, or maximal runs); the text
    /// between matches stays as words of its own, as `unicode_regex_split_stl` emits them.
    mutating func isolate(runs: Bool, _ matches: (UInt32, UnicodeFlags) -> Bool) {
        var position = start
        while position < end {
            if matches(codePoints[position], UnicodeFlags(rawValue: flags[position])) {
                addWord(position)
                position += 1
                if runs {
                    while position < end && matches(codePoints[position], UnicodeFlags(rawValue: flags[position])) {
                        position += 1
                    }
                }
                addWord(position)
            } else {
                position += 1
            }
        }
        addWord(end)
    }

    mutating func asciiDigitTriples() {
        var position = start
        @inline(__always) func isDigit(_ position: Int) -> Bool {
            position < end && codePoints[position] >= 0x30 && codePoints[position] <= 0x39
        }
        while position < end {
            if isDigit(position) && isDigit(position + 1) && isDigit(position + 2) {
                addWord(position)
                position += 3
                addWord(position)
            } else {
                position += 1
            }
        }
        addWord(end)
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d` (case-sensitive or not) at `position`: the match length or 0.
    @inline(__always) func contractionLength(at position: Int, ignoreCase: Bool) -> Int {
        guard codePoint(position) == 0x27, position + 1 < end else { return 0 }
        @inline(__always) func lower(_ value: UInt32) -> UInt32 {
            ignoreCase && value >= 0x41 && value <= 0x5A ? value + 0x20 : value
        }
        let next = lower(codePoint(position + 1))
        switch next {
        case 0x73, 0x74, 0x6D, 0x64: return 2  // s t m d
        default: break
        }
        guard position + 2 < end else { return 0 }
        let nextNext = lower(codePoint(position + 2))
        if (next == 0x72 && nextNext == 0x65) || (next == 0x76 && nextNext == 0x65) || (next == 0x6C && nextNext == 0x6C) {
            return 3  // re ve ll
        }
        return 0
    }

    mutating func gpt2() {
        var position = start
        while position < end {
            let current = codePoint(position)
            let currentFlags = flagsAt(position)
            let contraction = contractionLength(at: position, ignoreCase: false)
            if contraction > 0 {
                position += addWord(position + contraction)
                continue
            }
            var flags2 = current == 0x20 ? flagsAt(position + 1) : currentFlags
            // <space>?\p{L}+
            if flags2.contains(.letter) {
                if current == 0x20 { position += 1 }
                while flags2.contains(.letter) {
                    position += 1
                    flags2 = flagsAt(position)
                }
                addWord(position)
                continue
            }
            // <space>?\p{N}+
            if flags2.contains(.number) {
                if current == 0x20 { position += 1 }
                while flags2.contains(.number) {
                    position += 1
                    flags2 = flagsAt(position)
                }
                addWord(position)
                continue
            }
            // <space>?[^\s\p{L}\p{N}]+
            if !flags2.isEmpty && flags2.isDisjoint(with: [.whitespace, .letter, .number]) {
                if current == 0x20 { position += 1 }
                while !flags2.isEmpty && flags2.isDisjoint(with: [.whitespace, .letter, .number]) {
                    position += 1
                    flags2 = flagsAt(position)
                }
                addWord(position)
                continue
            }
            var whitespaceCount = 0
            while flagsAt(position + whitespaceCount).contains(.whitespace) { whitespaceCount += 1 }
            // \s+(?!\S)
            if whitespaceCount > 1 && codePoint(position + whitespaceCount) != Self.outOfRange {
                position += whitespaceCount - 1
                addWord(position)
                continue
            }
            // \s+
            if whitespaceCount > 0 {
                position += whitespaceCount
                addWord(position)
                continue
            }
            position += 1
            addWord(position)
        }
    }

    mutating func llama3(maximumDigits: Int) {
        var position = start
        while position < end {
            let current = codePoint(position)
            let currentFlags = flagsAt(position)
            let contraction = contractionLength(at: position, ignoreCase: true)
            if contraction > 0 {
                position += addWord(position + contraction)
                continue
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(current == 0x0D || current == 0x0A || currentFlags.contains(.number)) {
                if currentFlags.contains(.letter) || flagsAt(position + 1).contains(.letter) {
                    position += 1
                    while flagsAt(position).contains(.letter) { position += 1 }
                    addWord(position)
                    continue
                }
            }
            // \p{N}{1,maximumDigits}
            if currentFlags.contains(.number) {
                var groupStart = position
                while flagsAt(position).contains(.number) {
                    position += 1
                    if position - groupStart >= maximumDigits {
                        addWord(position)
                        groupStart = position
                    }
                }
                addWord(position)
                continue
            }
            // <space>?[^\s\p{L}\p{N}]+[\r\n]*
            var flags2 = current == 0x20 ? flagsAt(position + 1) : currentFlags
            if flags2.isDisjoint(with: [.whitespace, .letter, .number]) && !currentFlags.isEmpty {
                if current == 0x20 { position += 1 }
                while !flags2.isEmpty && flags2.isDisjoint(with: [.whitespace, .letter, .number]) {
                    position += 1
                    flags2 = flagsAt(position)
                }
                var next = codePoint(position)
                while next == 0x0D || next == 0x0A {
                    position += 1
                    next = codePoint(position)
                }
                addWord(position)
                continue
            }
            var whitespaceCount = 0
            var lastLineBreakEnd = 0
            while flagsAt(position + whitespaceCount).contains(.whitespace) {
                let value = codePoint(position + whitespaceCount)
                if value == 0x0D || value == 0x0A { lastLineBreakEnd = position + whitespaceCount + 1 }
                whitespaceCount += 1
            }
            // \s*[\r\n]+
            if lastLineBreakEnd > 0 {
                position = lastLineBreakEnd
                addWord(position)
                continue
            }
            // \s+(?!\S)
            if whitespaceCount > 1 && codePoint(position + whitespaceCount) != Self.outOfRange {
                position += whitespaceCount - 1
                addWord(position)
                continue
            }
            // \s+
            if whitespaceCount > 0 {
                position += whitespaceCount
                addWord(position)
                continue
            }
            position += 1
            addWord(position)
        }
    }
}
