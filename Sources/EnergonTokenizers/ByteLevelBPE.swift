/// Byte-level BPE over one pre-tokenized word: each raw byte starts as the symbol of its GPT-2
/// alphabet character, merges apply by rank, and each final symbol is a vocabulary token (or,
/// for a merge result missing from the vocabulary, the tokens of its bytes, as llama.cpp does).
struct ByteLevelBPE: Sendable {
    let merger: BytePairMerger
    /// Raw byte -> initial symbol.
    let byteSymbols: [Int32]
    /// Raw byte -> token id of its alphabet character, or -1.
    let byteTokens: [Int32]
    /// Raw bytes of the symbols numbered from `vocabularySize` up (merge results not in the vocabulary).
    let extraSymbolBytes: [[UInt8]]
    let vocabularySize: Int
    /// Alphabet-encoded token text -> id (last duplicate wins).
    let textTable: ByteStringTable
    /// A word that is itself a token is emitted whole, without merging (llama3-style `ignore_merges`).
    let ignoreMerges: Bool

    /// Builds the merge table from "left right" merge strings in rank order.
    ///
    /// - Parameters:
    ///   - textTable: Alphabet-encoded token text -> id.
    ///   - vocabularySize: Number of tokens.
    ///   - merges: Merge pairs (left, right) as alphabet-encoded strings, in rank order.
    ///   - ignoreMerges: See `ignoreMerges`.
    init(textTable: ByteStringTable, vocabularySize: Int, merges: [(Substring, Substring)], ignoreMerges: Bool) {
        self.textTable = textTable
        self.vocabularySize = vocabularySize
        self.ignoreMerges = ignoreMerges
        // Byte-exact keys: `String` keys would merge canonically equivalent spellings.
        var extras: [[UInt8]: Int32] = [:]
        var extraBytes: [[UInt8]] = []
        func symbol(_ text: some StringProtocol) -> Int32 {
            let utf8 = Array(text.utf8)
            if let id = textTable.lookup(utf8) { return id }
            if let id = extras[utf8] { return id }
            let id = Int32(vocabularySize + extraBytes.count)
            extras[utf8] = id
            extraBytes.append(ByteLevelAlphabet.decode(String(text)) ?? [])
            return id
        }
        var merger = BytePairMerger()
        for (rank, pair) in merges.enumerated() {
            let left = symbol(pair.0)
            let right = symbol(pair.1)
            let merged = symbol(pair.0 + pair.1)
            merger.add(left: left, right: right, rank: Int32(rank), merged: merged)
        }
        var byteSymbols = [Int32](repeating: 0, count: 256)
        var byteTokens = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            let character = ByteLevelAlphabet.characterUTF8[byte]
            byteTokens[byte] = textTable.lookup(character) ?? -1
            byteSymbols[byte] = symbol(String(decoding: character, as: UTF8.self))
        }
        self.merger = merger
        self.byteSymbols = byteSymbols
        self.byteTokens = byteTokens
        self.extraSymbolBytes = extraBytes
    }

    /// Appends the tokens of one word (raw bytes).
    func encodeWord(_ word: UnsafeBufferPointer<UInt8>, into output: inout [Int32]) {
        if ignoreMerges {
            let encoded = ByteLevelAlphabet.encode(word)
            if let id = encoded.withUnsafeBufferPointer({ textTable.lookup($0) }) {
                output.append(id)
                return
            }
        }
        var symbols = [Int32](unsafeUninitializedCapacity: word.count) { buffer, initialized in
            for index in 0..<word.count { buffer[index] = byteSymbols[Int(word[index])] }
            initialized = word.count
        }
        merger.merge(&symbols)
        for symbol in symbols {
            if Int(symbol) < vocabularySize {
                output.append(symbol)
            } else {
                for byte in extraSymbolBytes[Int(symbol) - vocabularySize] where byteTokens[Int(byte)] >= 0 {
                    output.append(byteTokens[Int(byte)])
                }
            }
        }
    }
}

/// Per-call memo of word -> tokens: prompts repeat words, and merging is the costly part.
struct WordCache {
    private var storage: [[UInt8]: [Int32]] = [:]

    /// Appends the tokens of `word`, computing them with `encode` on a miss.
    @inline(__always)
    mutating func encode(_ word: UnsafeBufferPointer<UInt8>, into output: inout [Int32],
                         _ compute: (UnsafeBufferPointer<UInt8>, inout [Int32]) -> Void) {
        if word.count <= 1 {
            compute(word, &output)
            return
        }
        let key = Array(word)
        if let cached = storage[key] {
            output.append(contentsOf: cached)
            return
        }
        let start = output.count
        compute(word, &output)
        if storage.count < 1 << 16 { storage[key] = Array(output[start...]) }
    }
}
