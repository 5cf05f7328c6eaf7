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

    func error(_ path: String) -> CheckpointError? { checkpointError { _ = try SafetensorsFolder(path: path) } }
    func isInconsistent(_ error: CheckpointError?) -> Bool { if case .inconsistentShards? = error { true } else { false } }

    @Test func consistentIndexOpens() throws {
        let path = folder(index: #"{"metadata": {"total_size": 12}, "weight_map": {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"}}"#,
                          shards: ["s1.safetensors": ["a", "b"], "s2.safetensors": ["c"]])
        let opened = try SafetensorsFolder(path: path)
        #expect(opened.files.count == 2 && Set(opened.storedTensors.map(\.name)) == ["a", "b", "c"])
        #expect(try opened.tensor(named: "c").shape == [1])
    }

    @Test func inconsistentShards() {
        // The index names a tensor the shard lacks.
        #expect(isInconsistent(error(folder(index: #"{"weight_map": {"a": "s1.safetensors", "z": "s1.safetensors"}}"#, shards: ["s1.safetensors": ["a"]]))))
        // A shard holds a tensor the index does not list.
        #expect(isInconsistent(error(folder(index: #"{"weight_map": {"a": "s1.safetensors"}}"#, shards: ["s1.safetensors": ["a", "b"]]))))
        // A tensor in a different shard than the index says.
        #expect(isInconsistent(error(folder(index: #"{"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}"#,
                                            shards: ["s1.safetensors": ["a", "b"], "s2.safetensors": []]))))
        // A shard the index names is missing.
        #expect(isInconsistent(error(folder(index: #"{"weight_map": {"a": "s9.safetensors"}}"#, shards: [:]))))
        // Without an index, a tensor in two files.
        #expect(isInconsistent(error(folder(index: nil, shards: ["x.safetensors": ["a"], "y.safetensors": ["a"]]))))
    }

    @Test func badIndexes() {
        #expect({ if case .badJSON? = error(folder(index: "{\"weight_map\": ", shards: [:])) { true } else { false } }())
        #expect({ if case .badHeader? = error(folder(index: "{\"metadata\": {}}", shards: [:])) { true } else { false } }())
        #expect({ if case .badHeader? = error(folder(index: #"{"weight_map": {"a": 3}}"#, shards: [:])) { true } else { false } }())
        #expect({ if case .badHeader? = error(folder(index: #"{"weight_map": {"a": "../etc/passwd"}}"#, shards: [:])) { true } else { false } }())
        #expect({ if case .io? = error(folder(index: nil, shards: [:])) { true } else { false } }())
    }
}
