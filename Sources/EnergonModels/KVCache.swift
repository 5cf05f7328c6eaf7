import EnergonCore

/// Errors of the KV cache.
public enum KVCacheError: Error, CustomStringConvertible {
    case outOfBlocks(needed: Int, free: Int)
    case invalidBlock(Int32)

    public var description: String {
        switch self {
        case let .outOfBlocks(needed, free): "KV cache is full: needed \(needed) blocks, \(free) free"
        case let .invalidBlock(id): "invalid KV cache block id \(id)"
        }
    }
}

/// A paged key/value cache: every layer's keys and values live in fixed-size blocks of
/// `blockSize` positions; a sequence owns a list of block ids (its block table), so sequences
/// grow without copying and freed blocks are reused by any sequence.
///
/// Block `b` of layer `l` holds `[blockSize, kvDimension]` floats for keys and the same for values.
public final class KVCache: @unchecked Sendable {
    /// Layers this worker holds.
    public let layers: Int
    /// Positions per block.
    public let blockSize: Int
    /// Floats per position per layer (kvHeadsPerRank × headDimension).
    public let kvDimension: Int
    /// Total blocks.
    public let blockCount: Int

    private let keyStorage: UnsafeMutablePointer<Float>
    private let valueStorage: UnsafeMutablePointer<Float>
    private var freeBlocks: [Int32]

    /// Creates a cache of `blockCount` blocks.
    public init(layers: Int, blockSize: Int, kvDimension: Int, blockCount: Int) {
        self.layers = layers
        self.blockSize = blockSize
        self.kvDimension = kvDimension
        self.blockCount = blockCount
        let floats = max(1, layers * blockCount * blockSize * kvDimension)
        keyStorage = .allocate(capacity: floats)
        valueStorage = .allocate(capacity: floats)
        // Pages are touched lazily by the OS; zero-filling here would commit all memory up front.
        freeBlocks = (0..<Int32(blockCount)).reversed()
    }

    /// Creates a cache whose blocks fit in `bytes` bytes.
    public convenience init(layers: Int, blockSize: Int, kvDimension: Int, memoryBytes: Int) {
        let perBlock = max(1, 2 * layers * blockSize * kvDimension * MemoryLayout<Float>.size)
        self.init(layers: layers, blockSize: blockSize, kvDimension: kvDimension, blockCount: max(1, memoryBytes / perBlock))
    }

    deinit {
        keyStorage.deallocate()
        valueStorage.deallocate()
    }

    /// Blocks not owned by any sequence.
    public var freeBlockCount: Int { freeBlocks.count }

    /// Blocks needed to hold `positions` positions.
    public func blocksNeeded(positions: Int) -> Int { (positions + blockSize - 1) / blockSize }

    /// Takes `count` free blocks.
    public func allocate(_ count: Int) throws -> [Int32] {
        guard count <= freeBlocks.count else { throw KVCacheError.outOfBlocks(needed: count, free: freeBlocks.count) }
        let taken = Array(freeBlocks.suffix(count).reversed())
        freeBlocks.removeLast(count)
        return taken
    }

    /// Grows `table` so it covers `positions` positions.
    public func ensureCapacity(_ table: inout [Int32], positions: Int) throws {
        let needed = blocksNeeded(positions: positions) - table.count
        if needed > 0 { table.append(contentsOf: try allocate(needed)) }
    }

    /// Returns blocks to the free list.
    public func free(_ blocks: [Int32]) {
        freeBlocks.append(contentsOf: blocks.reversed())
    }

    /// First key row of block `block` in layer `layer`.
    public func keyBlock(layer: Int, block: Int32) -> UnsafeMutablePointer<Float> {
        keyStorage + ((layer * blockCount + Int(block)) * blockSize * kvDimension)
    }

    /// First value row of block `block` in layer `layer`.
    public func valueBlock(layer: Int, block: Int32) -> UnsafeMutablePointer<Float> {
        valueStorage + ((layer * blockCount + Int(block)) * blockSize * kvDimension)
    }

    /// The key row of `position` for a sequence with block table `table`.
    @inline(__always)
    public func keyRow(layer: Int, table: [Int32], position: Int) -> UnsafeMutablePointer<Float> {
        keyBlock(layer: layer, block: table[position / blockSize]) + (position % blockSize) * kvDimension
    }

    /// The value row of `position` for a sequence with block table `table`.
    @inline(__always)
    public func valueRow(layer: Int, table: [Int32], position: Int) -> UnsafeMutablePointer<Float> {
        valueBlock(layer: layer, block: table[position / blockSize]) + (position % blockSize) * kvDimension
    }
}
