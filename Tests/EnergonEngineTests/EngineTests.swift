import EnergonCheckpoint
import EnergonCore
import EnergonEngine
import EnergonModels
import EnergonTokenizers
import Foundation
import Testing

/// The engine against the one-sequence generator on the real SmolLM2 model (fetched by
/// `make test` through scripts/fetch_models.sh).
@Suite(.serialized) struct EngineTests {
    static let model: String? = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let custom: [String] = ProcessInfo.processInfo.environment["ENERGON_MODELS_DIR"].map { [$0] } ?? []
        let folders: [String] = custom + [root.appendingPathComponent("models").path, NSHomeDirectory() + "/.cache/energon-anchor/models"]
        return folders.map { $0 + "/SmolLM2-135M-Instruct.Q4_1.gguf" }.first { FileManager.default.fileExists(atPath: $0) }
    }()

    static let prompts = ["The capital of France is", "Once upon a time", "def fibonacci(n):", "1, 2, 3, 4,",
                          "The quick brown fox", "Water boils at"]

    func collect(_ stream: AsyncThrowingStream<GeneratedToken, any Error>) async throws -> (tokens: [Int32], text: String, reason: FinishReason?) {
        var tokens: [Int32] = [], text = "", reason: FinishReason?
        for try await piece in stream {
            if piece.token >= 0 { tokens.append(piece.token) }
            text += piece.text
            reason = piece.finishReason ?? reason
        }
        return (tokens, text, reason)
    }

    /// A tiny random F32 model (bit-exact arithmetic whatever the batch shape) with the SmolLM2
    /// tokenizer for text (the tiny vocabulary's 128 ids exist in it).
    static func tinyRunner(_ name: String, architecture: String, blockCount: Int) throws -> SerialRunner {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let file = try GGUFFile(path: root.appendingPathComponent("EnergonModelsTests/Fixtures/\(name).gguf").path)
        let configuration = try ModelRegistry.configuration(architecture: architecture, metadata: file.metadata,
                                                            vocabularySize: 128, source: name)
        let model = try ModelRegistry.build(configuration: configuration, weights: WeightSource(gguf: file))
        return SerialRunner(model: model, context: ComputeContext(threads: 2), blockSize: 4, blockCount: blockCount)
    }

    static let tinyPrompts: [[Int32]] = [[5, 17, 42], [99, 3, 64, 120, 7, 88, 45, 23, 101, 11, 12, 13, 14], [7], [64, 64, 64, 64, 1],
                                         [120, 119, 118, 117, 116, 115], [33, 44]]

    @Test(arguments: [("tiny-llama", "llama", 64, 512), ("tiny-llama", "llama", 9, 8), ("tiny-gemma3", "gemma3", 64, 5)])
    func concurrentGreedyEqualsAlone(model: String, architecture: String, blockCount: Int, budget: Int) async throws {
        // Each prompt alone, then all at once: continuous batching (ragged, chunked prefill mixed
        // with decodes) and, with 9 blocks of 4 positions, preemption and recomputation.
        let smol = try #require(Self.model, "run scripts/fetch_models.sh")
        let tokenizer = try TokenizerLoader.load(gguf: GGUFFile(path: smol))
        let alone = Generator(runner: try Self.tinyRunner(model, architecture: architecture, blockCount: 64), tokenizer: tokenizer)
        let expected = try Self.tinyPrompts.map { try alone.generate(prompt: $0, maxTokens: 16, ignoreEOS: true).tokens }
        let runner = try Self.tinyRunner(model, architecture: architecture, blockCount: blockCount)
        let engine = Engine(runner: runner, tokenizer: tokenizer,
                            configuration: .init(maxBatchTokens: budget, maxRunningSequences: 4, maxWaitingRequests: 16))
        defer { engine.shutdown() }
        let streams = try Self.tinyPrompts.map {
            try engine.submit(GenerationRequest(prompt: $0, maxTokens: 16, ignoreEOS: true)).stream
        }
        for (index, stream) in streams.enumerated() {
            let result = try await collect(stream)
            #expect(result.tokens == expected[index], "prompt \(index)")
            #expect(result.reason == .length)
        }
        #expect(runner.blocks.freeBlockCount == runner.blocks.blockCount, "every block returned")
    }

    /// Prompts with a shared 9-token prefix (two full 4-position blocks) plus the tiny prompts.
    static let prefixedPrompts: [[Int32]] = tinyPrompts + tinyPrompts.prefix(4).map { [9, 8, 7, 6, 5, 4, 3, 2, 1] + $0 }

    @Test(arguments: [(1, 2, 2, false), (1, 2, 1, false), (2, 1, 1, false), (2, 2, 2, false), (1, 1, 1, true), (2, 2, 2, true)])
    func gridsAndPipelinesServeLikeEachPromptAlone(tp: Int, pp: Int, inFlight: Int, padded: Bool) async throws {
        // tp × pp thread ranks with `inFlight` batches in the pipeline (lanes of disjoint
        // sequences), prefix sharing, and optionally padded batches: every sequence must get
        // what the same grid gives it alone.
        let smol = try #require(Self.model, "run scripts/fetch_models.sh")
        let tokenizer = try TokenizerLoader.load(gguf: GGUFFile(path: smol))
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let file = try GGUFFile(path: root.appendingPathComponent("EnergonModelsTests/Fixtures/tiny-llama.gguf").path)
        let configuration = try ModelRegistry.configuration(architecture: "llama", metadata: file.metadata,
                                                            vocabularySize: 128, source: "tiny-llama")
        let grid = try ParallelGrid(configuration: configuration, tensorParallel: tp, pipelineStages: pp)
        func runner(_ inFlight: Int) throws -> LocalParallelRunner {
            try LocalParallelRunner(configuration: configuration, grid: grid, threadsPerRank: 1, weights: { WeightSource(gguf: file) },
                                    blockSize: 4, blockCount: 96, timeout: 30, kvCacheType: .f32, batchesInFlight: inFlight)
        }
        let alone = Generator(runner: try runner(1), tokenizer: tokenizer)
        let expected = try Self.prefixedPrompts.map { try alone.generate(prompt: $0, maxTokens: 12, ignoreEOS: true).tokens }
        let served = try runner(inFlight)
        let engine = Engine(runner: served, tokenizer: tokenizer,
                            configuration: .init(maxBatchTokens: 32, maxRunningSequences: 7, paddedBatches: padded))
        defer { engine.shutdown() }
        let streams = try Self.prefixedPrompts.map {
            try engine.submit(GenerationRequest(prompt: $0, maxTokens: 12, ignoreEOS: true)).stream
        }
        for (index, stream) in streams.enumerated() {
            let result = try await collect(stream)
            #expect(result.tokens == expected[index], "tp \(tp) pp \(pp) in flight \(inFlight) prompt \(index)")
        }
        #expect(served.blocks.freeBlockCount == served.blocks.blockCount, "every block returned")
        #expect(engine.statistics.prefixCachedTokens > 0, "the shared 9-token prefix is reused")
        if padded { #expect(engine.statistics.paddingTokens > 0) }
    }

    @Test func realModelServesConcurrentRequests() async throws {
        // SmolLM2 Q4_1: quantized products are not batch-invariant (a batched GEMM and a single-row
        // matvec round differently), so greedy text may part ways after a near-tie; the first
        // tokens, which come from each prompt's own prefill, must agree.
        let path = try #require(Self.model, "run scripts/fetch_models.sh")
        let checkpoint = try Checkpoint.open(path: path)
        let alone = Generator(runner: try checkpoint.makeRunner(threadsPerRank: 2, contextLength: 256), tokenizer: checkpoint.tokenizer)
        let runner = try checkpoint.makeRunner(threadsPerRank: 2, contextLength: 256)
        let engine = Engine(runner: runner, tokenizer: checkpoint.tokenizer)
        defer { engine.shutdown() }
        let prompts = Self.prompts.map { checkpoint.tokenizer.encode($0) }
        let streams = try prompts.map { try engine.submit(GenerationRequest(prompt: $0, maxTokens: 12)).stream }
        for (prompt, stream) in zip(prompts, streams) {
            let result = try await collect(stream)
            let single = try alone.generate(prompt: prompt, maxTokens: 12)
            #expect(result.tokens.first == single.tokens.first)
            #expect(!result.text.isEmpty && result.reason != nil)
        }
        #expect(runner.blocks.freeBlockCount == runner.blocks.blockCount)
    }

    @Test func aFullQueueIsRefusedAsOverloaded() async throws {
        let path = try #require(Self.model)
        let checkpoint = try Checkpoint.open(path: path)
        let runner = try checkpoint.makeRunner(threadsPerRank: 2, contextLength: 256)
        let engine = Engine(runner: runner, tokenizer: checkpoint.tokenizer,
                            configuration: .init(maxBatchTokens: 64, maxRunningSequences: 1, maxWaitingRequests: 2))
        defer { engine.shutdown() }
        var accepted: [AsyncThrowingStream<GeneratedToken, any Error>] = []
        var refused = 0
        for _ in 0..<8 {
            do {
                accepted.append(try engine.submit(GenerationRequest(prompt: checkpoint.tokenizer.encode("Hello"), maxTokens: 40,
                                                                    ignoreEOS: true)).stream)
            } catch EngineError.overloaded {
                refused += 1
            }
        }
        #expect(refused >= 1 && accepted.count >= 2)
        for stream in accepted { _ = try await collect(stream) }
        #expect(runner.blocks.freeBlockCount == runner.blocks.blockCount)
    }

    @Test func cancellingFreesTheBlocksAndEndsTheStream() async throws {
        let path = try #require(Self.model)
        let checkpoint = try Checkpoint.open(path: path)
        let runner = try checkpoint.makeRunner(threadsPerRank: 2, contextLength: 512)
        let engine = Engine(runner: runner, tokenizer: checkpoint.tokenizer)
        defer { engine.shutdown() }
        var random = SplitMix64(seed: 3)
        var streams: [(Int, AsyncThrowingStream<GeneratedToken, any Error>)] = []
        for i in 0..<6 {
            let submitted = try engine.submit(GenerationRequest(prompt: checkpoint.tokenizer.encode("Story \(i):"),
                                                                sampling: SamplingParameters(temperature: 0.8, seed: UInt64(i)),
                                                                maxTokens: 200, ignoreEOS: true))
            streams.append((submitted.id, submitted.stream))
        }
        var cancelled = Set<Int>()
        for (id, _) in streams where Bool.random(using: &random) || cancelled.isEmpty {
            engine.cancel(id)
            cancelled.insert(id)
        }
        for (id, stream) in streams {
            let result = try await collect(stream)
            if cancelled.contains(id) {
                #expect(result.reason == .cancelled)
            } else {
                #expect(result.reason == .length && result.tokens.count == 200)
            }
        }
        #expect(runner.blocks.freeBlockCount == runner.blocks.blockCount, "no leaked blocks")
    }

    @Test func badRequestsAreTypedErrors() throws {
        let path = try #require(Self.model)
        let checkpoint = try Checkpoint.open(path: path)
        let engine = Engine(runner: try checkpoint.makeRunner(threadsPerRank: 1, contextLength: 64), tokenizer: checkpoint.tokenizer)
        defer { engine.shutdown() }
        #expect(throws: EngineError.invalidRequest("the prompt has no tokens")) { try engine.submit(GenerationRequest(prompt: [])) }
        #expect(throws: EngineError.invalidRequest("token id 49152 is outside the vocabulary (0..<49152)")) {
            try engine.submit(GenerationRequest(prompt: [1, 49152]))
        }
        #expect(throws: EngineError.self) { try engine.submit(GenerationRequest(prompt: Array(repeating: 1, count: 100))) }
        #expect(throws: EngineError.self) {
            try engine.submit(GenerationRequest(prompt: [1], sampling: SamplingParameters(temperature: -1)))
        }
    }
}
