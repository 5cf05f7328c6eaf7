import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// BERT: a bidirectional encoder of post-norm blocks over the sum of token, position and
/// token-type embeddings; returns the last hidden states (no pooler or task head).
///
///     x = embd_norm(word[token] + position[p] + token_types[type])
///     x = attn_output_norm(x + attention(x))          // every token sees its whole sequence
///     x = layer_output_norm(x + ffn_down(gelu(ffn_up(x))))
///
/// GGUF names are llama.cpp's `bert` ones; a converted checkpoint's `cls.*` head tensors, if
/// present, are ignored.
public final class BERTModel: EncoderModel, @unchecked Sendable {
    public let configuration: DecoderConfiguration
    let embedding: VocabParallelEmbedding
    let positionEmbedding: LearnedPositionEmbedding
    let typeEmbedding: Tensor                  // [typeCount, hidden], replicated
    let embeddingNorm: LayerNorm
    let blocks: [BERTBlock]

    /// Builds every layer (an encoder is not split into pipeline stages).
    public init(configuration: DecoderConfiguration, weights: WeightSource, parallel: ParallelContext) throws {
        self.configuration = configuration
        let c = configuration
        embedding = try VocabParallelEmbedding(weights, "token_embd", vocabularySize: c.vocabularySize, hiddenSize: c.hiddenSize, parallel: parallel)
        positionEmbedding = try LearnedPositionEmbedding(weights, "position_embd", positions: c.contextLength, hiddenSize: c.hiddenSize)
        let typeCount = try Self.typeCount(weights)
        typeEmbedding = try weights.tensor("token_types.weight", shape: [typeCount, c.hiddenSize])
        embeddingNorm = try LayerNorm(weights, "token_embd_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        blocks = try (0..<c.layerCount).map { index in
            try BERTBlock(weights.prefixed("blk.\(index)"), configuration: c, parallel: parallel)
        }
        // Task heads and the pooler are not part of the encoder; old HF exports also store the
        // `position_ids`/`token_type_ids` index buffers.
        weights.markIgnored { name in
            name.hasPrefix("cls.") || name.hasPrefix("pooler.") || name.hasPrefix("bert.pooler.")
                || name.hasSuffix("embeddings.position_ids") || name.hasSuffix("embeddings.token_type_ids")
        }
    }

    /// Rows of `token_types.weight` (BERT: 2; some derivatives: 1), read from the stored tensor's
    /// shape under its GGUF name or, in a Hugging Face folder, its HF name.
    static func typeCount(_ weights: WeightSource) throws -> Int {
        let name = "token_types.weight"
        let candidates = [weights.prefix + name]
            + (weights.family.map { TensorNameMap.huggingFaceCandidates(forGGUF: weights.prefix + name, family: $0) } ?? [])
        for candidate in candidates {
            if let stored = weights.store.storedTensor(named: candidate), let rows = stored.shape.first { return rows }
        }
        throw CheckpointError.missingTensor(path: weights.store.path, name: weights.prefix + name)
    }

    public func encode(_ batch: EncoderBatch, buffers: ActivationBuffers, context: ComputeContext) throws -> UnsafeMutablePointer<Float> {
        let hiddenSize = configuration.hiddenSize, tokens = batch.totalTokens
        let x = buffers.buffer(.hidden, count: tokens * hiddenSize)           // [tokens, hidden]
        guard tokens > 0 else { return x }
        try embedding(batch.tokens, output: x)
        try positionEmbedding.add(positions: batch.positions, to: x)
        try addTypeEmbeddings(batch.typeIDs, to: x)
        embeddingNorm(x, rows: tokens, output: x, context: context)
        for block in blocks { try block(x, batch: batch, buffers: buffers, context: context) }
        return x
    }

    /// `x[t] += token_types[typeIDs[t]]`.
    func addTypeEmbeddings(_ typeIDs: [Int32], to x: UnsafeMutablePointer<Float>) throws {
        let hiddenSize = configuration.hiddenSize, typeCount = typeEmbedding.shape[0]
        for (index, id) in typeIDs.enumerated() where id < 0 || Int(id) >= typeCount {
            throw ModelError.invalidValue(key: "token_type_ids[\(index)]", value: String(id), reason: "the model has \(typeCount) token types")
        }
        try withUnsafeTemporaryAllocation(of: Float.self, capacity: hiddenSize) { row in
            for (t, id) in typeIDs.enumerated() {
                try [id].withUnsafeBufferPointer {
                    try Embedding.lookup(table: typeEmbedding, ids: $0.baseAddress!, count: 1, output: row.baseAddress!)  // invariant: non-empty
                }
                Ops.add(x + t * hiddenSize, row.baseAddress!, output: x + t * hiddenSize, count: hiddenSize)  // invariant: capacity > 0
            }
        }
    }
}

final class BERTBlock: @unchecked Sendable {
    let attention: EncoderSelfAttention
    let attentionNorm: LayerNorm
    let mlp: MLP
    let outputNorm: LayerNorm
    let hiddenSize: Int

    init(_ weights: WeightSource, configuration c: DecoderConfiguration, parallel: ParallelContext) throws {
        attention = try EncoderSelfAttention(weights, hiddenSize: c.hiddenSize, heads: c.headCount, scale: c.attentionScale,
                                             parallel: parallel)
        attentionNorm = try LayerNorm(weights, "attn_output_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        mlp = try MLP(weights, hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize, activation: .geluErf,
                      hasBias: true, parallel: parallel)
        outputNorm = try LayerNorm(weights, "layer_output_norm", dimension: c.hiddenSize, epsilon: c.normEpsilon)
        hiddenSize = c.hiddenSize
    }

    func callAsFunction(_ x: UnsafeMutablePointer<Float>, batch: EncoderBatch, buffers: ActivationBuffers,
                        context: ComputeContext) throws {
        let tokens = batch.totalTokens, count = tokens * hiddenSize
        let projected = buffers.buffer(.projected, count: count)  // [tokens, hidden]
        try attention(x, batch: batch, result: projected, buffers: buffers, context: context)
        Ops.add(x, projected, output: x, count: count)
        attentionNorm(x, rows: tokens, output: x, context: context)
        try mlp(x, tokens: tokens, result: projected, buffers: buffers, context: context)
        Ops.add(x, projected, output: x, count: count)
        outputNorm(x, rows: tokens, output: x, context: context)
    }
}
