import EnergonCheckpoint
import EnergonCore
import EnergonDistributed
import EnergonModels
import Foundation
import Testing

/// Random-weight models whose heads, MLP features and vocabulary do not split evenly (6 heads
/// and 3 KV heads, 45 MLP features, 131 tokens), written with the GGUF writer: every tp × pp
/// grid must give the logits of the serial model. The serial model itself is checked against
/// transformers by `TinyModelTests`; here it is the reference.
@Suite struct UnevenParallelTests {
    static let grids: [(Int, Int)] = [(1, 2), (1, 3), (2, 1), (2, 2), (2, 3), (4, 1), (4, 2), (4, 3)]
    static let cacheType: DType = .f16
    static let tokens: [Int32] = [1, 17, 42, 99, 3, 64, 120, 7, 88, 130, 23, 101]

    /// A model to write: architecture, metadata and tensors.
    struct Model: Sendable, CustomTestStringConvertible {
        let name: String
        let architecture: String
        let vocabulary: Int
        let write: @Sendable () throws -> GGUFWriter
        var testDescription: String { name }
    }

    static let models: [Model] = [
        Model(name: "llama 6 heads / 3 KV, f32", architecture: "llama", vocabulary: 131) {
            try RandomModel.llama(hidden: 48, heads: 6, kvHeads: 3, intermediate: 45, dtype: .f32)
        },
        Model(name: "llama 6 heads / 3 KV, head 32, q8_0 (splits in blocks of 32)", architecture: "llama", vocabulary: 131) {
            try RandomModel.llama(hidden: 64, heads: 6, kvHeads: 3, headDimension: 32, intermediate: 160, dtype: .q8_0)
        },
        Model(name: "llama 6 heads / 2 KV (groups of 3), f32", architecture: "llama", vocabulary: 131) {
            try RandomModel.llama(hidden: 48, heads: 6, kvHeads: 2, intermediate: 45, dtype: .f32)
        },
        Model(name: "gemma3 6 heads / 3 KV", architecture: "gemma3", vocabulary: 131) { try RandomModel.gemma3() },
        Model(name: "gpt2 6 heads", architecture: "gpt2", vocabulary: 131) { try RandomModel.gpt2() },
        Model(name: "opt 6 heads", architecture: "opt", vocabulary: 131) { try RandomModel.opt() },
    ]

    static func open(_ model: Model) throws -> (DecoderConfiguration, GGUFFile) {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("energon-uneven-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString).gguf").path
        try model.write().write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try GGUFFile(path: path)  // the mapping outlives the unlinked name
        let configuration = try ModelRegistry.configuration(architecture: model.architecture, metadata: file.metadata,
                                                            vocabularySize: model.vocabulary, source: model.name)
        return (configuration, file)
    }

    /// Prefill of 5 tokens (all logits), then decoding one token at a time: `[tokens, vocabulary]`.
    static func logits(_ runner: any ModelRunner, vocabulary: Int) throws -> [Float] {
        var table: [Int32] = []
        try runner.blocks.ensureCapacity(&table, positions: 5)
        var batch = ForwardBatch(sequences: [(tokens: Array(tokens[..<5]), startPosition: 0, blockTable: table)])
        batch.logitRows = Array(0..<5)
        var result = Array(UnsafeBufferPointer(start: try #require(try runner.forward(batch)), count: 5 * vocabulary))
        for position in 5..<tokens.count {
            try runner.blocks.ensureCapacity(&table, positions: position + 1)
            let step = ForwardBatch(sequences: [(tokens: [tokens[position]], startPosition: position, blockTable: table)])
            result += UnsafeBufferPointer(start: try #require(try runner.forward(step)), count: vocabulary)
        }
        return result
    }

    /// max |a - b| / max |b|.
    static func relativeError(_ actual: [Float], _ expected: [Float]) -> Float {
        var difference: Float = 0, scale: Float = 0
        for (a, b) in zip(actual, expected) {
            difference = max(difference, abs(a - b))
            scale = max(scale, abs(b))
        }
        return difference / scale
    }

    @Test("uneven tp × pp thread ranks match the serial model", arguments: models)
    func unevenGridsMatchSerial(_ model: Model) throws {
        let (configuration, file) = try Self.open(model)
        let serialModel = try ModelRegistry.build(configuration: configuration, weights: WeightSource(gguf: file))
        let serial = SerialRunner(model: serialModel, context: ComputeContext(threads: 1), blockSize: 4, blockCount: 8,
                                  kvCacheType: Self.cacheType)
        let expected = try Self.logits(serial, vocabulary: model.vocabulary)
        #expect(expected.allSatisfy(\.isFinite) && expected.contains { $0 != 0 })
        let blocks = ParallelGrid.WeightBlocks(WeightSource(gguf: file), configuration: configuration)
        for (tp, pp) in Self.grids {
            let grid = try ParallelGrid(configuration: configuration, tensorParallel: tp, pipelineStages: pp, weightBlocks: blocks)
            let runner = try LocalParallelRunner(configuration: configuration, grid: grid, threadsPerRank: 1,
                                                 weights: { WeightSource(gguf: file) }, blockSize: 4, blockCount: 8,
                                                 kvCacheType: Self.cacheType)
            let actual = try Self.logits(runner, vocabulary: model.vocabulary)
            #expect(Self.relativeError(actual, expected) <= 1e-4, "\(model.name): tp \(tp) pp \(pp)")
        }
    }

    @Test func unevenEncoderMatchesSerial() throws {
        let model = Model(name: "bert 6 heads", architecture: "bert", vocabulary: 131) { try RandomModel.bert() }
        let (configuration, file) = try Self.open(model)
        let tokens = Array(Self.tokens[..<7]), types: [Int32] = [0, 0, 0, 1, 1, 1, 1]
        let serial = try ModelRegistry.buildEncoder(configuration: configuration, weights: WeightSource(gguf: file))
            .encode(tokens: tokens, typeIDs: types, context: ComputeContext(threads: 1))
        for tp in [2, 4] {
            let perRank = try runRanks(size: tp) { group -> [Float] in
                let encoder = try ModelRegistry.buildEncoder(configuration: configuration, weights: WeightSource(gguf: file),
                                                             parallel: ParallelContext(tensorGroup: group))
                return try encoder.encode(tokens: tokens, typeIDs: types, context: ComputeContext(threads: 1))
            }
            for (rank, hidden) in perRank.enumerated() {
                #expect(Self.relativeError(hidden, serial) <= 1e-4, "tp \(tp) rank \(rank)")
            }
        }
    }

    @Test func headsSplitByWholeGroups() {
        // SmolLM2-135M: 9 query heads, 3 KV heads.
        let two = (0..<2).map { TensorSplit.heads(9, kvHeads: 3, rank: $0, size: 2) }
        #expect(two == [.init(query: 0..<6, keyValue: 0..<2), .init(query: 6..<9, keyValue: 2..<3)])
        let four = (0..<4).map { TensorSplit.heads(9, kvHeads: 3, rank: $0, size: 4) }
        #expect(four == [.init(query: 0..<2, keyValue: 0..<1), .init(query: 2..<3, keyValue: 0..<1),
                         .init(query: 3..<6, keyValue: 1..<2), .init(query: 6..<9, keyValue: 2..<3)])
        // Every query head is computed exactly once, and reads its own group's KV head.
        for size in 1...9 {
            let parts = (0..<size).map { TensorSplit.heads(9, kvHeads: 3, rank: $0, size: size) }
            #expect(parts.flatMap { Array($0.query) } == Array(0..<9), "size \(size)")
            for part in parts {
                #expect(part.query.allSatisfy { part.keyValue.contains($0 / 3) }, "size \(size)")
                #expect(part.query.count % part.keyValue.count == 0)
            }
        }
        #expect(!TensorSplit.isFeasible(heads: 9, kvHeads: 3, size: 10))
        #expect(!TensorSplit.isFeasible(heads: 6, kvHeads: 3, size: 7))  // a group of 2 cannot feed 3 ranks
        // Features in whole blocks, as even as possible, earlier ranks taking the extra blocks.
        #expect(TensorSplit.ranges(1536, parts: 4, granularity: 256) == [0..<512, 512..<1024, 1024..<1280, 1280..<1536])
        #expect(TensorSplit.ranges(131, parts: 4) == [0..<33, 33..<66, 66..<99, 99..<131])
        #expect(!TensorSplit.isFeasible(1536, parts: 7, granularity: 256))
    }

    @Test func gridValidationChecksFormatsAndListsWhatWorks() throws {
        let file = try GGUFFile(path: TinyModelTests.fixtures.appendingPathComponent("tiny-llama.gguf").path)
        var c = try ModelRegistry.configuration(architecture: "llama", metadata: file.metadata, vocabularySize: 128, source: "tiny-llama")
        // SmolLM2-135M's shape: every tp up to the 9 heads works in blocks of 32.
        (c.headCount, c.kvHeadCount, c.headDimension, c.hiddenSize, c.intermediateSize, c.vocabularySize) = (9, 3, 64, 576, 1536, 49152)
        let q4 = ParallelGrid.WeightBlocks(attentionOutput: 32, feedForwardDown: 32)
        #expect(ParallelGrid.validTensorParallelSizes(c, weightBlocks: q4) == Array(1...9))
        #expect(throws: Never.self) { try ParallelGrid(configuration: c, tensorParallel: 2, pipelineStages: 2, weightBlocks: q4) }
        // 16 heads of 64, 4 KV heads, K-quants (blocks of 256): a rank needs 4 heads and 256 MLP features.
        (c.headCount, c.kvHeadCount, c.hiddenSize) = (16, 4, 1024)
        let k = ParallelGrid.WeightBlocks(attentionOutput: 256, feedForwardDown: 256)
        #expect(ParallelGrid.validTensorParallelSizes(c, weightBlocks: k) == [1, 2, 3, 4])
        #expect(ParallelGrid.validTensorParallelSizes(c) == Array(1...16))
        do {
            _ = try ParallelGrid(configuration: c, tensorParallel: 8, pipelineStages: 1, weightBlocks: k)
            Issue.record("tp 8 must be refused: 2 heads of 64 are half a block of 256")
        } catch let error as ParallelGridError {
            #expect("\(error)".contains("valid: 1, 2, 3, 4") && "\(error)".contains("blocks of 256"), "\(error)")
        }
        // A real file's formats are read from its tensors.
        let (configuration, q8) = try Self.open(Self.models[1])
        #expect(ParallelGrid.WeightBlocks(WeightSource(gguf: q8), configuration: configuration)
                    == ParallelGrid.WeightBlocks(attentionOutput: 32, feedForwardDown: 32))
    }
}

/// Random GGUF models (F32 norms; weights in the requested format), deterministic.
enum RandomModel {
    struct Generator {
        var state: UInt64
        mutating func next() -> Float {
            // SplitMix64 -> uniform in [-1, 1)
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(z >> 40) / Float(1 << 23) - 1
        }
    }

    struct Builder {
        var writer = GGUFWriter()
        var random = Generator(state: 42)
        let dtype: DType

        mutating func weight(_ name: String, _ shape: [Int], scale: Float = 0.3, dtype override: DType? = nil) throws {
            let count = shape.reduce(1, *)
            let values = (0..<count).map { _ in random.next() * scale }
            let type = override ?? dtype
            if type == .f32 {
                try writer.addTensor(name: name, shape: shape, floats: values)
            } else {
                try writer.addTensor(name: name, dtype: type, shape: shape, bytes: try Quantization.quantize(values, as: type))
            }
        }

        mutating func norm(_ name: String, _ count: Int, center: Float = 1) throws {
            try writer.addTensor(name: name, shape: [count], floats: (0..<count).map { _ in center + 0.1 * random.next() })
        }

        mutating func bias(_ name: String, _ count: Int) throws {
            try writer.addTensor(name: name, shape: [count], floats: (0..<count).map { _ in 0.1 * random.next() })
        }
    }

    static let vocabulary = 131, layers = 3, context = 64

    static func llama(hidden: Int, heads: Int, kvHeads: Int, headDimension: Int? = nil, intermediate: Int,
                      dtype: DType) throws -> GGUFWriter {
        let headDimension = headDimension ?? hidden / heads
        var b = Builder(dtype: dtype)
        for (key, value) in [("context_length", context), ("embedding_length", hidden), ("block_count", layers),
                             ("feed_forward_length", intermediate), ("attention.head_count", heads),
                             ("attention.head_count_kv", kvHeads), ("attention.key_length", headDimension),
                             ("attention.value_length", headDimension), ("rope.dimension_count", headDimension)] {
            b.writer.set("llama.\(key)", .uint32(UInt32(value)))
        }
        b.writer.set("general.architecture", .string("llama"))
        b.writer.set("llama.attention.layer_norm_rms_epsilon", .float32(1e-5))
        b.writer.set("llama.rope.freq_base", .float32(10000))
        try b.weight("token_embd.weight", [vocabulary, hidden], scale: 1)
        for layer in 0..<layers {
            let p = "blk.\(layer)."
            try b.norm(p + "attn_norm.weight", hidden)
            try b.weight(p + "attn_q.weight", [heads * headDimension, hidden])
            try b.weight(p + "attn_k.weight", [kvHeads * headDimension, hidden])
            try b.weight(p + "attn_v.weight", [kvHeads * headDimension, hidden])
            try b.weight(p + "attn_output.weight", [hidden, heads * headDimension])
            try b.norm(p + "ffn_norm.weight", hidden)
            try b.weight(p + "ffn_gate.weight", [intermediate, hidden])
            try b.weight(p + "ffn_up.weight", [intermediate, hidden])
            try b.weight(p + "ffn_down.weight", [hidden, intermediate])
        }
        try b.norm("output_norm.weight", hidden)
        try b.weight("output.weight", [vocabulary, hidden])
        return b.writer
    }

    static func gemma3() throws -> GGUFWriter {
        let hidden = 48, heads = 6, kvHeads = 3, headDimension = 16, intermediate = 45
        var b = Builder(dtype: .f32)
        b.writer.set("general.architecture", .string("gemma3"))
        for (key, value) in [("context_length", context), ("embedding_length", hidden), ("block_count", layers),
                             ("feed_forward_length", intermediate), ("attention.head_count", heads),
                             ("attention.head_count_kv", kvHeads), ("attention.key_length", headDimension),
                             ("attention.value_length", headDimension), ("attention.sliding_window", 4)] {
            b.writer.set("gemma3.\(key)", .uint32(UInt32(value)))
        }
        b.writer.set("gemma3.attention.layer_norm_rms_epsilon", .float32(1e-6))
        b.writer.set("gemma3.rope.freq_base", .float32(1_000_000))
        try b.weight("token_embd.weight", [vocabulary, hidden], scale: 1)
        for layer in 0..<layers {
            let p = "blk.\(layer)."
            try b.norm(p + "attn_norm.weight", hidden)
            try b.weight(p + "attn_q.weight", [heads * headDimension, hidden])
            try b.weight(p + "attn_k.weight", [kvHeads * headDimension, hidden])
            try b.weight(p + "attn_v.weight", [kvHeads * headDimension, hidden])
            try b.norm(p + "attn_q_norm.weight", headDimension)
            try b.norm(p + "attn_k_norm.weight", headDimension)
            try b.weight(p + "attn_output.weight", [hidden, heads * headDimension])
            try b.norm(p + "post_attention_norm.weight", hidden)
            try b.norm(p + "ffn_norm.weight", hidden)
            try b.norm(p + "post_ffw_norm.weight", hidden)
            try b.weight(p + "ffn_gate.weight", [intermediate, hidden])
            try b.weight(p + "ffn_up.weight", [intermediate, hidden])
            try b.weight(p + "ffn_down.weight", [hidden, intermediate])
        }
        try b.norm("output_norm.weight", hidden)
        return b.writer
    }

    /// GPT-2 (fused q/k/v), OPT (separate, position table offset by 2) or BERT: 6 heads of 8, biases everywhere.
    static func biased(_ architecture: String) throws -> GGUFWriter {
        let hidden = 48, heads = 6, intermediate = 45
        var b = Builder(dtype: .f32)
        b.writer.set("general.architecture", .string(architecture))
        for (key, value) in [("context_length", context), ("embedding_length", hidden), ("block_count", layers),
                             ("feed_forward_length", intermediate), ("attention.head_count", heads)] {
            b.writer.set("\(architecture).\(key)", .uint32(UInt32(value)))
        }
        b.writer.set("\(architecture).attention.layer_norm_epsilon", .float32(1e-5))
        if architecture == "bert" {
            b.writer.set("bert.attention.causal", .bool(false))
            b.writer.set("bert.pooling_type", .uint32(1))
        }
        try b.weight("token_embd.weight", [vocabulary, hidden], scale: 1)
        try b.weight("position_embd.weight", [architecture == "opt" ? context + 2 : context, hidden], scale: 0.5)
        if architecture == "bert" {
            try b.weight("token_types.weight", [2, hidden], scale: 0.5)
            try b.norm("token_embd_norm.weight", hidden)
            try b.bias("token_embd_norm.bias", hidden)
        }
        for layer in 0..<layers {
            let p = "blk.\(layer)."
            if architecture != "bert" {
                try b.norm(p + "attn_norm.weight", hidden)
                try b.bias(p + "attn_norm.bias", hidden)
            }
            if architecture == "gpt2" {
                try b.weight(p + "attn_qkv.weight", [3 * hidden, hidden])
                try b.bias(p + "attn_qkv.bias", 3 * hidden)
            } else {
                for name in ["attn_q", "attn_k", "attn_v"] {
                    try b.weight(p + name + ".weight", [hidden, hidden])
                    try b.bias(p + name + ".bias", hidden)
                }
            }
            try b.weight(p + "attn_output.weight", [hidden, hidden])
            try b.bias(p + "attn_output.bias", hidden)
            if architecture == "bert" {
                try b.norm(p + "attn_output_norm.weight", hidden)
                try b.bias(p + "attn_output_norm.bias", hidden)
            } else {
                try b.norm(p + "ffn_norm.weight", hidden)
                try b.bias(p + "ffn_norm.bias", hidden)
            }
            try b.weight(p + "ffn_up.weight", [intermediate, hidden])
            try b.bias(p + "ffn_up.bias", intermediate)
            try b.weight(p + "ffn_down.weight", [hidden, intermediate])
            try b.bias(p + "ffn_down.bias", hidden)
            if architecture == "bert" {
                try b.norm(p + "layer_output_norm.weight", hidden)
                try b.bias(p + "layer_output_norm.bias", hidden)
            }
        }
        if architecture != "bert" {
            try b.norm("output_norm.weight", hidden)
            try b.bias("output_norm.bias", hidden)
        }
        return b.writer
    }

    static func gpt2() throws -> GGUFWriter { try biased("gpt2") }
    static func opt() throws -> GGUFWriter { try biased("opt") }
    static func bert() throws -> GGUFWriter { try biased("bert") }
}
