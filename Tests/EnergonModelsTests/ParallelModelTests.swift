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

    @Test func impossibleGridsAreRefusedWithWhatWouldWork() throws {
        let file = try GGUFFile(path: TinyModelTests.fixtures.appendingPathComponent("tiny-llama.gguf").path)
        let configuration = try ModelRegistry.configuration(architecture: "llama", metadata: file.metadata,
                                                            vocabularySize: 128, source: "tiny-llama")
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
        let file = try GGUFFile(path: TinyModelTests.fixtures.appendingPathComponent("tiny-gemma3.gguf").path)
        let configuration = try ModelRegistry.configuration(architecture: "gemma3", metadata: file.metadata,
                                                            vocabularySize: 128, source: "tiny-gemma3")
        let grid = try ParallelGrid(configuration: configuration, tensorParallel: 1, pipelineStages: 2)
        // The output projection (128 × 32) costs about half a layer here, so the last stage gets fewer layers.
        #expect(grid.stageLayers == [0..<3, 3..<6] || grid.stageLayers == [0..<4, 4..<6])
        let manual = try ParallelGrid(configuration: configuration, tensorParallel: 1, pipelineStages: 2, layersPerStage: [1, 5])
        #expect(manual.stageLayers == [0..<1, 1..<6])
    }
}
