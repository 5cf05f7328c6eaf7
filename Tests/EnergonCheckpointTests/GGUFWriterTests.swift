import EnergonCheckpoint
import EnergonCore
import Testing

/// Writer output read back by the reader: every value type, every dtype, both versions, alignments.
@Suite struct GGUFWriterTests {
    @Test(arguments: [(3, 32), (2, 32), (3, 64), (3, 1)])
    func roundTrip(version: Int, alignment: Int) throws {
        var writer = GGUFWriter(alignment: alignment, version: version)
        let values: [(String, GGUFValue)] = [
            ("general.architecture", .string("qwen2")),
            ("z.first", .int64(Int64.min)),
            ("a.second", .float64(.pi)),
            ("u", .uint64(UInt64.max)),
            ("i16", .int16(.min)),
            ("f", .float32(-0.0)),
            ("bool", .bool(false)),
            ("empty", .array([])),
            ("strings", .array((0..<1000).map { .string("token\($0)") })),
            ("nested", .array([.array([.string("x")]), .array([])])),
            ("u16s", .array([.uint16(1), .uint16(65535)])),
            ("i8s", .array([.int8(-128)])),
        ]
        for (key, value) in values { writer.set(key, value) }
        writer.set("z.first", .int64(5))  // replaces in place
        var generator = SystemRandomNumberGenerator()
        var expected: [(String, DType, [Int], [UInt8])] = []
        for (index, dtype) in DType.allCases.enumerated() {
            let shape = [index % 3 + 1, dtype.blockSize * (index % 2 + 1)]
            let count = Tensor.byteCount(dtype: dtype, shape: shape)!
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            try writer.addTensor(name: "tensor.\(dtype.name)", dtype: dtype, shape: shape, bytes: bytes)
            expected.append(("tensor.\(dtype.name)", dtype, shape, bytes))
        }
        let owned = Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        try writer.addTensor(name: "owned", tensor: owned)

        let directory = TestFiles.temporaryDirectory()
        defer { TestFiles.remove(directory) }
        try writer.write(to: "\(directory)/out.gguf")
        let file = try GGUFFile(path: "\(directory)/out.gguf")
        #expect(TestFiles.read("\(directory)/out.gguf") == (try writer.bytes()))
        #expect(file.version == version && file.alignment == alignment)
        var order = values.map(\.0)
        if alignment != 32 { order.insert("general.alignment", at: 0) }
        #expect(file.metadataOrder == order)
        #expect(file.metadata["z.first"] == .int64(5))
        for (key, value) in values where key != "z.first" {
            // -0.0 == 0.0 under Equatable; compare float bit patterns explicitly below.
            #expect(file.metadata[key] == value, "\(key)")
        }
        #expect(file.metadata["f"]?.float?.sign == .minus)
        for (name, dtype, shape, bytes) in expected {
            let tensor = try file.tensor(named: name)
            #expect(tensor.dtype == dtype && tensor.shape == shape)
            #expect(Array(UnsafeRawBufferPointer(start: tensor.data, count: tensor.byteCount)) == bytes, "\(name)")
            #expect(file.tensorInfo(named: name)!.offset % alignment == 0)
        }
        let back = try file.tensor(named: "owned")
        #expect(Array(UnsafeBufferPointer(start: back.data.assumingMemoryBound(to: Float.self), count: 6)) == [1, 2, 3, 4, 5, 6])
    }

    @Test func rejectsBadInput() throws {
        var writer = GGUFWriter()
        #expect(throws: CheckpointError.self) { try writer.addTensor(name: "q", dtype: .q4_0, shape: [1, 16], bytes: []) }
        #expect(throws: CheckpointError.self) { try writer.addTensor(name: "f", dtype: .f32, shape: [2], bytes: [0, 0, 0, 0]) }
        #expect(throws: CheckpointError.self) { try writer.addTensor(name: "f", dtype: .f32, shape: [1, 1, 1, 1, 1], bytes: [0, 0, 0, 0]) }
        try writer.addTensor(name: "f", shape: [1], floats: [1])
        #expect(throws: CheckpointError.duplicateName(path: "<GGUFWriter>", name: "f")) { try writer.addTensor(name: "f", shape: [1], floats: [1]) }
        writer.set("mixed", .array([.int32(1), .string("x")]))
        #expect(throws: CheckpointError.self) { _ = try writer.bytes() }
    }
}
