#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Rotary position embedding: rotates pairs of each head's first `rotaryDimensions` values by
/// `position * frequency[i]`, with `frequency[i] = base^(-2i / rotaryDimensions) * frequencyScale
/// / frequencyFactors[i]`.
///
/// Angles are computed in Float64 (`position * frequency` loses about 3 decimal digits of the
/// angle in f32 at position 30 000), then the cosine and sine are rounded to f32 and shared by
/// all heads of a token. The cosines and sines of the first `cachedPositions` positions are
/// computed once at init (sin/cos in f64 cost more than the rotation itself); later positions
/// are computed per call, with identical results.
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
    /// cos/sin of the first positions.
    private let table: RoPETable

    /// Creates a rotation.
    /// - Parameters:
    ///   - headDimension: values per head.
    ///   - rotaryDimensions: leading values of each head that rotate; even and at most `headDimension`.
    ///   - base: the frequency base, e.g. 10 000 or 1 000 000.
    ///   - style: `.normal` (adjacent pairs) or `.neox` (split halves).
    ///   - frequencyScale: multiplies every frequency.
    ///   - frequencyFactors: `rotaryDimensions / 2` divisors, one per frequency (GGUF's
    ///     `rope_freqs.weight`, which encodes Llama 3.1+ long-context scaling); `nil` for none.
    ///   - cachedPositions: positions whose cos/sin are precomputed (`rotaryDimensions * 4` bytes each).
    public init(headDimension: Int, rotaryDimensions: Int, base: Float, style: Style, frequencyScale: Float = 1,
                frequencyFactors: [Float]? = nil, cachedPositions: Int = 4096) {
        // invariant: model code derives these from a validated configuration.
        precondition(rotaryDimensions >= 0 && rotaryDimensions <= headDimension && rotaryDimensions % 2 == 0,
                     "rotaryDimensions \(rotaryDimensions) must be even and at most headDimension \(headDimension)")
        self.headDimension = headDimension
        self.rotaryDimensions = rotaryDimensions
        self.base = base
        self.style = style
        self.frequencyScale = frequencyScale
        let half = rotaryDimensions / 2
        // invariant: the loader checked the factor tensor's shape against the configuration.
        precondition(frequencyFactors == nil || frequencyFactors?.count == half,
                     "frequencyFactors needs rotaryDimensions / 2 = \(half) values")
        let frequencies = (0..<half).map { index in
            pow(Double(base), -2.0 * Double(index) / Double(rotaryDimensions)) * Double(frequencyScale)
                / Double(frequencyFactors?[index] ?? 1)
        }
        self.frequencies = frequencies
        self.table = RoPETable(frequencies: frequencies, positions: half > 0 ? max(0, cachedPositions) : 0)
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
        let cache = self.table
        frequencies.withUnsafeBufferPointer { frequencies in
            let body = { (range: Range<Int>) in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * half) { scratch in
                    for token in range {
                        let table: UnsafePointer<Float>
                        if let cached = cache.row(Int(positions[token])) {
                            table = cached
                        } else {
                            RoPETable.fill(scratch.baseAddress!, position: Int(positions[token]), frequencies: frequencies)  // invariant: capacity > 0
                            table = UnsafePointer(scratch.baseAddress!)
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

/// Precomputed `[cos(p f_0) ... cos(p f_{n-1}), sin(p f_0) ... sin(p f_{n-1})]` rows for
/// positions `0 ..< positions`. Immutable after init, so sharing it between threads is safe.
final class RoPETable: @unchecked Sendable {
    let positions: Int
    let half: Int
    private let storage: UnsafeMutablePointer<Float>

    init(frequencies: [Double], positions: Int) {
        self.positions = positions
        self.half = frequencies.count
        storage = UnsafeMutablePointer<Float>.allocate(capacity: max(1, positions * 2 * half))
        frequencies.withUnsafeBufferPointer { frequencies in
            for position in 0..<positions {
                RoPETable.fill(storage + position * 2 * half, position: position, frequencies: frequencies)
            }
        }
    }

    deinit { storage.deallocate() }

    /// The row of `position`, or `nil` when it is not cached.
    func row(_ position: Int) -> UnsafePointer<Float>? {
        position >= 0 && position < positions ? UnsafePointer(storage + position * 2 * half) : nil
    }

    /// Writes the cos/sin row of `position` (angles in f64, rounded once to f32).
    static func fill(_ row: UnsafeMutablePointer<Float>, position: Int, frequencies: UnsafeBufferPointer<Double>) {
        let half = frequencies.count
        for index in 0..<half {
            let angle = Double(position) * frequencies[index]
            row[index] = Float(cos(angle))
            row[half + index] = Float(sin(angle))
        }
    }
}
