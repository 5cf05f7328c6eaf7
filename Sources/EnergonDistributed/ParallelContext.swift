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

    /// The part of `0..<total` that tensor rank `rank` of `size` owns (contiguous, even split).
    /// - Precondition: `total` is a multiple of `size` (checked when the grid is validated).
    public static func shard(_ total: Int, rank: Int, size: Int) -> Range<Int> {
        let per = total / size
        return (rank * per)..<((rank + 1) * per)
    }
}
