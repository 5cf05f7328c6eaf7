import EnergonTokenizers

/// A request being served: its tokens so far, cache blocks, sampler and stream.
final class ServedSequence: @unchecked Sendable {
    let id: Int
    let request: GenerationRequest
    /// Prompt, then generated tokens.
    var tokens: [Int32]
    /// Tokens whose keys and values are in the cache.
    var processed = 0
    var table: [Int32] = []
    /// Leading blocks of `table` registered in (or taken from) the prefix cache.
    var registeredBlocks = 0
    /// The lane (pipeline slot) whose batches carry this sequence.
    var lane = 0
    /// Whether a batch holding this sequence is in flight (its blocks must not be freed yet).
    var inFlight = false
    /// Admitted to a lane (counted in `Engine.load.running`).
    var isRunning = false
    /// Cancelled while in flight: ends once its batch comes back.
    var cancelRequested = false
    var sampler: Sampler
    var decoder: StreamingDecoder
    var generated = 0
    var text = ""
    var emitted = 0
    let continuation: AsyncThrowingStream<GeneratedToken, any Error>.Continuation
    private var pending: (token: Int32, logprob: Float)?

    init(id: Int, request: GenerationRequest, tokenizer: any Tokenizer,
         continuation: AsyncThrowingStream<GeneratedToken, any Error>.Continuation) {
        self.id = id
        self.request = request
        tokens = request.prompt
        sampler = Sampler(parameters: request.sampling, prompt: request.prompt)
        decoder = StreamingDecoder(tokenizer: tokenizer, continuesText: true)
        self.continuation = continuation
    }

    /// Records a sampled token and streams what became final; returns why the sequence ends, if it does.
    func accept(_ token: Int32, logprob: Float, eos: Set<Int32>, contextLimit: Int) -> FinishReason? {
        sampler.accept(token)
        tokens.append(token)
        generated += 1
        if !request.ignoreEOS && eos.contains(token) {
            pending = (token, logprob)
            return .stop
        }
        text += decoder.feed(token)
        let stops = request.stopStrings.filter { !$0.isEmpty }
        if let stop = stops.compactMap({ text.range(of: $0)?.lowerBound }).min() {
            text = String(text[..<stop])
            pending = (token, logprob)
            return .stopString
        }
        if generated >= request.maxTokens || tokens.count >= contextLimit {
            pending = (token, logprob)  // close() emits the remaining text with this token
            return .length
        }
        // Hold back the last characters while they could still begin a stop string.
        let holdBack = max(0, (stops.map(\.count).max() ?? 0) - 1)
        let end = text.count - holdBack
        let delta = end > emitted ? String(text.dropFirst(emitted).prefix(end - emitted)) : ""
        emitted = max(emitted, end)
        continuation.yield(GeneratedToken(token: token, text: delta, logprob: logprob, finishReason: nil))
        return nil
    }

    /// Ends the stream with `reason`, emitting any text still held back.
    func close(_ reason: FinishReason) {
        if reason == .length || reason == .stop { text += decoder.finish() }
        let rest = text.count > emitted ? String(text.dropFirst(emitted)) : ""
        emitted = text.count
        let last = pending ?? (-1, .nan)
        continuation.yield(GeneratedToken(token: last.token, text: rest, logprob: last.logprob, finishReason: reason))
        continuation.finish()
    }
}
