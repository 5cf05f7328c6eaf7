import CEnergonKernels

/// Shape and options of scaled dot-product attention.
public struct AttentionConfiguration: Sendable {
    /// Query heads.
    public var heads: Int
    /// Key/value heads; grouped-query attention when fewer than `heads` (`heads % kvHeads == 0`:
    /// query head `h` reads KV head `h / (heads / kvHeads)`).
    public var kvHeads: Int
    /// Values per head.
    public var headDimension: Int
    /// Multiplies `q . k`; usually `1 / sqrt(headDimension)`.
    public var scale: Float
    /// `nil` for full causal attention; else a query at position `p` sees keys at positions
    /// `p - slidingWindow + 1 ... p`.
    public var slidingWindow: Int?
    /// Gemma 2 soft-capping of scores, `cap * tanh(score / cap)`, applied after `scale`; `nil` = off.
    public var logitSoftcap: Float?
    /// `true` (decoders): a query sees keys up to its own position. `false` (encoders such as
    /// BERT): every query of a sequence sees all of that sequence's keys, `0 ..< startPosition +
    /// tokens`; `slidingWindow` must then be `nil`.
    public var causal: Bool
    /// Element type of the cache rows the sequences' blocks hold: `.f32`, or `.f16` (IEEE half
    /// bits, as llama.cpp's default KV cache). Queries, outputs and accumulation are f32 either way.
    public var cacheType: DType

    /// Creates a configuration.
    public init(heads: Int, kvHeads: Int, headDimension: Int, scale: Float, slidingWindow: Int? = nil,
                logitSoftcap: Float? = nil, causal: Bool = true, cacheType: DType = .f32) {
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDimension = headDimension
        self.scale = scale
        self.slidingWindow = slidingWindow
        self.logitSoftcap = logitSoftcap
        self.causal = causal
        self.cacheType = cacheType
    }

    /// The keys `first ..< end` a query at `position` sees in a sequence whose keys end at `sequenceEnd`.
    func keyRange(position: Int, sequenceEnd: Int) -> (first: Int, end: Int) {
        guard causal else { return (0, sequenceEnd) }
        return (slidingWindow.map { max(0, position - $0 + 1) } ?? 0, position + 1)
    }
}

/// One sequence of a ragged batch.
///
/// Its queries are rows `queryOffset ..< queryOffset + tokens` of the packed query matrix, at
/// positions `startPosition ..< startPosition + tokens`. Its keys and values for positions
/// `0 ..< startPosition + tokens` are already in the cache blocks listed by `keyBlocks` and
/// `valueBlocks`: block `b` holds positions `b * blockSize ..< (b + 1) * blockSize`, each row
/// `kvHeads * headDimension` elements of `AttentionConfiguration.cacheType` (floats, or halves
/// for an F16 cache). A contiguous cache is one block of `blockSize = capacity`.
public struct AttentionSequence {
    /// First row of this sequence in the packed queries (and output).
    public var queryOffset: Int
    /// Query rows of this sequence.
    public var tokens: Int
    /// Position of the first query row.
    public var startPosition: Int
    /// The key block table: one pointer per key block, in position order, to the block's first
    /// row; its elements are `Float` or `UInt16` (half bits) as `AttentionConfiguration.cacheType` says.
    public var keyBlocks: UnsafeRawPointer
    /// The value block table, laid out as `keyBlocks`.
    public var valueBlocks: UnsafeRawPointer

    /// Creates a sequence entry over an f32 cache (`cacheType = .f32`).
    public init(queryOffset: Int, tokens: Int, startPosition: Int, keyBlocks: UnsafePointer<UnsafeMutablePointer<Float>>,
                valueBlocks: UnsafePointer<UnsafeMutablePointer<Float>>) {
        self.queryOffset = queryOffset
        self.tokens = tokens
        self.startPosition = startPosition
        self.keyBlocks = UnsafeRawPointer(keyBlocks)
        self.valueBlocks = UnsafeRawPointer(valueBlocks)
    }

    /// Creates a sequence entry from untyped block tables (arrays of block pointers) whose
    /// blocks hold `AttentionConfiguration.cacheType` elements.
    public init(queryOffset: Int, tokens: Int, startPosition: Int, keyBlockTable: UnsafeRawPointer,
                valueBlockTable: UnsafeRawPointer) {
        self.queryOffset = queryOffset
        self.tokens = tokens
        self.startPosition = startPosition
        self.keyBlocks = keyBlockTable
        self.valueBlocks = valueBlockTable
    }

    /// Creates a sequence entry over an F16 cache (`cacheType = .f16`): each block holds IEEE
    /// half bits.
    public init(queryOffset: Int, tokens: Int, startPosition: Int, keyBlocks: UnsafePointer<UnsafeMutablePointer<UInt16>>,
                valueBlocks: UnsafePointer<UnsafeMutablePointer<UInt16>>) {
        self.queryOffset = queryOffset
        self.tokens = tokens
        self.startPosition = startPosition
        self.keyBlocks = UnsafeRawPointer(keyBlocks)
        self.valueBlocks = UnsafeRawPointer(valueBlocks)
    }
}

/// Scaled dot-product attention (causal, optionally sliding-window and soft-capped; or
/// bidirectional for encoders) over a paged KV cache.
public enum Attention {
    /// Computes `softmax(scale * q k^T + mask) v` for every query row of every sequence (causal
    /// mask, optionally a sliding window; or no mask within a sequence when not causal).
    ///
    /// Work is split over the pool by (sequence, tile of consecutive tokens, KV head): each item
    /// handles the query heads of one KV group for a few tokens, so each key and value row loaded
    /// serves several query rows. Items are dealt round-robin, because in a prefill later rows
    /// see more keys and contiguous ranges would leave threads idle. A decode step with fewer
    /// items than threads instead splits each item's keys over the threads (split-K) and merges
    /// the partial softmax states exactly.
    ///
    /// The caller guarantees (invariants, not checked per key) that every sequence's block table
    /// covers positions `0 ..< startPosition + tokens` and that query rows of different
    /// sequences do not overlap.
    /// - Parameters:
    ///   - queries: `[totalTokens, heads * headDimension]`.
    ///   - sequences: the ragged batch.
    ///   - blockSize: positions per cache block.
    ///   - output: `[totalTokens, heads * headDimension]`; rows not covered by a sequence are untouched.
    ///   - configuration: heads, scale, window, softcap.
    ///   - context: ISA level and threads.
    public static func compute(queries: UnsafePointer<Float>, sequences: [AttentionSequence], blockSize: Int,
                               output: UnsafeMutablePointer<Float>, configuration: AttentionConfiguration,
                               context: ComputeContext) {
        let heads = configuration.heads, kvHeads = configuration.kvHeads
        let headDimension = configuration.headDimension
        // invariant: the model validated its configuration when it loaded.
        precondition(kvHeads > 0 && heads % kvHeads == 0 && headDimension > 0 && blockSize > 0,
                     "attention needs heads % kvHeads == 0 and positive sizes")
        precondition(configuration.causal || configuration.slidingWindow == nil,  // invariant: model code
                     "a sliding window needs causal attention")
        precondition(configuration.cacheType == .f32 || configuration.cacheType == .f16,  // invariant: model code
                     "attention reads f32 or f16 caches only")
        let halfCache = configuration.cacheType == .f16
        let groupHeads = heads / kvHeads
        let queryWidth = heads * headDimension
        let baseShape = energon_attention_shape(
            head_dimension: Int32(headDimension), group_heads: Int32(groupHeads),
            row_stride: Int64(kvHeads * headDimension), head_offset: 0, block_size: Int64(blockSize),
            scale: configuration.scale, softcap: configuration.logitSoftcap ?? 0)
        // A work item is (sequence, tile of consecutive tokens, KV head, slice of that head's
        // query heads): its rows share one KV head and nearly the same keys, so the kernel runs
        // them 2-3 at a time on each loaded key. Tiles aim at about 6 rows.
        let maximumRows = Int(ENERGON_ATTENTION_MAX_ROWS)
        let headsPerItem = min(groupHeads, maximumRows)
        let headSlices = (groupHeads + headsPerItem - 1) / headsPerItem
        let tileTokens = max(1, min(6 / max(1, headsPerItem), maximumRows / headsPerItem))
        let rowsPerItem = tileTokens * headsPerItem
        withUnsafeTemporaryAllocation(of: Int.self, capacity: sequences.count + 1) { firstItem in
            // Decode steps with fewer (token, KV head) pairs than threads split their keys instead.
            var pairs = 0
            for (index, sequence) in sequences.enumerated() {
                firstItem[index] = pairs
                pairs += sequence.tokens * kvHeads
            }
            firstItem[sequences.count] = pairs
            guard pairs > 0 else { return }
            if groupHeads <= maximumRows,
               let parts = splitParts(items: pairs, sequences: sequences, configuration: configuration,
                                      threads: context.pool.activeThreadCount) {
                computeSplit(queries: queries, sequences: sequences, firstItem: firstItem, items: pairs, parts: parts,
                             output: output, shape: baseShape, configuration: configuration, context: context)
                return
            }
            // firstItem[s]: index of sequence s's first item; the hot path never allocates.
            var items = 0
            for (index, sequence) in sequences.enumerated() {
                firstItem[index] = items
                items += (sequence.tokens + tileTokens - 1) / tileTokens * kvHeads * headSlices
            }
            firstItem[sequences.count] = items
            let scratchFloats = halfCache
                ? energon_attention_rows_scratch_floats_f16(Int32(rowsPerItem), Int32(headDimension))
                : energon_attention_rows_scratch_floats(Int32(rowsPerItem))
            let isa = context.isa.cValue
            let threads = min(context.pool.activeThreadCount, items)
            sequences.withUnsafeBufferPointer { sequences in
                let work = { (threadIndex: Int) in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: scratchFloats) { scratch in
                    withUnsafeTemporaryAllocation(of: UnsafePointer<Float>?.self, capacity: rowsPerItem) { rowQueries in
                    withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>?.self, capacity: rowsPerItem) { rowOutputs in
                    withUnsafeTemporaryAllocation(of: Int64.self, capacity: 2 * rowsPerItem) { ranges in
                        var shape = baseShape
                        var sequenceIndex = 0
                        var item = threadIndex
                        while item < items {
                            while firstItem[sequenceIndex + 1] <= item { sequenceIndex += 1 }
                            let sequence = sequences[sequenceIndex]
                            let local = item - firstItem[sequenceIndex]
                            let tile = local / (kvHeads * headSlices)
                            let group = local / headSlices % kvHeads, slice = local % headSlices
                            let firstHead = group * groupHeads + slice * headsPerItem
                            let sliceHeads = min(headsPerItem, groupHeads - slice * headsPerItem)
                            var rows = 0
                            for token in (tile * tileTokens)..<min(sequence.tokens, (tile + 1) * tileTokens) {
                                let keys = configuration.keyRange(position: sequence.startPosition + token,
                                                                  sequenceEnd: sequence.startPosition + sequence.tokens)
                                let rowStart = (sequence.queryOffset + token) * queryWidth
                                for head in firstHead..<(firstHead + sliceHeads) {
                                    rowQueries[rows] = queries + rowStart + head * headDimension
                                    rowOutputs[rows] = output + rowStart + head * headDimension
                                    ranges[rows] = Int64(keys.first)
                                    ranges[rowsPerItem + rows] = Int64(keys.end)
                                    rows += 1
                                }
                            }
                            shape.head_offset = Int64(group * headDimension)
                            let ends = ranges.baseAddress! + rowsPerItem  // invariant: capacity > 0
                            if halfCache {
                                energon_attention_rows_f16(
                                    Int32(rows), rowQueries.baseAddress, rowOutputs.baseAddress, ranges.baseAddress, ends,
                                    sequence.keyBlocks.assumingMemoryBound(to: UnsafePointer<UInt16>?.self),
                                    sequence.valueBlocks.assumingMemoryBound(to: UnsafePointer<UInt16>?.self),
                                    &shape, scratch.baseAddress, 1, isa)
                            } else {
                                energon_attention_rows_f32(
                                    Int32(rows), rowQueries.baseAddress, rowOutputs.baseAddress, ranges.baseAddress, ends,
                                    sequence.keyBlocks.assumingMemoryBound(to: UnsafePointer<Float>?.self),
                                    sequence.valueBlocks.assumingMemoryBound(to: UnsafePointer<Float>?.self),
                                    &shape, scratch.baseAddress, 1, isa)
                            }
                            item += threads
                        }
                    }
                    }
                    }
                    }
                }
                if threads == 1 {
                    work(0)  // one item (a decode step of one KV head): skip waking the pool
                } else {
                    context.pool.run { threadIndex, _ in
                        if threadIndex < threads { work(threadIndex) }
                    }
                }
            }
        }
    }

    /// Keys below which a part of a split item is not worth its share of a pool dispatch.
    static let minimumKeysPerPart = 256

    /// How many parts to cut each item's key range into, or `nil` to not split: splitting pays
    /// only when there are fewer items than threads (a decode step with few KV heads, where
    /// threads would otherwise idle) and every item has enough keys for each part.
    private static func splitParts(items: Int, sequences: [AttentionSequence], configuration: AttentionConfiguration,
                                   threads: Int) -> Int? {
        guard items < threads else { return nil }
        let parts = threads / items
        guard parts >= 2 else { return nil }
        for sequence in sequences where sequence.tokens > 0 {
            // The first token of a sequence sees the fewest keys.
            let keys = configuration.keyRange(position: sequence.startPosition,
                                              sequenceEnd: sequence.startPosition + sequence.tokens)
            if keys.end - keys.first < parts * minimumKeysPerPart { return nil }
        }
        return parts
    }

    /// Split-K attention: each (token, KV head) item's key range is cut into `parts` contiguous
    /// pieces computed on different threads (unnormalised, with their softmax maxima and sums),
    /// then merged exactly by `energon_attention_merge_f32`.
    private static func computeSplit(queries: UnsafePointer<Float>, sequences: [AttentionSequence],
                                     firstItem: UnsafeMutableBufferPointer<Int>, items: Int, parts: Int,
                                     output: UnsafeMutablePointer<Float>, shape baseShape: energon_attention_shape,
                                     configuration: AttentionConfiguration, context: ComputeContext) {
        let kvHeads = configuration.kvHeads, headDimension = configuration.headDimension
        let groupHeads = configuration.heads / kvHeads
        let queryWidth = configuration.heads * headDimension
        let units = items * parts
        let partialFloats = units * groupHeads * headDimension, stateFloats = units * groupHeads
        let buffer = context.scratch(.attention, bytes: (partialFloats + 2 * stateFloats) * MemoryLayout<Float>.size)
            .bindMemory(to: Float.self, capacity: partialFloats + 2 * stateFloats)
        let partials = buffer, maxima = buffer + partialFloats, sums = maxima + stateFloats
        let halfCache = configuration.cacheType == .f16
        let scratchFloats = halfCache
            ? energon_attention_rows_scratch_floats_f16(Int32(groupHeads), Int32(headDimension))
            : energon_attention_scratch_floats(Int32(groupHeads))
        let isa = context.isa.cValue
        /// (sequence, row offset of the item's query heads, first key, end key) of an item.
        func locate(_ item: Int) -> (sequence: AttentionSequence, groupOffset: Int, group: Int, first: Int, end: Int) {
            var index = 0
            while firstItem[index + 1] <= item { index += 1 }
            let sequence = sequences[index]
            let local = item - firstItem[index]
            let token = local / kvHeads, group = local % kvHeads
            let keys = configuration.keyRange(position: sequence.startPosition + token,
                                              sequenceEnd: sequence.startPosition + sequence.tokens)
            let groupOffset = (sequence.queryOffset + token) * queryWidth + group * groupHeads * headDimension
            return (sequence, groupOffset, group, keys.first, keys.end)
        }
        context.pool.run { threadIndex, _ in
            guard threadIndex < units else { return }
            let item = threadIndex / parts, part = threadIndex % parts
            let location = locate(item)
            // Parts start on chunk boundaries so each is a whole number of kernel chunks.
            let chunk = Int(ENERGON_ATTENTION_CHUNK)
            let length = location.end - location.first
            let perPart = (length + parts - 1) / parts
            let step = (perPart + chunk - 1) / chunk * chunk
            let lower = min(location.end, location.first + part * step)
            let upper = min(location.end, lower + step)
            var shape = baseShape
            shape.head_offset = Int64(location.group * headDimension)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: scratchFloats) { scratch in
                let output = partials + threadIndex * groupHeads * headDimension
                let partMaxima = maxima + threadIndex * groupHeads, partSums = sums + threadIndex * groupHeads
                let sequence = location.sequence
                if halfCache {
                    energon_attention_partial_f16(
                        queries + location.groupOffset,
                        sequence.keyBlocks.assumingMemoryBound(to: UnsafePointer<UInt16>?.self),
                        sequence.valueBlocks.assumingMemoryBound(to: UnsafePointer<UInt16>?.self),
                        Int64(lower), Int64(upper), &shape, output, partMaxima, partSums, scratch.baseAddress, isa)
                } else {
                    energon_attention_partial_f32(
                        queries + location.groupOffset,
                        sequence.keyBlocks.assumingMemoryBound(to: UnsafePointer<Float>?.self),
                        sequence.valueBlocks.assumingMemoryBound(to: UnsafePointer<Float>?.self),
                        Int64(lower), Int64(upper), &shape, output, partMaxima, partSums, scratch.baseAddress, isa)
                }
            }
        }
        for item in 0..<items {
            energon_attention_merge_f32(partials + item * parts * groupHeads * headDimension, maxima + item * parts * groupHeads,
                                        sums + item * parts * groupHeads, Int32(parts), Int32(groupHeads),
                                        Int32(headDimension), output + locate(item).groupOffset)
        }
    }
}
