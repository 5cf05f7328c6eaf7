import EnergonCheckpoint
import EnergonCore
import Testing

/// Prefixes, shape checks, shards and strict accounting over a synthetic GGUF.
@Suite struct WeightSourceTests {
    /// A GGUF with an F32 [8, 64] matrix, a Q8_0 [4, 128] matrix, a Q4_K [2, 512] matrix and a bias,
    /// with bytes that encode their position so slices can be checked byte by byte.
    func makeSource() throws -> (WeightSource, GGUFFile) {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        try writer.addTensor(name: "blk.0.attn_q.weight", shape: [8, 64], floats: (0..<512).map(Float.init))
        let q8 = (0..<(4 * 4 * 34)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try writer.addTensor(name: "blk.0.ffn_up.weight", dtype: .q8_0, shape: [4, 128], bytes: q8)
        let q4k = (0..<(2 * 2 * 144)).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        try writer.addTensor(name: "blk.0.ffn_down.weight", dtype: .q4_K, shape: [2, 512], bytes: q4k)
        try writer.addTensor(name: "blk.0.attn_q.bias", shape: [8], floats: (0..<8).map(Float.init))
        try writer.addTensor(name: "rope_freqs.weight", shape: [4], floats: [1, 2, 3, 4])
        let file = try GGUFFile(bytes: writer.bytes(), name: "synthetic.gguf")
        return (WeightSource(gguf: file), file)
    }

    func bytes(_ tensor: Tensor) -> [UInt8] { Array(UnsafeRawBufferPointer(start: tensor.data, count: tensor.byteCount)) }

    @Test func prefixesShapesAndAccounting() throws {
        let (source, file) = try makeSource()
        let block = source.prefixed("blk").prefixed("0")
        #expect(block.prefix == "blk.0.")
        let query = try block.tensor("attn_q.weight", shape: [8, 64])
        #expect(query.data == (try file.tensor(named: "blk.0.attn_q.weight")).data)  // zero-copy
        #expect(throws: CheckpointError.shapeMismatch(path: "synthetic.gguf", tensor: "`blk.0.attn_q.weight`", actual: [8, 64], expected: [64, 8])) {
            try block.tensor("attn_q.weight", shape: [64, 8])
        }
        #expect(throws: CheckpointError.missingTensor(path: "synthetic.gguf", name: "blk.0.attn_k.weight")) {
            try block.tensor("attn_k.weight", shape: [8, 64])
        }
        #expect(try block.tensorIfPresent("attn_k.bias", shape: [8]) == nil)
        #expect(block.contains("attn_q.bias") && !block.contains("attn_k.bias"))
        // Unused: everything but attn_q.weight.
        #expect(throws: CheckpointError.unusedTensors(path: "synthetic.gguf",
                                                      names: ["blk.0.ffn_up.weight", "blk.0.ffn_down.weight", "blk.0.attn_q.bias", "rope_freqs.weight"])) {
            try source.finish()
        }
        _ = try block.tensor("attn_q.bias", shape: [8])
        block.markIgnored("ffn_up.weight")
        block.markIgnored("not_there.weight")
        source.markIgnored { $0.hasPrefix("rope_") }
        #expect(source.unusedTensorNames == ["blk.0.ffn_down.weight"])
        _ = try block.tensor("ffn_down.weight", shape: [2, 512])
        try source.finish()
    }

    @Test(arguments: [1, 2, 4, 8])
    func rowShardsAreZeroCopySlices(count: Int) throws {
        let (source, file) = try makeSource()
        let full = try file.tensor(named: "blk.0.attn_q.weight")
        for rank in 0..<count {
            let part = try source.tensor("blk.0.attn_q.weight", shape: [8, 64], shard: ShardSpec(dimension: 0, rank: rank, count: count))
            #expect(part.shape == [8 / count, 64])
            #expect(part.data == full.data + rank * (8 / count) * 256)
            let values = UnsafeBufferPointer(start: part.data.assumingMemoryBound(to: Float.self), count: part.elementCount)
            #expect(Array(values) == (rank * 512 / count..<(rank + 1) * 512 / count).map(Float.init))
        }
        let q8 = try file.tensor(named: "blk.0.ffn_up.weight")
        let half = try source.tensor("blk.0.ffn_up.weight", shape: [4, 128], shard: ShardSpec(dimension: 0, rank: 1, count: 2))
        #expect(bytes(half) == Array(bytes(q8)[2 * 136..<4 * 136]))
    }

    @Test(arguments: [1, 2, 4])
    func columnShardsCopyWholeBlocks(count: Int) throws {
        let (source, file) = try makeSource()
        let full = bytes(try file.tensor(named: "blk.0.ffn_up.weight"))  // 4 rows of 4 blocks of 34 bytes
        for rank in 0..<count {
            let part = try source.tensor("blk.0.ffn_up.weight", shape: [4, 128], shard: ShardSpec(dimension: 1, rank: rank, count: count))
            #expect(part.shape == [4, 128 / count] && part.dtype == .q8_0)
            var expected: [UInt8] = []
            let partBytes = 4 / count * 34
            for row in 0..<4 {
                let start: Int = row * 136 + rank * partBytes
                expected.append(contentsOf: full[start..<start + partBytes])
            }
            #expect(bytes(part) == expected)
        }
        let floats = try source.tensor("blk.0.attn_q.weight", shape: [8, 64], shard: ShardSpec(dimension: 1, rank: 3, count: 4))
        let values = UnsafeBufferPointer(start: floats.data.assumingMemoryBound(to: Float.self), count: floats.elementCount)
        var columns: [Float] = []
        for row in 0..<8 { for column in 48..<64 { columns.append(Float(row * 64 + column)) } }
        #expect(Array(values) == columns)
        let bias = try source.tensor("blk.0.attn_q.bias", shape: [8], shard: ShardSpec(dimension: 0, rank: 1, count: 2))
        #expect(Array(UnsafeBufferPointer(start: bias.data.assumingMemoryBound(to: Float.self), count: 4)) == [4, 5, 6, 7])
    }

    @Test func badShardsAreErrors() throws {
        let (source, _) = try makeSource()
        func shardError(_ name: String, _ shape: [Int], _ shard: ShardSpec) -> Bool {
            if case .badShard? = checkpointError({ _ = try source.tensor(name, shape: shape, shard: shard) }) { return true }
            return false
        }
        #expect(shardError("blk.0.attn_q.weight", [8, 64], ShardSpec(dimension: 0, rank: 0, count: 3)))   // 8 % 3
        #expect(shardError("blk.0.attn_q.weight", [8, 64], ShardSpec(dimension: 0, rank: 2, count: 2)))   // rank out of range
        #expect(shardError("blk.0.attn_q.weight", [8, 64], ShardSpec(dimension: 0, rank: 0, count: 0)))
        #expect(shardError("blk.0.attn_q.weight", [8, 64], ShardSpec(dimension: 2, rank: 0, count: 2)))   // no such dimension
        #expect(shardError("blk.0.ffn_up.weight", [4, 128], ShardSpec(dimension: 1, rank: 0, count: 8))) // 16 columns: half a block
        #expect(shardError("blk.0.ffn_down.weight", [2, 512], ShardSpec(dimension: 1, rank: 0, count: 4))) // 128 of a 256 block
        #expect(!shardError("blk.0.ffn_down.weight", [2, 512], ShardSpec(dimension: 1, rank: 1, count: 2)))
    }
}

/// config.json parsing: typed fields, spellings per architecture, errors naming the key.
@Suite struct ModelConfigurationTests {
    func parse(_ text: String) throws -> ModelConfiguration {
        try ModelConfiguration(json: JSONValue.parse(text, path: "config.json"), path: "config.json")
    }

    @Test func llamaStyleConfig() throws {
        let configuration = try parse("""
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576, "intermediate_size": 1536,
         "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
         "rms_norm_eps": 1e-05, "rope_theta": 100000, "max_position_embeddings": 8192, "tie_word_embeddings": true,
         "bos_token_id": 1, "eos_token_id": [2, 3], "hidden_act": "silu",
         "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0}}
        """)
        #expect(configuration.architectures == ["LlamaForCausalLM"])
        #expect(configuration.family == .llama)
        #expect(configuration.hiddenSize == 576 && configuration.intermediateSize == 1536 && configuration.layerCount == 30)
        #expect(configuration.attentionHeadCount == 9 && configuration.keyValueHeadCount == 3 && configuration.headDimension == 64)
        #expect(configuration.vocabularySize == 49152 && configuration.normEpsilon == 1e-5 && configuration.ropeTheta == 100000)
        #expect(configuration.maxPositionEmbeddings == 8192 && configuration.tieWordEmbeddings)
        #expect(configuration.bosTokenID == 1 && configuration.eosTokenIDs == [2, 3] && configuration.hiddenActivation == "silu")
        #expect(configuration.ropeScaling?.type == "llama3" && configuration.ropeScaling?.factor == 8)
        #expect(configuration.ropeScaling?.fields["low_freq_factor"] == .double(1))
        #expect(configuration.slidingWindow == nil)
    }

    @Test func gpt2AndMultimodalSpellings() throws {
        let gpt2 = try parse(#"{"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": null, "n_positions": 1024, "vocab_size": 50257, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "eos_token_id": 50256}"#)
        #expect(gpt2.intermediateSize == 3072 && gpt2.maxPositionEmbeddings == 1024 && gpt2.eosTokenIDs == [50256] && gpt2.tieWordEmbeddings)
        #expect(gpt2.hiddenActivation == "gelu_new" && gpt2.family == .gpt2)
        let gemma = try parse(#"{"model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"], "text_config": {"model_type": "gemma3_text", "hidden_size": 640, "intermediate_size": 2048, "num_hidden_layers": 18, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256, "vocab_size": 262144, "rms_norm_eps": 1e-6, "sliding_window": 512, "query_pre_attn_scalar": 256}}"#)
        #expect(gemma.modelType == "gemma3_text" && gemma.family == .gemma3 && gemma.headDimension == 256 && gemma.slidingWindow == 512)
        #expect(gemma.extra["query_pre_attn_scalar"] == .int(256))
    }

    @Test func errorsNameTheKey() {
        func error(_ text: String) -> CheckpointError? { checkpointError { _ = try parse(text) } }
        let base = #""model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10"#
        #expect(error("{\(base)}") == nil)
        #expect(error(#"{"hidden_size": 64}"#) == .missingKey(path: "config.json", key: "model_type"))
        #expect(error(#"{"model_type": "llama", "num_hidden_layers": 2}"#) == .missingKey(path: "config.json", key: "hidden_size"))
        #expect({ if case .badKey(_, "hidden_size", _)? = error(#"{"model_type": "llama", "hidden_size": "64"}"#) { true } else { false } }())
        #expect({ if case .badKey(_, "num_key_value_heads", _)? = error("{\(base), \"num_key_value_heads\": 3}") { true } else { false } }())
        #expect({ if case .badKey(_, "num_key_value_heads", _)? = error("{\(base), \"num_key_value_heads\": -1}") { true } else { false } }())
        #expect({ if case .badKey(_, "rms_norm_eps", _)? = error("{\(base), \"rms_norm_eps\": \"x\"}") { true } else { false } }())
        #expect({ if case .badKey(_, "tie_word_embeddings", _)? = error("{\(base), \"tie_word_embeddings\": 1}") { true } else { false } }())
        #expect({ if case .badKey(_, "eos_token_id", _)? = error("{\(base), \"eos_token_id\": [1, \"a\"]}") { true } else { false } }())
        #expect({ if case .badKey(_, "rope_scaling", _)? = error("{\(base), \"rope_scaling\": {\"factor\": 2}}") { true } else { false } }())
        #expect({ if case .badKey? = error("[1]") { true } else { false } }())
    }
}
