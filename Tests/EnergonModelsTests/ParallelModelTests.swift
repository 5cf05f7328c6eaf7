import EnergonCheckpoint
import EnergonCore
import EnergonModels
import Foundation
import Testing

/// Parallel equals serial: the tiny models split over tp × pp thread ranks give the logits of
/// one rank (and of transformers), for prefill and for decoding.
@Suite struct ParallelModelTests {
    static let grids: [(Int, Int)] = [(1, 2), (1, 3), (2, 1), (2, 2), (2, 3), (4, 1), (4, 2)]

    @Test("tp × pp thread ranks match transformers", arguments: TinyModelTests.cases)
    func parallelMatchesReference(_ testCase: TinyModelTests.Case) throws {
        let file = try GGUFFile(path: TinyModelTests.fixtures.appendingPathComponent(testCase.gguf).path)
        let configuration = try ModelRegistry.configuration(architecture: testCase.architecture, metadata: file.metadata,
                                                            vocabularySize: testCase.vocabulary, source: testCase.gguf)
        let data = try Data(contentsOf: TinyModelTests.fixtures.appendingPathComponent(testCase.logits))
        let expected = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let vocabulary = testCase.vocabulary
        for (tp, pp) in Self.grids {
            guard pp <= configuration.layerCount else {
                #expect(throws: ParallelGridError.self) {
                    try ParallelGrid(configuration: configuration, tensorParallel: tp, pipelineStages: pp)
                }
                continue
            }
            let grid = try ParallelGrid(configuration: configuration, tensorParallel: tp, pipelineStages: pp)
            #expect(grid.stageLayers.map(\.count).reduce(0, +) == configuration.layerCount)
            let runner = try LocalParallelRunner(configuration: configuration, grid: grid, threadsPerRank: 1,
                                                 weights: { WeightSource(gguf: file) }, blockSize: 4, blockCount: 8,
                                                 kvCacheType: .f32)
            var table: [Int32] = []
            // Prefill the first 5 tokens with all their logits, then decode the rest one by one.
            try runner.blocks.ensureCapacity(&table, positions: 5)
            var batch = ForwardBatch(sequences: [(tokens: Array(testCase.tokens[..<5]), startPosition: 0, blockTable: table)])
            batch.logitRows = Array(0..<5)
            let prefill = try #require(try runner.forward(batch))
            #expect(TinyModelTests.relativeError(prefill, expected[0..<(5 * vocabulary)]) <= 1e-4, "tp \(tp) pp \(pp) prefill")
            for position in 5..<testCase.tokens.count {
                try runner.blocks.ensureCapacity(&table, positions: position + 1)
                let step = ForwardBatch(sequences: [(tokens: [testCase.tokens[position]], startPosition: position, blockTable: table)])
                let row = try #require(try runner.forward(step))
                #expect(TinyModelTests.relativeError(row, expected[(position * vocabulary)..<((position + 1) * vocabulary)]) <= 1e-4,
                        "tp \(tp) pp \(pp) position \(position)")
            }
        }
    }

    @Test("a rank's failure reaches the controller, and the runner refuses work after it")
    func failureMakesTheRunnerUnusable() throws {
        let (file, configuration) = try Self.tinyModel("llama")
        let grid = try ParallelGrid(configuration: configuration, tensorParallel: 2, pipelineStages: 2)
        let runner = try LocalParallelRunner(configuration: configuration, grid: grid, threadsPerRank: 1,
                                             weights: { WeightSource(gguf: file) }, blockSize: 4, blockCount: 8)
        var table: [Int32] = []
        try runner.blocks.ensureCapacity(&table, positions: 3)
        let good = ForwardBatch(sequences: [(tokens: [1, 2, 3], startPosition: 0, blockTable: table)])
        #expect(try runner.forward(good) != nil)
        // Stage 0 cannot embed token 500 of a 128-token vocabulary: its error, not a timeout,
        // comes back through stage 1 to the controller.
        let bad = ForwardBatch(sequences: [(tokens: [1, 500, 3], startPosition: 0, blockTable: table)])
        do {
            _ = try runner.forward(bad)
            Issue.record("an out-of-vocabulary token must fail the forward pass")
        } catch {
            #expect("\(error)".contains("500"), "\(error)")
        }
        do {
            try runner.submit(good, slot: 0)
            Issue.record("a runner whose rank failed must refuse new batches")
        } catch let error as ParallelRunnerError {
            #expect("\(error)".contains("500"), "the refusal names the first failure: \(error)")
        }
    }

    @Test("stage activity counts every job and splits each rank's time")
    func stageActivityAccountsForTheRun() throws {
        let (file, configuration) = try Self.tinyModel("llama")
        let grid = try ParallelGrid(configuration: configuration, tensorParallel: 1, pipelineStages: 2)
        let runner = try LocalParallelRunner(configuration: configuration, grid: grid, threadsPerRank: 1,
                                             weights: { WeightSource(gguf: file) }, blockSize: 4, blockCount: 16)
        let before = runner.stageActivity()
        #expect(before.map(\.stage) == [0, 1] && before.allSatisfy { $0.jobs == 0 })
        let start = Date()
        var tables: [[Int32]] = [[], []]
        for index in tables.indices { try runner.blocks.ensureCapacity(&tables[index], positions: 20) }
        // Two lanes in flight, 10 steps each.
        for step in 0..<10 {
            for slot in 0..<2 {
                try runner.submit(ForwardBatch(sequences: [(tokens: [Int32(step + 1)], startPosition: step, blockTable: tables[slot])]),
                                  slot: slot)
            }
            for slot in 0..<2 { #expect(try runner.wait(slot: slot) != nil) }
        }
        let elapsed = Date().timeIntervalSince(start)
        let activity = zip(runner.stageActivity(), before).map { $0.since($1) }
        for stage in activity {
            #expect(stage.jobs == 20, "stage \(stage.stage)")
            #expect(stage.computeSeconds > 0 && stage.waitingSeconds >= 0 && stage.idleSeconds >= 0)
            // Compute and waiting happen inside jobs, idle between them: together no more than the run.
            #expect(stage.computeSeconds + stage.waitingSeconds <= elapsed + 0.05, "stage \(stage.stage)")
        }
        #expect(activity[0].waitingSeconds == 0, "the first stage never waits for a previous one")
    }

    @Test func impossibleGridsAreRefusedWithWhatWouldWork() throws {
        let (_, configuration) = try Self.tinyModel("llama")
        do {
            _ = try ParallelGrid(configuration: configuration, tensorParallel: 5, pipelineStages: 1)
            Issue.record("tp 5 must be refused for 4 heads")
        } catch let error as ParallelGridError {
            #expect("\(error)".contains("valid: 1, 2, 3, 4"))
        }
        #expect(throws: ParallelGridError.self) {
            try ParallelGrid(configuration: configuration, tensorParallel: 1, pipelineStages: 3)
        }
    }

    @Test func stagesAreBalancedByCost() throws {
        let (_, configuration) = try Self.tinyModel("gemma3")
        let grid = try ParallelGrid(configuration: configuration, tensorParallel: 1, pipelineStages: 2)
        // The output projection (128 × 32) costs about half a layer here, so the last stage gets fewer layers.
        #expect(grid.stageLayers == [0..<3, 3..<6] || grid.stageLayers == [0..<4, 4..<6])
        let manual = try ParallelGrid(configuration: configuration, tensorParallel: 1, pipelineStages: 2, layersPerStage: [1, 5])
        #expect(manual.stageLayers == [0..<1, 1..<6])
    }

    /// The tiny fixture model `tiny-<architecture>.gguf` (128-token vocabulary) and its configuration.
    static func tinyModel(_ architecture: String) throws -> (GGUFFile, DecoderConfiguration) {
        let file = try GGUFFile(path: TinyModelTests.fixtures.appendingPathComponent("tiny-\(architecture).gguf").path)
        let configuration = try ModelRegistry.configuration(architecture: architecture, metadata: file.metadata,
                                                            vocabularySize: 128, source: "tiny-\(architecture)")
        return (file, configuration)
    }
}
