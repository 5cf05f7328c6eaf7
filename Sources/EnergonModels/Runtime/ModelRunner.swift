import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// Runs forward passes of a whole model, however it is split: the interface the generator
/// and the engine (the controller) drive. The controller owns the KV-cache block tables; every
/// worker's cache has the same geometry, so one block id means the same slot on every rank.
public protocol ModelRunner: AnyObject, Sendable {
    /// The model's hyperparameters.
    var configuration: DecoderConfiguration { get }
    /// The controller's view of the KV-cache blocks.
    var blocks: BlockManager { get }
    /// Runs `batch`; returns logits `[batch.logitRows.count, vocabularySize]`, valid until the next call.
    func forward(_ batch: ForwardBatch) throws -> UnsafeMutablePointer<Float>?
}

/// A runner that keeps several batches in flight (a non-blocking pipeline): `submit` returns
/// at once, each stage works on the next batch as soon as it hands the previous one on, and
/// `wait` collects results in submission order. Batches in flight must hold disjoint sequences.
public protocol PipelinedModelRunner: ModelRunner {
    /// Batches that may be in flight at once; slots are `0 ..< maxBatchesInFlight`.
    var maxBatchesInFlight: Int { get }
    /// Starts `batch` in `slot` (a slot whose previous batch was collected) without waiting.
    func submit(_ batch: ForwardBatch, slot: Int) throws
    /// Waits for the batch in `slot`; returns its logits (`[logitRows, vocabularySize]`), valid
    /// until `slot` is submitted again.
    func wait(slot: Int) throws -> UnsafeMutablePointer<Float>?
}

/// One worker holding the whole model: the serial case.
public final class SerialRunner: ModelRunner, @unchecked Sendable {
    public let model: any DecoderModel
    public let blocks: BlockManager
    public let context: ComputeContext
    let cache: KVCache
    let buffers = ActivationBuffers()

    /// Creates a runner whose cache holds `blockCount` blocks of `blockSize` positions of
    /// `kvCacheType` rows (`.f16`, llama.cpp's default, or `.f32`).
    public init(model: any DecoderModel, context: ComputeContext, blockSize: Int, blockCount: Int,
                kvCacheType: DType = .f16) {
        self.model = model
        self.context = context
        blocks = BlockManager(blockSize: blockSize, blockCount: blockCount)
        cache = KVCache(layers: model.layerRange.count, blockSize: blockSize, kvDimension: model.kvDimensionPerRank,
                        blockCount: blockCount, elementType: kvCacheType)
    }

    public var configuration: DecoderConfiguration { model.configuration }

    public func forward(_ batch: ForwardBatch) throws -> UnsafeMutablePointer<Float>? {
        try DecoderRuntime.forward(model, batch: batch, cache: cache, buffers: buffers, context: context)
    }
}
