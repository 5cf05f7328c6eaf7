import EnergonCore
/// How the next token is chosen from a row of logits.
public struct SamplingParameters: Sendable, Equatable {
    /// 0 means greedy (argmax).
    public var temperature: Float = 0
    /// Keep only the k most likely tokens (0 = off).
    public var topK: Int = 0
    /// Keep the smallest set of tokens whose probability reaches p (1 = off).
    public var topP: Float = 1
    /// Drop tokens whose probability is below minP × the top probability (0 = off).
    public var minP: Float = 0
    /// Divide positive logits (multiply negative ones) of tokens already seen by this (1 = off).
    public var repetitionPenalty: Float = 1
    /// Subtract frequencyPenalty × count of each seen token (0 = off).
    public var frequencyPenalty: Float = 0
    /// Subtract presencePenalty once for each seen token (0 = off).
    public var presencePenalty: Float = 0
    /// How many recent tokens the penalties look at (0 = all).
    public var penaltyWindow: Int = 64
    /// Random seed; the same seed and inputs give the same tokens.
    public var seed: UInt64 = 0

    /// Creates parameters; the defaults are greedy decoding with no penalties.
    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0,
                repetitionPenalty: Float = 1, frequencyPenalty: Float = 0, presencePenalty: Float = 0,
                penaltyWindow: Int = 64, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.frequencyPenalty = frequencyPenalty
        self.presencePenalty = presencePenalty
        self.penaltyWindow = penaltyWindow
        self.seed = seed
    }

    /// Greedy decoding.
    public static var greedy: SamplingParameters { SamplingParameters() }

    /// Checks ranges; the message names the parameter.
    public func validate() throws(SamplingError) {
        if !(temperature >= 0 && temperature.isFinite) { throw .invalid("temperature must be ≥ 0, got \(temperature)") }
        if topK < 0 { throw .invalid("top-k must be ≥ 0, got \(topK)") }
        if !(topP > 0 && topP <= 1) { throw .invalid("top-p must be in (0, 1], got \(topP)") }
        if !(minP >= 0 && minP <= 1) { throw .invalid("min-p must be in [0, 1], got \(minP)") }
        if !(repetitionPenalty > 0 && repetitionPenalty.isFinite) {
            throw .invalid("repetition penalty must be > 0, got \(repetitionPenalty)")
        }
        if !frequencyPenalty.isFinite || !presencePenalty.isFinite { throw .invalid("penalties must be finite") }
        if penaltyWindow < 0 { throw .invalid("penalty window must be ≥ 0, got \(penaltyWindow)") }
    }
}

/// A sampling parameter out of range.
public enum SamplingError: Error, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self {
        case let .invalid(message): "invalid sampling parameter: \(message)"
        }
    }
}

/// A small, fast, seedable generator (SplitMix64), so sampling is reproducible across runs and
/// platforms (Swift's `SystemRandomNumberGenerator` cannot be seeded).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    /// A generator whose sequence depends only on `seed`.
    public init(seed: UInt64) { state = seed }
    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Picks tokens from logits for one sequence. Holds the sequence's random state and the
/// history the penalties use.
public struct Sampler: Sendable {
    /// The sampling parameters.
    public let parameters: SamplingParameters
    private var random: SplitMix64
    private var history: [Int32] = []

    /// Creates a sampler; `prompt` seeds the penalty history.
    public init(parameters: SamplingParameters, prompt: [Int32] = []) {
        self.parameters = parameters
        self.random = SplitMix64(seed: parameters.seed)
        self.history = prompt
    }

    /// Records a token as generated (for the penalties).
    public mutating func accept(_ token: Int32) { history.append(token) }

    /// Chooses the next token from `logits` (length `count`) and returns it with its
    /// log-probability under the final (temperature-scaled, filtered) distribution; for greedy
    /// decoding, under the softmax of the logits. Pass `logprob: false` to skip that work
    /// (a full pass of `exp` over the vocabulary) when nobody reads it; it is then NaN.
    /// The logits buffer is modified (penalties applied in place).
    public mutating func sample(logits: UnsafeMutablePointer<Float>, count: Int,
                                logprob wantLogprob: Bool = true) -> (token: Int32, logprob: Float) {
        applyPenalties(logits, count: count)
        if parameters.temperature == 0 {
            var best = 0
            var bestValue = -Float.infinity
            for i in 0..<count where logits[i] > bestValue {
                bestValue = logits[i]
                best = i
            }
            guard wantLogprob else { return (Int32(best), .nan) }
            // log-softmax of the argmax at temperature 1, for reporting.
            return (Int32(best), -Float(Sampler.logSumExp(logits, count: count, maximum: bestValue, scale: 1)))
        }
        if parameters.topK == 0 && parameters.topP >= 1 && parameters.minP == 0 {
            // Nothing truncates the distribution: draw from it as it is, with no sort.
            let inverseTemperature = 1 / parameters.temperature
            var maximum = -Float.infinity
            for i in 0..<count { maximum = max(maximum, logits[i]) }
            let total = Sampler.logSumExp(logits, count: count, maximum: maximum, scale: inverseTemperature)
            // Walk the cumulative probability until it passes a uniform draw in [0, 1).
            let draw = Double(random.next() >> 11) * 0x1p-53
            var cumulative = 0.0
            var chosen = count - 1
            for i in 0..<count {
                cumulative += exp(Double((logits[i] - maximum) * inverseTemperature) - total)
                if draw < cumulative {
                    chosen = i
                    break
                }
            }
            return (Int32(chosen), Float(Double((logits[chosen] - maximum) * inverseTemperature) - total))
        }
        // Candidates sorted by logit (descending), truncated by top-k.
        var candidates = Array(0..<count)
        let k = parameters.topK > 0 ? min(parameters.topK, count) : count
        if k < count {
            candidates = partialTop(logits: logits, count: count, k: k)
        } else {
            candidates.sort { logits[$0] > logits[$1] }
        }
        let inverseTemperature = 1 / parameters.temperature
        let maxLogit = logits[candidates[0]]
        var probabilities = candidates.map { expf((logits[$0] - maxLogit) * inverseTemperature) }
        var total = probabilities.reduce(0, +)
        // min-p relative to the top probability.
        var keep = probabilities.count
        if parameters.minP > 0 {
            let threshold = parameters.minP * probabilities[0]
            keep = max(1, probabilities.firstIndex(where: { $0 < threshold }) ?? keep)
        }
        // top-p over the sorted candidates.
        if parameters.topP < 1 {
            var cumulative: Float = 0
            for i in 0..<keep {
                cumulative += probabilities[i] / total
                if cumulative >= parameters.topP {
                    keep = i + 1
                    break
                }
            }
        }
        probabilities.removeSubrange(keep...)
        candidates.removeSubrange(keep...)
        total = probabilities.reduce(0, +)
        let draw = Float(Double(random.next() >> 11) * 0x1p-53) * total
        var cumulative: Float = 0
        var chosen = candidates.count - 1
        for i in 0..<probabilities.count {
            cumulative += probabilities[i]
            if draw < cumulative {
                chosen = i
                break
            }
        }
        return (Int32(candidates[chosen]), logf(probabilities[chosen] / total))
    }

    /// log Σ exp((logits[i] - maximum) · scale), with the kernels' vector exp (a 49 152-token
    /// vocabulary costs about 20 µs instead of 250 µs scalar, which mattered: the controller
    /// samples every sequence of every step).
    static func logSumExp(_ logits: UnsafePointer<Float>, count: Int, maximum: Float, scale: Float) -> Double {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(1, count)) { buffer in
            let shifted = buffer.baseAddress!  // invariant: capacity ≥ 1
            for i in 0..<count { shifted[i] = (logits[i] - maximum) * scale }
            Ops.exp(shifted, output: shifted, count: count)
            var lanes = SIMD16<Float>()
            var i = 0
            while i + 16 <= count {
                lanes += UnsafeRawPointer(shifted + i).loadUnaligned(as: SIMD16<Float>.self)
                i += 16
            }
            var sum = Double(lanes.sum())
            while i < count {
                sum += Double(shifted[i])
                i += 1
            }
            return log(sum)
        }
    }

    private func applyPenalties(_ logits: UnsafeMutablePointer<Float>, count: Int) {
        let p = parameters
        guard p.repetitionPenalty != 1 || p.frequencyPenalty != 0 || p.presencePenalty != 0, !history.isEmpty else {
            return
        }
        let window = p.penaltyWindow == 0 ? history[...] : history.suffix(p.penaltyWindow)
        var counts: [Int32: Int] = [:]
        for token in window where token >= 0 && Int(token) < count { counts[token, default: 0] += 1 }
        for (token, n) in counts {
            let index = Int(token)
            var value = logits[index]
            if p.repetitionPenalty != 1 {
                value = value > 0 ? value / p.repetitionPenalty : value * p.repetitionPenalty
            }
            value -= Float(n) * p.frequencyPenalty + p.presencePenalty
            logits[index] = value
        }
    }

    /// Indices of the k largest logits, sorted descending (a bounded selection, O(n log k)).
    private func partialTop(logits: UnsafeMutablePointer<Float>, count: Int, k: Int) -> [Int] {
        var heap: [Int] = []  // min-heap on logit
        heap.reserveCapacity(k)
        func less(_ a: Int, _ b: Int) -> Bool { logits[a] < logits[b] || (logits[a] == logits[b] && a > b) }
        for i in 0..<count {
            if heap.count < k {
                heap.append(i)
                var child = heap.count - 1
                while child > 0 {
                    let parent = (child - 1) / 2
                    if less(heap[child], heap[parent]) { heap.swapAt(child, parent); child = parent } else { break }
                }
            } else if less(heap[0], i) {
                heap[0] = i
                var parent = 0
                while true {
                    let left = 2 * parent + 1, right = left + 1
                    var smallest = parent
                    if left < k && less(heap[left], heap[smallest]) { smallest = left }
                    if right < k && less(heap[right], heap[smallest]) { smallest = right }
                    if smallest == parent { break }
                    heap.swapAt(parent, smallest)
                    parent = smallest
                }
            }
        }
        return heap.sorted { less($1, $0) }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
