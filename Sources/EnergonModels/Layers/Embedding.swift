import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// Token embeddings split by vocabulary across the tensor-parallel ranks: each rank holds a
/// contiguous range of rows (`TensorSplit.range`, possibly uneven), looks up the ids it owns,
/// writes zeros for the rest, and one all-reduce assembles the full rows. At one rank it is a
/// plain lookup.
public final class VocabParallelEmbedding: @unchecked Sendable {
    /// This rank's rows, `[vocabularyPerRank, hiddenSize]`, in the checkpoint's format.
    public let table: Tensor
    public let vocabularySize: Int
    public let hiddenSize: Int
    private let firstRow: Int
    private let group: any ProcessGroup
    private let clock: CommunicationClock.Counter

    /// Loads `name.weight`.
    public init(_ source: WeightSource, _ name: String, vocabularySize: Int, hiddenSize: Int,
                parallel: ParallelContext) throws {
        let rows = TensorSplit.range(vocabularySize, rank: parallel.tensorRank, size: parallel.tensorSize)
        table = try source.tensor("\(name).weight", shape: [vocabularySize, hiddenSize], rows: rows)
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        firstRow = rows.lowerBound
        group = parallel.tensorGroup
        clock = CommunicationClock.shared.counter(parallel)
    }

    /// Shares `table`, this rank's rows of a tied LM head's weight (`ParallelLMHead.weight`,
    /// which may be `MatMul.prepare`d): lookups gather rows back from it.
    public init(sharing table: Tensor, vocabularySize: Int, hiddenSize: Int, parallel: ParallelContext) {
        let rows = TensorSplit.range(vocabularySize, rank: parallel.tensorRank, size: parallel.tensorSize)
        precondition(table.shape == [rows.count, hiddenSize])  // invariant: the head was loaded with the same split
        self.table = table
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        firstRow = rows.lowerBound
        group = parallel.tensorGroup
        clock = CommunicationClock.shared.counter(parallel)
    }

    /// Writes the embeddings of `ids` into `output` (`[ids.count, hiddenSize]`).
    public func callAsFunction(_ ids: [Int32], output: UnsafeMutablePointer<Float>) throws {
        for id in ids where id < 0 || Int(id) >= vocabularySize {
            throw ModelError.tokenOutOfRange(id: id, vocabularySize: vocabularySize)
        }
        if group.size == 1 {
            try ids.withUnsafeBufferPointer {
                try Embedding.lookup(table: table, ids: $0.baseAddress!, count: ids.count, output: output)  // invariant: non-empty (checked by callers)
            }
            return
        }
        let rows = table.shape[0]
        for (t, id) in ids.enumerated() {
            let local = Int(id) - firstRow
            let destination = output + t * hiddenSize
            if local >= 0 && local < rows {
                table.dequantizeRow(local, into: destination)
            } else {
                destination.update(repeating: 0, count: hiddenSize)
            }
        }
        try clock.time { try group.allReduceSum(output, count: ids.count * hiddenSize) }
    }
}

/// The output projection to vocabulary logits, split by vocabulary across the tensor-parallel
/// ranks (`TensorSplit.range`, possibly uneven); the shards are all-gathered so the sampler sees
/// the full row. The all-gather moves equal counts, so when the vocabulary splits unevenly each
/// rank sends its shard padded to the largest one. Only the rows that sample are projected (the
/// rest of a prompt needs no logits).
public final class ParallelLMHead: @unchecked Sendable {
    /// This rank's rows of the output matrix, `[vocabularyPerRank, hiddenSize]`.
    public let weight: Tensor
    /// Tokens in the full vocabulary.
    public let vocabularySize: Int
    /// Input features.
    public let hiddenSize: Int
    private let group: any ProcessGroup
    private let clock: CommunicationClock.Counter
    /// Every rank's vocabulary rows, in rank order.
    private let shards: [Range<Int>]

    /// Loads `name.weight` (for tied embeddings pass the embedding's name).
    public init(_ source: WeightSource, _ name: String, vocabularySize: Int, hiddenSize: Int,
                parallel: ParallelContext) throws {
        shards = TensorSplit.ranges(vocabularySize, parts: parallel.tensorSize)
        let stored = try source.tensor("\(name).weight", shape: [vocabularySize, hiddenSize], rows: shards[parallel.tensorRank])
        if !MatMul.supports(stored.dtype) {
            throw ModelError.unsupportedFormat(tensor: source.prefix + "\(name).weight", format: stored.dtype.name)
        }
        // Every decode step streams the whole head (a fifth of SmolLM2's bytes), so it gets the
        // fast layout too. A tied embedding keeps reading its rows from the checkpoint.
        weight = MatMul.prepare(stored)
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        group = parallel.tensorGroup
        clock = CommunicationClock.shared.counter(parallel)
    }

    /// Projects `rows` rows of `hidden` (`[rows, hiddenSize]`) to `logits` (`[rows, vocabularySize]`).
    public func callAsFunction(_ hidden: UnsafePointer<Float>, rows: Int, logits: UnsafeMutablePointer<Float>,
                               buffers: ActivationBuffers, context: ComputeContext) throws {
        if group.size == 1 {
            MatMul.compute(weight: weight, input: hidden, tokens: rows, output: logits, context: context)
            return
        }
        let mine = weight.shape[0]
        let stride = shards.map(\.count).max() ?? mine     // every rank sends `rows × stride` floats
        let local = buffers.buffer(.staging, count: rows * stride)
        if mine == stride {
            MatMul.compute(weight: weight, input: hidden, tokens: rows, output: local, context: context)
        } else {
            // Rows of `mine` logits, then spread to rows of `stride` (the padding is never read).
            let packed = buffers.buffer(.mlp, count: rows * mine)
            MatMul.compute(weight: weight, input: hidden, tokens: rows, output: packed, context: context)
            for row in 0..<rows { (local + row * stride).update(from: packed + row * mine, count: mine) }
        }
        let gathered = buffers.buffer(.projected, count: rows * stride * group.size)
        try clock.time { try group.allGather(local, count: rows * stride, output: gathered) }
        // [ranks, rows, stride] -> [rows, vocabulary]
        for (rank, shard) in shards.enumerated() {
            for row in 0..<rows {
                (logits + row * vocabularySize + shard.lowerBound)
                    .update(from: gathered + (rank * rows + row) * stride, count: shard.count)
            }
        }
    }
}
