import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// The pre-norm block of GPT-2 and OPT: LayerNorms (with bias), multi-head attention and a
/// plain two-matrix MLP, each added back to the residual stream.
///
///     x = x + attention(attn_norm(x))
///     x = x + mlp(ffn_norm(x))
final class LayerNormBlock: DecoderBlock, @unchecked Sendable {
    let attentionNorm: LayerNorm
    let attention: SelfAttention
    let mlpNorm: LayerNorm
    let mlp: MLP
    let hiddenSize: Int

    /// Loads the norms and the MLP (`ffn_up`/`ffn_down` with biases) around `attention`.
    init(_ weights: WeightSource, configuration c: DecoderConfiguration, attention: SelfAttention, activation: MLP.Activation,
         parallel: ParallelContext) throws {
        attentionNorm = try LayerNorm(weights, "attn_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        self.attention = attention
        mlpNorm = try LayerNorm(weights, "ffn_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        mlp = try MLP(weights, hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize, activation: activation,
                      hasBias: true, attention: .multiHead(hiddenSize: c.hiddenSize, heads: c.headCount), parallel: parallel)
        hiddenSize = c.hiddenSize
    }

    func callAsFunction(_ x: UnsafeMutablePointer<Float>, batch: ForwardBatch, cache: KVCache, cacheLayer: Int,
                        buffers: ActivationBuffers, context: ComputeContext) throws {
        let tokens = batch.totalTokens, count = tokens * hiddenSize
        let normed = buffers.buffer(.normed, count: count)       // [tokens, hidden]
        let projected = buffers.buffer(.projected, count: count)
        attentionNorm(x, rows: tokens, output: normed, context: context)
        try attention(normed, batch: batch, cache: cache, layer: cacheLayer, result: projected, buffers: buffers, context: context)
        Ops.add(x, projected, output: x, count: count)
        mlpNorm(x, rows: tokens, output: normed, context: context)
        try mlp(normed, tokens: tokens, result: projected, buffers: buffers, context: context)
        Ops.add(x, projected, output: x, count: count)
    }
}

/// A decoder whose first stage adds learned absolute position embeddings (`position_embd`,
/// row `position + offset`) to the token embeddings: GPT-2 and OPT.
public class LearnedPositionDecoder: StackedDecoder, @unchecked Sendable {
    let positionEmbedding: LearnedPositionEmbedding?

    init(configuration c: DecoderConfiguration, weights: WeightSource, parallel: ParallelContext, layerRange: Range<Int>,
         positionOffset: Int, blocks: [any DecoderBlock]) throws {
        positionEmbedding = parallel.isFirstStage
            ? try LearnedPositionEmbedding(weights, "position_embd", positions: c.contextLength, hiddenSize: c.hiddenSize,
                                           offset: positionOffset)
            : nil
        let ends = try DecoderEnds(weights, configuration: c, parallel: parallel) {
            try LayerNorm($0, $1, dimension: c.hiddenSize, epsilon: c.normEpsilon)
        }
        super.init(configuration: c, layerRange: layerRange, blocks: blocks, ends: ends)
    }

    override public func embed(_ batch: ForwardBatch, into hidden: UnsafeMutablePointer<Float>, context: ComputeContext) throws {
        try ends.embed(batch.tokens, into: hidden)
        try positionEmbedding?.add(positions: batch.positions, to: hidden)
    }
}
