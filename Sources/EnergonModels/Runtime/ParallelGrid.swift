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

    /// Validates `tp × pp` for `configuration` and splits the layers into stages balanced by
    /// cost (the last stage also pays for the output projection, the first for the embedding),
    /// unless `layersPerStage` gives the split.
    /// - Throws: `ParallelGridError` with a message listing what would work.
    public init(configuration c: DecoderConfiguration, tensorParallel tp: Int, pipelineStages pp: Int,
                layersPerStage: [Int]? = nil) throws {
        guard tp >= 1, pp >= 1 else { throw ParallelGridError.invalid("--tp and --pp must be at least 1") }
        let valid = ParallelGrid.validTensorParallelSizes(c)
        if !valid.contains(tp) {
            throw ParallelGridError.invalid(
                "--tp \(tp) does not split this model (\(c.headCount) heads, \(c.kvHeadCount) KV heads, "
                    + "\(c.intermediateSize) MLP features, \(c.vocabularySize) tokens); valid: "
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

    /// Tensor-parallel sizes that divide the query heads, the MLP and the vocabulary, and either
    /// divide the KV heads or are a multiple of them (KV heads are then replicated).
    public static func validTensorParallelSizes(_ c: DecoderConfiguration) -> [Int] {
        (1...max(1, c.headCount)).filter { tp in
            c.headCount % tp == 0 && c.intermediateSize % tp == 0 && c.vocabularySize % tp == 0
                && (c.kvHeadCount % tp == 0 || tp % c.kvHeadCount == 0)
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
