#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Naive, obviously-correct versions of the `Ops`, `RoPE` and `Attention` kernels, used by tests
/// as oracles. Written independently of the kernels: arrays in, arrays out, Float64 arithmetic
/// throughout, the libm `exp`/`tanh`/`erf`, no chunking, no vectors, no threads.
public enum ReferenceOps {
    /// RMSNorm of each row of `[tokens, dimension]`.
    public static func rmsNorm(_ x: [Float], weight: [Float], tokens: Int, dimension: Int, epsilon: Float,
                               weightOffset: Float = 0) -> [Float] {
        var output = [Float](repeating: 0, count: tokens * dimension)
        for token in 0..<tokens {
            let row = x[(token * dimension)..<((token + 1) * dimension)]
            let meanSquare = row.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(dimension)
            let factor = 1.0 / (meanSquare + Double(epsilon)).squareRoot()
            for index in 0..<dimension {
                let value = Double(x[token * dimension + index]) * factor
                output[token * dimension + index] = Float(value * (Double(weight[index]) + Double(weightOffset)))
            }
        }
        return output
    }

    /// LayerNorm of each row of `[tokens, dimension]` (biased variance).
    public static func layerNorm(_ x: [Float], weight: [Float], bias: [Float]?, tokens: Int, dimension: Int,
                                 epsilon: Float) -> [Float] {
        var output = [Float](repeating: 0, count: tokens * dimension)
        for token in 0..<tokens {
            let row = x[(token * dimension)..<((token + 1) * dimension)].map(Double.init)
            let mean = row.reduce(0, +) / Double(dimension)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(dimension)
            let factor = 1.0 / (variance + Double(epsilon)).squareRoot()
            for index in 0..<dimension {
                let normalized = (row[index] - mean) * factor * Double(weight[index])
                output[token * dimension + index] = Float(normalized + Double(bias?[index] ?? 0))
            }
        }
        return output
    }

    /// `x * sigmoid(x)`.
    public static func silu(_ x: Float) -> Float {
        let value = Double(x)
        return Float(value / (1 + exp(-value)))
    }

    /// GELU in either form, from the textbook formulas.
    public static func gelu(_ x: Float, approximation: Ops.GELUApproximation) -> Float {
        let value = Double(x)
        switch approximation {
        case .tanh:
            let inner = (2.0 / Double.pi).squareRoot() * (value + 0.044715 * value * value * value)
            return Float(0.5 * value * (1 + tanh(inner)))
        case .erf:
            return Float(0.5 * value * (1 + erf(value / 2.0.squareRoot())))
        }
    }

    /// Softmax over each row of `[rows, columns]`.
    public static func softmax(_ x: [Float], rows: Int, columns: Int) -> [Float] {
        var output = [Float](repeating: 0, count: rows * columns)
        for row in 0..<rows {
            let values = x[(row * columns)..<((row + 1) * columns)].map(Double.init)
            let maximum = values.max() ?? 0
            let exponentials = values.map { exp($0 - maximum) }
            let sum = exponentials.reduce(0, +)
            for column in 0..<columns { output[row * columns + column] = Float(exponentials[column] / sum) }
        }
        return output
    }

    /// Rotary embedding of `[tokens, heads * headDimension]`, angles in Float64.
    public static func rope(_ x: [Float], tokens: Int, heads: Int, headDimension: Int, rotaryDimensions: Int,
                            base: Float, style: RoPE.Style, frequencyScale: Float = 1, frequencyFactors: [Float]? = nil,
                            positions: [Int32]) -> [Float] {
        var output = x
        let half = rotaryDimensions / 2
        for token in 0..<tokens {
            for head in 0..<heads {
                let start = (token * heads + head) * headDimension
                for index in 0..<half {
                    let frequency = Double(frequencyScale) / pow(Double(base), Double(2 * index) / Double(rotaryDimensions))
                        / Double(frequencyFactors?[index] ?? 1)
                    let angle = Double(positions[token]) * frequency
                    let (a, b) = style == .normal ? (start + 2 * index, start + 2 * index + 1)
                                                  : (start + index, start + index + half)
                    let first = Double(x[a]), second = Double(x[b])
                    output[a] = Float(first * cos(angle) - second * sin(angle))
                    output[b] = Float(first * sin(angle) + second * cos(angle))
                }
            }
        }
        return output
    }

    /// Plain attention of one sequence over a dense cache (causal unless the configuration says not).
    /// - Parameters:
    ///   - queries: `[tokens, heads * headDimension]` at positions `startPosition ..< startPosition + tokens`.
    ///   - keys: `[positions, kvHeads * headDimension]`, at least `startPosition + tokens` rows.
    ///   - values: same shape as `keys`.
    /// - Returns: `[tokens, heads * headDimension]`.
    public static func attention(queries: [Float], tokens: Int, startPosition: Int, keys: [Float], values: [Float],
                                 configuration: AttentionConfiguration) -> [Float] {
        let heads = configuration.heads, kvHeads = configuration.kvHeads, dimension = configuration.headDimension
        let groupSize = heads / kvHeads
        var output = [Float](repeating: 0, count: tokens * heads * dimension)
        for token in 0..<tokens {
            let position = startPosition + token
            // Causal: keys first...position; otherwise every key of the sequence.
            let first = configuration.causal ? (configuration.slidingWindow.map { max(0, position - $0 + 1) } ?? 0) : 0
            let last = configuration.causal ? position : startPosition + tokens - 1
            for head in 0..<heads {
                let kvHead = head / groupSize
                let query = (token * heads + head) * dimension
                var scores = [Double]()
                for key in first...last {
                    var dot = 0.0
                    for index in 0..<dimension {
                        dot += Double(queries[query + index]) * Double(keys[(key * kvHeads + kvHead) * dimension + index])
                    }
                    var score = dot * Double(configuration.scale)
                    if let cap = configuration.logitSoftcap { score = Double(cap) * tanh(score / Double(cap)) }
                    scores.append(score)
                }
                let maximum = scores.max() ?? 0
                let weights = scores.map { exp($0 - maximum) }
                let sum = weights.reduce(0, +)
                for index in 0..<dimension {
                    var total = 0.0
                    for (offset, weight) in weights.enumerated() {
                        total += weight * Double(values[((first + offset) * kvHeads + kvHead) * dimension + index])
                    }
                    output[query + index] = Float(total / sum)
                }
            }
        }
        return output
    }
}
