import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// GPT-2: learned absolute positions, pre-norm blocks with LayerNorm (with bias), multi-head
/// attention from a fused `attn_qkv`, a GELU (tanh) MLP, biases everywhere, and an output
/// tied to the token embedding (unless the checkpoint has `output.weight`).
///
///     x = wte[token] + wpe[position]
///     x = x + attention(attn_norm(x))
///     x = x + mlp(ffn_norm(x))
///     logits = output(output_norm(x))
public final class GPT2Model: StackedDecoder, @unchecked Sendable {
    let positionEmbedding: LearnedPositionEmbedding?

    /// Builds the blocks in `layers` (and the embeddings/head when this is the first/last stage).
    public init(configuration: DecoderConfiguration, weights: WeightSource, parallel: ParallelContext,
                layers: Range<Int>? = nil) throws {
        let c = configuration
        let layerRange = layers ?? 0..<c.layerCount
        if parallel.isFirstStage {
            positionEmbedding = try LearnedPositionEmbedding(weights, "position_embd", positions: c.contextLength, hiddenSize: c.hiddenSize)
        } else {
            positionEmbedding = nil
        }
        let blocks: [any DecoderBlock] = try layerRange.map { index in
            try GPT2Block(weights.prefixed("blk.\(index)"), configuration: c, parallel: parallel)
        }
        // Old HF GPT-2 exports store the causal-mask buffers `h.N.attn.bias` / `attn.masked_bias`.
        weights.markIgnored { $0.hasSuffix(".attn.bias") || $0.hasSuffix(".attn.masked_bias") }
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

final class GPT2Block: DecoderBlock, @unchecked Sendable {
    let attentionNorm: LayerNorm
    let attention: SelfAttention
    let mlpNorm: LayerNorm
    let mlp: MLP
    let hiddenSize: Int

    init(_ weights: WeightSource, configuration c: DecoderConfiguration, parallel: ParallelContext) throws {
        attentionNorm = try LayerNorm(weights, "attn_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        attention = try SelfAttention(fused: weights, hiddenSize: c.hiddenSize, heads: c.headCount, scale: c.attentionScale,
                                      parallel: parallel)
        mlpNorm = try LayerNorm(weights, "ffn_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        mlp = try MLP(weights, hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize, activation: .geluTanh,
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
