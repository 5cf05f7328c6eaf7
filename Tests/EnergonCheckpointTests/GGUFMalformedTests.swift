import EnergonCheckpoint
import EnergonCore
import Testing

/// Damaged and hostile GGUF files: each must give the right `CheckpointError`, never a trap.
@Suite struct GGUFMalformedTests {
    let name = "bad.gguf"

    func open(_ bytes: [UInt8]) -> CheckpointError? {
        checkpointError { _ = try GGUFFile(bytes: bytes, name: name) }
    }

    /// A valid one-key, one-tensor file, the base the cases below damage.
    func valid(keyType: UInt32 = 4, tensorType: UInt32 = 0, ne: [UInt64] = [4, 2], offset: UInt64 = 0, dataBytes: Int = 32) -> [UInt8] {
        var builder = GGUFBuilder()
        builder.header(tensors: 1, keys: 1)
        builder.string("k")
        builder.u32(keyType)
        builder.u32(7)
        builder.tensorInfo("t", ne: ne, type: tensorType, offset: offset)
        builder.pad()
        builder.zeros(dataBytes)
        return builder.bytes
    }

    @Test func baseFileIsValid() throws {
        let file = try GGUFFile(bytes: valid(), name: name)
        #expect(file.metadata["k"] == .uint32(7))
        #expect(file.tensors.first?.shape == [2, 4])
    }

    @Test func everyTruncationOfTheFixtureIsATypedError() throws {
        let bytes = TestFiles.read(TestFiles.fixture("gguf/fixture.gguf"))
        #expect(bytes.count > 1000)
        let whole = try GGUFFile(bytes: bytes, name: name)
        // Only the trailing padding after the last tensor may be cut off.
        let dataEnd = whole.tensors.map { $0.offset + $0.byteCount }.max()!
        for length in dataEnd..<bytes.count { #expect(open(Array(bytes[0..<length])) == nil) }
        for length in 0..<dataEnd {
            let error = open(Array(bytes[0..<length]))
            switch error {
            case .truncated?, .tensorDataOutOfRange?: break
            default: Issue.record("prefix of \(length) bytes gave \(String(describing: error))")
            }
        }
    }

    @Test func wrongMagicAndVersions() {
        var bytes = valid()
        bytes[0] = UInt8(ascii: "X")
        #expect(open(bytes) == .badMagic(path: name, found: Array("XGUF".utf8)))
        for version: UInt8 in [0, 1, 4, 255] {
            var copy = valid()
            copy[4] = version
            #expect(open(copy) == .unsupportedVersion(path: name, version: Int(version)))
        }
        // Big-endian files carry the version byte-swapped.
        var swapped = valid()
        swapped[4...7] = [0, 0, 0, 3]
        #expect(open(swapped) == .unsupportedVersion(path: name, version: 0x0300_0000))
        var version2 = valid()
        version2[4] = 2
        #expect((try? GGUFFile(bytes: version2, name: name))?.version == 2)
    }

    @Test func absurdCountsAndLengths() {
        for (tensors, keys) in [(UInt64.max, UInt64(1)), (1, UInt64.max), (1 << 40, 1), (1, 1 << 40)] {
            var builder = GGUFBuilder()
            builder.header(tensors: tensors, keys: keys)
            builder.zeros(64)
            guard case .truncated? = open(builder.bytes) else {
                Issue.record("counts \(tensors)/\(keys) accepted")
                continue
            }
        }
        // A key length past the end, and one that does not fit in Int.
        for length in [UInt64(1000), UInt64.max, 1 << 63] {
            var builder = GGUFBuilder()
            builder.header(tensors: 0, keys: 1)
            builder.u64(length)
            builder.zeros(40)
            guard case .truncated? = open(builder.bytes) else { Issue.record("key length \(length) accepted"); continue }
        }
        // Array lengths: huge, and nested arrays claiming more than the file holds.
        for count in [UInt64.max, 1 << 61, 100] {
            var builder = GGUFBuilder()
            builder.header(tensors: 0, keys: 1)
            builder.string("a")
            builder.u32(9)
            builder.u32(9)  // array of arrays
            builder.u64(count)
            builder.zeros(60)
            guard case .truncated? = open(builder.bytes) else { Issue.record("array length \(count) accepted"); continue }
        }
    }

    @Test func unknownTypesAndBadValues() {
        #expect(open(valid(keyType: 13)) == .unknownValueType(path: name, key: "k", typeID: 13))
        var array = GGUFBuilder()
        array.header(tensors: 0, keys: 1)
        array.string("arr")
        array.u32(9)
        array.u32(99)
        array.u64(1)
        array.zeros(16)
        #expect(open(array.bytes) == .unknownValueType(path: name, key: "arr", typeID: 99))
        // Bool 7 holding 7 (the value written is u32 7, whose first byte is 7).
        #expect({ if case .malformed? = open(valid(keyType: 7)) { true } else { false } }())
        for type: UInt32 in [4, 5, 29, 31, 1000] {
            #expect(open(valid(tensorType: type)) == .unknownTensorType(path: name, tensor: "t", type: "GGUF type id \(type)"))
        }
        var deep = GGUFBuilder()
        deep.header(tensors: 0, keys: 1)
        deep.string("deep")
        deep.u32(9)
        for _ in 0..<40 {
            deep.u32(9)
            deep.u64(1)
        }
        deep.u32(0)
        deep.u64(0)
        #expect({ if case .malformed? = open(deep.bytes) { true } else { false } }())
    }

    @Test func badShapes() {
        func shapeError(_ bytes: [UInt8]) -> Bool {
            if case .badTensorShape? = open(bytes) { return true }
            return false
        }
        #expect(shapeError(valid(ne: [1, 1, 1, 1, 1])))          // 5 dimensions
        #expect(shapeError(valid(ne: [4, 0])))                   // zero dimension
        #expect(shapeError(valid(ne: [UInt64.max, 1])))           // does not fit in Int
        #expect(shapeError(valid(ne: [1 << 40, 1 << 40])))        // size overflows
        #expect(shapeError(valid(tensorType: DType.q8_0.rawValue, ne: [48, 1], dataBytes: 64)))  // 48 % 32 != 0
        #expect((try? GGUFFile(bytes: valid(tensorType: DType.q8_0.rawValue, ne: [64, 1], dataBytes: 96), name: name)) != nil)
    }

    @Test func dataOutOfRangeMisalignedAndOverlapping() {
        #expect(open(valid(dataBytes: 31)) == .tensorDataOutOfRange(path: name, tensor: "t", offset: 0, byteCount: 32, available: 31))
        #expect(open(valid(offset: 32, dataBytes: 32)) == .tensorDataOutOfRange(path: name, tensor: "t", offset: 32, byteCount: 32, available: 32))
        #expect(open(valid(offset: 1 << 62)) == .tensorDataOutOfRange(path: name, tensor: "t", offset: 1 << 62, byteCount: 32, available: 32))
        #expect(open(valid(offset: UInt64.max & ~31)) == .tensorDataOutOfRange(path: name, tensor: "t", offset: Int.max, byteCount: 32, available: 0))
        #expect(open(valid(offset: 8)) == .misalignedTensor(path: name, tensor: "t", offset: 8, alignment: 32))

        var overlap = GGUFBuilder()
        overlap.header(tensors: 2, keys: 0)
        overlap.tensorInfo("a", ne: [16], type: 0, offset: 0)
        overlap.tensorInfo("b", ne: [4], type: 0, offset: 32)
        overlap.pad()
        overlap.zeros(64)
        #expect(open(overlap.bytes) == .overlappingTensors(path: name, first: "a", second: "b"))

        var duplicate = GGUFBuilder()
        duplicate.header(tensors: 2, keys: 0)
        duplicate.tensorInfo("a", ne: [4], type: 0, offset: 0)
        duplicate.tensorInfo("a", ne: [4], type: 0, offset: 32)
        duplicate.pad()
        duplicate.zeros(64)
        #expect(open(duplicate.bytes) == .duplicateName(path: name, name: "a"))

        var keys = GGUFBuilder()
        keys.header(tensors: 0, keys: 2)
        for _ in 0..<2 {
            keys.string("same")
            keys.u32(0)
            keys.u8(1)
        }
        #expect(open(keys.bytes) == .duplicateName(path: name, name: "same"))
    }

    @Test func alignmentKey() throws {
        func file(alignment: GGUFValue, offset: UInt64) -> [UInt8] {
            var builder = GGUFBuilder()
            builder.header(tensors: 1, keys: 1)
            builder.string("general.alignment")
            builder.u32(alignment.typeID)
            if case let .uint32(value) = alignment { builder.u32(value) } else { builder.u64(64) }
            builder.tensorInfo("t", ne: [4], type: 0, offset: offset)
            builder.pad(to: 64)
            builder.zeros(128)
            return builder.bytes
        }
        let good = try GGUFFile(bytes: file(alignment: .uint32(64), offset: 64), name: name)
        #expect(good.alignment == 64 && good.dataOffset % 64 == 0 && good.tensors[0].offset == good.dataOffset + 64)
        #expect(open(file(alignment: .uint32(64), offset: 32)) == .misalignedTensor(path: name, tensor: "t", offset: 32, alignment: 64))
        for bad in [GGUFValue.uint32(0), .uint32(48), .uint64(64)] {
            guard case .badKey? = open(file(alignment: bad, offset: 0)) else { Issue.record("alignment \(bad) accepted"); continue }
        }
    }

    @Test func missingAndNonRegularFiles() {
        #expect({ if case .io? = checkpointError({ _ = try GGUFFile(path: "/nonexistent/x.gguf") }) { true } else { false } }())
        #expect({ if case .io? = checkpointError({ _ = try GGUFFile(path: "/tmp") }) { true } else { false } }())
        let directory = TestFiles.temporaryDirectory()
        defer { TestFiles.remove(directory) }
        TestFiles.write([UInt8](), to: "\(directory)/empty.gguf")
        #expect({ if case .truncated? = checkpointError({ _ = try GGUFFile(path: "\(directory)/empty.gguf") }) { true } else { false } }())
    }
}
