import EnergonCheckpoint
import EnergonCore
import Testing

/// Sharded safetensors folders whose index and shards disagree.
@Suite struct ShardedFolderTests {
    func shard(_ names: [String]) -> [UInt8] {
        var header = "{"
        for (index, name) in names.enumerated() {
            if index > 0 { header += ", " }
            header += "\"\(name)\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [\(index * 4), \(index * 4 + 4)]}"
        }
        header += "}"
        return safetensorsBytes(header: header, data: [UInt8](repeating: 0, count: names.count * 4))
    }

    func folder(index: String?, shards: [String: [String]]) -> String {
        let directory = TestFiles.temporaryDirectory()
        if let index { TestFiles.write(index, to: "\(directory)/model.safetensors.index.json") }
        for (file, names) in shards { TestFiles.write(shard(names), to: "\(directory)/\(file)") }
        return directory
    }

    /// The error opening a folder made of `index` and `shards` gives (the folder is removed after).
    func error(index: String?, shards: [String: [String]]) -> CheckpointError? {
        let path = folder(index: index, shards: shards)
        defer { TestFiles.remove(path) }
        return checkpointError { _ = try SafetensorsFolder(path: path) }
    }
    func isInconsistent(_ error: CheckpointError?) -> Bool { if case .inconsistentShards? = error { true } else { false } }

    @Test func consistentIndexOpens() throws {
        let path = folder(index: #"{"metadata": {"total_size": 12}, "weight_map": {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"}}"#,
                          shards: ["s1.safetensors": ["a", "b"], "s2.safetensors": ["c"]])
        defer { TestFiles.remove(path) }
        let opened = try SafetensorsFolder(path: path)
        #expect(opened.files.count == 2 && Set(opened.storedTensors.map(\.name)) == ["a", "b", "c"])
        #expect(try opened.tensor(named: "c").shape == [1])
    }

    @Test func inconsistentShards() {
        // The index names a tensor the shard lacks.
        #expect(isInconsistent(error(index: #"{"weight_map": {"a": "s1.safetensors", "z": "s1.safetensors"}}"#, shards: ["s1.safetensors": ["a"]])))
        // A shard holds a tensor the index does not list.
        #expect(isInconsistent(error(index: #"{"weight_map": {"a": "s1.safetensors"}}"#, shards: ["s1.safetensors": ["a", "b"]])))
        // A tensor in a different shard than the index says.
        #expect(isInconsistent(error(index: #"{"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}"#,
                                     shards: ["s1.safetensors": ["a", "b"], "s2.safetensors": []])))
        // A shard the index names is missing.
        #expect(isInconsistent(error(index: #"{"weight_map": {"a": "s9.safetensors"}}"#, shards: [:])))
        // Without an index, a tensor in two files.
        #expect(isInconsistent(error(index: nil, shards: ["x.safetensors": ["a"], "y.safetensors": ["a"]])))
    }

    @Test func badIndexes() {
        #expect({ if case .badJSON? = error(index: "{\"weight_map\": ", shards: [:]) { true } else { false } }())
        #expect({ if case .badHeader? = error(index: "{\"metadata\": {}}", shards: [:]) { true } else { false } }())
        #expect({ if case .badHeader? = error(index: #"{"weight_map": {"a": 3}}"#, shards: [:]) { true } else { false } }())
        #expect({ if case .badHeader? = error(index: #"{"weight_map": {"a": "../etc/passwd"}}"#, shards: [:]) { true } else { false } }())
        #expect({ if case .io? = error(index: nil, shards: [:]) { true } else { false } }())
    }
}

/// HF folders whose tensors do not fit the conversions their family needs: typed errors, no traps.
@Suite struct HostileHuggingFaceTests {
    func folder(config: String, header: String, dataBytes: Int) -> String {
        let directory = TestFiles.temporaryDirectory()
        TestFiles.write(config, to: "\(directory)/config.json")
        TestFiles.write(safetensorsBytes(header: header, data: [UInt8](repeating: 0, count: dataBytes)), to: "\(directory)/model.safetensors")
        return directory
    }

    let llama = #"{"model_type": "llama", "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 8}"#

    @Test func rotaryPermutationNeedsWholeEvenHeads() throws {
        let path = folder(config: llama, header: #"{"model.layers.0.self_attn.q_proj.weight": {"dtype": "F32", "shape": [15, 16], "data_offsets": [0, 960]}, "model.layers.0.self_attn.k_proj.weight": {"dtype": "F32", "shape": [0, 16], "data_offsets": [960, 960]}}"#, dataBytes: 960)
        defer { TestFiles.remove(path) }
        let weights = try ModelCheckpoint(path: path).weights()
        #expect({ if case .badTensorShape? = checkpointError({ _ = try weights.tensor("blk.0.attn_q.weight", shape: [15, 16]) }) { true } else { false } }())
        let empty = try weights.tensor("blk.0.attn_k.weight", shape: [0, 16])
        #expect(empty.byteCount == 0 && empty.shape == [0, 16])
        #expect({ if case .badTensorShape? = checkpointError({ _ = try weights.tensor("blk.0.attn_q.weight", shape: [15, 16], shard: ShardSpec(dimension: 0, rank: 0, count: 2)) }) { true } else { false } }())
        #expect({ if case .badShard? = checkpointError({ _ = try weights.tensor("blk.0.attn_k.weight", shape: [0, 16], shard: ShardSpec(dimension: 0, rank: 2, count: 2)) }) { true } else { false } }())
    }

    @Test func conversionsRejectUnfitTypes() throws {
        let gemma = #"{"model_type": "gemma3_text", "hidden_size": 4, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 1, "vocab_size": 8}"#
        let normPath = folder(config: gemma, header: #"{"model.norm.weight": {"dtype": "I32", "shape": [4], "data_offsets": [0, 16]}, "model.layers.0.input_layernorm.weight": {"dtype": "BOOL", "shape": [4], "data_offsets": [16, 20]}}"#, dataBytes: 20)
        defer { TestFiles.remove(normPath) }
        let norm = try ModelCheckpoint(path: normPath).weights()
        #expect({ if case .unsupported? = checkpointError({ _ = try norm.tensor("output_norm.weight", shape: [4]) }) { true } else { false } }())
        #expect({ if case .unsupported? = checkpointError({ _ = try norm.tensor("blk.0.attn_norm.weight", shape: [4]) }) { true } else { false } }())
        let gpt2 = #"{"model_type": "gpt2", "n_embd": 4, "n_layer": 1, "n_head": 1, "vocab_size": 8}"#
        let convPath = folder(config: gpt2, header: #"{"h.0.attn.c_attn.weight": {"dtype": "F32", "shape": [12], "data_offsets": [0, 48]}, "h.0.mlp.c_fc.weight": {"dtype": "F16", "shape": [4, 16], "data_offsets": [48, 176]}}"#, dataBytes: 176)
        defer { TestFiles.remove(convPath) }
        let conv = try ModelCheckpoint(path: convPath).weights()
        #expect({ if case .badTensorShape? = checkpointError({ _ = try conv.tensor("blk.0.attn_qkv.weight", shape: [12]) }) { true } else { false } }())
        let up = try conv.tensor("blk.0.ffn_up.weight", shape: [16, 4])   // transposed from HF's [4, 16]
        #expect(up.shape == [16, 4] && up.dtype == .f16)
        #expect(throws: CheckpointError.shapeMismatch(path: conv.store.path, tensor: "`blk.0.ffn_up.weight` (`h.0.mlp.c_fc.weight`)", actual: [16, 4], expected: [4, 16])) {
            try conv.tensor("blk.0.ffn_up.weight", shape: [4, 16])
        }
    }
}
