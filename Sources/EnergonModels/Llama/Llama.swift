import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// The Llama family (Llama 2/3, SmolLM2, Mistral, Qwen2): pre-norm blocks of grouped-query
/// attention with rotary positions and a SwiGLU MLP.
///
///     x = x + attention(attn_norm(x))
///     x = x + mlp(ffn_norm(x))
public final class LlamaModel: DecoderModel, @unchecked Sendable {
    public let configuration: DecoderConfiguration
    public let layerRange: Range<Int>
    let ends: DecoderEnds
    let blocks: [LlamaBlock]

    /// Builds the blocks in `layers` (and the embedding/head when this is the first/last stage).
    public init(configuration: DecoderConfiguration, weights: WeightSource, parallel: ParallelContext,
                layers: Range<Int>? = nil) throws {
        self.configuration = configuration
        let c = configuration
        layerRange = layers ?? 0..<c.layerCount
        let rope = RoPE(headDimension: c.headDimension, rotaryDimensions: c.rotaryDimensions, base: c.ropeBase,
                        style: c.ropeStyle == .neox ? .neox : .normal, frequencyScale: c.ropeFrequencyScale)
        blocks = try layerRange.map { index in
            try LlamaBlock(weights.prefixed("blk.\(index)"), configuration: c, rope: rope, parallel: parallel)
        }
        ends = try DecoderEnds(weights, configuration: c, parallel: parallel) {
            try RMSNorm($0, $1, dimension: c.hiddenSize, epsilon: c.normEpsilon)
        }
    }

    public var kvDimensionPerRank: Int { blocks.first?.attention.kvDimensionPerRank ?? 0 }

    public func embed(_ batch: ForwardBatch, into hidden: UnsafeMutablePointer<Float>, context: ComputeContext) throws {
        try ends.embed(batch.tokens, into: hidden)
    }

    public func block(_ layer: Int, hidden: UnsafeMutablePointer<Float>, batch: ForwardBatch, cache: KVCache, cacheLayer: Int,
                      buffers: ActivationBuffers, context: ComputeContext) throws {
        try blocks[layer - layerRange.lowerBound](hidden, batch: batch, cache: cache, cacheLayer: cacheLayer,
                                                  buffers: buffers, context: context)
    }

    public func head(_ hidden: UnsafeMutablePointer<Float>, rows: Int, logits: UnsafeMutablePointer<Float>,
                     buffers: ActivationBuffers, context: ComputeContext) throws {
        try ends.head(hidden, rows: rows, logits: logits, buffers: buffers, context: context)
    }
}

final class LlamaBlock: @unchecked Sendable {
    let attentionNorm: RMSNorm
    let attention: SelfAttention
    let mlpNorm: RMSNorm
    let mlp: GatedMLP
    let hiddenSize: Int

    init(_ weights: WeightSource, configuration c: DecoderConfiguration, rope: RoPE, parallel: ParallelContext) throws {
        attentionNorm = try RMSNorm(weights, "attn_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        attention = try SelfAttention(
            weights,
            shape: .init(hiddenSize: c.hiddenSize, heads: c.headCount, kvHeads: c.kvHeadCount, headDimension: c.headDimension),
            rope: rope, scale: c.attentionScale, slidingWindow: c.slidingWindow,
            hasBias: weights.contains("attn_q.bias"), parallel: parallel)
        mlpNorm = try RMSNorm(weights, "ffn_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        mlp = try GatedMLP(weights, hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize,
                           activation: c.activation, parallel: parallel)
        hiddenSize = c.hiddenSize
    }

    func callAsFunction(_ x: UnsafeMutablePointer<Float>, batch: ForwardBatch, cache: KVCache, cacheLayer: Int,
                        buffers: ActivationBuffers, context: ComputeContext) throws {
        let count = batch.totalTokens * hiddenSize
        let normed = buffers.buffer(.normed, count: count)       // [tokens, hidden]
        let projected = buffers.buffer(.projected, count: count)
        attentionNorm(x, rows: batch.totalTokens, output: normed, context: context)
        try attention(normed, batch: batch, cache: cache, layer: cacheLayer, result: projected, buffers: buffers, context: context)
        Ops.add(x, projected, output: x, count: count)
        mlpNorm(x, rows: batch.totalTokens, output: normed, context: context)
        try mlp(normed, tokens: batch.totalTokens, result: projected, buffers: buffers, context: context)
        Ops.add(x, projected, output: x, count: count)
    }
}
