import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// OPT (the EnergonAI paper's model family): GPT-2's layout with separate q/k/v projections
/// (biases on all four), a ReLU MLP, learned positions stored with an offset of 2, and an output
/// tied to the token embedding. Pre-norm (`do_layer_norm_before`, every size but 350M).
///
///     x = embed_tokens[token] + embed_positions[position + 2]
///     x = x + attention(attn_norm(x))       // q scaled by 1/√headDim
///     x = x + fc2(relu(fc1(ffn_norm(x))))
///     logits = output(output_norm(x))
///
/// GGUF names and keys (llama.cpp has no OPT converter; these follow its gpt2 conventions):
/// `token_embd`, `position_embd` (the HF table verbatim, `[context_length + 2, hidden]`),
/// `blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_up, ffn_down}` with
/// `.weight` and `.bias`, `output_norm`, optional `output`; `opt.{context_length,
/// embedding_length, feed_forward_length, block_count, attention.head_count,
/// attention.layer_norm_epsilon}` (see scripts/make_model_fixtures_encoders.py).
public final class OPTModel: StackedDecoder, @unchecked Sendable {
    /// OPT's position table starts at row 2 (fairseq reserved rows for its padding index).
    public static let positionOffset = 2

    let positionEmbedding: LearnedPositionEmbedding?

    /// Builds the blocks in `layers` (and the embeddings/head when this is the first/last stage).
    public init(configuration: DecoderConfiguration, weights: WeightSource, parallel: ParallelContext,
                layers: Range<Int>? = nil) throws {
        let c = configuration
        let layerRange = layers ?? 0..<c.layerCount
        if parallel.isFirstStage {
            positionEmbedding = try LearnedPositionEmbedding(weights, "position_embd", positions: c.contextLength, hiddenSize: c.hiddenSize,
                                                             offset: Self.positionOffset)
        } else {
            positionEmbedding = nil
        }
        let blocks: [any DecoderBlock] = try layerRange.map { index in
            try OPTBlock(weights.prefixed("blk.\(index)"), configuration: c, parallel: parallel)
        }
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

final class OPTBlock: DecoderBlock, @unchecked Sendable {
    let attentionNorm: LayerNorm
    let attention: SelfAttention
    let mlpNorm: LayerNorm
    let mlp: MLP
    let hiddenSize: Int

    init(_ weights: WeightSource, configuration c: DecoderConfiguration, parallel: ParallelContext) throws {
        attentionNorm = try LayerNorm(weights, "attn_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        attention = try SelfAttention(biased: weights, hiddenSize: c.hiddenSize, heads: c.headCount, scale: c.attentionScale,
                                      parallel: parallel)
        mlpNorm = try LayerNorm(weights, "ffn_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        mlp = try MLP(weights, hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize, activation: .relu,
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
