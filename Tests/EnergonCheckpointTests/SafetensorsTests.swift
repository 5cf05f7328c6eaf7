import EnergonCheckpoint
import EnergonCore
import Testing

/// Builds safetensors bytes from a header text and a data section, independent of the reader.
func safetensorsBytes(header: String, data: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = []
    withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
    bytes.append(contentsOf: header.utf8)
    bytes.append(contentsOf: data)
    return bytes
}

/// The fixture written by the `safetensors` package (scripts/make_safetensors_fixture.py), and
/// damaged headers.
@Suite struct SafetensorsTests {
    let path = TestFiles.fixture("safetensors/single.safetensors")

    @Test func tensorTableMatchesTheSafetensorsPackage() throws {
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata == ["format": "pt", "source": "energon fixture"])
        let lines = String(decoding: TestFiles.read(TestFiles.fixture("safetensors/single.expected.txt")), as: UTF8.self)
            .split(separator: "\n")
        #expect(lines.count == file.tensors.count)
        for (line, info) in zip(lines, file.tensors) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            #expect(info.name == fields[0])
            #expect(info.typeName == fields[1])
            #expect(info.shape == fields[2].split(separator: ",").map { Int($0)! })
            #expect(info.offset == Int(fields[3]))
            #expect(info.byteCount == Int(fields[4]))
            let bytes = try file.rawBytes(of: info.name)
            #expect(String(TestFiles.fnv1a64(bytes), radix: 16).leftPadded(16) == fields[5], "\(info.name)")
        }
    }

    @Test func valuesAndDTypes() throws {
        let file = try SafetensorsFile(path: path)
        let f32 = try file.tensor(named: "f32")
        #expect(f32.dtype == .f32 && f32.shape == [3, 4])
        for index in 0..<12 { #expect(f32.data.loadUnaligned(fromByteOffset: index * 4, as: Float.self) == Float(index) * 0.5 - 1) }
        let f16 = try file.tensor(named: "f16")
        #expect(f16.dtype == .f16)
        for index in 0..<6 { #expect(Float(f16.data.loadUnaligned(fromByteOffset: index * 2, as: Float16.self)) == Float(index) * 0.25) }
        let bf16 = try file.tensor(named: "bf16")
        #expect(bf16.dtype == .bf16 && bf16.shape == [2, 2, 2])
        for index in 0..<8 {
            let bits = bf16.data.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)
            #expect(Float(bitPattern: UInt32(bits) << 16) == Float(index - 4))
        }
        #expect(try file.tensor(named: "f64").dtype == .f64)
        #expect(try file.tensor(named: "i64").data.loadUnaligned(fromByteOffset: 8, as: Int64.self) == 1 << 50)
        #expect(try file.tensor(named: "i32").data.loadUnaligned(fromByteOffset: 16, as: Int32.self) == -28)
        #expect(try file.tensor(named: "i8").dtype == .i8)
        #expect(try file.tensor(named: "i16").dtype == .i16)
        #expect(try file.tensor(named: "scalar").shape == [])
        #expect(try file.tensor(named: "empty").byteCount == 0)
        #expect(Array(try file.rawBytes(of: "u8")) == [0, 200, 255])
        #expect(Array(try file.rawBytes(of: "bool")) == [1, 0, 1])
        #expect(file.tensorInfo(named: "u8")?.dtype == nil)
        #expect({ if case .unsupported? = checkpointError({ _ = try file.tensor(named: "bool") }) { true } else { false } }())
        #expect(throws: CheckpointError.missingTensor(path: path, name: "x")) { try file.tensor(named: "x") }
    }

    func open(_ bytes: [UInt8]) -> CheckpointError? {
        checkpointError { _ = try SafetensorsFile(bytes: bytes, name: "bad.safetensors") }
    }

    @Test func everyTruncationIsATypedError() throws {
        let bytes = TestFiles.read(path)
        for length in 0..<bytes.count {
            switch open(Array(bytes[0..<length])) {
            case .truncated?, .tensorDataOutOfRange?, .badJSON?, .badHeader?: break
            case let other: Issue.record("prefix of \(length) bytes gave \(String(describing: other))")
            }
        }
    }

    @Test func malformedHeaders() {
        let name = "bad.safetensors"
        let four = [UInt8](repeating: 0, count: 16)
        // Header length absurd or past the end.
        var huge: [UInt8] = []
        withUnsafeBytes(of: UInt64.max.littleEndian) { huge.append(contentsOf: $0) }
        #expect({ if case .badHeader? = open(huge + four) { true } else { false } }())
        var long: [UInt8] = []
        withUnsafeBytes(of: UInt64(1000).littleEndian) { long.append(contentsOf: $0) }
        #expect({ if case .truncated? = open(long + four) { true } else { false } }())
        // Bad JSON.
        #expect({ if case .badJSON? = open(safetensorsBytes(header: "{\"a\": ", data: [])) { true } else { false } }())
        #expect({ if case .badHeader? = open(safetensorsBytes(header: "[1]", data: [])) { true } else { false } }())
        let cases: [(String, Int, (CheckpointError?) -> Bool)] = [
            (#"{"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, 8, { $0 == nil }),
            (#"{"t": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}"#, 8,
             { $0 == .unknownTensorType(path: name, tensor: "t", type: "Q9") }),
            (#"{"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#, 8,
             { if case .badTensorShape? = $0 { true } else { false } }),
            (#"{"t": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}"#, 8,
             { if case .badTensorShape? = $0 { true } else { false } }),
            (#"{"t": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 8]}}"#, 8,
             { if case .badTensorShape? = $0 { true } else { false } }),
            (#"{"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, 7,
             { $0 == .tensorDataOutOfRange(path: name, tensor: "t", offset: 0, byteCount: 8, available: 7) }),
            (#"{"t": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}"#, 8,
             { if case .badHeader? = $0 { true } else { false } }),
            (#"{"t": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}"#, 8,
             { if case .badHeader? = $0 { true } else { false } }),
            (#"{"t": {"dtype": "F32", "shape": [2], "data_offsets": [1.5, 8]}}"#, 8,
             { if case .badHeader? = $0 { true } else { false } }),
            (#"{"t": {"dtype": "F32", "shape": [2], "data_offsets": [9223372036854775800, 9223372036854775807]}}"#, 8,
             { if case .badTensorShape? = $0 { true } else { false } }),
            (#"{"t": {"shape": [2], "data_offsets": [0, 8]}}"#, 8, { if case .badHeader? = $0 { true } else { false } }),
            (#"{"t": 5}"#, 0, { if case .badHeader? = $0 { true } else { false } }),
            (#"{"__metadata__": {"a": 1}}"#, 0, { if case .badHeader? = $0 { true } else { false } }),
            (#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#, 8,
             { $0 == .overlappingTensors(path: name, first: "a", second: "b") }),
            (#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, 8,
             { if case .badJSON? = $0 { true } else { false } }),
        ]
        for (header, dataBytes, check) in cases {
            let error = open(safetensorsBytes(header: header, data: [UInt8](repeating: 0, count: dataBytes)))
            #expect(check(error), "\(header) gave \(String(describing: error))")
        }
    }
}

/// JSON parsing against hand-checked documents.
@Suite struct JSONTests {
    @Test func parsesEveryValueKind() throws {
        let text = #" {"a": [1, -2, 3.5, 1e3, -0.25e-2, true, false, null], "s": "q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00✓", "big": 18446744073709551615, "o": {}} "#
        let value = try JSONValue.parse(text, path: "x")
        #expect(value["a"] == .array([.int(1), .int(-2), .double(3.5), .double(1000), .double(-0.0025), .bool(true), .bool(false), .null]))
        #expect(value["s"]?.string == "q\"\\/\u{08}\u{0C}\n\r\té😀✓")
        #expect(value["big"] == .double(18446744073709551615.0))
        #expect(value["o"] == .object([:]))
        #expect(value["a"]?.array?[3].int == 1000)
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"abc", "\"\\x\"", "\"\\ud800\"", "tru", "{} x",
                      "\"\u{01}\"", "[1 2]", "{\"a\":1,}", String(repeating: "[", count: 200) + String(repeating: "]", count: 200)])
    func rejectsMalformedJSON(text: String) {
        #expect({ if case .badJSON? = checkpointError({ _ = try JSONValue.parse(text, path: "x") }) { true } else { false } }(), "\(text)")
    }

    @Test func rejectsInvalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xFF, 0x22]
        let error = checkpointError { _ = try bytes.withUnsafeBytes { try JSONValue.parse($0, path: "x") } }
        #expect(error == .badJSON(path: "x", offset: 1, message: "string is not valid UTF-8"))
    }
}
