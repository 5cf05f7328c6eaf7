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
/// Block `b` of layer `l` holds `[blockSize, kvDimension]` elements of `elementType` for keys and
/// the same for values: `.f16` (IEEE half bits, llama.cpp's default: half the memory and half
/// the attention bandwidth at depth) or `.f32` (exact).
public final class KVCache: @unchecked Sendable {
    /// Layers this worker holds.
    public let layers: Int
    /// Positions per block.
    public let blockSize: Int
    /// Elements per position per layer (kvHeadsPerRank × headDimension).
    public let kvDimension: Int
    /// Total blocks.
    public let blockCount: Int
    /// Element type of the stored rows: `.f32` or `.f16`.
    public let elementType: DType

    private let keyStorage: UnsafeMutableRawPointer
    private let valueStorage: UnsafeMutableRawPointer
    private let elementBytes: Int
    private var freeBlocks: [Int32]

    /// Creates a cache of `blockCount` blocks of `elementType` rows (`.f32` or `.f16`).
    public init(layers: Int, blockSize: Int, kvDimension: Int, blockCount: Int, elementType: DType = .f16) {
        // invariant: callers pass a cache type the CLI/loader already validated.
        precondition(elementType == .f32 || elementType == .f16, "a KV cache holds f32 or f16 rows")
        self.layers = layers
        self.blockSize = blockSize
        self.kvDimension = kvDimension
        self.blockCount = blockCount
        self.elementType = elementType
        elementBytes = elementType == .f16 ? 2 : 4
        let bytes = max(4, layers * blockCount * blockSize * kvDimension * elementBytes)
        keyStorage = .allocate(byteCount: bytes, alignment: 64)
        valueStorage = .allocate(byteCount: bytes, alignment: 64)
        // Pages are touched lazily by the OS; zero-filling here would commit all memory up front.
        freeBlocks = (0..<Int32(blockCount)).reversed()
    }

    /// Creates a cache whose blocks fit in `bytes` bytes.
    public convenience init(layers: Int, blockSize: Int, kvDimension: Int, memoryBytes: Int, elementType: DType = .f16) {
        let perBlock = max(1, 2 * layers * blockSize * kvDimension * (elementType == .f16 ? 2 : 4))
        self.init(layers: layers, blockSize: blockSize, kvDimension: kvDimension, blockCount: max(1, memoryBytes / perBlock),
                  elementType: elementType)
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

    /// First key row of block `block` in layer `layer` (elements of `elementType`).
    public func keyBlock(layer: Int, block: Int32) -> UnsafeMutableRawPointer {
        keyStorage + ((layer * blockCount + Int(block)) * blockSize * kvDimension * elementBytes)
    }

    /// First value row of block `block` in layer `layer` (elements of `elementType`).
    public func valueBlock(layer: Int, block: Int32) -> UnsafeMutableRawPointer {
        valueStorage + ((layer * blockCount + Int(block)) * blockSize * kvDimension * elementBytes)
    }

    /// The key row of `position` for a sequence with block table `table`.
    @inline(__always)
    public func keyRow(layer: Int, table: [Int32], position: Int) -> UnsafeMutableRawPointer {
        keyBlock(layer: layer, block: table[position / blockSize]) + (position % blockSize) * kvDimension * elementBytes
    }

    /// The value row of `position` for a sequence with block table `table`.
    @inline(__always)
    public func valueRow(layer: Int, table: [Int32], position: Int) -> UnsafeMutableRawPointer {
        valueBlock(layer: layer, block: table[position / blockSize]) + (position % blockSize) * kvDimension * elementBytes
    }

    /// Stores `kvDimension` floats of `keys` and of `values` as the rows of `position`, rounding
    /// to half (nearest even, F16C on x86) in an F16 cache.
    @inline(__always)
    public func store(keys: UnsafePointer<Float>, values: UnsafePointer<Float>, layer: Int, table: [Int32], position: Int,
                      isa: ISA = .best) {
        let keyDestination = keyRow(layer: layer, table: table, position: position)
        let valueDestination = valueRow(layer: layer, table: table, position: position)
        if elementType == .f16 {
            Quantization.halfFromFloats(keys, destination: keyDestination, count: kvDimension, isa: isa)
            Quantization.halfFromFloats(values, destination: valueDestination, count: kvDimension, isa: isa)
        } else {
            keyDestination.copyMemory(from: keys, byteCount: kvDimension * 4)
            valueDestination.copyMemory(from: values, byteCount: kvDimension * 4)
        }
    }
}
