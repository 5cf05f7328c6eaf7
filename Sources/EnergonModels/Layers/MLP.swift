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
        let features = MLP.features(source, intermediateSize: intermediateSize, parallel: parallel)
        up = try ColumnParallelLinear(source, "ffn_up", inputFeatures: hiddenSize, outputFeatures: intermediateSize,
                                      hasBias: hasBias, rows: features)
        down = try RowParallelLinear(source, "ffn_down", inputFeatures: intermediateSize, outputFeatures: hiddenSize,
                                     hasBias: hasBias, columns: features, parallel: parallel)
        self.activation = activation
    }

    /// This rank's intermediate features: `TensorSplit.range` in whole blocks of `ffn_down`'s
    /// format, whose input they are (the same range cuts `ffn_up`/`ffn_gate` rows).
    static func features(_ source: WeightSource, intermediateSize: Int, parallel: ParallelContext) -> Range<Int> {
        TensorSplit.range(intermediateSize, rank: parallel.tensorRank, size: parallel.tensorSize,
                          granularity: source.storedFormat("ffn_down.weight")?.blockSize ?? 1)
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

/// The gated feed-forward block: `down(act(gate(x)) * up(x))` (SwiGLU for Llama, GeGLU for
/// Gemma). gate/up are column-parallel, down is row-parallel.
public final class GatedMLP: @unchecked Sendable {
    let gate: ColumnParallelLinear
    let up: ColumnParallelLinear
    let down: RowParallelLinear
    let activation: DecoderConfiguration.Activation

    /// Loads `ffn_gate`, `ffn_up`, `ffn_down`.
    public init(_ source: WeightSource, hiddenSize: Int, intermediateSize: Int,
                activation: DecoderConfiguration.Activation, parallel: ParallelContext) throws {
        let features = MLP.features(source, intermediateSize: intermediateSize, parallel: parallel)
        gate = try ColumnParallelLinear(source, "ffn_gate", inputFeatures: hiddenSize, outputFeatures: intermediateSize, rows: features)
        up = try ColumnParallelLinear(source, "ffn_up", inputFeatures: hiddenSize, outputFeatures: intermediateSize, rows: features)
        down = try RowParallelLinear(source, "ffn_down", inputFeatures: intermediateSize, outputFeatures: hiddenSize,
                                     columns: features, parallel: parallel)
        self.activation = activation
    }

    /// `result = mlp(input)`, both `[tokens, hidden]`.
    public func callAsFunction(_ input: UnsafePointer<Float>, tokens: Int, result: UnsafeMutablePointer<Float>,
                               buffers: ActivationBuffers, context: ComputeContext) throws {
        let width = gate.outputFeaturesPerRank
        let g = buffers.buffer(.gate, count: tokens * width)    // [tokens, intermediatePerRank]
        let u = buffers.buffer(.up, count: tokens * width)
        ColumnParallelLinear.fused([gate, up], input: input, tokens: tokens, outputs: [g, u], context: context)
        switch activation {
        case .silu: Ops.swiglu(gate: g, up: u, output: g, count: tokens * width, context: context)
        case .geluTanh: Ops.geglu(gate: g, up: u, output: g, count: tokens * width, approximation: .tanh, context: context)
        case .geluErf: Ops.geglu(gate: g, up: u, output: g, count: tokens * width, approximation: .erf, context: context)
        }
        try down(g, tokens: tokens, output: result, context: context)
    }
}
