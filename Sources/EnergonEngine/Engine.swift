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
/// With a pipelined runner (pp > 1) the controller keeps up to one batch per *lane* in flight:
/// each running sequence belongs to one lane, a lane's batch holds only its sequences, and
/// while stage 2 works on lane 0's batch stage 1 already works on lane 1's. The controller
/// samples a lane's results as they come back and submits that lane's next batch at once.
///
/// Identical prompt prefixes share KV-cache blocks (`BlockManager`'s prefix cache): a request
/// whose prompt starts with a cached prefix computes only the rest.
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
        /// Batches in flight at once on a pipelined runner (`nil`: as many as it holds; 1: blocking).
        public var batchesInFlight: Int?
        /// Share KV-cache blocks between requests with identical prompt prefixes.
        public var prefixCaching = true
        /// Pad every sequence of a batch to the longest one (as engines without ragged batches
        /// must): wasted work, for benchmarks that measure what padding removal saves.
        public var paddedBatches = false

        /// Creates limits.
        public init(maxBatchTokens: Int = 512, maxRunningSequences: Int = 64, maxWaitingRequests: Int = 256,
                    batchesInFlight: Int? = nil, prefixCaching: Bool = true, paddedBatches: Bool = false) {
            self.maxBatchTokens = maxBatchTokens
            self.maxRunningSequences = maxRunningSequences
            self.maxWaitingRequests = maxWaitingRequests
            self.batchesInFlight = batchesInFlight
            self.prefixCaching = prefixCaching
            self.paddedBatches = paddedBatches
        }
    }

    /// Counters since the engine started.
    public struct Statistics: Sendable, Equatable {
        /// Requests accepted by `submit`.
        public var requests = 0
        /// Requests refused because the queue was full.
        public var refused = 0
        /// Forward passes run.
        public var batches = 0
        /// Tokens run through the model (prefill chunks + decodes, padding excluded).
        public var computedTokens = 0
        /// Padding tokens run (only with `paddedBatches`).
        public var paddingTokens = 0
        /// Tokens sampled.
        public var generatedTokens = 0
        /// Prompt tokens taken from the prefix cache instead of being computed.
        public var prefixCachedTokens = 0
        /// Sequences preempted (blocks freed, to be recomputed).
        public var preemptions = 0
        /// Seconds the controller spent sampling.
        public var samplingSeconds = 0.0

        /// All zero.
        public init() {}
    }

    let runner: any ModelRunner
    let tokenizer: any Tokenizer
    let configuration: Configuration
    let state: Mutex<EngineState>
    let wake = NSCondition()
    let stopped = Atomic<Bool>(false)
    let draining = Atomic<Bool>(false)
    let loopEnded = DispatchSemaphore(value: 0)
    /// Lanes: one batch each in flight.
    let laneCount: Int

    /// Starts an engine over `runner`.
    public init(runner: any ModelRunner, tokenizer: any Tokenizer, configuration: Configuration = Configuration()) {
        self.runner = runner
        self.tokenizer = tokenizer
        self.configuration = configuration
        let pipelineDepth = (runner as? any PipelinedModelRunner)?.maxBatchesInFlight ?? 1
        laneCount = max(1, min(configuration.batchesInFlight ?? pipelineDepth, pipelineDepth))
        runner.blocks.prefixCachingEnabled = configuration.prefixCaching
        state = Mutex(EngineState())
        let thread = Thread { [self] in
            self.loop()
            self.loopEnded.signal()
        }
        thread.name = "energon-engine"
        thread.start()
    }

    /// Queues a request; its tokens arrive on the returned stream, which ends with a token whose
    /// `finishReason` is set, or with an error. Throws `.overloaded` when the queue is full.
    public func submit(_ request: GenerationRequest) throws -> (id: Int, stream: AsyncThrowingStream<GeneratedToken, any Error>) {
        if stopped.load(ordering: .acquiring) || draining.load(ordering: .acquiring) { throw EngineError.shutDown }
        guard !request.prompt.isEmpty else { throw EngineError.invalidRequest("the prompt has no tokens") }
        guard request.maxTokens >= 0 else { throw EngineError.invalidRequest("max tokens must be ≥ 0") }
        do { try request.sampling.validate() } catch { throw EngineError.invalidRequest("\(error)") }
        let vocabulary = Int32(runner.configuration.vocabularySize)
        if let bad = request.prompt.first(where: { $0 < 0 || $0 >= vocabulary }) {
            throw EngineError.invalidRequest("token id \(bad) is outside the vocabulary (0..<\(vocabulary))")
        }
        let limit = contextLimit
        guard request.prompt.count + 1 <= limit else {
            throw EngineError.promptTooLong(tokens: request.prompt.count, limit: limit - 1)
        }
        let (stream, continuation) = AsyncThrowingStream<GeneratedToken, any Error>.makeStream()
        let id = try state.withLock { state -> Int in
            guard state.waiting.count < configuration.maxWaitingRequests else {
                state.statistics.refused += 1
                throw EngineError.overloaded(waiting: state.waiting.count)
            }
            state.nextID += 1
            state.statistics.requests += 1
            let sequence = ServedSequence(id: state.nextID, request: request, tokenizer: tokenizer, continuation: continuation)
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
        state.withLock { _ = $0.cancelled.insert(id) }
        signal()
    }

    /// Stops the loop now; running and waiting requests end with `.shutDown`.
    public func shutdown() {
        stopped.store(true, ordering: .releasing)
        signal()
    }

    /// Stops accepting requests, lets every running and waiting request finish, then stops.
    /// Returns `false` if they did not finish within `timeout` seconds (the rest then end with
    /// `.shutDown`).
    @discardableResult
    public func shutdownGracefully(timeout: Double) -> Bool {
        draining.store(true, ordering: .releasing)
        signal()
        let finished = loopEnded.wait(timeout: .now() + timeout) == .success
        if !finished {
            shutdown()
            _ = loopEnded.wait(timeout: .now() + 60)
        }
        loopEnded.signal()  // later calls return at once
        return finished
    }

    /// Requests waiting and running (for metrics and tests).
    public var load: (waiting: Int, running: Int) {
        state.withLock { ($0.waiting.count, $0.running) }
    }

    /// Counters since the engine started.
    public var statistics: Statistics { state.withLock { $0.statistics } }

    /// Positions one sequence may reach: the model's context, at most what the cache holds.
    var contextLimit: Int {
        min(runner.configuration.contextLength, runner.blocks.blockCount * runner.blocks.blockSize)
    }

    func signal() {
        wake.lock()
        wake.signal()
        wake.unlock()
    }
}

/// Queues shared between callers and the engine thread.
struct EngineState: ~Copyable {
    var nextID = 0
    var waiting: [ServedSequence] = []
    var running = 0
    var cancelled: Set<Int> = []
    var statistics = Engine.Statistics()
}
