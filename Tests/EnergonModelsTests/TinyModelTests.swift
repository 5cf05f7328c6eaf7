import EnergonCheckpoint
import EnergonCore
import EnergonModels
import Foundation
import Testing

/// Tiny random models of every architecture against logits computed by Hugging Face
/// transformers (PyTorch, fp32) from the same weights (scripts/make_model_fixtures.py).
@Suite struct TinyModelTests {
    struct Case: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let architecture: String
        let tokens: [Int32]
        let vocabulary: Int
        let gguf: String
        let huggingFace: String
        let logits: String
        var testDescription: String { name }
    }

    struct Manifest: Decodable { let cases: [Case] }

    static let fixtures: URL = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")  // invariant: test bundle has resources

    static var cases: [Case] {
        guard let data = try? Data(contentsOf: fixtures.appendingPathComponent("models.json")),
              let manifest = try? JSONDecoder().decode(Manifest.self, from: data) else { return [] }
        return manifest.cases
    }

    func load(_ testCase: Case) throws -> (any DecoderModel, [Float]) {
        let file = try GGUFFile(path: Self.fixtures.appendingPathComponent(testCase.gguf).path)
        let configuration = try ModelRegistry.configuration(
            architecture: testCase.architecture, metadata: file.metadata, vocabularySize: testCase.vocabulary,
            source: testCase.gguf)
        let model = try ModelRegistry.build(configuration: configuration, weights: WeightSource(gguf: file))
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent(testCase.logits))
        let expected = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return (model, expected)
    }

    /// max |a - b| / max |b| over the rows compared.
    static func relativeError(_ actual: UnsafePointer<Float>, _ expected: ArraySlice<Float>) -> Float {
        var difference: Float = 0, scale: Float = 0
        for (i, value) in expected.enumerated() {
            difference = max(difference, abs(actual[i] - value))
            scale = max(scale, abs(value))
        }
        return difference / scale
    }

    @Test("whole prompt in one pass matches transformers", arguments: cases)
    func prefillMatchesReference(_ testCase: Case) throws {
        let (model, expected) = try load(testCase)
        for threads in [1, 3] {
            let context = ComputeContext(threads: threads)
            let cache = KVCache(layers: model.layerRange.count, blockSize: 4, kvDimension: model.kvDimensionPerRank, blockCount: 16, elementType: .f32)
            var table = try cache.allocate(cache.blocksNeeded(positions: testCase.tokens.count))
            var batch = ForwardBatch(sequences: [(tokens: testCase.tokens, startPosition: 0, blockTable: table)], allLogits: true)
            batch.logitRows = Array(0..<testCase.tokens.count)
            let buffers = ActivationBuffers()  // the returned logits live in these buffers
            let logits = try #require(try DecoderRuntime.forward(model, batch: batch, cache: cache, buffers: buffers, context: context))
            #expect(Self.relativeError(logits, expected[...]) <= 1e-4, "threads \(threads)")
            withExtendedLifetime(buffers) {}
            cache.free(table)
            table.removeAll()
        }
    }

    @Test("prefill then token-by-token decoding matches transformers", arguments: cases)
    func decodeMatchesReference(_ testCase: Case) throws {
        let (model, expected) = try load(testCase)
        let vocabulary = testCase.vocabulary
        for isa in ISA.available {
            let context = ComputeContext(threads: 2, isa: isa)
            let cache = KVCache(layers: model.layerRange.count, blockSize: 2, kvDimension: model.kvDimensionPerRank, blockCount: 16, elementType: .f32)
            let buffers = ActivationBuffers()
            let split = 5
            var table = try cache.allocate(cache.blocksNeeded(positions: testCase.tokens.count))
            let prompt = Array(testCase.tokens[..<split])
            let first = ForwardBatch(sequences: [(tokens: prompt, startPosition: 0, blockTable: table)])
            let logits = try #require(try DecoderRuntime.forward(model, batch: first, cache: cache, buffers: buffers, context: context))
            #expect(Self.relativeError(logits, expected[((split - 1) * vocabulary)..<(split * vocabulary)]) <= 1e-4, "\(isa) prefill")
            for position in split..<testCase.tokens.count {
                let step = ForwardBatch(sequences: [(tokens: [testCase.tokens[position]], startPosition: position, blockTable: table)])
                let row = try #require(try DecoderRuntime.forward(model, batch: step, cache: cache, buffers: buffers, context: context))
                #expect(Self.relativeError(row, expected[(position * vocabulary)..<((position + 1) * vocabulary)]) <= 1e-4,
                        "\(isa) position \(position)")
            }
            cache.free(table)
            table.removeAll()
        }
    }

    @Test("a Hugging Face folder of the same weights gives the same logits", arguments: cases)
    func huggingFaceFolderMatchesReference(_ testCase: Case) throws {
        let folder = Self.fixtures.appendingPathComponent(testCase.huggingFace).path
        let hfConfiguration = try ModelConfiguration(huggingFaceConfigAt: folder + "/config.json")
        let configuration = try ModelRegistry.configuration(huggingFace: hfConfiguration, source: folder)
        let weights = WeightSource(huggingFace: try SafetensorsFolder(path: folder), configuration: hfConfiguration)
        let model = try ModelRegistry.build(configuration: configuration, weights: weights)
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent(testCase.logits))
        let expected = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let cache = KVCache(layers: model.layerRange.count, blockSize: 4, kvDimension: model.kvDimensionPerRank, blockCount: 16, elementType: .f32)
        let table = try cache.allocate(cache.blocksNeeded(positions: testCase.tokens.count))
        var batch = ForwardBatch(sequences: [(tokens: testCase.tokens, startPosition: 0, blockTable: table)])
        batch.logitRows = Array(0..<testCase.tokens.count)
        let buffers = ActivationBuffers()  // the returned logits live in these buffers
        let logits = try #require(try DecoderRuntime.forward(model, batch: batch, cache: cache, buffers: buffers,
                                                             context: ComputeContext(threads: 2)))
        #expect(Self.relativeError(logits, expected[...]) <= 1e-4)
        withExtendedLifetime(buffers) {}
    }

    @Test("a ragged batch of sequences equals each sequence alone", arguments: cases)
    func raggedBatchMatchesSeparateRuns(_ testCase: Case) throws {
        let (model, expected) = try load(testCase)
        let vocabulary = testCase.vocabulary
        let context = ComputeContext(threads: 2)
        let cache = KVCache(layers: model.layerRange.count, blockSize: 4, kvDimension: model.kvDimensionPerRank, blockCount: 32, elementType: .f32)
        // Three prefixes of different lengths packed into one batch, no padding.
        let lengths = [3, 12, 7]
        var entries: [(tokens: [Int32], startPosition: Int, blockTable: [Int32])] = []
        for length in lengths {
            entries.append((Array(testCase.tokens[..<length]), 0, try cache.allocate(cache.blocksNeeded(positions: length))))
        }
        let batch = ForwardBatch(sequences: entries)
        #expect(batch.totalTokens == lengths.reduce(0, +))
        let buffers = ActivationBuffers()  // the returned logits live in these buffers
        let logits = try #require(try DecoderRuntime.forward(model, batch: batch, cache: cache, buffers: buffers, context: context))
        for (i, length) in lengths.enumerated() {
            #expect(Self.relativeError(logits + i * vocabulary, expected[((length - 1) * vocabulary)..<(length * vocabulary)]) <= 1e-4,
                    "sequence \(i) of length \(length)")
        }
        withExtendedLifetime(buffers) {}
    }
}
