import EnergonEngine
import Foundation
import Testing

@Suite struct SamplerTests {
    func sample(_ logits: [Float], _ parameters: SamplingParameters, draws: Int = 1, history: [Int32] = []) -> [Int32] {
        var sampler = Sampler(parameters: parameters, prompt: history)
        return (0..<draws).map { _ in
            var copy = logits
            return copy.withUnsafeMutableBufferPointer { sampler.sample(logits: $0.baseAddress!, count: $0.count).token }
        }
    }

    let logits: [Float] = [0.5, 2.0, 1.0, -1.0, 1.9, 0.0]

    @Test func greedyPicksTheArgmax() {
        #expect(sample(logits, .greedy, draws: 5) == Array(repeating: 1, count: 5))
    }

    @Test func theSameSeedGivesTheSameTokens() {
        let parameters = SamplingParameters(temperature: 1.0, seed: 1234)
        #expect(sample(logits, parameters, draws: 200) == sample(logits, parameters, draws: 200))
        #expect(sample(logits, parameters, draws: 200) != sample(logits, SamplingParameters(temperature: 1.0, seed: 99), draws: 200))
    }

    @Test func samplingFollowsTheSoftmax() {
        // 20 000 draws at temperature 1: each frequency within 4 standard deviations of softmax.
        let draws = 20_000
        let tokens = sample(logits, SamplingParameters(temperature: 1, seed: 7), draws: draws)
        let maximum = logits.max()!
        let weights = logits.map { exp(Double($0 - maximum)) }
        let total = weights.reduce(0, +)
        for (index, weight) in weights.enumerated() {
            let p = weight / total
            let observed = Double(tokens.filter { $0 == Int32(index) }.count) / Double(draws)
            let sigma = (p * (1 - p) / Double(draws)).squareRoot()
            #expect(abs(observed - p) <= 4 * sigma + 1e-9, "token \(index): \(observed) vs \(p)")
        }
    }

    @Test func topKOneAndTinyTopPAreGreedy() {
        #expect(Set(sample(logits, SamplingParameters(temperature: 2, topK: 1, seed: 3), draws: 100)) == [1])
        #expect(Set(sample(logits, SamplingParameters(temperature: 2, topP: 0.01, seed: 3), draws: 100)) == [1])
    }

    @Test func topKKeepsOnlyTheKBest() {
        let seen = Set(sample(logits, SamplingParameters(temperature: 5, topK: 3, seed: 11), draws: 2000))
        #expect(seen == [1, 4, 2])
    }

    @Test func minPDropsUnlikelyTokens() {
        // p(token) / p(best) = exp(logit - 2): tokens 1 (1.0), 4 (0.90), 2 (0.37) pass 0.3; 0 (0.22) does not.
        let seen = Set(sample(logits, SamplingParameters(temperature: 1, minP: 0.3, seed: 5), draws: 4000))
        #expect(seen == [1, 4, 2])
    }

    @Test func penaltiesMoveAwayFromSeenTokens() {
        #expect(sample(logits, SamplingParameters(repetitionPenalty: 1.5), history: [1]) == [4])
        #expect(sample(logits, SamplingParameters(presencePenalty: 0.2), history: [1]) == [4])
        #expect(sample(logits, SamplingParameters(frequencyPenalty: 0.06), history: [1, 1]) == [4])
        #expect(sample(logits, SamplingParameters(frequencyPenalty: 0.06), history: [1]) == [1])
    }

    @Test func invalidParametersAreRejectedByName() {
        for (parameters, word) in [(SamplingParameters(temperature: -1), "temperature"), (SamplingParameters(topP: 0), "top-p"),
                                   (SamplingParameters(topK: -2), "top-k"), (SamplingParameters(minP: 2), "min-p"),
                                   (SamplingParameters(repetitionPenalty: 0), "repetition")] {
            #expect(throws: SamplingError.self) { try parameters.validate() }
            do { try parameters.validate() } catch { #expect("\(error)".contains(word)) }
        }
    }

    @Test func logprobOfGreedyIsTheLogSoftmax() {
        var copy = logits
        var sampler = Sampler(parameters: .greedy)
        let result = copy.withUnsafeMutableBufferPointer { sampler.sample(logits: $0.baseAddress!, count: $0.count) }
        let total = logits.map { exp(Double($0)) }.reduce(0, +)
        #expect(abs(Double(result.logprob) - (2.0 - log(total))) < 1e-5)
    }

    @Test func logprobOfAnUntruncatedDrawIsTheLogSoftmaxAtTheTemperature() {
        // No top-k/top-p/min-p: the draw comes from the whole distribution, unsorted.
        var sampler = Sampler(parameters: SamplingParameters(temperature: 2, seed: 17))
        for _ in 0..<20 {
            var copy = logits
            let result = copy.withUnsafeMutableBufferPointer { sampler.sample(logits: $0.baseAddress!, count: $0.count) }
            let total = logits.map { exp(Double($0) / 2) }.reduce(0, +)
            let expected = Double(logits[Int(result.token)]) / 2 - log(total)
            #expect(abs(Double(result.logprob) - expected) < 1e-5, "token \(result.token)")
        }
    }
}
