import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// Gemma 3 (text): sandwich-normed blocks (a norm before and after both attention and MLP),
/// per-head q/k RMSNorm, GeGLU, embeddings scaled by √hidden, tied output, and sliding-window
/// attention on five of every six layers (with their own RoPE base).
///
///     x = x + post_attention_norm(attention(attn_norm(x)))
///     x = x + post_ffw_norm(mlp(ffn_norm(x)))
public final class Gemma3Model: StackedDecoder, @unchecked Sendable {

    public init(configuration: DecoderConfiguration, weights: WeightSource, parallel: ParallelContext,
                layers: Range<Int>? = nil) throws {
        let c = configuration
        let layerRange = layers ?? 0..<c.layerCount
        let globalRope = RoPE(headDimension: c.headDimension, rotaryDimensions: c.rotaryDimensions, base: c.ropeBase,
                              style: .neox, frequencyScale: c.ropeFrequencyScale)
        let localRope = RoPE(headDimension: c.headDimension, rotaryDimensions: c.rotaryDimensions, base: c.ropeLocalBase,
                             style: .neox)
        let blocks: [any DecoderBlock] = try layerRange.map { index in
            let sliding = c.isSlidingLayer(index)
            return try Gemma3Block(weights.prefixed("blk.\(index)"), configuration: c, rope: sliding ? localRope : globalRope,
                                   slidingWindow: sliding ? c.slidingWindow : nil, parallel: parallel)
        }
        let ends = try DecoderEnds(weights, configuration: c, parallel: parallel) {
            try RMSNorm($0, $1, dimension: c.hiddenSize, epsilon: c.normEpsilon)
        }
        super.init(configuration: c, layerRange: layerRange, blocks: blocks, ends: ends)
    }

    override public func embed(_ batch: ForwardBatch, into hidden: UnsafeMutablePointer<Float>, context: ComputeContext) throws {
        try ends.embed(batch.tokens, into: hidden)
        Ops.scale(hidden, by: configuration.embeddingScale, count: batch.totalTokens * configuration.hiddenSize)
    }
}

final class Gemma3Block: DecoderBlock, @unchecked Sendable {
    let attentionNorm: RMSNorm
    let attention: SelfAttention
    let postAttentionNorm: RMSNorm
    let mlpNorm: RMSNorm
    let mlp: GatedMLP
    let postMLPNorm: RMSNorm
    let hiddenSize: Int

    init(_ weights: WeightSource, configuration c: DecoderConfiguration, rope: RoPE, slidingWindow: Int?,
         parallel: ParallelContext) throws {
        attentionNorm = try RMSNorm(weights, "attn_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        let shape = SelfAttention.Shape(hiddenSize: c.hiddenSize, heads: c.headCount, kvHeads: c.kvHeadCount,
                                        headDimension: c.headDimension)
        attention = try SelfAttention(
            weights, shape: shape,
            rope: rope, scale: c.attentionScale, slidingWindow: slidingWindow, logitSoftcap: c.attentionLogitSoftcap,
            qkNormEpsilon: c.normEpsilon, parallel: parallel)
        postAttentionNorm = try RMSNorm(weights, "post_attention_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        mlpNorm = try RMSNorm(weights, "ffn_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        mlp = try GatedMLP(weights, hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize,
                           activation: c.activation, attention: shape, parallel: parallel)
        postMLPNorm = try RMSNorm(weights, "post_ffw_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        hiddenSize = c.hiddenSize
    }

    func callAsFunction(_ x: UnsafeMutablePointer<Float>, batch: ForwardBatch, cache: KVCache, cacheLayer: Int,
                        buffers: ActivationBuffers, context: ComputeContext) throws {
        let tokens = batch.totalTokens, count = tokens * hiddenSize
        let normed = buffers.buffer(.normed, count: count)       // [tokens, hidden]
        let projected = buffers.buffer(.projected, count: count)
        attentionNorm(x, rows: tokens, output: normed, context: context)
        try attention(normed, batch: batch, cache: cache, layer: cacheLayer, result: projected, buffers: buffers, context: context)
        postAttentionNorm(projected, rows: tokens, output: projected, context: context)
        Ops.add(x, projected, output: x, count: count)
        mlpNorm(x, rows: tokens, output: normed, context: context)
        try mlp(normed, tokens: tokens, result: projected, buffers: buffers, context: context)
        postMLPNorm(projected, rows: tokens, output: projected, context: context)
        Ops.add(x, projected, output: x, count: count)
    }
}
