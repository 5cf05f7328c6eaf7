/// Where a worker sits in the tensor-parallel × pipeline-parallel grid, and the groups it
/// communicates through. Passed explicitly to every layer and worker that needs it; there is no
/// global "current rank".
public struct ParallelContext: Sendable {
    /// The ranks this worker splits each layer with (size = tp).
    public let tensorGroup: any ProcessGroup
    /// This worker's pipeline stage, 0-based.
    public let pipelineStage: Int
    /// Number of pipeline stages (pp).
    public let pipelineStages: Int

    /// Tensor-parallel rank.
    public var tensorRank: Int { tensorGroup.rank }
    /// Tensor-parallel size.
    public var tensorSize: Int { tensorGroup.size }
    /// Whether this worker embeds tokens (first stage).
    public var isFirstStage: Bool { pipelineStage == 0 }
    /// Whether this worker computes the final norm and logits (last stage).
    public var isLastStage: Bool { pipelineStage == pipelineStages - 1 }

    /// Creates a context.
    public init(tensorGroup: any ProcessGroup, pipelineStage: Int = 0, pipelineStages: Int = 1) {
        self.tensorGroup = tensorGroup
        self.pipelineStage = pipelineStage
        self.pipelineStages = pipelineStages
    }

    /// One rank, one stage: a serial run.
    public static var serial: ParallelContext { ParallelContext(tensorGroup: SingleRankGroup()) }

    /// The part of `0..<total` that tensor rank `rank` of `size` owns: contiguous and as even as
    /// possible (`TensorSplit.range`).
    public static func shard(_ total: Int, rank: Int, size: Int) -> Range<Int> {
        TensorSplit.range(total, rank: rank, size: size)
    }
}

/// The one place that decides which part of a layer each tensor-parallel rank owns. Every rank
/// computes the same answer from the same inputs, so no plan is exchanged.
///
/// Splits are contiguous and as even as possible, in whole units: `total` is cut into
/// `total / granularity` units (a weight format's block for the input features of a
/// row-parallel layer, 1 elsewhere) and the first `units % parts` parts get one unit more, so
/// 1536 MLP features in blocks of 32 over 4 ranks give 384 each, and 9 heads over 2 give 5 and 4.
public enum TensorSplit {
    /// The parts of `0..<total` for `parts` ranks, in whole `granularity` units (a remainder
    /// smaller than a unit goes to the last part). A part is empty when there are fewer units
    /// than parts; `TensorSplit.isFeasible` says when that happens.
    public static func ranges(_ total: Int, parts: Int, granularity: Int = 1) -> [Range<Int>] {
        precondition(total >= 0 && parts >= 1 && granularity >= 1)  // invariant: callers pass validated sizes
        let units = total / granularity
        let base = units / parts, extra = units % parts
        var result: [Range<Int>] = []
        result.reserveCapacity(parts)
        var start = 0
        for part in 0..<parts {
            var end = start + (base + (part < extra ? 1 : 0)) * granularity
            if part == parts - 1 { end = total }
            result.append(start..<end)
            start = end
        }
        return result
    }

    /// Rank `rank`'s part of `0..<total` (see `ranges`).
    public static func range(_ total: Int, rank: Int, size: Int, granularity: Int = 1) -> Range<Int> {
        ranges(total, parts: size, granularity: granularity)[rank]
    }

    /// Whether every one of `parts` parts of `total` in `granularity` units is non-empty.
    public static func isFeasible(_ total: Int, parts: Int, granularity: Int = 1) -> Bool {
        parts >= 1 && granularity >= 1 && total / granularity >= parts
    }

    /// The attention heads of one tensor-parallel rank.
    public struct Heads: Sendable, Equatable {
        /// The query heads this rank computes (global indices, contiguous).
        public let query: Range<Int>
        /// The KV heads this rank holds (global indices): those its query heads read. With more
        /// ranks than KV heads, a KV head is held by every rank sharing its group (replicated).
        public let keyValue: Range<Int>

        /// A rank's heads.
        public init(query: Range<Int>, keyValue: Range<Int>) {
            self.query = query
            self.keyValue = keyValue
        }
    }

    /// Splits grouped-query attention by whole groups (a KV head travels with its query heads):
    /// - `size ≤ kvHeads`: the KV heads are split as evenly as possible and each rank takes the
    ///   query heads of its KV heads (9 heads / 3 KV heads over 2 ranks: KV {0, 1} with query
    ///   0..<6, and KV {2} with query 6..<9);
    /// - `size > kvHeads`: the ranks are split as evenly as possible over the KV heads, each
    ///   rank holds its group's KV head (replicated), and the group's query heads are split as
    ///   evenly as possible among the ranks sharing it (over 4 ranks: query 0..<2, 2..<3, 3..<6,
    ///   6..<9).
    /// Multi-head attention is the case `kvHeads == heads`.
    /// - Precondition: `heads` is a multiple of `kvHeads` and `isFeasible(heads:kvHeads:size:)`.
    public static func heads(_ heads: Int, kvHeads: Int, rank: Int, size: Int) -> Heads {
        precondition(kvHeads >= 1 && heads % kvHeads == 0 && (0..<size).contains(rank))  // invariant: checked by the grid
        let group = heads / kvHeads
        if size <= kvHeads {
            let kv = range(kvHeads, rank: rank, size: size)
            return Heads(query: (kv.lowerBound * group)..<(kv.upperBound * group), keyValue: kv)
        }
        let rankGroups = ranges(size, parts: kvHeads)
        let kvHead = rankGroups.firstIndex { $0.contains(rank) }!  // invariant: the parts cover 0..<size
        let sharers = rankGroups[kvHead]
        let within = range(group, rank: rank - sharers.lowerBound, size: sharers.count)
        let first = kvHead * group
        return Heads(query: (first + within.lowerBound)..<(first + within.upperBound), keyValue: kvHead..<(kvHead + 1))
    }

    /// Whether `heads(_:kvHeads:rank:size:)` gives every one of `size` ranks at least one query head.
    public static func isFeasible(heads: Int, kvHeads: Int, size: Int) -> Bool {
        guard size >= 1, kvHeads >= 1, heads % kvHeads == 0 else { return false }
        if size <= kvHeads { return true }
        let mostSharers = (size + kvHeads - 1) / kvHeads
        return heads / kvHeads >= mostSharers
    }
}
