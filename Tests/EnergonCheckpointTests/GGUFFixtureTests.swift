import EnergonCheckpoint
import EnergonCore
import Testing

/// The fixture written by the independent `gguf` package (scripts/make_gguf_fixture.py).
@Suite struct GGUFFixtureTests {
    let path = TestFiles.fixture("gguf/fixture.gguf")

    @Test func readsEveryMetadataTypeExactly() throws {
        let file = try GGUFFile(path: path)
        #expect(file.version == 3)
        #expect(file.alignment == 32)
        #expect(file.architecture == "llama")
        let expected: [(String, GGUFValue)] = [
            ("general.architecture", .string("llama")),
            ("test.u8", .uint8(200)),
            ("test.i8", .int8(-100)),
            ("test.u16", .uint16(60000)),
            ("test.i16", .int16(-30000)),
            ("test.u32", .uint32(4_000_000_000)),
            ("test.i32", .int32(-2_000_000_000)),
            ("test.f32", .float32(1.5)),
            ("test.bool", .bool(true)),
            ("test.string", .string("héllo ▁wörld\n")),
            ("test.u64", .uint64(18_000_000_000_000_000_000)),
            ("test.i64", .int64(-9_000_000_000_000_000_000)),
            ("test.f64", .float64(-2.25)),
            ("test.strings", .array([.string("a"), .string(""), .string("<0x0A>"), .string("▁the")])),
            ("test.ints", .array([.int32(1), .int32(-2), .int32(3)])),
            ("test.floats", .array([.float32(0.5), .float32(-1.25)])),
            ("test.nested", .array([.array([.int32(1), .int32(2)]), .array([.int32(3)])])),
            ("llama.context_length", .uint32(2048)),
            ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
        ]
        #expect(file.metadataOrder == expected.map(\.0))
        for (key, value) in expected {
            #expect(file.metadata[key] == value, "\(key)")
        }
        #expect(file.metadata["test.u64"]?.int == nil)  // does not fit in Int
        #expect(file.metadata["test.u32"]?.int == 4_000_000_000)
        #expect(file.metadata["test.ints"]?.ints == [1, -2, 3])
        #expect(file.metadata["test.floats"]?.floats == [0.5, -1.25])
        #expect(file.metadata["test.strings"]?.strings == ["a", "", "<0x0A>", "▁the"])
        #expect(file.metadata["test.ints"]?.strings == nil)
    }

    @Test func tensorTableMatchesGGUFPy() throws {
        let file = try GGUFFile(path: path)
        let lines = String(decoding: TestFiles.read(TestFiles.fixture("gguf/fixture.expected.txt")), as: UTF8.self)
            .split(separator: "\n")
        #expect(lines.count == file.tensors.count)
        for (line, info) in zip(lines, file.tensors) {
            let fields = line.split(separator: " ").map(String.init)
            #expect(info.name == fields[0])
            #expect(info.dtype.name == fields[1])
            #expect(info.shape == fields[2].split(separator: ",").map { Int($0)! })
            #expect(info.offset == Int(fields[3]))
            #expect(info.byteCount == Int(fields[4]))
            let tensor = try file.tensor(named: info.name)
            #expect(tensor.shape == info.shape && tensor.dtype == info.dtype)
            let hash = TestFiles.fnv1a64(UnsafeRawBufferPointer(start: tensor.data, count: tensor.byteCount))
            #expect(String(hash, radix: 16).leftPadded(16) == fields[5], "\(info.name)")
        }
    }

    @Test func tensorValuesFollowTheScriptFormulas() throws {
        let file = try GGUFFile(path: path)
        let f32 = try file.tensor(named: "token_embd.weight")
        #expect(f32.shape == [3, 5] && f32.rows == 3 && f32.columns == 5)
        let floats = f32.data.assumingMemoryBound(to: Float.self)
        for index in 0..<15 { #expect(floats[index] == Float(index) * 0.25 - 3) }
        let f16 = try file.tensor(named: "blk.0.attn_q.weight")
        let halves = f16.data.assumingMemoryBound(to: UInt16.self)
        for index in 0..<8 { #expect(Float(Float16(bitPattern: halves[index])) == Float(index) * 0.5 - 2) }
        let cube = try file.tensor(named: "blk.0.cube")
        #expect(cube.shape == [2, 3, 4])
        for index in 0..<24 { #expect(cube.data.assumingMemoryBound(to: Float.self)[index] == Float(index)) }
        let ids = try file.tensor(named: "blk.0.ids")
        #expect(ids.dtype == .i32 && ids.shape == [7])
        for index in 0..<7 { #expect(ids.data.assumingMemoryBound(to: Int32.self)[index] == Int32(index * 3 - 5)) }
        let q8 = try file.tensor(named: "blk.0.ffn_up.weight")
        #expect(q8.dtype == .q8_0 && q8.shape == [2, 64] && q8.rowBytes == 68)
        #expect(throws: CheckpointError.missingTensor(path: path, name: "nope")) { try file.tensor(named: "nope") }
    }

    /// The writer, given the same content in the same order, produces the very bytes gguf-py wrote:
    /// so what it writes is readable by gguf-py and llama.cpp.
    @Test func writerReproducesGGUFPyByteForByte() throws {
        let file = try GGUFFile(path: path)
        var writer = GGUFWriter()
        for key in file.metadataOrder { writer.set(key, file.metadata[key]!) }
        for info in file.tensors { try writer.addTensor(name: info.name, tensor: file.tensor(info)) }
        let original = TestFiles.read(path)
        #expect(try writer.bytes() == original)
        let directory = TestFiles.temporaryDirectory()
        defer { TestFiles.remove(directory) }
        try writer.write(to: "\(directory)/copy.gguf")
        #expect(TestFiles.read("\(directory)/copy.gguf") == original)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
