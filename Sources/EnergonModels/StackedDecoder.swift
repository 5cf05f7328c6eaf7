import EnergonCore

/// One transformer block as the runtime calls it: it updates the residual stream in place.
protocol DecoderBlock: AnyObject, Sendable {
    /// The block's attention (its KV-cache width is the model's).
    var attention: SelfAttention { get }
    /// Runs the block on `x` (`[tokens, hidden]`) in place.
    func callAsFunction(_ x: UnsafeMutablePointer<Float>, batch: ForwardBatch, cache: KVCache, cacheLayer: Int,
                        buffers: ActivationBuffers, context: ComputeContext) throws
}

/// A decoder built as a stack of blocks between `DecoderEnds`: the runtime's entry points,
/// written once. An architecture subclasses it, builds its blocks and ends, and overrides
/// `embed` when its input embedding is more than the token lookup.
public class StackedDecoder: DecoderModel, @unchecked Sendable {
    public let configuration: DecoderConfiguration
    public let layerRange: Range<Int>
    let ends: DecoderEnds
    let stack: [any DecoderBlock]

    init(configuration: DecoderConfiguration, layerRange: Range<Int>, blocks: [any DecoderBlock], ends: DecoderEnds) {
        self.configuration = configuration
        self.layerRange = layerRange
        self.ends = ends
        stack = blocks
    }

    public var kvDimensionPerRank: Int { stack.first?.attention.kvDimensionPerRank ?? 0 }

    public func embed(_ batch: ForwardBatch, into hidden: UnsafeMutablePointer<Float>, context: ComputeContext) throws {
        try ends.embed(batch.tokens, into: hidden)
    }

    public func block(_ layer: Int, hidden: UnsafeMutablePointer<Float>, batch: ForwardBatch, cache: KVCache, cacheLayer: Int,
                      buffers: ActivationBuffers, context: ComputeContext) throws {
        try stack[layer - layerRange.lowerBound](hidden, batch: batch, cache: cache, cacheLayer: cacheLayer,
                                                 buffers: buffers, context: context)
    }

    public func head(_ hidden: UnsafeMutablePointer<Float>, rows: Int, logits: UnsafeMutablePointer<Float>,
                     buffers: ActivationBuffers, context: ComputeContext) throws {
        try ends.head(hidden, rows: rows, logits: logits, buffers: buffers, context: context)
    }
}
