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
public final class OPTModel: LearnedPositionDecoder, @unchecked Sendable {
    /// OPT's position table starts at row 2 (fairseq reserved rows for its padding index).
    public static let positionOffset = 2

    /// Builds the blocks in `layers` (and the embeddings/head when this is the first/last stage).
    public init(configuration: DecoderConfiguration, weights: WeightSource, parallel: ParallelContext,
                layers: Range<Int>? = nil) throws {
        let c = configuration
        let layerRange = layers ?? 0..<c.layerCount
        let blocks: [any DecoderBlock] = try layerRange.map { index in
            let block = weights.prefixed("blk.\(index)")
            return try LayerNormBlock(block, configuration: c,
                                      attention: SelfAttention(biased: block, hiddenSize: c.hiddenSize, heads: c.headCount,
                                                               scale: c.attentionScale, parallel: parallel),
                                      activation: .relu, parallel: parallel)
        }
        try super.init(configuration: c, weights: weights, parallel: parallel, layerRange: layerRange,
                       positionOffset: Self.positionOffset, blocks: blocks)
    }
}
