import EnergonCheckpoint
import EnergonCore
import EnergonDistributed
import EnergonModels
import Foundation
import Synchronization
import Testing

/// Tiny random GPT-2, OPT and BERT models, loaded from a GGUF file and from a Hugging Face
/// folder, against what transformers (PyTorch, fp32) computes from the same weights: logits for
/// the decoders, last hidden states for the encoder (scripts/make_model_fixtures_encoders.py).
@Suite struct TinyArchitectureTests {
    struct Case: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let architecture: String
        let tokens: [Int32]
        /// Vocabulary (decoders) or hidden size (encoder): floats per expected row.
        let columns: Int
        let gguf: String
        let huggingFace: String
        let expected: String
        let encoder: Bool
        let typeIDs: [Int32]?
        let prefixLength: Int?
        let prefixExpected: String?
        let pooled: String?
        let text: String?
        let textIDs: [Int32]?
        let textPooled: String?
        var testDescription: String { name }
    }

    struct Manifest: Decodable { let cases: [Case] }

    /// Which copy of a case's weights to load.
    enum Format: String, Sendable, CaseIterable, CustomTestStringConvertible {
        case gguf, huggingFace
        var testDescription: String { rawValue }
    }

    static let fixtures: URL = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")  // invariant: test bundle has resources

    static var cases: [Case] {
        guard let data = try? Data(contentsOf: fixtures.appendingPathComponent("models-extra.json")),
              let manifest = try? JSONDecoder().decode(Manifest.self, from: data) else { return [] }
        return manifest.cases
    }

    static var decoderCases: [Case] { cases.filter { !$0.encoder } }
    static var encoderCases: [Case] { cases.filter(\.encoder) }

    static func floats(_ file: String) throws -> [Float] {
        let data = try Data(contentsOf: fixtures.appendingPathComponent(file))
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// The configuration and a weight source for `testCase` in `format`.
    static func open(_ testCase: Case, _ format: Format) throws -> (DecoderConfiguration, WeightSource) {
        switch format {
        case .gguf:
            let file = try GGUFFile(path: fixtures.appendingPathComponent(testCase.gguf).path)
            let rows = try #require(file.tensorInfo(named: "token_embd.weight")?.shape.first)
            let configuration = try ModelRegistry.configuration(architecture: testCase.architecture, metadata: file.metadata,
                                                                vocabularySize: rows, source: testCase.gguf)
            return (configuration, WeightSource(gguf: file))
        case .huggingFace:
            let folder = fixtures.appendingPathComponent(testCase.huggingFace).path
            let hf = try ModelConfiguration(huggingFaceConfigAt: folder + "/config.json")
            let configuration = try ModelRegistry.configuration(huggingFace: hf, source: folder)
            return (configuration, WeightSource(huggingFace: try SafetensorsFolder(path: folder), configuration: hf))
        }
    }

    /// Builds the decoder; every checkpoint tensor must have been used.
    func loadDecoder(_ testCase: Case, _ format: Format) throws -> (any DecoderModel, [Float]) {
        let (configuration, weights) = try Self.open(testCase, format)
        let model = try ModelRegistry.build(configuration: configuration, weights: weights)
        try weights.finish()
        return (model, try Self.floats(testCase.expected))
    }

    /// max |a - b| / max |b| over the rows compared.
    func relativeError(_ actual: UnsafePointer<Float>, _ expected: ArraySlice<Float>) -> Float {
        var difference: Float = 0, scale: Float = 0
        for (i, value) in expected.enumerated() {
            difference = max(difference, abs(actual[i] - value))
            scale = max(scale, abs(value))
        }
        return difference / scale
    }

    @Test("decoder: whole prompt in one pass matches transformers", arguments: decoderCases, Format.allCases)
    func prefillMatchesReference(_ testCase: Case, _ format: Format) throws {
        let (model, expected) = try loadDecoder(testCase, format)
        for threads in [1, 3] {
            let context = ComputeContext(threads: threads)
            let cache = KVCache(layers: model.layerRange.count, blockSize: 4, kvDimension: model.kvDimensionPerRank, blockCount: 16, elementType: .f32)
            let table = try cache.allocate(cache.blocksNeeded(positions: testCase.tokens.count))
            let batch = ForwardBatch(sequences: [(tokens: testCase.tokens, startPosition: 0, blockTable: table)], allLogits: true)
            let buffers = ActivationBuffers()  // the returned logits live in these buffers
            let logits = try #require(try DecoderRuntime.forward(model, batch: batch, cache: cache, buffers: buffers, context: context))
            #expect(relativeError(logits, expected[...]) <= 1e-4, "threads \(threads)")
            withExtendedLifetime(buffers) {}
        }
    }

    @Test("decoder: prefill then token-by-token decoding matches transformers", arguments: decoderCases, Format.allCases)
    func decodeMatchesReference(_ testCase: Case, _ format: Format) throws {
        let (model, expected) = try loadDecoder(testCase, format)
        let vocabulary = testCase.columns
        for isa in ISA.available {
            let context = ComputeContext(threads: 2, isa: isa)
            let cache = KVCache(layers: model.layerRange.count, blockSize: 2, kvDimension: model.kvDimensionPerRank, blockCount: 16, elementType: .f32)
            let buffers = ActivationBuffers()
            let split = 5
            let table = try cache.allocate(cache.blocksNeeded(positions: testCase.tokens.count))
            let first = ForwardBatch(sequences: [(tokens: Array(testCase.tokens[..<split]), startPosition: 0, blockTable: table)])
            let logits = try #require(try DecoderRuntime.forward(model, batch: first, cache: cache, buffers: buffers, context: context))
            #expect(relativeError(logits, expected[((split - 1) * vocabulary)..<(split * vocabulary)]) <= 1e-4, "\(isa) prefill")
            for position in split..<testCase.tokens.count {
                let step = ForwardBatch(sequences: [(tokens: [testCase.tokens[position]], startPosition: position, blockTable: table)])
                let row = try #require(try DecoderRuntime.forward(model, batch: step, cache: cache, buffers: buffers, context: context))
                #expect(relativeError(row, expected[(position * vocabulary)..<((position + 1) * vocabulary)]) <= 1e-4,
                        "\(isa) position \(position)")
            }
        }
    }

    @Test("decoder: a ragged batch of sequences equals each sequence alone", arguments: decoderCases)
    func raggedBatchMatchesReference(_ testCase: Case) throws {
        let (model, expected) = try loadDecoder(testCase, .gguf)
        let vocabulary = testCase.columns
        let context = ComputeContext(threads: 2)
        let cache = KVCache(layers: model.layerRange.count, blockSize: 4, kvDimension: model.kvDimensionPerRank, blockCount: 32, elementType: .f32)
        let lengths = [3, 12, 7]  // three prefixes packed into one batch, no padding
        var entries: [(tokens: [Int32], startPosition: Int, blockTable: [Int32])] = []
        for length in lengths {
            entries.append((Array(testCase.tokens[..<length]), 0, try cache.allocate(cache.blocksNeeded(positions: length))))
        }
        let buffers = ActivationBuffers()
        let logits = try #require(try DecoderRuntime.forward(model, batch: ForwardBatch(sequences: entries), cache: cache,
                                                             buffers: buffers, context: context))
        for (i, length) in lengths.enumerated() {
            #expect(relativeError(logits + i * vocabulary, expected[((length - 1) * vocabulary)..<(length * vocabulary)]) <= 1e-4,
                    "sequence \(i) of length \(length)")
        }
        withExtendedLifetime(buffers) {}
    }

    @Test("decoder: a position beyond the learned table is a typed error", arguments: decoderCases)
    func positionBeyondContextThrows(_ testCase: Case) throws {
        let (model, _) = try loadDecoder(testCase, .gguf)
        let limit = model.configuration.contextLength
        let cache = KVCache(layers: model.layerRange.count, blockSize: 16, kvDimension: model.kvDimensionPerRank, blockCount: 8, elementType: .f32)
        let table = try cache.allocate(cache.blocksNeeded(positions: limit + 1))
        let batch = ForwardBatch(sequences: [(tokens: [5], startPosition: limit, blockTable: table)])
        #expect(throws: ModelError.self) {
            try DecoderRuntime.forward(model, batch: batch, cache: cache, buffers: ActivationBuffers(), context: ComputeContext(threads: 1))
        }
    }

    @Test("encoder: last hidden states match transformers", arguments: encoderCases, Format.allCases)
    func encoderMatchesReference(_ testCase: Case, _ format: Format) throws {
        let (configuration, weights) = try Self.open(testCase, format)
        let model = try ModelRegistry.buildEncoder(configuration: configuration, weights: weights)
        try weights.finish()
        let expected = try Self.floats(testCase.expected)
        for isa in ISA.available {
            for threads in [1, 3] {
                let hidden = try model.encode(tokens: testCase.tokens, typeIDs: testCase.typeIDs,
                                              context: ComputeContext(threads: threads, isa: isa))
                #expect(hidden.count == expected.count)
                #expect(relativeError(hidden, expected[...]) <= 1e-4, "\(isa) threads \(threads)")
            }
        }
    }

    @Test("encoder: a ragged batch attends within each sequence only; pooled embeddings match", arguments: encoderCases)
    func encoderRaggedBatchAndPooling(_ testCase: Case) throws {
        let (configuration, weights) = try Self.open(testCase, .gguf)
        let model = try ModelRegistry.buildEncoder(configuration: configuration, weights: weights)
        let hiddenSize = configuration.hiddenSize
        let full = try Self.floats(testCase.expected)
        let prefix = try Self.floats(try #require(testCase.prefixExpected))
        let pooled = try Self.floats(try #require(testCase.pooled))
        let length = try #require(testCase.prefixLength)
        let types = try #require(testCase.typeIDs)
        // full, prefix, full: the prefix must not see the tokens packed after it.
        let batch = try EncoderBatch(sequences: [(testCase.tokens, types), (Array(testCase.tokens[..<length]), Array(types[..<length])),
                                                 (testCase.tokens, types)])
        let buffers = ActivationBuffers()
        let context = ComputeContext(threads: 2)
        let hidden = try model.encode(batch, buffers: buffers, context: context)
        let fullCount = testCase.tokens.count
        #expect(relativeError(hidden, full[...]) <= 1e-4, "sequence 0")
        #expect(relativeError(hidden + fullCount * hiddenSize, prefix[...]) <= 1e-4, "prefix")
        #expect(relativeError(hidden + (fullCount + length) * hiddenSize, full[...]) <= 1e-4, "sequence 2")
        // The prefix alone differs from the first rows of the full sequence (attention is bidirectional).
        #expect(relativeError(hidden + fullCount * hiddenSize, full[..<(length * hiddenSize)]) > 1e-2)
        let embeddings = try model.embeddings(batch, buffers: buffers, context: context)
        #expect(embeddings.count == 3)
        for index in [0, 2] {
            embeddings[index].withUnsafeBufferPointer {
                #expect(relativeError($0.baseAddress!, pooled[...]) <= 1e-4, "embedding \(index)")  // invariant: hiddenSize > 0
            }
        }
        #expect(throws: ModelError.self) {
            try model.encode(tokens: [1, 2], typeIDs: [0, 2], context: context)
        }
    }
}

extension TinyArchitectureTests {
    @Test("encoder: loaded with its tokenizer, a text's embedding matches transformers", arguments: encoderCases)
    func loadedEncoderEmbedsText(_ testCase: Case) throws {
        let text = try #require(testCase.text)
        let folder = Self.fixtures.appendingPathComponent(testCase.huggingFace).path
        let encoder = try LoadedEncoder.load(path: folder)
        #expect(encoder.tokenizer.encode(text, addSpecialTokens: true) == testCase.textIDs)
        let expected = try Self.floats(try #require(testCase.textPooled))
        let embeddings = try encoder.embed([text, "the lazy dog"], context: ComputeContext(threads: 2))
        #expect(embeddings.count == 2)
        embeddings[0].withUnsafeBufferPointer {
            #expect(relativeError($0.baseAddress!, expected[...]) <= 1e-4)  // invariant: hiddenSize > 0
        }
        let norm = embeddings[1].reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(abs(norm - 1) <= 1e-5)
        let tooLong = Array(repeating: "fox", count: encoder.model.configuration.contextLength).joined(separator: " ")
        #expect(throws: ModelError.self) { try encoder.embed([tooLong], context: ComputeContext(threads: 1)) }
    }
}

/// Runs `body(rank)` for `size` tensor-parallel ranks of one `LocalCommunicator`, each on its
/// own thread, and returns each rank's result.
func runRanks<Result: Sendable>(size: Int, _ body: @escaping @Sendable (any ProcessGroup) throws -> Result) throws -> [Result] {
    let communicator = LocalCommunicator(size: size, timeout: 60)
    let results = Mutex<[Int: Swift.Result<Result, any Error>]>([:])
    let done = DispatchSemaphore(value: 0)
    for rank in 0..<size {
        let thread = Thread {
            let outcome = Swift.Result { try body(communicator.group(rank: rank)) }
            results.withLock { $0[rank] = outcome }
            done.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
    for _ in 0..<size { done.wait() }
    let collected = results.withLock { $0 }
    return try (0..<size).map { try collected[$0]!.get() }  // invariant: every rank stored a result
}

/// GPT-2 (fused q/k/v cut per rank), OPT and BERT split over tensor-parallel ranks (and the
/// decoders over pipeline stages) must give what transformers gives.
@Suite struct TinyArchitectureParallelTests {
    static let grids: [(Int, Int)] = [(2, 1), (4, 1), (1, 2), (2, 2), (4, 2)]

    @Test("decoder: tp × pp thread ranks match transformers", arguments: TinyArchitectureTests.decoderCases)
    func decoderParallel(_ testCase: TinyArchitectureTests.Case) throws {
        let expected = try TinyArchitectureTests.floats(testCase.expected)
        let vocabulary = testCase.columns
        let (configuration, _) = try TinyArchitectureTests.open(testCase, .gguf)
        for (tp, pp) in Self.grids {
            let grid = try ParallelGrid(configuration: configuration, tensorParallel: tp, pipelineStages: pp)
            let runner = try LocalParallelRunner(configuration: configuration, grid: grid, threadsPerRank: 1,
                                                 weights: { try TinyArchitectureTests.open(testCase, .gguf).1 },
                                                 blockSize: 4, blockCount: 8, kvCacheType: .f32)
            var table: [Int32] = []
            try runner.blocks.ensureCapacity(&table, positions: 5)
            var batch = ForwardBatch(sequences: [(tokens: Array(testCase.tokens[..<5]), startPosition: 0, blockTable: table)])
            batch.logitRows = Array(0..<5)
            let prefill = try #require(try runner.forward(batch))
            #expect(TinyArchitectureTests().relativeError(prefill, expected[0..<(5 * vocabulary)]) <= 1e-4, "tp \(tp) pp \(pp) prefill")
            for position in 5..<testCase.tokens.count {
                try runner.blocks.ensureCapacity(&table, positions: position + 1)
                let step = ForwardBatch(sequences: [(tokens: [testCase.tokens[position]], startPosition: position, blockTable: table)])
                let row = try #require(try runner.forward(step))
                #expect(TinyArchitectureTests().relativeError(row, expected[(position * vocabulary)..<((position + 1) * vocabulary)]) <= 1e-4,
                        "tp \(tp) pp \(pp) position \(position)")
            }
        }
    }

    @Test("encoder: tensor-parallel thread ranks match transformers", arguments: TinyArchitectureTests.encoderCases)
    func encoderTensorParallel(_ testCase: TinyArchitectureTests.Case) throws {
        let expected = try TinyArchitectureTests.floats(testCase.expected)
        for tp in [2, 4] {
            let perRank = try runRanks(size: tp) { group -> [Float] in
                let (configuration, weights) = try TinyArchitectureTests.open(testCase, .huggingFace)
                let model = try ModelRegistry.buildEncoder(configuration: configuration, weights: weights,
                                                           parallel: ParallelContext(tensorGroup: group))
                return try model.encode(tokens: testCase.tokens, typeIDs: testCase.typeIDs, context: ComputeContext(threads: 1))
            }
            for (rank, hidden) in perRank.enumerated() {
                hidden.withUnsafeBufferPointer {
                    #expect(TinyArchitectureTests().relativeError($0.baseAddress!, expected[...]) <= 1e-4, "tp \(tp) rank \(rank)")  // invariant: non-empty
                }
            }
        }
    }
}
