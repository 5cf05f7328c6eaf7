import EnergonCheckpoint
import EnergonDistributed

/// A tensor-parallel × pipeline-parallel layout of a model, validated against its shape.
public struct ParallelGrid: Sendable, Equatable {
    /// Ranks each layer is split across.
    public let tensorParallel: Int
    /// Pipeline stages.
    public let pipelineStages: Int
    /// The blocks each stage holds, in order, covering every layer once.
    public let stageLayers: [Range<Int>]

    /// Total ranks.
    public var worldSize: Int { tensorParallel * pipelineStages }

    /// The block sizes of the weights a row-parallel layer splits by input feature (their
    /// formats'): a rank's share of their inputs must be whole blocks.
    public struct WeightBlocks: Sendable, Equatable {
        /// Largest block of any layer's `attn_output` (32 for Q8_0/Q4_x, 256 for K-quants, 1 for floats).
        public var attentionOutput: Int
        /// Largest block of any layer's `ffn_down`.
        public var feedForwardDown: Int

        /// Explicit block sizes.
        public init(attentionOutput: Int = 1, feedForwardDown: Int = 1) {
            self.attentionOutput = attentionOutput
            self.feedForwardDown = feedForwardDown
        }

        /// Float weights: no block constraint.
        public static let unquantized = WeightBlocks()

        /// The block sizes of `weights`' `blk.N.attn_output.weight` and `blk.N.ffn_down.weight`
        /// over the model's layers (tensors it lacks count as floats).
        public init(_ weights: WeightSource, configuration c: DecoderConfiguration) {
            var attention = 1, down = 1
            for layer in 0..<c.layerCount {
                let block = weights.prefixed("blk.\(layer)")
                attention = max(attention, block.storedFormat("attn_output.weight")?.blockSize ?? 1)
                down = max(down, block.storedFormat("ffn_down.weight")?.blockSize ?? 1)
            }
            self.init(attentionOutput: attention, feedForwardDown: down)
        }
    }

    /// Validates `tp × pp` for `configuration` (with weights of `weightBlocks`) and splits the
    /// layers into stages balanced by cost (the last stage also pays for the output projection,
    /// the first for the embedding), unless `layersPerStage` gives the split.
    /// - Throws: `ParallelGridError` with a message listing what would work.
    public init(configuration c: DecoderConfiguration, tensorParallel tp: Int, pipelineStages pp: Int,
                layersPerStage: [Int]? = nil, weightBlocks: WeightBlocks = .unquantized) throws {
        guard tp >= 1, pp >= 1 else { throw ParallelGridError.invalid("--tp and --pp must be at least 1") }
        let valid = ParallelGrid.validTensorParallelSizes(c, weightBlocks: weightBlocks)
        if !valid.contains(tp) {
            var blocks = ""
            if weightBlocks != .unquantized {
                blocks = "; attn_output in blocks of \(weightBlocks.attentionOutput), ffn_down in blocks of \(weightBlocks.feedForwardDown)"
            }
            throw ParallelGridError.invalid(
                "--tp \(tp) does not split this model (\(c.headCount) heads of \(c.headDimension), \(c.kvHeadCount) KV heads, "
                    + "\(c.intermediateSize) MLP features, \(c.vocabularySize) tokens\(blocks)); valid: "
                    + valid.map(String.init).joined(separator: ", "))
        }
        guard pp <= c.layerCount else {
            throw ParallelGridError.invalid("--pp \(pp) exceeds the \(c.layerCount) layers; valid: 1...\(c.layerCount)")
        }
        if let layersPerStage {
            guard layersPerStage.count == pp, layersPerStage.allSatisfy({ $0 >= 1 }),
                  layersPerStage.reduce(0, +) == c.layerCount else {
                throw ParallelGridError.invalid("the stage split \(layersPerStage) must have \(pp) positive counts summing to \(c.layerCount)")
            }
            var start = 0
            stageLayers = layersPerStage.map { count in
                defer { start += count }
                return start..<(start + count)
            }
        } else {
            stageLayers = ParallelGrid.balancedSplit(configuration: c, stages: pp)
        }
        tensorParallel = tp
        pipelineStages = pp
    }

    /// Tensor-parallel sizes whose `TensorSplit` gives every rank some work and whole blocks:
    /// the heads split by grouped-query groups (`TensorSplit.heads`; with more ranks than KV
    /// heads every group needs as many query heads as ranks share it), each rank's query heads
    /// are whole blocks of `attn_output`'s input, the MLP features split into whole blocks of
    /// `ffn_down`'s input with at least one block per rank, and every rank gets vocabulary rows.
    /// Splits need not be equal: SmolLM2's 9 heads and 3 KV heads allow 1, 2, 3, 4, 5, 6, 7, 8, 9.
    public static func validTensorParallelSizes(_ c: DecoderConfiguration, weightBlocks: WeightBlocks = .unquantized) -> [Int] {
        (1...max(1, c.headCount)).filter { tp in
            guard TensorSplit.isFeasible(heads: c.headCount, kvHeads: c.kvHeadCount, size: tp),
                  TensorSplit.isFeasible(c.intermediateSize, parts: tp, granularity: weightBlocks.feedForwardDown),
                  c.vocabularySize >= tp else { return false }
            return (0..<tp).allSatisfy { rank in
                let heads = TensorSplit.heads(c.headCount, kvHeads: c.kvHeadCount, rank: rank, size: tp)
                return (heads.query.count * c.headDimension) % weightBlocks.attentionOutput == 0
            }
        }
    }

    /// Contiguous stages minimising the most expensive stage, with costs proportional to the
    /// weights each stage reads per token.
    static func balancedSplit(configuration c: DecoderConfiguration, stages: Int) -> [Range<Int>] {
        let attention = c.hiddenSize * c.headDimension * (2 * c.headCount + 2 * c.kvHeadCount)
        let layerCost = Double(attention + 3 * c.hiddenSize * c.intermediateSize)
        let headCost = Double(c.vocabularySize * c.hiddenSize)
        let n = c.layerCount
        // best[s][i]: the smallest possible maximum stage cost placing layers 0..<i in s stages.
        var best = Array(repeating: Array(repeating: Double.infinity, count: n + 1), count: stages + 1)
        var cut = Array(repeating: Array(repeating: 0, count: n + 1), count: stages + 1)
        best[0][0] = 0
        for s in 1...stages {
            for i in s...n {
                for j in (s - 1)..<i where best[s - 1][j] < .infinity {
                    var cost = Double(i - j) * layerCost
                    if s == stages && i == n { cost += headCost }
                    let value = max(best[s - 1][j], cost)
                    if value < best[s][i] {
                        best[s][i] = value
                        cut[s][i] = j
                    }
                }
            }
        }
        var ranges: [Range<Int>] = []
        var end = n
        for s in stride(from: stages, through: 1, by: -1) {
            let start = cut[s][end]
            ranges.insert(start..<end, at: 0)
            end = start
        }
        return ranges
    }
}

/// A tp × pp layout that cannot work for the model.
public enum ParallelGridError: Error, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self {
        case let .invalid(message): message
        }
    }
}
