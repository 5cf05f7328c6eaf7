/// Turns text into token ids and back, exactly as the model's reference implementation does
/// (llama.cpp for GGUF vocabularies, Hugging Face `tokenizers` for `tokenizer.json`).
///
/// Every tokenizer is an immutable value safe to share between threads.
public protocol Tokenizer: Sendable {
    /// Encodes text into token ids.
    ///
    /// - Parameters:
    ///   - text: The prompt text.
    ///   - addSpecialTokens: Add the BOS/EOS (or `[CLS]`/`[SEP]`) tokens the model's metadata asks for.
    ///   - parseSpecialTokens: Recognise the text of control tokens such as `<|im_start|>` in
    ///     `text` and emit their ids, as llama.cpp does by default. User-defined tokens are
    ///     always recognised.
    /// - Returns: The token ids.
    func encode(_ text: String, addSpecialTokens: Bool, parseSpecialTokens: Bool) -> [Int32]

    /// Decodes token ids into text. Control tokens are rendered as their text; bytes that do not
    /// form valid UTF-8 become U+FFFD. Ids outside the vocabulary are skipped.
    func decode(_ ids: [Int32]) -> String

    /// The raw bytes one token contributes to decoded text when it follows other tokens (no
    /// leading-space stripping); nil for ids outside the vocabulary.
    func tokenBytes(_ id: Int32) -> [UInt8]?

    /// The vocabulary entry of a token as the model file stores it (`Ġhello`, `▁the`, `<0x0A>`);
    /// nil for ids outside the vocabulary.
    func tokenText(_ id: Int32) -> String?

    /// The id of a vocabulary entry given as the model file stores it, or nil.
    func tokenID(_ text: String) -> Int32?

    /// Whether a token is a control token (BOS, `<|im_end|>`, `<end_of_turn>`, `[CLS]`...), which
    /// generated text usually hides: llama.cpp renders these only when asked to, and `tokenizers`
    /// drops them with `skip_special_tokens`.
    func isControlToken(_ id: Int32) -> Bool

    /// Number of token ids.
    var vocabularySize: Int { get }

    /// The beginning-of-sequence token, if the model has one.
    var bosTokenID: Int32? { get }

    /// The tokens that end generation (EOS, end-of-turn, ...).
    var eosTokenIDs: Set<Int32> { get }

    /// Whether `encode(text, addSpecialTokens: true, ...)` starts with the BOS token.
    var addsBOS: Bool { get }

    /// Whether `encode(text, addSpecialTokens: true, ...)` ends with the EOS token.
    var addsEOS: Bool { get }

    /// Whether decoding strips one leading space that encoding added (SentencePiece
    /// `add_space_prefix`), so the first token of a decode is treated specially.
    var stripsLeadingSpaceOnDecode: Bool { get }
}

extension Tokenizer {
    /// Encodes text with special-token parsing on (llama.cpp's default).
    ///
    /// - Parameters:
    ///   - text: The prompt text.
    ///   - addSpecialTokens: Add BOS/EOS as the model's metadata says (default true).
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int32] {
        encode(text, addSpecialTokens: addSpecialTokens, parseSpecialTokens: true)
    }

    /// Decodes ids into text, leaving out control tokens (for showing generated text).
    public func decode(_ ids: [Int32], skipControlTokens: Bool) -> String {
        String(decoding: decodeBytes(skipControlTokens ? ids.filter { !isControlToken($0) } : ids), as: UTF8.self)
    }

    /// Decodes ids into raw bytes (before UTF-8 validation), applying the leading-space rule.
    public func decodeBytes(_ ids: [Int32]) -> [UInt8] {
        var bytes: [UInt8] = []
        var first = true
        for id in ids {
            guard let piece = tokenBytes(id) else { continue }
            defer { first = false }
            if first && stripsLeadingSpaceOnDecode && piece.first == 0x20 {
                bytes.append(contentsOf: piece.dropFirst())
            } else {
                bytes.append(contentsOf: piece)
            }
        }
        return bytes
    }
}

/// What a vocabulary entry is, as GGUF's `tokenizer.ggml.token_type` (and llama.cpp) say.
public enum TokenKind: Int32, Sendable {
    /// Type 0: undefined.
    case undefined = 0
    /// Type 1: an ordinary piece of text.
    case normal = 1
    /// Type 2: the unknown token.
    case unknown = 2
    /// Type 3: a control token (`<bos>`, `<|im_start|>`), parsed in text only when asked.
    case control = 3
    /// Type 4: a user-defined token, always parsed in text.
    case userDefined = 4
    /// Type 5: an unused slot.
    case unused = 5
    /// Type 6: a byte-fallback token `<0xNN>`.
    case byte = 6
}
