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
    var blocks: BlockAllocator { get }
    /// Runs `batch`; returns logits `[batch.logitRows.count, vocabularySize]`, valid until the next call.
    func forward(_ batch: ForwardBatch) throws -> UnsafeMutablePointer<Float>?
}

/// Hands out KV-cache block ids (the controller's bookkeeping; the storage lives in each
/// worker's `KVCache`).
public final class BlockAllocator: @unchecked Sendable {
    /// Positions per block.
    public let blockSize: Int
    /// Total blocks.
    public let blockCount: Int
    private var freeList: [Int32]

    public init(blockSize: Int, blockCount: Int) {
        self.blockSize = blockSize
        self.blockCount = blockCount
        freeList = (0..<Int32(blockCount)).reversed()
    }

    /// Blocks not owned by any sequence.
    public var freeBlockCount: Int { freeList.count }

    /// Blocks needed for `positions` positions.
    public func blocksNeeded(positions: Int) -> Int { (positions + blockSize - 1) / blockSize }

    /// Grows `table` so it covers `positions` positions.
    public func ensureCapacity(_ table: inout [Int32], positions: Int) throws {
        let needed = blocksNeeded(positions: positions) - table.count
        guard needed > 0 else { return }
        guard needed <= freeList.count else { throw KVCacheError.outOfBlocks(needed: needed, free: freeList.count) }
        table.append(contentsOf: freeList.suffix(needed).reversed())
        freeList.removeLast(needed)
    }

    /// Returns a sequence's blocks.
    public func free(_ table: [Int32]) { freeList.append(contentsOf: table.reversed()) }
}

/// One worker holding the whole model: the serial case.
public final class SerialRunner: ModelRunner, @unchecked Sendable {
    public let model: any DecoderModel
    public let blocks: BlockAllocator
    public let context: ComputeContext
    let cache: KVCache
    let buffers = ActivationBuffers()

    /// Creates a runner whose cache holds `blockCount` blocks of `blockSize` positions of
    /// `kvCacheType` rows (`.f16`, llama.cpp's default, or `.f32`).
    public init(model: any DecoderModel, context: ComputeContext, blockSize: Int, blockCount: Int,
                kvCacheType: DType = .f16) {
        self.model = model
        self.context = context
        blocks = BlockAllocator(blockSize: blockSize, blockCount: blockCount)
        cache = KVCache(layers: model.layerRange.count, blockSize: blockSize, kvDimension: model.kvDimensionPerRank,
                        blockCount: blockCount, elementType: kvCacheType)
    }

    public var configuration: DecoderConfiguration { model.configuration }

    public func forward(_ batch: ForwardBatch) throws -> UnsafeMutablePointer<Float>? {
        try DecoderRuntime.forward(model, batch: batch, cache: cache, buffers: buffers, context: context)
    }
}
