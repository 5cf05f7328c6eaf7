import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// A decoder-only language model as the runtime sees it: an embedding, a stack of blocks, and
/// a head. A worker holds the blocks of its pipeline stage; the runtime (`DecoderRuntime`),
/// not the model file, decides which of embedding and head to run.
public protocol DecoderModel: AnyObject, Sendable {
    /// The model's hyperparameters.
    var configuration: DecoderConfiguration { get }
    /// The blocks this worker holds.
    var layerRange: Range<Int> { get }
    /// Floats per position per layer this worker stores in its KV cache.
    var kvDimensionPerRank: Int { get }
    /// Writes the input embeddings of `batch` (its tokens, and its positions where the model
    /// learns them) to `hidden` (`[tokens, hiddenSize]`). First stage only.
    func embed(_ batch: ForwardBatch, into hidden: UnsafeMutablePointer<Float>, context: ComputeContext) throws
    /// Runs block `layer` on `hidden` in place; `cacheLayer` is the layer's index in this worker's cache.
    func block(_ layer: Int, hidden: UnsafeMutablePointer<Float>, batch: ForwardBatch, cache: KVCache, cacheLayer: Int,
               buffers: ActivationBuffers, context: ComputeContext) throws
    /// Final norm and projection of `rows` rows of `hidden` to `logits` (`[rows, vocabularySize]`). Last stage only.
    func head(_ hidden: UnsafeMutablePointer<Float>, rows: Int, logits: UnsafeMutablePointer<Float>,
              buffers: ActivationBuffers, context: ComputeContext) throws
}

/// Runs a worker's share of a forward pass: embedding on the first stage, its blocks, and the
/// head (for the rows that sample only) on the last stage.
public enum DecoderRuntime {
    /// Runs `batch` through `model`. Returns logits `[batch.logitRows.count, vocabularySize]` on
    /// the last stage (valid until the next call with the same `buffers`), and `nil` elsewhere,
    /// where `hidden` holds the activations to pass to the next stage.
    /// - Parameter incoming: on a stage after the first, the previous stage's activations
    ///   (`[tokens, hidden]`, packed like `batch`).
    @discardableResult
    public static func forward(_ model: any DecoderModel, batch: ForwardBatch, cache: KVCache,
                               buffers: ActivationBuffers, context: ComputeContext,
                               parallel: ParallelContext = .serial,
                               incoming: UnsafePointer<Float>? = nil) throws -> UnsafeMutablePointer<Float>? {
        let configuration = model.configuration
        let tokens = batch.totalTokens
        let hidden = buffers.buffer(.hidden, count: tokens * configuration.hiddenSize)  // [tokens, hidden]
        if parallel.isFirstStage {
            try model.embed(batch, into: hidden, context: context)
        } else if let incoming {
            hidden.update(from: incoming, count: tokens * configuration.hiddenSize)
        }
        for layer in model.layerRange {
            try model.block(layer, hidden: hidden, batch: batch, cache: cache, cacheLayer: layer - model.layerRange.lowerBound,
                            buffers: buffers, context: context)
        }
        guard parallel.isLastStage, !batch.logitRows.isEmpty else { return nil }
        // Gather the rows that sample: [logitRows, hidden]
        let selected = buffers.buffer(.normed, count: batch.logitRows.count * configuration.hiddenSize)
        for (i, row) in batch.logitRows.enumerated() {
            (selected + i * configuration.hiddenSize).update(from: hidden + row * configuration.hiddenSize,
                                                             count: configuration.hiddenSize)
        }
        let logits = buffers.buffer(.logits, count: batch.logitRows.count * configuration.vocabularySize)
        try model.head(selected, rows: batch.logitRows.count, logits: logits, buffers: buffers, context: context)
        return logits
    }
}
