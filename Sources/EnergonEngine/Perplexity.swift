import EnergonModels

#if canImport(Glibc)
import Glibc
#endif

/// Perplexity computed the way llama.cpp's `llama-perplexity` computes it, so the two can be
/// compared number for number: the tokens are cut into non-overlapping chunks of `context`
/// tokens, the first token of each chunk is replaced by BOS when the model adds one, and only
/// the second half of each chunk is scored (every scored token then has at least context/2
/// tokens of history).
public enum Perplexity {
    /// The running result after each chunk.
    public struct Progress: Sendable {
        /// Chunks scored so far.
        public var chunk: Int
        /// Chunks in all.
        public var chunks: Int
        /// Perplexity over the chunks scored so far.
        public var perplexity: Double
        /// Tokens scored so far.
        public var scoredTokens: Int
    }

    /// Computes the perplexity of `tokens`.
    /// - Parameters:
    ///   - generator: a generator whose cache holds at least `context` positions.
    ///   - tokens: the text's token ids (no BOS added).
    ///   - context: tokens per chunk.
    ///   - maxChunks: score at most this many chunks (0 = all).
    ///   - progress: called after each chunk.
    /// - Returns: the perplexity and the number of tokens scored.
    public static func compute(generator: Generator, tokens: [Int32], context: Int, maxChunks: Int = 0,
                               progress: (Progress) -> Void = { _ in }) throws -> (perplexity: Double, scoredTokens: Int) {
        var chunkCount = tokens.count / context
        if maxChunks > 0 { chunkCount = min(chunkCount, maxChunks) }
        guard chunkCount > 0 else {
            throw ModelError.invalidValue(key: "context", value: String(context),
                                          reason: "the text has \(tokens.count) tokens, fewer than one chunk")
        }
        let tokenizer = generator.tokenizer
        let vocabulary = generator.configuration.vocabularySize
        let first = context / 2
        var negativeLogLikelihood = 0.0
        var scored = 0
        for chunk in 0..<chunkCount {
            var input = Array(tokens[(chunk * context)..<((chunk + 1) * context)])
            if tokenizer.addsBOS, let bos = tokenizer.bosTokenID { input[0] = bos }
            var table: [Int32] = []
            defer { generator.release(&table) }
            guard let logits = try generator.forward(input, startPosition: 0, table: &table, logitsFrom: first) else { continue }
            // Row r holds the logits at position first + r, which predict token first + r + 1.
            for r in 0..<(context - 1 - first) {
                let row = logits + r * vocabulary
                var maximum = -Float.infinity
                for i in 0..<vocabulary { maximum = max(maximum, row[i]) }
                var sum = 0.0
                for i in 0..<vocabulary { sum += Double(expf(row[i] - maximum)) }
                let target = Int(input[first + r + 1])
                negativeLogLikelihood += log(sum) + Double(maximum) - Double(row[target])
                scored += 1
            }
            progress(Progress(chunk: chunk + 1, chunks: chunkCount, perplexity: exp(negativeLogLikelihood / Double(scored)),
                              scoredTokens: scored))
        }
        return (exp(negativeLogLikelihood / Double(scored)), scored)
    }
}
