import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// Multi-head self-attention with grouped-query heads, rotary positions, optional per-head
/// q/k RMSNorm (Gemma 3, Qwen 3) and an optional sliding window, over a paged KV cache.
///
/// Heads are split across tensor-parallel ranks by whole grouped-query groups
/// (`TensorSplit.heads`, possibly unevenly): q/k/v are column-parallel (each rank computes its
/// heads; a KV head shared by several ranks is loaded by each), the output projection is
/// row-parallel (one all-reduce).
public final class SelfAttention: @unchecked Sendable {
    /// Shape facts, global.
    public struct Shape: Sendable {
        public var hiddenSize: Int, heads: Int, kvHeads: Int, headDimension: Int
        public init(hiddenSize: Int, heads: Int, kvHeads: Int, headDimension: Int) {
            self.hiddenSize = hiddenSize
            self.heads = heads
            self.kvHeads = kvHeads
            self.headDimension = headDimension
        }
    }

    let query: ColumnParallelLinear
    let key: ColumnParallelLinear
    let value: ColumnParallelLinear
    let output: RowParallelLinear
    let queryNorm: RMSNorm?
    let keyNorm: RMSNorm?
    let rope: RoPE?
    let configuration: AttentionConfiguration
    private var blockPointers: UnsafeMutablePointer<UnsafeMutableRawPointer>
    private var blockPointerCapacity = 0

    /// Loads `attn_q`, `attn_k`, `attn_v`, `attn_output` (and `attn_q_norm`/`attn_k_norm` when
    /// `qkNormEpsilon` is set) from `source`.
    public init(_ source: WeightSource, shape: Shape, rope: RoPE?, scale: Float, slidingWindow: Int?,
                logitSoftcap: Float? = nil, qkNormEpsilon: Float? = nil, hasBias: Bool = false,
                parallel: ParallelContext) throws {
        let mine = try Self.heads(heads: shape.heads, kvHeads: shape.kvHeads, headDimension: shape.headDimension,
                                  parallel: parallel, source: source)
        let queryFeatures = shape.heads * shape.headDimension
        let kvFeatures = shape.kvHeads * shape.headDimension
        let queryRows = (mine.query.lowerBound * shape.headDimension)..<(mine.query.upperBound * shape.headDimension)
        // With more ranks than KV heads, every rank sharing a KV head loads it (replicated).
        let kvRows = (mine.keyValue.lowerBound * shape.headDimension)..<(mine.keyValue.upperBound * shape.headDimension)
        query = try ColumnParallelLinear(source, "attn_q", inputFeatures: shape.hiddenSize, outputFeatures: queryFeatures,
                                         hasBias: hasBias, rows: queryRows)
        key = try ColumnParallelLinear(source, "attn_k", inputFeatures: shape.hiddenSize, outputFeatures: kvFeatures,
                                       hasBias: hasBias, rows: kvRows)
        value = try ColumnParallelLinear(source, "attn_v", inputFeatures: shape.hiddenSize, outputFeatures: kvFeatures,
                                         hasBias: hasBias, rows: kvRows)
        output = try RowParallelLinear(source, "attn_output", inputFeatures: queryFeatures, outputFeatures: shape.hiddenSize,
                                       columns: queryRows, parallel: parallel)
        if let qkNormEpsilon {
            queryNorm = try RMSNorm(source, "attn_q_norm", dimension: shape.headDimension, epsilon: qkNormEpsilon)
            keyNorm = try RMSNorm(source, "attn_k_norm", dimension: shape.headDimension, epsilon: qkNormEpsilon)
        } else {
            queryNorm = nil
            keyNorm = nil
        }
        self.rope = rope
        configuration = AttentionConfiguration(heads: mine.query.count, kvHeads: mine.keyValue.count,
                                               headDimension: shape.headDimension, scale: scale,
                                               slidingWindow: slidingWindow, logitSoftcap: logitSoftcap)
        blockPointers = .allocate(capacity: 1)
    }

    /// Attention over projections the caller built: fused checkpoint tensors (GPT-2's `attn_qkv`
    /// cut into q/k/v) or projections with biases on every layer (OPT). `configuration` holds
    /// this rank's heads.
    public init(query: ColumnParallelLinear, key: ColumnParallelLinear, value: ColumnParallelLinear,
                output: RowParallelLinear, rope: RoPE?, configuration: AttentionConfiguration) {
        self.query = query
        self.key = key
        self.value = value
        self.output = output
        queryNorm = nil
        keyNorm = nil
        self.rope = rope
        self.configuration = configuration
        blockPointers = .allocate(capacity: 1)
    }

    deinit { blockPointers.deallocate() }

    /// Floats per position this rank stores in the KV cache.
    public var kvDimensionPerRank: Int { configuration.kvHeads * configuration.headDimension }

    /// Attends `input` (`[tokens, hidden]`) of `batch`, appending its keys/values to `cache`
    /// layer `layer`, and writes `[tokens, hidden]` to `result`.
    public func callAsFunction(_ input: UnsafePointer<Float>, batch: ForwardBatch, cache: KVCache, layer: Int,
                               result: UnsafeMutablePointer<Float>, buffers: ActivationBuffers,
                               context: ComputeContext) throws {
        let tokens = batch.totalTokens
        let heads = configuration.heads, kvHeads = configuration.kvHeads, headDim = configuration.headDimension
        let q = buffers.buffer(.query, count: tokens * heads * headDim)        // [tokens, heads * headDim]
        let k = buffers.buffer(.key, count: tokens * kvHeads * headDim)        // [tokens, kvHeads * headDim]
        let v = buffers.buffer(.value, count: tokens * kvHeads * headDim)
        ColumnParallelLinear.fused([query, key, value], input: input, tokens: tokens, outputs: [q, k, v], context: context)
        if let queryNorm, let keyNorm {
            queryNorm(q, rows: tokens * heads, output: q, context: context)    // per head: [tokens * heads, headDim]
            keyNorm(k, rows: tokens * kvHeads, output: k, context: context)
        }
        if let rope {
            batch.positions.withUnsafeBufferPointer { positions in
                rope.apply(q, tokens: tokens, heads: heads, positions: positions.baseAddress!, context: context)  // invariant: tokens > 0
                rope.apply(k, tokens: tokens, heads: kvHeads, positions: positions.baseAddress!, context: context)  // invariant: tokens > 0
            }
        }
        // Append this step's keys and values to each sequence's blocks.
        let kvDim = kvHeads * headDim
        for sequence in batch.sequences {
            for i in 0..<sequence.count {
                let row = sequence.offset + i, position = sequence.startPosition + i
                cache.store(keys: k + row * kvDim, values: v + row * kvDim, layer: layer, table: sequence.blockTable,
                            position: position, isa: context.isa)
            }
        }
        // Block pointer lists: for each sequence its key blocks, then its value blocks.
        let totalBlocks = batch.sequences.reduce(0) { $0 + $1.blockTable.count }
        if blockPointerCapacity < 2 * totalBlocks {
            blockPointers.deallocate()
            blockPointerCapacity = max(2 * totalBlocks, 16)
            blockPointers = .allocate(capacity: blockPointerCapacity)
        }
        var sequences: [AttentionSequence] = []
        sequences.reserveCapacity(batch.sequences.count)
        var next = 0
        for sequence in batch.sequences {
            let keys = blockPointers + next
            let values = blockPointers + next + sequence.blockTable.count
            for (i, block) in sequence.blockTable.enumerated() {
                keys[i] = cache.keyBlock(layer: layer, block: block)
                values[i] = cache.valueBlock(layer: layer, block: block)
            }
            next += 2 * sequence.blockTable.count
            sequences.append(AttentionSequence(queryOffset: sequence.offset, tokens: sequence.count,
                                               startPosition: sequence.startPosition,
                                               keyBlockTable: UnsafeRawPointer(keys),
                                               valueBlockTable: UnsafeRawPointer(values)))
        }
        let attended = buffers.buffer(.attention, count: tokens * heads * headDim)
        var configuration = configuration
        configuration.cacheType = cache.elementType  // the cache's rows are f32 or f16
        Attention.compute(queries: q, sequences: sequences, blockSize: cache.blockSize, output: attended,
                          configuration: configuration, context: context)
        try output(attended, tokens: tokens, output: result, context: context)
    }
}

extension SelfAttention {
    /// This rank's heads (`TensorSplit.heads`), checked: the split must give every rank a query
    /// head, and its share of `attn_output`'s input must be whole blocks of that weight's format.
    /// - Throws: `ModelError.invalidValue` naming the head counts and the tensor-parallel size.
    static func heads(heads: Int, kvHeads: Int, headDimension: Int, parallel: ParallelContext,
                      source: WeightSource) throws -> TensorSplit.Heads {
        let size = parallel.tensorSize
        guard TensorSplit.isFeasible(heads: heads, kvHeads: kvHeads, size: size) else {
            throw ModelError.invalidValue(key: "attention.head_count", value: "\(heads) (\(kvHeads) KV heads)",
                                          reason: "cannot be split over \(size) tensor-parallel ranks (\(source.prefix))")
        }
        let mine = TensorSplit.heads(heads, kvHeads: kvHeads, rank: parallel.tensorRank, size: size)
        let blockSize = source.storedFormat("attn_output.weight")?.blockSize ?? 1
        guard (mine.query.count * headDimension) % blockSize == 0 else {
            throw ModelError.invalidValue(key: "attention.head_count", value: String(heads),
                                          reason: "rank \(parallel.tensorRank) of \(size) would hold \(mine.query.count) heads of "
                                              + "\(headDimension), not whole blocks of \(blockSize) of \(source.prefix)attn_output.weight")
        }
        return mine
    }
}
