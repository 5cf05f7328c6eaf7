import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// Bidirectional multi-head self-attention for encoders (BERT): every token sees every token
/// of its own sequence. There is no KV cache: the keys and values of this call are the whole
/// sequence, so each sequence's rows of the packed k/v matrices serve as one cache block.
///
/// q/k/v are column-parallel (each rank computes its heads, `TensorSplit.heads`, possibly
/// unevenly), the output projection is
/// row-parallel (one all-reduce); biases on all four.
public final class EncoderSelfAttention: @unchecked Sendable {
    let query: ColumnParallelLinear
    let key: ColumnParallelLinear
    let value: ColumnParallelLinear
    let output: RowParallelLinear
    let configuration: AttentionConfiguration

    /// Loads `attn_q`, `attn_k`, `attn_v`, `attn_output` (weights and biases).
    public init(_ source: WeightSource, hiddenSize: Int, heads: Int, scale: Float, parallel: ParallelContext) throws {
        let headDimension = try SelfAttention.headDimension(hiddenSize: hiddenSize, heads: heads, source: source)
        let mine = try SelfAttention.heads(heads: heads, kvHeads: heads, headDimension: headDimension, parallel: parallel,
                                           source: source)
        let rows = (mine.query.lowerBound * headDimension)..<(mine.query.upperBound * headDimension)
        func column(_ name: String) throws -> ColumnParallelLinear {
            try ColumnParallelLinear(source, name, inputFeatures: hiddenSize, outputFeatures: hiddenSize, hasBias: true, rows: rows)
        }
        query = try column("attn_q")
        key = try column("attn_k")
        value = try column("attn_v")
        output = try RowParallelLinear(source, "attn_output", inputFeatures: hiddenSize, outputFeatures: hiddenSize,
                                       hasBias: true, columns: rows, parallel: parallel)
        let localHeads = mine.query.count
        configuration = AttentionConfiguration(heads: localHeads, kvHeads: localHeads, headDimension: headDimension,
                                               scale: scale, causal: false)
    }

    /// Attends `input` (`[tokens, hidden]`) within each sequence of `batch` and writes
    /// `[tokens, hidden]` to `result`.
    public func callAsFunction(_ input: UnsafePointer<Float>, batch: EncoderBatch, result: UnsafeMutablePointer<Float>,
                               buffers: ActivationBuffers, context: ComputeContext) throws {
        let tokens = batch.totalTokens
        let width = configuration.heads * configuration.headDimension
        let q = buffers.buffer(.query, count: tokens * width)    // [tokens, headsPerRank * headDim]
        let k = buffers.buffer(.key, count: tokens * width)
        let v = buffers.buffer(.value, count: tokens * width)
        ColumnParallelLinear.fused([query, key, value], input: input, tokens: tokens, outputs: [q, k, v], context: context)
        let longest = max(1, batch.sequences.map(\.count).max() ?? 1)
        let attended = buffers.buffer(.attention, count: tokens * width)
        // One "cache block" per sequence: its own rows of k and v, a block longer than any sequence.
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: 2 * max(1, batch.sequences.count)) { blocks in
            let sequences = batch.sequences.enumerated().map { index, sequence in
                blocks[2 * index] = k + sequence.offset * width
                blocks[2 * index + 1] = v + sequence.offset * width
                return AttentionSequence(queryOffset: sequence.offset, tokens: sequence.count, startPosition: 0,
                                         keyBlocks: UnsafePointer(blocks.baseAddress! + 2 * index),  // invariant: capacity > 0
                                         valueBlocks: UnsafePointer(blocks.baseAddress! + 2 * index + 1))
            }
            Attention.compute(queries: q, sequences: sequences, blockSize: longest, output: attended,
                              configuration: configuration, context: context)
        }
        try output(attended, tokens: tokens, output: result, context: context)
    }
}
