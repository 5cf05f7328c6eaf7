import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// Ways to build `SelfAttention` for the GPT-2/OPT generation of checkpoints: biases on every
/// projection (output included) and, for GPT-2, q/k/v fused into one `attn_qkv` tensor.
/// Multi-head attention: a rank's heads are `TensorSplit.heads` with one head per group
/// (possibly uneven: 6 heads over 4 ranks are 2, 2, 1, 1).
extension SelfAttention {
    /// Loads separate `attn_q`, `attn_k`, `attn_v`, `attn_output`, each with weight and bias (OPT).
    /// Multi-head attention (kv heads = heads); no rotary positions.
    public convenience init(biased source: WeightSource, hiddenSize: Int, heads: Int, scale: Float,
                            parallel: ParallelContext) throws {
        let headDimension = try Self.headDimension(hiddenSize: hiddenSize, heads: heads, source: source)
        let mine = try Self.heads(heads: heads, kvHeads: heads, headDimension: headDimension, parallel: parallel, source: source)
        let rows = (mine.query.lowerBound * headDimension)..<(mine.query.upperBound * headDimension)
        func column(_ name: String) throws -> ColumnParallelLinear {
            try ColumnParallelLinear(source, name, inputFeatures: hiddenSize, outputFeatures: hiddenSize, hasBias: true, rows: rows)
        }
        self.init(query: try column("attn_q"), key: try column("attn_k"), value: try column("attn_v"),
                  output: try RowParallelLinear(source, "attn_output", inputFeatures: hiddenSize, outputFeatures: hiddenSize,
                                                hasBias: true, columns: rows, parallel: parallel),
                  rope: nil,
                  configuration: AttentionConfiguration(heads: mine.query.count, kvHeads: mine.query.count,
                                                        headDimension: headDimension, scale: scale))
    }

    /// Loads a fused `attn_qkv` (`[3·hidden, hidden]`, rows `[q; k; v]`, and its bias) plus a
    /// biased `attn_output` (GPT-2). A rank's heads are three row ranges of the fused tensor,
    /// one in each of the q, k and v blocks, so the tensor is loaded whole and cut into three
    /// views (no copy).
    public convenience init(fused source: WeightSource, hiddenSize: Int, heads: Int, scale: Float,
                            parallel: ParallelContext) throws {
        let headDimension = try Self.headDimension(hiddenSize: hiddenSize, heads: heads, source: source)
        let mine = try Self.heads(heads: heads, kvHeads: heads, headDimension: headDimension, parallel: parallel, source: source)
        let fused = try source.tensor("attn_qkv.weight", shape: [3 * hiddenSize, hiddenSize])   // [3·hidden, hidden]
        let fusedBias = try source.tensor("attn_qkv.bias", shape: [3 * hiddenSize]).dequantized()
        let first = mine.query.lowerBound * headDimension, last = mine.query.upperBound * headDimension
        func part(_ index: Int) throws -> ColumnParallelLinear {
            let rows = (index * hiddenSize + first)..<(index * hiddenSize + last)
            return try ColumnParallelLinear(weight: fused.slicingRows(rows), bias: Array(fusedBias[rows]),
                                            name: source.prefix + "attn_qkv.weight")
        }
        self.init(query: try part(0), key: try part(1), value: try part(2),
                  output: try RowParallelLinear(source, "attn_output", inputFeatures: hiddenSize, outputFeatures: hiddenSize,
                                                hasBias: true, columns: first..<last, parallel: parallel),
                  rope: nil,
                  configuration: AttentionConfiguration(heads: mine.query.count, kvHeads: mine.query.count,
                                                        headDimension: headDimension, scale: scale))
    }

    /// `hidden / heads`, checked to split evenly into heads.
    static func headDimension(hiddenSize: Int, heads: Int, source: WeightSource) throws -> Int {
        guard heads > 0, hiddenSize % heads == 0 else {
            throw ModelError.invalidValue(key: "attention.head_count", value: String(heads),
                                          reason: "must divide the embedding length \(hiddenSize) (\(source.prefix))")
        }
        return hiddenSize / heads
    }
}
