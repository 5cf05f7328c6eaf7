/// The tokenizer fields of a GGUF file (`tokenizer.ggml.*`), independent of how they were read.
///
/// `TokenizerLoader.load(gguf:)` fills this from `GGUFFile.metadata`; tests and tools may also
/// build one by hand. Ids are kept as the file states them; `GGUFTokenizer` checks them.
public struct VocabularyMetadata: Sendable {
    /// Where the fields came from (a file path), for error messages.
    public var source: String
    /// `tokenizer.ggml.model`: `gpt2` (byte-level BPE), `llama` (SentencePiece), `bert` (WordPiece).
    public var model: String
    /// `tokenizer.ggml.pre`: the pre-tokenizer name of a BPE vocabulary.
    public var pre: String?
    /// `tokenizer.ggml.tokens`.
    public var tokens: [String]
    /// `tokenizer.ggml.scores` (SentencePiece merge priorities).
    public var scores: [Float]?
    /// `tokenizer.ggml.token_type` (see `TokenKind`).
    public var tokenTypes: [Int32]?
    /// `tokenizer.ggml.merges`: "left right" strings in rank order.
    public var merges: [String]?
    /// `tokenizer.ggml.bos_token_id`.
    public var bosTokenID: Int64?
    /// `tokenizer.ggml.eos_token_id`.
    public var eosTokenID: Int64?
    /// `tokenizer.ggml.eot_token_id`.
    public var eotTokenID: Int64?
    /// `tokenizer.ggml.eom_token_id`.
    public var eomTokenID: Int64?
    /// `tokenizer.ggml.unknown_token_id`.
    public var unknownTokenID: Int64?
    /// `tokenizer.ggml.seperator_token_id` (sic, as GGUF spells it).
    public var separatorTokenID: Int64?
    /// `tokenizer.ggml.padding_token_id`.
    public var paddingTokenID: Int64?
    /// `tokenizer.ggml.add_bos_token`.
    public var addBOS: Bool?
    /// `tokenizer.ggml.add_eos_token`.
    public var addEOS: Bool?
    /// `tokenizer.ggml.add_sep_token`.
    public var addSEP: Bool?
    /// `tokenizer.ggml.add_space_prefix`.
    public var addSpacePrefix: Bool?
    /// `tokenizer.ggml.normalizer.lowercase` (WordPiece; default true).
    public var normalizerLowercase: Bool?
    /// `tokenizer.ggml.normalizer.strip_accents` (WordPiece; default: as lowercase).
    public var normalizerStripAccents: Bool?

    /// Makes metadata with the required fields; the optional ones start unset.
    public init(source: String, model: String, pre: String? = nil, tokens: [String]) {
        self.source = source
        self.model = model
        self.pre = pre
        self.tokens = tokens
    }
}
