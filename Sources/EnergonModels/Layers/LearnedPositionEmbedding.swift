import EnergonCheckpoint
import EnergonCore

/// A learned absolute position table (GPT-2's `wpe`, OPT's `embed_positions`, BERT's
/// `position_embeddings`), replicated on every rank: position `p` adds row `p + offset`.
/// OPT's table starts at row 2 (`offset` 2, a relic of fairseq's padding index); the others use 0.
public final class LearnedPositionEmbedding: @unchecked Sendable {
    /// The table, `[rows, hiddenSize]`, in the checkpoint's format.
    public let table: Tensor
    /// Row of position 0.
    public let offset: Int
    /// Positions the table covers (`rows - offset`).
    public var positionCount: Int { table.shape[0] - offset }

    /// Loads `name.weight`, `[positions + offset, hiddenSize]` where `positions` is the context length.
    public init(_ source: WeightSource, _ name: String, positions: Int, hiddenSize: Int, offset: Int = 0) throws {
        table = try source.tensor("\(name).weight", shape: [positions + offset, hiddenSize])
        self.offset = offset
    }

    /// Adds the embedding of `positions[t]` to row `t` of `hidden` (`[positions.count, hiddenSize]`).
    /// - Throws: `ModelError.contextOverflow` for a position beyond the table.
    public func add(positions: [Int32], to hidden: UnsafeMutablePointer<Float>) throws {
        let hiddenSize = table.shape[1]
        try withUnsafeTemporaryAllocation(of: Float.self, capacity: hiddenSize) { row in
            for (t, position) in positions.enumerated() {
                guard position >= 0, Int(position) < positionCount else {
                    throw ModelError.contextOverflow(needed: Int(position) + 1, limit: positionCount)
                }
                Quantization.dequantizeRow(table.dtype, source: table.row(Int(position) + offset),
                                           destination: row.baseAddress!, count: hiddenSize)  // invariant: capacity > 0
                Ops.add(hidden + t * hiddenSize, row.baseAddress!, output: hidden + t * hiddenSize, count: hiddenSize)  // invariant: capacity > 0
            }
        }
    }
}
