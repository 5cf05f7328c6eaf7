import EnergonCheckpoint
import EnergonEngine
import EnergonModels
import EnergonTokenizers
import Foundation
import Synchronization
import Testing

/// A deterministic stand-in for a model, to test the controller alone. Its "KV cache" stores the
/// token id at every position, written and read only through the batch's block tables; the next
/// token is a hash of every token the cache holds for the sequence. So a sequence gets the
/// closed-form continuation `FakeRunner.continuation` only if the engine kept its block table
/// right through chunked prefill, batching, preemption and prefix sharing.
///
/// It also checks the controller's invariants as batches arrive: the token budget, no write
/// into a block another sequence shares, and (with several lanes) no block written by one
/// in-flight batch while another in-flight batch uses it.
final class FakeRunner: PipelinedModelRunner, @unchecked Sendable {
    let configuration: DecoderConfiguration
    let blocks: BlockManager
    let maxBatchesInFlight: Int
    let budget: Int
    private var cache: [[Int32]]
    private var pending: [ForwardBatch?]
    private var logits: [[Float]]
    private let problems = Mutex<[String]>([])
    private(set) var batchSizes: [Int] = []

    init(configuration: DecoderConfiguration, blockSize: Int, blockCount: Int, slots: Int, budget: Int) {
        self.configuration = configuration
        blocks = BlockManager(blockSize: blockSize, blockCount: blockCount)
        maxBatchesInFlight = slots
        self.budget = budget
        cache = Array(repeating: Array(repeating: -1, count: blockSize), count: blockCount)
        pending = Array(repeating: nil, count: slots)
        logits = Array(repeating: [], count: slots)
    }

    /// Violations seen so far.
    var violations: [String] { problems.withLock { $0 } }

    /// The next token after `history` (a 64-bit FNV-1a hash of the ids, modulo the vocabulary).
    static func next(after history: [Int32], vocabulary: Int) -> Int32 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for token in history {
            hash = (hash ^ UInt64(UInt32(bitPattern: token))) &* 0x100_0000_01b3
        }
        return Int32(hash % UInt64(vocabulary))
    }

    /// What a sequence generates alone.
    static func continuation(of prompt: [Int32], count: Int, vocabulary: Int) -> [Int32] {
        var history = prompt
        for _ in 0..<count { history.append(next(after: history, vocabulary: vocabulary)) }
        return Array(history.dropFirst(prompt.count))
    }

    func forward(_ batch: ForwardBatch) throws -> UnsafeMutablePointer<Float>? {
        try submit(batch, slot: 0)
        return try wait(slot: 0)
    }

    func submit(_ batch: ForwardBatch, slot: Int) throws {
        if batch.totalTokens > budget { problems.withLock { $0.append("batch of \(batch.totalTokens) tokens > budget \(budget)") } }
        // Blocks this batch writes must be owned by it alone, and not be used by a batch in flight.
        for sequence in batch.sequences {
            let first = sequence.startPosition / blocks.blockSize
            let last = (sequence.startPosition + sequence.count - 1) / blocks.blockSize
            for block in sequence.blockTable[first...last] {
                if blocks.referenceCount(block) != 1 {
                    problems.withLock { $0.append("write into block \(block) owned \(blocks.referenceCount(block)) times") }
                }
                for other in pending.compactMap({ $0 }) where other.sequences.contains(where: { $0.blockTable.contains(block) }) {
                    _ = other
                    problems.withLock { $0.append("block \(block) written while another batch in flight uses it") }
                }
            }
        }
        pending[slot] = batch
        batchSizes.append(batch.totalTokens)
    }

    func wait(slot: Int) throws -> UnsafeMutablePointer<Float>? {
        guard let batch = pending[slot] else { return nil }
        pending[slot] = nil
        let vocabulary = configuration.vocabularySize
        let size = blocks.blockSize
        for sequence in batch.sequences {
            for index in 0..<sequence.count {
                let position = sequence.startPosition + index
                cache[Int(sequence.blockTable[position / size])][position % size] = batch.tokens[sequence.offset + index]
            }
        }
        var rows: [Float] = []
        for row in batch.logitRows {
            // invariant: every logit row belongs to one sequence
            let sequence = batch.sequences.first { row >= $0.offset && row < $0.offset + $0.count }!
            let end = sequence.startPosition + (row - sequence.offset)
            let history = (0...end).map { cache[Int(sequence.blockTable[$0 / size])][$0 % size] }
            var one = Array(repeating: Float(0), count: vocabulary)
            one[Int(FakeRunner.next(after: history, vocabulary: vocabulary))] = 30
            rows += one
        }
        logits[slot] = rows
        return logits[slot].withUnsafeMutableBufferPointer { $0.baseAddress }
    }
}

/// The controller (scheduler, block manager, lanes) against `FakeRunner`.
@Suite(.serialized) struct SchedulerTests {
    static let vocabulary = 128

    static func configuration(context: Int = 4096) throws -> DecoderConfiguration {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let file = try GGUFFile(path: root.appendingPathComponent("EnergonModelsTests/Fixtures/tiny-llama.gguf").path)
        var configuration = try ModelRegistry.configuration(architecture: "llama", metadata: file.metadata,
                                                            vocabularySize: vocabulary, source: "tiny-llama")
        configuration.contextLength = context
        return configuration
    }

    static func tokenizer() throws -> any Tokenizer {
        let smol = try #require(EngineTests.model, "run scripts/fetch_models.sh")
        return try TokenizerLoader.load(gguf: GGUFFile(path: smol))
    }

    func collect(_ stream: AsyncThrowingStream<GeneratedToken, any Error>) async throws -> (tokens: [Int32], reason: FinishReason?) {
        var tokens: [Int32] = [], reason: FinishReason?
        for try await piece in stream {
            if piece.token >= 0 { tokens.append(piece.token) }
            reason = piece.finishReason ?? reason
        }
        return (tokens, reason)
    }

    static func prompts(count: Int, sharedPrefix: Int, seed: UInt64) -> [[Int32]] {
        var random = SplitMix64(seed: seed)
        let prefix = (0..<sharedPrefix).map { _ in Int32(random.next() % UInt64(vocabulary)) }
        return (0..<count).map { _ in
            prefix + (0..<(1 + Int(random.next() % 20))).map { _ in Int32(random.next() % UInt64(vocabulary)) }
        }
    }

    @Test(arguments: [(1, 64, 512, false), (2, 64, 512, false), (1, 12, 16, false), (2, 14, 16, false),
                      (3, 64, 7, true), (2, 64, 512, true)])
    func concurrentRequestsGetTheirOwnContinuation(lanes: Int, blocks: Int, budget: Int, padded: Bool) async throws {
        let runner = FakeRunner(configuration: try Self.configuration(), blockSize: 4, blockCount: blocks, slots: lanes,
                                budget: padded ? Int.max : budget)
        let engine = Engine(runner: runner, tokenizer: try Self.tokenizer(),
                            configuration: .init(maxBatchTokens: budget, maxRunningSequences: 5, maxWaitingRequests: 64,
                                                 paddedBatches: padded))
        defer { engine.shutdown() }
        let prompts = Self.prompts(count: 12, sharedPrefix: 9, seed: UInt64(lanes * 1000 + blocks))
        let streams = try prompts.map { try engine.submit(GenerationRequest(prompt: $0, maxTokens: 10, ignoreEOS: true)).stream }
        for (prompt, stream) in zip(prompts, streams) {
            let result = try await collect(stream)
            #expect(result.tokens == FakeRunner.continuation(of: prompt, count: 10, vocabulary: Self.vocabulary))
            #expect(result.reason == .length)
        }
        #expect(runner.violations.isEmpty, "\(runner.violations.prefix(3))")
        #expect(runner.blocks.freeBlockCount == runner.blocks.blockCount, "every block returned")
        let statistics = engine.statistics
        #expect(statistics.generatedTokens == 12 * 10)
        if padded { #expect(statistics.paddingTokens > 0) } else { #expect(statistics.paddingTokens == 0) }
    }

    @Test(arguments: [1, 2])
    func exhaustedBlocksPreemptAndRecompute(lanes: Int) async throws {
        // Two one-token prompts growing to 41 positions each need 22 blocks; the cache has 12, so
        // one sequence is preempted (blocks freed) and later recomputes, and both still get
        // exactly their own continuation.
        let runner = FakeRunner(configuration: try Self.configuration(), blockSize: 4, blockCount: 12, slots: lanes, budget: 64)
        let engine = Engine(runner: runner, tokenizer: try Self.tokenizer(),
                            configuration: .init(maxBatchTokens: 64, maxRunningSequences: 4))
        defer { engine.shutdown() }
        let prompts: [[Int32]] = [[1], [2]]
        let streams = try prompts.map { try engine.submit(GenerationRequest(prompt: $0, maxTokens: 40, ignoreEOS: true)).stream }
        for (prompt, stream) in zip(prompts, streams) {
            let result = try await collect(stream)
            #expect(result.tokens == FakeRunner.continuation(of: prompt, count: 40, vocabulary: Self.vocabulary))
        }
        #expect(engine.statistics.preemptions > 0, "22 blocks of demand on a 12-block cache")
        #expect(runner.violations.isEmpty, "\(runner.violations.prefix(3))")
        #expect(runner.blocks.freeBlockCount == runner.blocks.blockCount)
    }

    @Test func identicalPrefixesShareBlocksAndSkipTheirCompute() async throws {
        let runner = FakeRunner(configuration: try Self.configuration(), blockSize: 4, blockCount: 256, slots: 1, budget: 512)
        let engine = Engine(runner: runner, tokenizer: try Self.tokenizer())
        defer { engine.shutdown() }
        let system = (0..<40).map { Int32($0 % 100) }  // 10 full blocks
        let first = system + [101, 102, 103]
        let firstResult = try await collect(try engine.submit(GenerationRequest(prompt: first, maxTokens: 3, ignoreEOS: true)).stream)
        #expect(firstResult.tokens == FakeRunner.continuation(of: first, count: 3, vocabulary: Self.vocabulary))
        let computedBefore = engine.statistics.computedTokens
        // The second request shares the 40-token system prompt: only its own tail is computed.
        let second = system + [7, 8]
        let secondResult = try await collect(try engine.submit(GenerationRequest(prompt: second, maxTokens: 3, ignoreEOS: true)).stream)
        #expect(secondResult.tokens == FakeRunner.continuation(of: second, count: 3, vocabulary: Self.vocabulary))
        let statistics = engine.statistics
        #expect(statistics.prefixCachedTokens == 40)
        #expect(statistics.computedTokens - computedBefore == 2 + 2, "the 2-token tail, then 2 decodes")
        // A prompt that is entirely cached still computes its last token.
        let repeated = try await collect(try engine.submit(GenerationRequest(prompt: system, maxTokens: 2, ignoreEOS: true)).stream)
        #expect(repeated.tokens == FakeRunner.continuation(of: system, count: 2, vocabulary: Self.vocabulary))
        #expect(runner.violations.isEmpty, "\(runner.violations.prefix(3))")
        #expect(runner.blocks.freeBlockCount == runner.blocks.blockCount)
        #expect(runner.blocks.cachedBlockCount > 0, "finished sequences leave their prefixes cached")
    }

    @Test func randomSubmissionsAndCancellationsLeakNoBlocks() async throws {
        for lanes in [1, 2] {
            let runner = FakeRunner(configuration: try Self.configuration(), blockSize: 4, blockCount: 40, slots: lanes, budget: 24)
            let engine = Engine(runner: runner, tokenizer: try Self.tokenizer(),
                                configuration: .init(maxBatchTokens: 24, maxRunningSequences: 6, maxWaitingRequests: 200))
            var random = SplitMix64(seed: UInt64(77 + lanes))
            var submitted: [(id: Int, prompt: [Int32], stream: AsyncThrowingStream<GeneratedToken, any Error>)] = []
            var cancelled = Set<Int>()
            for prompt in Self.prompts(count: 40, sharedPrefix: 6, seed: 5 + UInt64(lanes)) {
                let (id, stream) = try engine.submit(GenerationRequest(prompt: prompt, maxTokens: 8, ignoreEOS: true))
                submitted.append((id, prompt, stream))
                if random.next() % 3 == 0, let victim = submitted.randomElement(using: &random) {
                    engine.cancel(victim.id)
                    cancelled.insert(victim.id)
                }
                if random.next() % 4 == 0 { try await Task.sleep(nanoseconds: 200_000) }
            }
            for entry in submitted {
                let result = try await collect(entry.stream)
                if result.reason == .cancelled {
                    #expect(cancelled.contains(entry.id))
                } else {
                    #expect(result.tokens == FakeRunner.continuation(of: entry.prompt, count: 8, vocabulary: Self.vocabulary))
                }
            }
            #expect(runner.violations.isEmpty, "\(runner.violations.prefix(3))")
            #expect(runner.blocks.freeBlockCount == runner.blocks.blockCount, "no leaked blocks (lanes \(lanes))")
            #expect(engine.load == (0, 0))
            engine.shutdown()
        }
    }

    @Test func gracefulShutdownFinishesWhatWasAccepted() async throws {
        let runner = FakeRunner(configuration: try Self.configuration(), blockSize: 4, blockCount: 64, slots: 1, budget: 64)
        let engine = Engine(runner: runner, tokenizer: try Self.tokenizer())
        let prompts = Self.prompts(count: 4, sharedPrefix: 0, seed: 9)
        let streams = try prompts.map { try engine.submit(GenerationRequest(prompt: $0, maxTokens: 20, ignoreEOS: true)).stream }
        #expect(engine.shutdownGracefully(timeout: 30))
        #expect(throws: EngineError.shutDown) { try engine.submit(GenerationRequest(prompt: [1])) }
        for (prompt, stream) in zip(prompts, streams) {
            let result = try await collect(stream)
            #expect(result.tokens == FakeRunner.continuation(of: prompt, count: 20, vocabulary: Self.vocabulary))
        }
    }
}

/// The prefix cache's bookkeeping.
@Suite struct BlockManagerTests {
    @Test func registeredBlocksAreSharedThenEvictedLeastRecentlyUsedFirst() throws {
        let manager = BlockManager(blockSize: 2, blockCount: 6)
        let tokens: [Int32] = [1, 2, 3, 4, 5]
        var table: [Int32] = []
        try manager.ensureCapacity(&table, positions: 5)
        #expect(manager.registerFullBlocks(table: table, tokens: tokens, computed: 5, from: 0) == 2)
        // Another sequence with the same first four tokens takes the two full blocks.
        let (shared, positions) = manager.takeCachedPrefix(of: [1, 2, 3, 4, 9, 9], limit: 5)
        #expect(shared == Array(table.prefix(2)) && positions == 4)
        #expect(manager.referenceCount(table[0]) == 2)
        // Different first block: nothing matches, even though the second block's tokens do.
        #expect(manager.takeCachedPrefix(of: [0, 2, 3, 4, 5], limit: 4).positions == 0)
        // The limit keeps at least one token to compute.
        #expect(manager.takeCachedPrefix(of: [1, 2, 3, 4], limit: 3).positions == 2)
        manager.free([table[0]])
        manager.free(shared)
        manager.free(table)
        #expect(manager.freeBlockCount == 6 && manager.cachedBlockCount == 2)
        // Plain free blocks go first, then the least recently freed cached block: a table is
        // freed last block first, so the child table[1] became unowned before its parent.
        var other: [Int32] = []
        try manager.ensureCapacity(&other, positions: 8)  // 4 plain blocks
        #expect(manager.cachedBlockCount == 2)
        try manager.ensureCapacity(&other, positions: 10)  // evicts one cached block
        #expect(manager.cachedBlockCount == 1)
        let evicted = other.last!
        #expect(evicted == table[1], "table[1] became unowned before table[0]")
        // The parent block is still cached and matches; the evicted child does not.
        let (again, againPositions) = manager.takeCachedPrefix(of: [1, 2, 3, 4, 5], limit: 4)
        #expect(again == [table[0]] && againPositions == 2)
        manager.free(again)
        manager.free(other)
        #expect(manager.freeBlockCount == 6)
    }

    @Test func aReusedParentInvalidatesItsChildren() throws {
        let manager = BlockManager(blockSize: 1, blockCount: 3)
        var table: [Int32] = []
        try manager.ensureCapacity(&table, positions: 2)
        _ = manager.registerFullBlocks(table: table, tokens: [10, 11], computed: 2, from: 0)
        manager.free(table)
        // Evict both cached blocks (child first), then return them as plain blocks.
        var filler: [Int32] = []
        try manager.ensureCapacity(&filler, positions: 3)
        manager.free(filler)
        #expect(manager.cachedBlockCount == 0)
        // New content in a reused block: the evicted child's key must not resurface.
        var fresh: [Int32] = []
        try manager.ensureCapacity(&fresh, positions: 1)
        _ = manager.registerFullBlocks(table: fresh, tokens: [10], computed: 1, from: 0)
        let (match, positions) = manager.takeCachedPrefix(of: [10, 11, 12], limit: 2)
        #expect(match == fresh && positions == 1)
        manager.free(match)
        manager.free(fresh)
        #expect(manager.freeBlockCount == 3)
    }

    @Test func disabledCacheSharesNothing() throws {
        let manager = BlockManager(blockSize: 2, blockCount: 4, prefixCaching: false)
        var table: [Int32] = []
        try manager.ensureCapacity(&table, positions: 4)
        #expect(manager.registerFullBlocks(table: table, tokens: [1, 2, 3, 4], computed: 4, from: 0) == 0)
        manager.free(table)
        #expect(manager.takeCachedPrefix(of: [1, 2, 3, 4, 5], limit: 4).positions == 0)
        #expect(manager.cachedBlockCount == 0 && manager.freeBlockCount == 4)
    }
}
