/// The controller's bookkeeping of KV-cache blocks (the storage lives in each worker's
/// `KVCache`; every worker's cache has the same geometry, so one block id means the same slot
/// on every rank): free blocks, per-sequence block tables, reference counts, and the **prefix
/// cache**.
///
/// Prefix caching: once a block is full of computed keys and values, the engine registers it
/// under its content — its tokens and the block before it (which stands for everything before
/// it, since that block was registered the same way). A new sequence whose prompt starts with
/// the same tokens takes those blocks (reference count + 1) instead of recomputing them. A full
/// block is never written again, so sharing needs no copy-on-write. When its last owner frees
/// it, a registered block is kept as *evictable*: it still counts as free, and allocation
/// reuses the least recently freed ones only when no plain free block is left.
///
/// Not thread-safe: one owner (the engine's scheduling thread, or a generator) calls it.
public final class BlockManager: @unchecked Sendable {
    /// Positions per block.
    public let blockSize: Int
    /// Total blocks.
    public let blockCount: Int
    /// Whether full blocks are registered and shared between sequences with the same prefix.
    public var prefixCachingEnabled: Bool

    /// What identifies the content of a full block: its tokens and the block before it.
    /// `parent` is the previous block's id and `parentGeneration` its reuse count, so a key
    /// never matches a block whose parent was evicted and reused for other content.
    private struct PrefixKey: Hashable {
        var parent: Int32
        var parentGeneration: UInt32
        var tokens: [Int32]
    }

    private var freeList: [Int32]
    private var references: [Int32]
    private var generations: [UInt32]
    private var keys: [PrefixKey?]
    private var registry: [PrefixKey: Int32] = [:]
    // Evictable blocks (registered, no owner) in a doubly linked LRU list, oldest first.
    private var previous: [Int32]
    private var next: [Int32]
    private var oldest: Int32 = -1
    private var newest: Int32 = -1
    private var evictableCount = 0

    /// Creates a manager of `blockCount` blocks of `blockSize` positions.
    public init(blockSize: Int, blockCount: Int, prefixCaching: Bool = true) {
        self.blockSize = max(1, blockSize)
        self.blockCount = max(0, blockCount)
        prefixCachingEnabled = prefixCaching
        freeList = (0..<Int32(self.blockCount)).reversed()
        references = Array(repeating: 0, count: self.blockCount)
        generations = Array(repeating: 0, count: self.blockCount)
        keys = Array(repeating: nil, count: self.blockCount)
        previous = Array(repeating: -1, count: self.blockCount)
        next = Array(repeating: -1, count: self.blockCount)
    }

    /// Blocks no sequence owns (plain free blocks plus evictable cached ones).
    public var freeBlockCount: Int { freeList.count + evictableCount }

    /// Blocks no sequence owns that still hold a registered prefix.
    public var cachedBlockCount: Int { evictableCount }

    /// Blocks needed for `positions` positions.
    public func blocksNeeded(positions: Int) -> Int { (positions + blockSize - 1) / blockSize }

    /// Owners of `block` (for tests and metrics).
    public func referenceCount(_ block: Int32) -> Int { Int(references[Int(block)]) }

    /// Grows `table` so it covers `positions` positions, taking plain free blocks first, then
    /// the least recently used cached ones. Takes nothing when it throws.
    public func ensureCapacity(_ table: inout [Int32], positions: Int) throws {
        let needed = blocksNeeded(positions: positions) - table.count
        guard needed > 0 else { return }
        guard needed <= freeBlockCount else { throw KVCacheError.outOfBlocks(needed: needed, free: freeBlockCount) }
        for _ in 0..<needed { table.append(takeBlock()) }
    }

    /// Releases a sequence's blocks: each loses one owner; unowned registered blocks stay cached.
    public func free(_ table: [Int32]) {
        for block in table.reversed() {
            let index = Int(block)
            precondition(references[index] > 0, "block \(block) freed more often than taken")  // invariant: engine bookkeeping
            references[index] -= 1
            guard references[index] == 0 else { continue }
            if keys[index] != nil {
                appendEvictable(block)
            } else {
                freeList.append(block)
            }
        }
    }

    /// The longest run of cached blocks holding a prefix of `tokens`, owned by the caller from
    /// now on (free them with the rest of the table). At most `limit` positions are matched —
    /// pass `tokens.count - 1` so that at least one token is left to compute logits from.
    /// - Returns: the blocks (a block-table prefix) and the positions they hold.
    public func takeCachedPrefix(of tokens: [Int32], limit: Int) -> (table: [Int32], positions: Int) {
        let fullBlocks = max(0, min(limit, tokens.count)) / blockSize
        guard prefixCachingEnabled, fullBlocks > 0 else { return ([], 0) }
        var table: [Int32] = []
        var parent: Int32 = -1
        var parentGeneration: UInt32 = 0
        for index in 0..<fullBlocks {
            let key = PrefixKey(parent: parent, parentGeneration: parentGeneration,
                                tokens: Array(tokens[(index * blockSize)..<((index + 1) * blockSize)]))
            guard let block = registry[key] else { break }
            if references[Int(block)] == 0 { removeEvictable(block) }
            references[Int(block)] += 1
            table.append(block)
            parent = block
            parentGeneration = generations[Int(block)]
        }
        return (table, table.count * blockSize)
    }

    /// Registers the blocks of `table` that are full of computed positions (`0 ..< computed`
    /// of `tokens`) and not yet registered, starting at block `from`; returns the index of the
    /// first block still not registered (pass it as `from` next time). A block whose content is
    /// already cached under another id stays private to its sequence.
    public func registerFullBlocks(table: [Int32], tokens: [Int32], computed: Int, from: Int) -> Int {
        guard prefixCachingEnabled else { return from }
        let full = min(computed, tokens.count) / blockSize
        var index = from
        while index < min(full, table.count) {
            let block = table[index]
            if keys[Int(block)] == nil {
                let parent: Int32 = index > 0 ? table[index - 1] : -1
                // A parent that is not registered (a duplicate kept private) cannot anchor children.
                if parent >= 0 && keys[Int(parent)] == nil { return index }
                let key = PrefixKey(parent: parent, parentGeneration: parent >= 0 ? generations[Int(parent)] : 0,
                                    tokens: Array(tokens[(index * blockSize)..<((index + 1) * blockSize)]))
                if registry[key] == nil {
                    registry[key] = block
                    keys[Int(block)] = key
                } else {
                    return index  // the same content lives in another block: keep this one private
                }
            }
            index += 1
        }
        return index
    }

    // MARK: - Implementation

    private func takeBlock() -> Int32 {
        let block: Int32
        if let free = freeList.popLast() {
            block = free
        } else {
            block = oldest  // invariant: the caller checked freeBlockCount
            removeEvictable(block)
            forget(block)
        }
        references[Int(block)] = 1
        return block
    }

    /// Unregisters an evicted block; its generation changes so children keyed on it go stale.
    private func forget(_ block: Int32) {
        if let key = keys[Int(block)] {
            registry[key] = nil
            keys[Int(block)] = nil
        }
        generations[Int(block)] &+= 1
    }

    private func appendEvictable(_ block: Int32) {
        previous[Int(block)] = newest
        next[Int(block)] = -1
        if newest >= 0 { next[Int(newest)] = block } else { oldest = block }
        newest = block
        evictableCount += 1
    }

    private func removeEvictable(_ block: Int32) {
        let before = previous[Int(block)], after = next[Int(block)]
        if before >= 0 { next[Int(before)] = after } else { oldest = after }
        if after >= 0 { previous[Int(after)] = before } else { newest = before }
        previous[Int(block)] = -1
        next[Int(block)] = -1
        evictableCount -= 1
    }
}
