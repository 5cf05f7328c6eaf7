import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// The plain two-layer feed-forward block of GPT-2, OPT and BERT: `down(act(up(x) + b1)) + b2`.
/// `up` is column-parallel (each rank computes its slice of the intermediate features), `down`
/// is row-parallel (one all-reduce), so the activation runs on local data.
public final class MLP: @unchecked Sendable {
    /// The element-wise nonlinearity between the two layers.
    public enum Activation: Sendable, Equatable {
        /// `max(0, x)` (OPT).
        case relu
        /// GELU, tanh approximation (GPT-2's `gelu_new`).
        case geluTanh
        /// GELU, exact erf form (BERT's `gelu`).
        case geluErf
    }

    let up: ColumnParallelLinear
    let down: RowParallelLinear
    let activation: Activation

    /// Loads `ffn_up` and `ffn_down` (weights, and biases when `hasBias`).
    public init(_ source: WeightSource, hiddenSize: Int, intermediateSize: Int, activation: Activation,
                hasBias: Bool, parallel: ParallelContext) throws {
        up = try ColumnParallelLinear(source, "ffn_up", inputFeatures: hiddenSize, outputFeatures: intermediateSize,
                                      hasBias: hasBias, parallel: parallel)
        down = try RowParallelLinear(source, "ffn_down", inputFeatures: intermediateSize, outputFeatures: hiddenSize,
                                     hasBias: hasBias, parallel: parallel)
        self.activation = activation
    }

    /// `result = mlp(input)`, both `[tokens, hidden]`.
    public func callAsFunction(_ input: UnsafePointer<Float>, tokens: Int, result: UnsafeMutablePointer<Float>,
                               buffers: ActivationBuffers, context: ComputeContext) throws {
        let width = up.outputFeaturesPerRank
        let u = buffers.buffer(.up, count: tokens * width)    // [tokens, intermediatePerRank]
        up(input, tokens: tokens, output: u, context: context)
        switch activation {
        case .relu: for index in 0..<(tokens * width) { u[index] = max(0, u[index]) }
        case .geluTanh: Ops.gelu(u, count: tokens * width, approximation: .tanh, context: context)
        case .geluErf: Ops.gelu(u, count: tokens * width, approximation: .erf, context: context)
        }
        try down(u, tokens: tokens, output: result, context: context)
    }
}
