import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// A linear layer whose output features are split across the tensor-parallel ranks
/// (Megatron's column-parallel layer): each rank holds a contiguous range of rows of the
/// `[out, in]` weight (`TensorSplit`; not necessarily equal) and produces that slice of the
/// output. No communication. At one rank it is a plain linear layer.
public final class ColumnParallelLinear: @unchecked Sendable {
    /// This rank's weight, `[outputFeaturesPerRank, inputFeatures]`.
    public let weight: Tensor
    /// This rank's slice of the bias, if any.
    public let bias: [Float]?
    /// Input features (every rank sees the whole input).
    public let inputFeatures: Int
    /// Output features this rank computes.
    public let outputFeaturesPerRank: Int

    /// Loads `name.weight` (and `name.bias` when `hasBias`) from `source`, keeping this rank's
    /// part of the rows as `TensorSplit.range` gives it.
    public convenience init(_ source: WeightSource, _ name: String, inputFeatures: Int, outputFeatures: Int,
                            hasBias: Bool = false, parallel: ParallelContext) throws {
        try self.init(source, name, inputFeatures: inputFeatures, outputFeatures: outputFeatures, hasBias: hasBias,
                      rows: TensorSplit.range(outputFeatures, rank: parallel.tensorRank, size: parallel.tensorSize))
    }

    /// Loads rows `rows` of `name.weight` (`[outputFeatures, inputFeatures]`) and of `name.bias`.
    public init(_ source: WeightSource, _ name: String, inputFeatures: Int, outputFeatures: Int,
                hasBias: Bool = false, rows: Range<Int>) throws {
        weight = MatMul.prepare(try source.tensor("\(name).weight", shape: [outputFeatures, inputFeatures], rows: rows))
        if !MatMul.supports(weight.dtype) {
            throw ModelError.unsupportedFormat(tensor: source.prefix + "\(name).weight", format: weight.dtype.name)
        }
        bias = hasBias ? try source.floats("\(name).bias", count: outputFeatures, range: rows) : nil
        self.inputFeatures = inputFeatures
        self.outputFeaturesPerRank = rows.count
    }

    /// A layer over an already-cut weight (this rank's rows, `[outputFeaturesPerRank, inputFeatures]`)
    /// and bias slice: for fused checkpoint tensors (GPT-2's `attn_qkv`) whose rank shard is not
    /// one contiguous row range.
    /// - Throws: `ModelError.unsupportedFormat` naming `name` when the kernels cannot use the weight's type.
    public init(weight: Tensor, bias: [Float]?, name: String) throws {
        precondition(weight.shape.count == 2 && (bias == nil || bias?.count == weight.shape[0]))  // invariant: callers cut both from checked tensors
        if !MatMul.supports(weight.dtype) { throw ModelError.unsupportedFormat(tensor: name, format: weight.dtype.name) }
        self.weight = weight
        self.bias = bias
        inputFeatures = weight.shape[1]
        outputFeaturesPerRank = weight.shape[0]
    }

    /// `output[t] = input[t] · Wᵀ (+ b)`; input `[tokens, inputFeatures]`, output `[tokens, outputFeaturesPerRank]`.
    public func callAsFunction(_ input: UnsafePointer<Float>, tokens: Int, output: UnsafeMutablePointer<Float>,
                               context: ComputeContext) {
        MatMul.compute(weight: weight, input: input, tokens: tokens, output: output, context: context)
        if let bias { bias.withUnsafeBufferPointer { Ops.addBias($0.baseAddress!, to: output, tokens: tokens, dimension: outputFeaturesPerRank) } }  // invariant: non-empty
    }

    /// Runs several column-parallel layers that share one input in a single parallel job
    /// (q/k/v, or gate/up): the input is quantized once and the threads synchronise once.
    public static func fused(_ layers: [ColumnParallelLinear], input: UnsafePointer<Float>, tokens: Int,
                             outputs: [UnsafeMutablePointer<Float>], context: ComputeContext) {
        MatMul.computeMany(weights: layers.map(\.weight), input: input, tokens: tokens, outputs: outputs, context: context)
        for (layer, output) in zip(layers, outputs) {
            if let bias = layer.bias {
                bias.withUnsafeBufferPointer {
                    Ops.addBias($0.baseAddress!, to: output, tokens: tokens, dimension: layer.outputFeaturesPerRank)  // invariant: non-empty
                }
            }
        }
    }
}

/// A linear layer whose input features are split across the tensor-parallel ranks
/// (Megatron's row-parallel layer): each rank holds a contiguous range of columns (whole blocks
/// of the weight's format), computes a partial product, and one all-reduce sums the partials.
/// The bias is added after the sum, so it counts once. At one rank it is a plain linear layer
/// and does not communicate.
public final class RowParallelLinear: @unchecked Sendable {
    /// This rank's weight, `[outputFeatures, inputFeaturesPerRank]`.
    public let weight: Tensor
    /// The whole bias (added once, after the sum), if any.
    public let bias: [Float]?
    /// Input features this rank holds.
    public let inputFeaturesPerRank: Int
    /// Output features (every rank gets the whole sum).
    public let outputFeatures: Int
    private let group: any ProcessGroup

    /// Loads `name.weight` (and `name.bias`) from `source`, keeping this rank's columns as
    /// `TensorSplit.range` gives them in whole blocks of the stored format.
    public convenience init(_ source: WeightSource, _ name: String, inputFeatures: Int, outputFeatures: Int,
                            hasBias: Bool = false, parallel: ParallelContext) throws {
        let granularity = source.storedFormat("\(name).weight")?.blockSize ?? 1
        try self.init(source, name, inputFeatures: inputFeatures, outputFeatures: outputFeatures, hasBias: hasBias,
                      columns: TensorSplit.range(inputFeatures, rank: parallel.tensorRank, size: parallel.tensorSize,
                                                 granularity: granularity),
                      parallel: parallel)
    }

    /// Loads columns `columns` of `name.weight` (`[outputFeatures, inputFeatures]`; whole blocks
    /// of its format) and the whole `name.bias`; sums over `parallel`'s tensor group.
    public init(_ source: WeightSource, _ name: String, inputFeatures: Int, outputFeatures: Int,
                hasBias: Bool = false, columns: Range<Int>, parallel: ParallelContext) throws {
        weight = MatMul.prepare(try source.tensor("\(name).weight", shape: [outputFeatures, inputFeatures], columns: columns))
        if !MatMul.supports(weight.dtype) {
            throw ModelError.unsupportedFormat(tensor: source.prefix + "\(name).weight", format: weight.dtype.name)
        }
        bias = hasBias ? try source.tensor("\(name).bias", shape: [outputFeatures]).dequantized() : nil
        inputFeaturesPerRank = columns.count
        self.outputFeatures = outputFeatures
        group = parallel.tensorGroup
    }

    /// `output[t] = Σ_ranks input[t] · Wᵀ (+ b)`; input `[tokens, inputFeaturesPerRank]`, output `[tokens, outputFeatures]`.
    public func callAsFunction(_ input: UnsafePointer<Float>, tokens: Int, output: UnsafeMutablePointer<Float>,
                               context: ComputeContext) throws {
        MatMul.compute(weight: weight, input: input, tokens: tokens, output: output, context: context)
        if group.size > 1 { try group.allReduceSum(output, count: tokens * outputFeatures) }
        if let bias { bias.withUnsafeBufferPointer { Ops.addBias($0.baseAddress!, to: output, tokens: tokens, dimension: outputFeatures) } }  // invariant: non-empty
    }
}
