import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// Token embeddings split by vocabulary across the tensor-parallel ranks: rank r holds rows
/// `r·vocab/tp ..< (r+1)·vocab/tp`, looks up the ids it owns, writes zeros for the rest, and one
/// all-reduce assembles the full rows. At one rank it is a plain lookup.
public final class VocabParallelEmbedding: @unchecked Sendable {
    /// This rank's rows, `[vocabularyPerRank, hiddenSize]`, in the checkpoint's format.
    public let table: Tensor
    public let vocabularySize: Int
    public let hiddenSize: Int
    private let firstRow: Int
    private let group: any ProcessGroup

    /// Loads `name.weight`.
    public init(_ source: WeightSource, _ name: String, vocabularySize: Int, hiddenSize: Int,
                parallel: ParallelContext) throws {
        let shard = parallel.tensorSize > 1
            ? ShardSpec(dimension: 0, rank: parallel.tensorRank, count: parallel.tensorSize) : nil
        table = try source.tensor("\(name).weight", shape: [vocabularySize, hiddenSize], shard: shard)
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        firstRow = ParallelContext.shard(vocabularySize, rank: parallel.tensorRank, size: parallel.tensorSize).lowerBound
        group = parallel.tensorGroup
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
                Quantization.dequantizeRow(table.dtype, source: table.row(local), destination: destination, count: hiddenSize)
            } else {
                destination.update(repeating: 0, count: hiddenSize)
            }
        }
        try group.allReduceSum(output, count: ids.count * hiddenSize)
    }
}

/// The output projection to vocabulary logits, split by vocabulary across the tensor-parallel
/// ranks; the shards are all-gathered so the sampler sees the full row. Only the rows that
/// sample are projected (the rest of a prompt needs no logits).
public final class ParallelLMHead: @unchecked Sendable {
    /// This rank's rows of the output matrix, `[vocabularyPerRank, hiddenSize]`.
    public let weight: Tensor
    public let vocabularySize: Int
    public let hiddenSize: Int
    private let group: any ProcessGroup

    /// Loads `name.weight` (for tied embeddings pass the embedding's name).
    public init(_ source: WeightSource, _ name: String, vocabularySize: Int, hiddenSize: Int,
                parallel: ParallelContext) throws {
        let shard = parallel.tensorSize > 1
            ? ShardSpec(dimension: 0, rank: parallel.tensorRank, count: parallel.tensorSize) : nil
        weight = try source.tensor("\(name).weight", shape: [vocabularySize, hiddenSize], shard: shard)
        if !MatMul.supports(weight.dtype) {
            throw ModelError.unsupportedFormat(tensor: source.prefix + "\(name).weight", format: weight.dtype.name)
        }
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        group = parallel.tensorGroup
    }

    /// Projects `rows` rows of `hidden` (`[rows, hiddenSize]`) to `logits` (`[rows, vocabularySize]`).
    public func callAsFunction(_ hidden: UnsafePointer<Float>, rows: Int, logits: UnsafeMutablePointer<Float>,
                               buffers: ActivationBuffers, context: ComputeContext) throws {
        if group.size == 1 {
            MatMul.compute(weight: weight, input: hidden, tokens: rows, output: logits, context: context)
            return
        }
        let perRank = weight.shape[0]
        let local = buffers.buffer(.staging, count: rows * perRank)
        MatMul.compute(weight: weight, input: hidden, tokens: rows, output: local, context: context)
        let gathered = buffers.buffer(.projected, count: rows * perRank * group.size)
        try group.allGather(local, count: rows * perRank, output: gathered)
        // [ranks, rows, perRank] -> [rows, ranks * perRank]
        for rank in 0..<group.size {
            for row in 0..<rows {
                (logits + row * vocabularySize + rank * perRank)
                    .update(from: gathered + (rank * rows + row) * perRank, count: perRank)
            }
        }
    }
}
