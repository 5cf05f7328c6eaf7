/// Applies BPE merges by rank to a sequence of symbols: repeatedly merge the adjacent pair with
/// the lowest merge rank (ties: leftmost), as llama.cpp's `llm_tokenizer_bpe_session` and Hugging
/// Face's `Word::merge_all` do.
///
/// Symbols are integers. Ids below the vocabulary size are vocabulary tokens; merge results that
/// are not in the vocabulary (possible in GGUF files, where merges are strings) get ids above it,
/// so ranking never compares strings.
struct BytePairMerger: Sendable {
    /// (left << 32 | right) -> (rank << 32 | merged symbol).
    private var merges: [UInt64: UInt64] = [:]

    init() {}

    /// Number of merges.
    var count: Int { merges.count }

    /// Records a merge; an earlier merge of the same pair keeps its (lower) rank, as llama.cpp's
    /// `bpe_ranks.emplace` keeps the first.
    mutating func add(left: Int32, right: Int32, rank: Int32, merged: Int32) {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        if merges[key] == nil {
            merges[key] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: merged))
        }
    }

    @inline(__always)
    private func lookup(_ left: Int32, _ right: Int32) -> (rank: Int32, merged: Int32)? {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        guard let value = merges[key] else { return nil }
        return (Int32(truncatingIfNeeded: value >> 32), Int32(truncatingIfNeeded: value))
    }

    /// A pending merge in the priority queue.
    private struct Candidate {
        /// rank << 32 | left position: the heap order (lowest rank, then leftmost).
        var key: UInt64
        var right: Int32
        var leftSymbol: Int32
        var rightSymbol: Int32
        var merged: Int32
    }

    /// Merges `symbols` in place until no adjacent pair has a merge.
    func merge(_ symbols: inout [Int32]) {
        let count = symbols.count
        if count < 2 { return }
        if count == 2 {
            if let pair = lookup(symbols[0], symbols[1]) { symbols = [pair.merged] }
            return
        }
        var current = symbols
        var next = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count { buffer[index] = index + 1 < count ? Int32(index + 1) : -1 }
            initialized = count
        }
        var previous = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count { buffer[index] = Int32(index - 1) }
            initialized = count
        }
        var alive = [Bool](repeating: true, count: count)
        var heap: [Candidate] = []
        heap.reserveCapacity(count)

        func push(_ left: Int, _ right: Int, into heap: inout [Candidate]) {
            guard let pair = lookup(current[left], current[right]) else { return }
            let candidate = Candidate(
                key: UInt64(UInt32(bitPattern: pair.rank)) << 32 | UInt64(left),
                right: Int32(right), leftSymbol: current[left], rightSymbol: current[right], merged: pair.merged)
            heap.append(candidate)
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                if heap[parent].key <= heap[child].key { break }
                heap.swapAt(parent, child)
                child = parent
            }
        }
        func pop(_ heap: inout [Candidate]) -> Candidate {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var parent = 0
                let size = heap.count
                while true {
                    let left = 2 * parent + 1
                    if left >= size { break }
                    var smallest = left
                    if left + 1 < size && heap[left + 1].key < heap[left].key { smallest = left + 1 }
                    if heap[parent].key <= heap[smallest].key { break }
                    heap.swapAt(parent, smallest)
                    parent = smallest
                }
            }
            return top
        }

        for index in 1..<count { push(index - 1, index, into: &heap) }
        while !heap.isEmpty {
            let candidate = pop(&heap)
            let left = Int(candidate.key & 0xFFFF_FFFF)
            let right = Int(candidate.right)
            // Stale if either side was merged away or has grown since the pair was queued.
            guard alive[left], alive[right], current[left] == candidate.leftSymbol,
                  current[right] == candidate.rightSymbol, next[left] == Int32(right) else { continue }
            current[left] = candidate.merged
            alive[right] = false
            let after = Int(next[right])
            next[left] = Int32(after)
            if after >= 0 { previous[after] = Int32(left) }
            let before = Int(previous[left])
            if before >= 0 { push(before, left, into: &heap) }
            if after >= 0 { push(left, after, into: &heap) }
        }
        var output: [Int32] = []
        output.reserveCapacity(count)
        var index = 0
        while index >= 0 {
            output.append(current[index])
            index = Int(next[index])
        }
        symbols = output
    }
}
