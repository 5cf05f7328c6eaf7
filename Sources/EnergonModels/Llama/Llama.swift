import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// The Llama family (Llama 2/3, SmolLM2, Mistral, Qwen2): pre-norm blocks of grouped-query
/// attention with rotary positions and a SwiGLU MLP.
///
///     x = x + attention(attn_norm(x))
///     x = x + mlp(ffn_norm(x))
public final class LlamaModel: StackedDecoder, @unchecked Sendable {
    /// Builds the blocks in `layers` (and the embedding/head when this is the first/last stage).
    public init(configuration: DecoderConfiguration, weights: WeightSource, parallel: ParallelContext,
                layers: Range<Int>? = nil) throws {
        let c = configuration
        let layerRange = layers ?? 0..<c.layerCount
        let rope = RoPE(headDimension: c.headDimension, rotaryDimensions: c.rotaryDimensions, base: c.ropeBase,
                        style: c.ropeStyle == .neox ? .neox : .normal, frequencyScale: c.ropeFrequencyScale)
        let blocks: [any DecoderBlock] = try layerRange.map { index in
            try LlamaBlock(weights.prefixed("blk.\(index)"), configuration: c, rope: rope, parallel: parallel)
        }
        let ends = try DecoderEnds(weights, configuration: c, parallel: parallel) {
            try RMSNorm($0, $1, dimension: c.hiddenSize, epsilon: c.normEpsilon)
        }
        super.init(configuration: c, layerRange: layerRange, blocks: blocks, ends: ends)
    }
}

final class LlamaBlock: DecoderBlock, @unchecked Sendable {
    let attentionNorm: RMSNorm
    let attention: SelfAttention
    let mlpNorm: RMSNorm
    let mlp: GatedMLP
    let hiddenSize: Int

    init(_ weights: WeightSource, configuration c: DecoderConfiguration, rope: RoPE, parallel: ParallelContext) throws {
        attentionNorm = try RMSNorm(weights, "attn_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        let shape = SelfAttention.Shape(hiddenSize: c.hiddenSize, heads: c.headCount, kvHeads: c.kvHeadCount,
                                        headDimension: c.headDimension)
        attention = try SelfAttention(
            weights, shape: shape,
            rope: rope, scale: c.attentionScale, slidingWindow: c.slidingWindow,
            hasBias: weights.contains("attn_q.bias"), parallel: parallel)
        mlpNorm = try RMSNorm(weights, "ffn_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        mlp = try GatedMLP(weights, hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize,
                           activation: c.activation, attention: shape, parallel: parallel)
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
