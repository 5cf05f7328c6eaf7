/// Decodes generated tokens one at a time into text deltas that never split a UTF-8 character:
/// bytes of a token that ends inside a character are held until the character is complete.
///
/// The concatenation of all deltas plus `finish()` equals `tokenizer.decode(allIDs)` (or
/// `decode(allIDs, skipControlTokens: true)` when control tokens are skipped).
public struct StreamingDecoder {
    private let tokenizer: any Tokenizer
    private let skipControlTokens: Bool
    private var pending: [UInt8] = []
    private var isFirstToken = true

    /// Makes a decoder for a tokenizer.
    ///
    /// - Parameters:
    ///   - tokenizer: The tokenizer whose ids will be fed.
    ///   - skipControlTokens: Leave control tokens (`<|im_end|>`, `<eos>`, ...) out of the text.
    ///   - continuesText: The ids continue text already shown (tokens generated after a prompt), so
    ///     the first token keeps its leading space even where decoding a whole sequence would drop
    ///     it (SentencePiece `add_space_prefix` vocabularies such as Llama 2's).
    public init(tokenizer: any Tokenizer, skipControlTokens: Bool = false, continuesText: Bool = false) {
        self.tokenizer = tokenizer
        self.skipControlTokens = skipControlTokens
        self.isFirstToken = !continuesText
    }

    /// Feeds one token id and returns the text that became complete (possibly empty).
    public mutating func feed(_ id: Int32) -> String {
        if skipControlTokens && tokenizer.isControlToken(id) { return "" }
        guard let piece = tokenizer.tokenBytes(id) else { return "" }
        if isFirstToken {
            isFirstToken = false
            if tokenizer.stripsLeadingSpaceOnDecode && piece.first == 0x20 {
                pending.append(contentsOf: piece.dropFirst())
            } else {
                pending.append(contentsOf: piece)
            }
        } else {
            pending.append(contentsOf: piece)
        }
        let complete = Self.completePrefixLength(pending)
        if complete == 0 { return "" }
        let text = String(decoding: pending[0..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// Feeds several ids and returns the text that became complete.
    public mutating func feed(_ ids: [Int32]) -> String {
        var text = ""
        for id in ids { text += feed(id) }
        return text
    }

    /// Returns what is still held (an incomplete character decodes to U+FFFD) and resets to the
    /// start of a new sequence.
    public mutating func finish() -> String {
        defer {
            pending.removeAll()
            isFirstToken = true
        }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest prefix that can be decoded without cutting a character that later
    /// bytes could still complete: everything except a trailing, so far valid, incomplete sequence.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let count = bytes.count
        // A UTF-8 character is at most 4 bytes: only the last 3 can be an unfinished one.
        var index = count - 1
        let lowest = max(0, count - 4)
        while index >= lowest {
            let byte = bytes[index]
            if byte & 0xC0 != 0x80 {
                // `byte` starts a sequence (or is ASCII / invalid).
                let needed: Int
                switch byte {
                case 0xC2...0xDF: needed = 2
                case 0xE0...0xEF: needed = 3
                case 0xF0...0xF4: needed = 4
                default: return count
                }
                let available = count - index
                if available >= needed { return count }
                // Check the continuation bytes seen so far could still form a valid character.
                for offset in 1..<available {
                    let continuation = bytes[index + offset]
                    if offset == 1 {
                        let (low, high): (UInt8, UInt8) = switch byte {
                        case 0xE0: (0xA0, 0xBF)
                        case 0xED: (0x80, 0x9F)
                        case 0xF0: (0x90, 0xBF)
                        case 0xF4: (0x80, 0x8F)
                        default: (0x80, 0xBF)
                        }
                        if continuation < low || continuation > high { return count }
                    } else if continuation & 0xC0 != 0x80 {
                        return count
                    }
                }
                return index
            }
            index -= 1
        }
        return count
    }
}
