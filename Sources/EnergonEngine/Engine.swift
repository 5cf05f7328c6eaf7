import EnergonCore
import EnergonModels
import EnergonTokenizers
import Foundation
import Synchronization

/// One generation request, in token ids.
public struct GenerationRequest: Sendable {
    /// Prompt token ids (BOS included if the model wants one).
    public var prompt: [Int32]
    /// How tokens are chosen.
    public var sampling: SamplingParameters
    /// Most tokens to generate.
    public var maxTokens: Int
    /// Stop when the text contains one of these (not returned).
    public var stopStrings: [String]
    /// Keep going past end-of-sequence tokens.
    public var ignoreEOS: Bool

    /// Creates a request.
    public init(prompt: [Int32], sampling: SamplingParameters = .greedy, maxTokens: Int = 128,
                stopStrings: [String] = [], ignoreEOS: Bool = false) {
        self.prompt = prompt
        self.sampling = sampling
        self.maxTokens = maxTokens
        self.stopStrings = stopStrings
        self.ignoreEOS = ignoreEOS
    }
}

/// One step of a generation stream.
public struct GeneratedToken: Sendable {
    /// The sampled token.
    public var token: Int32
    /// Text that became complete with this token (may be empty while a character or a possible
    /// stop string is pending).
    public var text: String
    /// Log-probability of the token under the sampling distribution.
    public var logprob: Float
    /// Set on the last element of the stream.
    public var finishReason: FinishReason?
}

/// Why the engine refused or ended a request.
public enum EngineError: Error, CustomStringConvertible, Equatable {
    /// The waiting queue is full (HTTP 429).
    case overloaded(waiting: Int)
    /// The prompt cannot fit in the KV cache or the context.
    case promptTooLong(tokens: Int, limit: Int)
    /// The request is malformed.
    case invalidRequest(String)
    /// The engine was shut down.
    case shutDown
    /// The model failed while running the request's batch.
    case modelFailed(String)

    public var description: String {
        switch self {
        case let .overloaded(waiting): "overloaded: \(waiting) requests already waiting"
        case let .promptTooLong(tokens, limit): "the prompt has \(tokens) tokens; at most \(limit) fit"
        case let .invalidRequest(message): "invalid request: \(message)"
        case .shutDown: "the engine is shut down"
        case let .modelFailed(message): "the model failed: \(message)"
        }
    }
}

/// The controller of the hierarchy: it owns every request, schedules iteration-level
/// (continuous) batches under a token budget — decodes of running sequences plus chunks of
/// waiting prompts, packed ragged — runs them on a `ModelRunner` (one rank or a tp × pp grid),
/// samples, and streams tokens back. It never computes layers itself.
///
/// The scheduling loop runs on a dedicated thread; `submit` and `cancel` only take a lock, so
/// they are safe to call from Swift concurrency without blocking a cooperative thread.
public final class Engine: Sendable {
    /// Scheduling limits.
    public struct Configuration: Sendable {
        /// Most tokens (prefill chunks + decodes) in one forward pass.
        public var maxBatchTokens = 512
        /// Most sequences running at once.
        public var maxRunningSequences = 64
        /// Most requests waiting to start; more are refused with `.overloaded`.
        public var maxWaitingRequests = 256
        /// Creates limits.
        public init(maxBatchTokens: Int = 512, maxRunningSequences: Int = 64, maxWaitingRequests: Int = 256) {
            self.maxBatchTokens = maxBatchTokens
            self.maxRunningSequences = maxRunningSequences
            self.maxWaitingRequests = maxWaitingRequests
        }
    }

    let runner: any ModelRunner
    let tokenizer: any Tokenizer
    let configuration: Configuration
    private let state: Mutex<EngineState>
    private let wake = NSCondition()
    private let stopped = Atomic<Bool>(false)

    /// Starts an engine over `runner`.
    public init(runner: any ModelRunner, tokenizer: any Tokenizer, configuration: Configuration = Configuration()) {
        self.runner = runner
        self.tokenizer = tokenizer
        self.configuration = configuration
        state = Mutex(EngineState())
        let thread = Thread { [self] in self.loop() }
        thread.name = "energon-engine"
        thread.start()
    }

    /// Queues a request; its tokens arrive on the returned stream, which ends with a token whose
    /// `finishReason` is set, or with an error. Throws `.overloaded` when the queue is full.
    public func submit(_ request: GenerationRequest) throws -> (id: Int, stream: AsyncThrowingStream<GeneratedToken, any Error>) {
        if stopped.load(ordering: .acquiring) { throw EngineError.shutDown }
        guard !request.prompt.isEmpty else { throw EngineError.invalidRequest("the prompt has no tokens") }
        guard request.maxTokens >= 0 else { throw EngineError.invalidRequest("max tokens must be ≥ 0") }
        do { try request.sampling.validate() } catch { throw EngineError.invalidRequest("\(error)") }
        let limit = min(runner.configuration.contextLength, runner.blocks.blockCount * runner.blocks.blockSize)
        guard request.prompt.count + 1 <= limit else {
            throw EngineError.promptTooLong(tokens: request.prompt.count, limit: limit - 1)
        }
        let (stream, continuation) = AsyncThrowingStream<GeneratedToken, any Error>.makeStream()
        let id = try state.withLock { state -> Int in
            guard state.waiting.count < configuration.maxWaitingRequests else {
                throw EngineError.overloaded(waiting: state.waiting.count)
            }
            state.nextID += 1
            let sequence = Sequence(id: state.nextID, request: request, tokenizer: tokenizer, continuation: continuation)
            state.waiting.append(sequence)
            return sequence.id
        }
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination { self?.cancel(id) }
        }
        signal()
        return (id, stream)
    }

    /// Ends request `id` (its stream finishes with `.cancelled`) and frees its cache blocks.
    public func cancel(_ id: Int) {
        state.withLock { $0.cancelled.insert(id) }
        signal()
    }

    /// Stops the loop; running and waiting requests end with `.shutDown`.
    public func shutdown() {
        stopped.store(true, ordering: .releasing)
        signal()
    }

    /// Requests waiting and running (for metrics and tests).
    public var load: (waiting: Int, running: Int) {
        state.withLock { ($0.waiting.count, $0.running.count) }
    }

    private func signal() {
        wake.lock()
        wake.signal()
        wake.unlock()
    }

    // MARK: - The scheduling loop (engine thread only)

    private func loop() {
        var running: [Sequence] = []
        while true {
            if stopped.load(ordering: .acquiring) {
                let waiting = state.withLock { state in defer { state.waiting.removeAll() }; return state.waiting }
                for sequence in running + waiting { finish(sequence, error: EngineError.shutDown) }
                return
            }
            let (newcomers, cancelled) = state.withLock { state in
                defer { state.cancelled.removeAll() }
                return (state.waiting, state.cancelled)
            }
            // Cancellations, running or waiting.
            if !cancelled.isEmpty {
                running.removeAll { sequence in
                    guard cancelled.contains(sequence.id) else { return false }
                    finish(sequence, reason: .cancelled)
                    return true
                }
                state.withLock { state in
                    state.waiting.removeAll { sequence in
                        guard cancelled.contains(sequence.id) else { return false }
                        finish(sequence, reason: .cancelled)
                        return true
                    }
                }
            }
            let plan = schedule(running: &running, waitingCount: newcomers.count)
            state.withLock { $0.running = running.map(\.id) }
            if plan.isEmpty, let newest = running.last {
                // Running sequences exist but none could get KV blocks: free the newest one's
                // blocks for the others, or refuse a request that cannot fit even alone.
                running.removeLast()
                if running.isEmpty {
                    finish(newest, error: EngineError.promptTooLong(tokens: newest.tokens.count,
                                                                    limit: runner.blocks.blockCount * runner.blocks.blockSize - 1))
                } else {
                    preempt(newest)
                }
                continue
            }
            guard !plan.isEmpty else {
                wake.lock()
                if state.withLock({ $0.waiting.isEmpty && $0.cancelled.isEmpty }) && !stopped.load(ordering: .acquiring) {
                    _ = wake.wait(until: Date(timeIntervalSinceNow: 1))
                }
                wake.unlock()
                continue
            }
            step(plan, running: &running)
        }
    }

    /// One entry of an iteration's batch.
    private struct Entry {
        let sequence: Sequence
        let tokens: [Int32]
        let samples: Bool
    }

    /// Picks this iteration's work: one decode token for every running sequence past its
    /// prompt, then prompt chunks of running and newly admitted sequences (FIFO), all under
    /// the token budget and the free KV blocks. When blocks run out for a decode, the most
    /// recently admitted sequence is preempted: its blocks are freed and it waits to recompute.
    private func schedule(running: inout [Sequence], waitingCount: Int) -> [Entry] {
        var budget = configuration.maxBatchTokens
        var entries: [Entry] = []
        let blocks = runner.blocks
        // Decodes first: they keep every running sequence moving.
        var index = 0
        while index < running.count {
            let sequence = running[index]
            guard sequence.processed >= sequence.tokens.count - 1, budget > 0 else { index += 1; continue }
            do {
                try blocks.ensureCapacity(&sequence.table, positions: sequence.processed + 1)
                entries.append(Entry(sequence: sequence, tokens: [sequence.tokens[sequence.processed]], samples: true))
                budget -= 1
                index += 1
            } catch {
                // Out of blocks: preempt the newest other sequence (or this one) and retry.
                let victim = running.removeLast()
                entries.removeAll { $0.sequence === victim }
                preempt(victim)
                if victim === sequence { continue }
            }
        }
        // Admit waiting requests while there is room.
        if waitingCount > 0 {
            state.withLock { state in
                while running.count < configuration.maxRunningSequences, !state.waiting.isEmpty {
                    running.append(state.waiting.removeFirst())
                }
            }
        }
        // Prompt chunks (chunked prefill), oldest first.
        for sequence in running where sequence.processed < sequence.tokens.count - 1 || (sequence.processed == 0) {
            guard budget > 0 else { break }
            if entries.contains(where: { $0.sequence === sequence }) { continue }
            let remaining = sequence.tokens.count - sequence.processed
            let chunk = min(remaining, budget)
            do {
                try blocks.ensureCapacity(&sequence.table, positions: sequence.processed + chunk)
            } catch {
                break  // wait for blocks to be freed by finishing sequences
            }
            let tokens = Array(sequence.tokens[sequence.processed..<(sequence.processed + chunk)])
            entries.append(Entry(sequence: sequence, tokens: tokens, samples: chunk == remaining))
            budget -= chunk
        }
        return entries
    }

    private func preempt(_ sequence: Sequence) {
        runner.blocks.free(sequence.table)
        sequence.table.removeAll()
        sequence.processed = 0  // recompute prompt + generated tokens when it runs again
        state.withLock { $0.waiting.insert(sequence, at: 0) }
    }

    private func step(_ entries: [Entry], running: inout [Sequence]) {
        var batch = ForwardBatch(sequences: entries.map { ($0.tokens, $0.sequence.processed, $0.sequence.table) })
        batch.logitRows = []
        var offset = 0
        for entry in entries {
            if entry.samples { batch.logitRows.append(offset + entry.tokens.count - 1) }
            offset += entry.tokens.count
        }
        let logits: UnsafeMutablePointer<Float>?
        do {
            logits = try runner.forward(batch)
        } catch {
            for entry in entries { finish(entry.sequence, error: EngineError.modelFailed("\(error)")) }
            running.removeAll { sequence in entries.contains { $0.sequence === sequence } }
            return
        }
        let vocabulary = runner.configuration.vocabularySize
        var row = 0
        var finished: [Sequence] = []
        for entry in entries {
            let sequence = entry.sequence
            sequence.processed += entry.tokens.count
            guard entry.samples, let logits else { continue }
            let (token, logprob) = sequence.sampler.sample(logits: logits + row * vocabulary, count: vocabulary)
            row += 1
            if let reason = sequence.accept(token, logprob: logprob, eos: tokenizer.eosTokenIDs,
                                            contextLimit: runner.blocks.blockCount * runner.blocks.blockSize) {
                finish(sequence, reason: reason)  // frees the blocks before the stream ends
                finished.append(sequence)
            }
        }
        running.removeAll { sequence in finished.contains { $0 === sequence } }
    }

    private func finish(_ sequence: Sequence, reason: FinishReason) {
        runner.blocks.free(sequence.table)
        sequence.table.removeAll()
        sequence.close(reason)
    }

    private func finish(_ sequence: Sequence, error: any Error) {
        runner.blocks.free(sequence.table)
        sequence.table.removeAll()
        sequence.continuation.finish(throwing: error)
    }
}

/// Queues shared between callers and the engine thread.
struct EngineState: ~Copyable {
    var nextID = 0
    var waiting: [Sequence] = []
    var running: [Int] = []
    var cancelled: Set<Int> = []
}

/// A request being served: its tokens so far, cache blocks, sampler and stream.
final class Sequence: @unchecked Sendable {
    let id: Int
    let request: GenerationRequest
    /// Prompt, then generated tokens.
    var tokens: [Int32]
    /// Tokens whose keys and values are in the cache.
    var processed = 0
    var table: [Int32] = []
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
