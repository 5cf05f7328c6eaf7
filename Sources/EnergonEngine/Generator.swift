import EnergonCore
import EnergonModels
import EnergonTokenizers

#if canImport(Glibc)
import Glibc
#endif

/// Why a generation stopped.
public enum FinishReason: String, Sendable {
    /// The model produced an end-of-sequence token or a stop token.
    case stop
    /// A stop string appeared in the text.
    case stopString = "stop_string"
    /// The token budget was used up.
    case length
    /// The caller asked to stop.
    case cancelled
}

/// What one generation produced and how long it took.
public struct GenerationResult: Sendable {
    /// The generated token ids.
    public var tokens: [Int32]
    /// The generated text (without a stop string).
    public var text: String
    /// Why generation ended.
    public var finishReason: FinishReason
    /// Tokens in the prompt.
    public var promptTokens: Int
    /// Time of the prompt pass (prefill).
    public var promptSeconds: Double
    /// Time from the first sampled token to the last.
    public var generationSeconds: Double

    public var promptTokensPerSecond: Double { promptSeconds > 0 ? Double(promptTokens) / promptSeconds : 0 }
    /// Decode speed (tokens after the first, per second).
    public var generationTokensPerSecond: Double {
        generationSeconds > 0 ? Double(max(0, tokens.count - 1)) / generationSeconds : 0
    }
}

/// Generates text for one sequence at a time on the calling thread: prefill of the whole
/// prompt in ragged chunks (the GEMM path), then one token per step (the matvec path).
///
/// This is the single-sequence loop behind `energon generate`, `perplexity` and `bench`; the
/// `Engine` builds continuous batching on the same `DecoderRuntime`.
public final class Generator: @unchecked Sendable {
    /// Runs the model (serially, or split over ranks).
    public let runner: any ModelRunner
    /// The model's tokenizer.
    public let tokenizer: any Tokenizer
    /// Longest prompt chunk one forward pass takes.
    public var prefillChunk = 512
    /// Positions the cache can hold for the sequence.
    public let contextLength: Int

    /// The model's hyperparameters.
    public var configuration: DecoderConfiguration { runner.configuration }

    /// Creates a generator over `runner`.
    public init(runner: any ModelRunner, tokenizer: any Tokenizer) {
        self.runner = runner
        self.tokenizer = tokenizer
        contextLength = min(runner.configuration.contextLength, runner.blocks.blockCount * runner.blocks.blockSize)
    }

    /// Creates a serial generator with a KV cache of `contextLength` positions (default: the
    /// model's, at most 4096) of `kvCacheType` rows (`.f16`, llama.cpp's default, or `.f32`).
    public convenience init(loaded: LoadedModel, context: ComputeContext, contextLength: Int? = nil, blockSize: Int = 16,
                            kvCacheType: DType = .f16) {
        let configuration = loaded.model.configuration
        let length = Generator.cacheLength(configuration: configuration, requested: contextLength)
        let runner = SerialRunner(model: loaded.model, context: context, blockSize: blockSize,
                                  blockCount: (length + blockSize - 1) / blockSize, kvCacheType: kvCacheType)
        self.init(runner: runner, tokenizer: loaded.tokenizer)
    }

    /// The cache length to allocate for a requested context (default: the model's, at most 4096).
    public static func cacheLength(configuration: DecoderConfiguration, requested: Int?) -> Int {
        max(1, min(requested ?? min(configuration.contextLength, 4096), configuration.contextLength))
    }

    /// Runs `tokens` through the model starting at `startPosition` of the sequence whose blocks
    /// are `table`, and returns logits `[rows, vocab]`: of the last token, or of every token from
    /// index `logitsFrom` on when it is given (perplexity).
    public func forward(_ tokens: [Int32], startPosition: Int, table: inout [Int32],
                        logitsFrom: Int? = nil) throws -> UnsafeMutablePointer<Float>? {
        guard startPosition + tokens.count <= contextLength else {
            throw ModelError.contextOverflow(needed: startPosition + tokens.count, limit: contextLength)
        }
        try runner.blocks.ensureCapacity(&table, positions: startPosition + tokens.count)
        var batch = ForwardBatch(sequences: [(tokens: tokens, startPosition: startPosition, blockTable: table)])
        if let logitsFrom { batch.logitRows = Array(min(logitsFrom, tokens.count)..<tokens.count) }
        return try runner.forward(batch)
    }

    /// Frees the cache blocks of a sequence.
    public func release(_ table: inout [Int32]) {
        runner.blocks.free(table)
        table.removeAll()
    }

    /// Generates a continuation of `prompt`.
    /// - Parameters:
    ///   - prompt: token ids (BOS included if the model wants one).
    ///   - parameters: sampling parameters.
    ///   - maxTokens: most tokens to generate.
    ///   - stopStrings: stop when the text contains one of these (the stop string is not returned).
    ///   - ignoreEOS: keep going past end-of-sequence tokens (benchmarks).
    ///   - onText: receives each text delta as it becomes complete UTF-8; return false to stop.
    public func generate(prompt: [Int32], parameters: SamplingParameters = .greedy, maxTokens: Int,
                         stopStrings: [String] = [], ignoreEOS: Bool = false,
                         onText: (String) -> Bool = { _ in true }) throws -> GenerationResult {
        try parameters.validate()
        guard !prompt.isEmpty else { throw ModelError.invalidValue(key: "prompt", value: "[]", reason: "the prompt has no tokens") }
        let vocabulary = configuration.vocabularySize
        var table: [Int32] = []
        defer { release(&table) }
        var sampler = Sampler(parameters: parameters, prompt: prompt)
        var decoder = StreamingDecoder(tokenizer: tokenizer, continuesText: true)  // text follows the prompt
        var result = GenerationResult(tokens: [], text: "", finishReason: .length, promptTokens: prompt.count,
                                      promptSeconds: 0, generationSeconds: 0)
        let promptStart = monotonicSeconds()
        var logits: UnsafeMutablePointer<Float>?
        var position = 0
        while position < prompt.count {
            let chunk = Array(prompt[position..<min(prompt.count, position + prefillChunk)])
            logits = try forward(chunk, startPosition: position, table: &table)
            position += chunk.count
        }
        result.promptSeconds = monotonicSeconds() - promptStart
        let generationStart = monotonicSeconds()
        let maxStop = stopStrings.map(\.count).max() ?? 0
        var emitted = 0  // characters of result.text already passed to onText
        while result.tokens.count < maxTokens, let current = logits {
            let (token, _) = sampler.sample(logits: current, count: vocabulary, logprob: false)
            sampler.accept(token)
            result.tokens.append(token)
            if !ignoreEOS && tokenizer.eosTokenIDs.contains(token) {
                result.finishReason = .stop
                break
            }
            result.text += decoder.feed(token)
            if maxStop > 0, let stop = earliestStop(in: result.text, stopStrings) {
                result.text = String(result.text[..<stop])
                emit(&emitted, result.text, onText)
                result.finishReason = .stopString
                break
            }
            // Hold back the last characters while they could still begin a stop string.
            let holdBack = maxStop > 0 ? maxStop - 1 : 0
            if !emit(&emitted, result.text, onText, holdBack: holdBack) {
                result.finishReason = .cancelled
                break
            }
            if result.tokens.count >= maxTokens { break }
            if position >= contextLength {
                result.finishReason = .length
                break
            }
            logits = try forward([token], startPosition: position, table: &table)
            position += 1
        }
        if result.finishReason == .length || result.finishReason == .stop {
            result.text += decoder.finish()
            emit(&emitted, result.text, onText)
        }
        result.generationSeconds = monotonicSeconds() - generationStart
        return result
    }
}

/// The start of the first stop string found in `text`.
private func earliestStop(in text: String, _ stops: [String]) -> String.Index? {
    stops.compactMap { $0.isEmpty ? nil : text.range(of: $0)?.lowerBound }.min()
}

/// Passes the characters of `text` after the first `emitted` ones, except the last `holdBack`,
/// to `onText`; returns what `onText` returned (true when there was nothing to pass).
@discardableResult
private func emit(_ emitted: inout Int, _ text: String, _ onText: (String) -> Bool, holdBack: Int = 0) -> Bool {
    let end = text.count - holdBack
    guard end > emitted else { return true }
    let piece = String(text.dropFirst(emitted).prefix(end - emitted))
    emitted = end
    return onText(piece)
}

/// Seconds on a monotonic clock.
public func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}
