/// One sequence's part of a ragged batch.
public struct BatchSequence: Sendable {
    /// First row of this sequence in the packed token matrix.
    public var offset: Int
    /// Number of new tokens this step (prompt chunk, or 1 when decoding).
    public var count: Int
    /// Position of the first new token (= tokens already in the KV cache).
    public var startPosition: Int
    /// The KV-cache blocks holding positions 0 ..< startPosition + count, in order.
    public var blockTable: [Int32]

    public init(offset: Int, count: Int, startPosition: Int, blockTable: [Int32]) {
        self.offset = offset
        self.count = count
        self.startPosition = startPosition
        self.blockTable = blockTable
    }
}

/// A ragged (padding-free) batch: the new tokens of every sequence packed into one matrix, so
/// every linear layer sees `[totalTokens, hidden]` and does no work for padding.
public struct ForwardBatch: Sendable {
    /// Packed token ids, `[totalTokens]`.
    public var tokens: [Int32]
    /// Position of each packed token, `[totalTokens]`.
    public var positions: [Int32]
    /// The sequences, in packing order.
    public var sequences: [BatchSequence]
    /// Packed rows whose logits are wanted (usually each sequence's last row).
    public var logitRows: [Int]

    /// Packs `sequences` (their token ids and cache state).
    public init(sequences entries: [(tokens: [Int32], startPosition: Int, blockTable: [Int32])], allLogits: Bool = false) {
        var tokens: [Int32] = []
        var positions: [Int32] = []
        var sequences: [BatchSequence] = []
        var logitRows: [Int] = []
        for entry in entries {
            let offset = tokens.count
            tokens.append(contentsOf: entry.tokens)
            for i in 0..<entry.tokens.count { positions.append(Int32(entry.startPosition + i)) }
            sequences.append(BatchSequence(offset: offset, count: entry.tokens.count,
                                           startPosition: entry.startPosition, blockTable: entry.blockTable))
            if allLogits {
                logitRows.append(contentsOf: offset..<(offset + entry.tokens.count))
            } else if !entry.tokens.isEmpty {
                logitRows.append(offset + entry.tokens.count - 1)
            }
        }
        self.tokens = tokens
        self.positions = positions
        self.sequences = sequences
        self.logitRows = logitRows
    }

    /// Total packed tokens.
    public var totalTokens: Int { tokens.count }
}
