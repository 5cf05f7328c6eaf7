#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Rotary position embedding: rotates pairs of each head's first `rotaryDimensions` values by
/// `position * frequency[i]`, with `frequency[i] = base^(-2i / rotaryDimensions) * frequencyScale`.
///
/// Angles are computed in Float64 (`position * frequency` loses about 3 decimal digits of the
/// angle in f32 at position 30 000), then the cosine and sine are rounded to f32 once per token
/// and shared by all heads.
public struct RoPE: Sendable {
    /// How a head's values are paired for rotation.
    public enum Style: Sendable {
        /// GPT-J / llama.cpp "norm" layout: pairs `(2i, 2i + 1)`.
        case normal
        /// GPT-NeoX / Hugging Face `rotate_half` layout: pairs `(i, i + rotaryDimensions / 2)`.
        case neox
    }

    /// Values per head.
    public let headDimension: Int
    /// Leading values of each head that rotate (the rest pass through: partial rotary).
    public let rotaryDimensions: Int
    /// The frequency base (`rope_theta`).
    public let base: Float
    /// The pairing layout.
    public let style: Style
    /// Multiplies every frequency (linear position interpolation uses `1 / factor`).
    public let frequencyScale: Float

    /// `frequency[i]` for `i` in `0 ..< rotaryDimensions / 2`.
    private let frequencies: [Double]

    /// Creates a rotation.
    /// - Parameters:
    ///   - headDimension: values per head.
    ///   - rotaryDimensions: leading values of each head that rotate; even and at most `headDimension`.
    ///   - base: the frequency base, e.g. 10 000 or 1 000 000.
    ///   - style: `.normal` (adjacent pairs) or `.neox` (split halves).
    ///   - frequencyScale: multiplies every frequency.
    public init(headDimension: Int, rotaryDimensions: Int, base: Float, style: Style, frequencyScale: Float = 1) {
        // invariant: model code derives these from a validated configuration.
        precondition(rotaryDimensions >= 0 && rotaryDimensions <= headDimension && rotaryDimensions % 2 == 0,
                     "rotaryDimensions \(rotaryDimensions) must be even and at most headDimension \(headDimension)")
        self.headDimension = headDimension
        self.rotaryDimensions = rotaryDimensions
        self.base = base
        self.style = style
        self.frequencyScale = frequencyScale
        let half = rotaryDimensions / 2
        frequencies = (0..<half).map { index in
            pow(Double(base), -2.0 * Double(index) / Double(rotaryDimensions)) * Double(frequencyScale)
        }
    }

    /// Rotates `x` (`[tokens, heads * headDimension]`) in place; token `t` is at `positions[t]`.
    /// - Parameters:
    ///   - x: query or key rows.
    ///   - tokens: rows of `x`.
    ///   - heads: heads per row.
    ///   - positions: one position per token.
    ///   - context: threads (large inputs are split by token).
    public func apply(_ x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, positions: UnsafePointer<Int32>,
                      context: ComputeContext) {
        let half = rotaryDimensions / 2
        guard half > 0, tokens > 0 else { return }
        let rowWidth = heads * headDimension
        let headDimension = self.headDimension
        let style = self.style
        frequencies.withUnsafeBufferPointer { frequencies in
            let body = { (range: Range<Int>) in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * half) { table in
                    for token in range {
                        let position = Double(positions[token])
                        for index in 0..<half {
                            let angle = position * frequencies[index]
                            table[index] = Float(cos(angle))
                            table[half + index] = Float(sin(angle))
                        }
                        for head in 0..<heads {
                            let values = x + token * rowWidth + head * headDimension
                            // (first, second) -> (first cos - second sin, first sin + second cos)
                            switch style {
                            case .normal:
                                for index in 0..<half {
                                    let cosine = table[index], sine = table[half + index]
                                    let first = values[2 * index], second = values[2 * index + 1]
                                    values[2 * index] = first * cosine - second * sine
                                    values[2 * index + 1] = first * sine + second * cosine
                                }
                            case .neox:
                                for index in 0..<half {
                                    let cosine = table[index], sine = table[half + index]
                                    let first = values[index], second = values[index + half]
                                    values[index] = first * cosine - second * sine
                                    values[index + half] = first * sine + second * cosine
                                }
                            }
                        }
                    }
                }
            }
            if tokens > 1, tokens * rowWidth >= Ops.parallelThreshold {
                context.pool.parallelFor(tokens, body)
            } else {
                body(0..<tokens)
            }
        }
    }
}
