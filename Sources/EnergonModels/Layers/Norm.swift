import EnergonCheckpoint
import EnergonCore

/// Root-mean-square normalisation with a learned scale (replicated on every rank).
public final class RMSNorm: @unchecked Sendable {
    public let weight: [Float]
    public let epsilon: Float

    /// Loads `name.weight` of `dimension` elements.
    public init(_ source: WeightSource, _ name: String, dimension: Int, epsilon: Float) throws {
        weight = try source.tensor("\(name).weight", shape: [dimension]).dequantized()
        self.epsilon = epsilon
    }

    /// Normalises each of `rows` rows of `weight.count` elements.
    public func callAsFunction(_ input: UnsafePointer<Float>, rows: Int, output: UnsafeMutablePointer<Float>,
                               context: ComputeContext) {
        weight.withUnsafeBufferPointer {
            Ops.rmsNorm(input: input, weight: $0.baseAddress!, output: output, tokens: rows,  // invariant: non-empty
                        dimension: weight.count, epsilon: epsilon, context: context)
        }
    }
}

/// Layer normalisation with a learned scale and optional bias (replicated on every rank).
public final class LayerNorm: @unchecked Sendable {
    public let weight: [Float]
    public let bias: [Float]?
    public let epsilon: Float

    /// Loads `name.weight` (and `name.bias` when present) of `dimension` elements.
    public init(_ source: WeightSource, _ name: String, dimension: Int, epsilon: Float) throws {
        weight = try source.tensor("\(name).weight", shape: [dimension]).dequantized()
        bias = try source.tensorIfPresent("\(name).bias", shape: [dimension])?.dequantized()
        self.epsilon = epsilon
    }

    /// Normalises each of `rows` rows.
    public func callAsFunction(_ input: UnsafePointer<Float>, rows: Int, output: UnsafeMutablePointer<Float>,
                               context: ComputeContext) {
        weight.withUnsafeBufferPointer { w in
            if let bias {
                bias.withUnsafeBufferPointer { b in
                    Ops.layerNorm(input: input, weight: w.baseAddress!, bias: b.baseAddress!, output: output,  // invariant: non-empty
                                  tokens: rows, dimension: weight.count, epsilon: epsilon, context: context)
                }
            } else {
                Ops.layerNorm(input: input, weight: w.baseAddress!, bias: nil, output: output,  // invariant: non-empty
                              tokens: rows, dimension: weight.count, epsilon: epsilon, context: context)
            }
        }
    }
}
