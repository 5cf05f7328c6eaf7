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
public final class GPT2Model: LearnedPositionDecoder, @unchecked Sendable {
    /// Builds the blocks in `layers` (and the embeddings/head when this is the first/last stage).
    public init(configuration: DecoderConfiguration, weights: WeightSource, parallel: ParallelContext,
                layers: Range<Int>? = nil) throws {
        let c = configuration
        let layerRange = layers ?? 0..<c.layerCount
        let blocks: [any DecoderBlock] = try layerRange.map { index in
            let block = weights.prefixed("blk.\(index)")
            return try LayerNormBlock(block, configuration: c,
                                      attention: SelfAttention(fused: block, hiddenSize: c.hiddenSize, heads: c.headCount,
                                                               scale: c.attentionScale, parallel: parallel),
                                      activation: .geluTanh, parallel: parallel)
        }
        // Old HF GPT-2 exports store the causal-mask buffers `h.N.attn.bias` / `attn.masked_bias`.
        weights.markIgnored { $0.hasSuffix(".attn.bias") || $0.hasSuffix(".attn.masked_bias") }
        try super.init(configuration: c, weights: weights, parallel: parallel, layerRange: layerRange, positionOffset: 0,
                       blocks: blocks)
    }
}
