import CEnergonKernels
import EnergonCore
import Foundation
import Testing

/// GGUF block formats: the C kernels at every ISA level against the `gguf` Python package's
/// bytes and floats and ggml's own K-quant encoder output (fixtures from
/// scripts/make_quant_fixtures.py), and against the naive Swift `ReferenceQuant`.
@Suite struct QuantTests {
    static let encodable: [DType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .f16, .bf16]
    /// K-quant encoders, checked against fixtures from ggml's own `quantize_row_q*_K_ref`.
    static let kEncodable: [DType] = [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K]
    static let decodable: [DType] = [.f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1,
                                     .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K]

    // MARK: - Against gguf-py and ggml fixtures

    @Test(arguments: encodable + kEncodable)
    func quantizeMatchesFixtures(dtype: DType) throws {
        let inputs: [Float] = try Fixture.floats("quantize-\(dtype.name)")
        let expected = try Fixture.bytes("quantize-\(dtype.name)")
        #expect(dtype.rowBytes(inputs.count) == expected.count)
        if let reference = ReferenceQuant.quantize(dtype, values: inputs) {
            let agrees = reference == expected
            #expect(agrees, "the Swift reference encoder disagrees with gguf-py for \(dtype)")
        }
        for isa in ISA.available {
            // Whole fixture, then prefixes of 1, 7, 31 blocks (or elements, for F16/BF16).
            let total = inputs.count / dtype.blockSize
            for blocks in [total, 1, 7, 31] where blocks <= total {
                let count = blocks * dtype.blockSize
                let bytes = try Quantization.quantize(Array(inputs[0..<count]), as: dtype, isa: isa)
                let want = Array(expected[0..<dtype.rowBytes(count)!])
                let same = bytes == want  // compared outside #expect so a failure does not print every byte
                #expect(same, "\(dtype) \(isa) \(blocks) blocks: first differing byte \(Self.firstDifference(bytes, want))")
            }
        }
    }

    @Test(arguments: decodable)
    func dequantizeMatchesGGUF(dtype: DType) throws {
        let bytes = try Fixture.bytes("dequantize-\(dtype.name)")
        let expected: [Float] = try Fixture.floats("dequantize-\(dtype.name)")
        let total = expected.count / dtype.blockSize
        let counts = dtype.blockSize == 1 ? [1, 7, 31, 32, 33, 255, total] : [1, 7, min(33, total), total]
        for isa in ISA.available {
            for units in counts {
                let count = units * dtype.blockSize
                let decoded = Quantization.dequantize(Array(bytes[0..<dtype.rowBytes(count)!]), as: dtype,
                                                      count: count, isa: isa)
                Self.expectSameFloats(decoded, Array(expected[0..<count]), "\(dtype) \(isa) \(units)")
            }
        }
        // The reference itself must agree with gguf-py, or it proves nothing below.
        Self.expectSameFloats(ReferenceQuant.dequantize(dtype, bytes: bytes, count: expected.count), expected,
                         "reference \(dtype)")
    }

    // MARK: - Against the Swift reference on fresh random blocks

    @Test(arguments: decodable + [.f32, .i8, .i16, .i32, .i64, .f64])
    func dequantizeMatchesReference(dtype: DType) {
        var random = SplitMix64(seed: 0xE4E5 &+ UInt64(dtype.rawValue))
        let counts = dtype.blockSize == 1 ? [1, 7, 31, 32, 33, 255, 4097] : [1, 7, 33, 129].map { $0 * dtype.blockSize }
        for count in counts {
            let bytes = randomBlocks(dtype, count: count, random: &random)
            let expected = ReferenceQuant.dequantize(dtype, bytes: bytes, count: count)
            for isa in ISA.available {
                let decoded = Quantization.dequantize(bytes, as: dtype, count: count, isa: isa)
                Self.expectSameFloats(decoded, expected, "\(dtype) \(isa) \(count)")
            }
        }
    }

    @Test(arguments: [1, 7, 33, 129])
    func quantizeQ8KMatchesReference(blocks: Int) throws {
        var random = SplitMix64(seed: 0x08_4B + UInt64(blocks))
        var values = (0..<(blocks * 256)).map { _ in Float(random.normal() * random.logUniform(-3, 2)) }
        for index in 0..<256 { values[index] = 0 }                       // an all-zero block
        if blocks > 1 { values[256 + 5] = -9; values[256 + 77] = 9 }      // a +-max tie: first one wins
        if blocks > 2 { for index in 512..<768 { values[index] = Float(index % 7) - 2.5 } }  // exact halves
        let expected = ReferenceQuant.quantizeQ8K(values)
        for isa in ISA.available {
            let bytes = try Quantization.quantize(values, as: .q8_K, isa: isa)
            let same = bytes == expected
            #expect(same, "\(isa) \(blocks): first differing byte \(Self.firstDifference(bytes, expected))")
        }
        // Codes are within one step of the input: |x - d q| <= |d| / 2 (plus f32 rounding).
        let decoded = Quantization.dequantize(expected, as: .q8_K, count: values.count)
        for block in 0..<blocks {
            let range = (256 * block)..<(256 * block + 256)
            let amax = values[range].map(\.magnitude).max() ?? 0
            let bound = Double(amax) / 127 * 0.5 * (1 + 1e-5) + 1e-30
            let error = range.map { abs(Double(values[$0]) - Double(decoded[$0])) }.max() ?? 0
            #expect(error <= bound, "Q8_K block \(block): error \(error) > \(bound)")
        }
    }

    @Test(arguments: encodable + [.q8_K, .f32])
    func quantizeMatchesReference(dtype: DType) throws {
        var random = SplitMix64(seed: 0x9E1F + UInt64(dtype.rawValue))
        let counts = dtype.blockSize == 1 ? [1, 7, 31, 32, 33, 255, 4097] : [1, 7, 33, 129].map { $0 * dtype.blockSize }
        for count in counts {
            var values = (0..<count).map { _ in Float(random.normal() * random.logUniform(-30, 12)) }
            if count >= 2 * dtype.blockSize {
                // A block of exact halves and integers (rounding ties), and one with a +-max tie.
                for index in 0..<dtype.blockSize { values[index] = Float(index % 9) * 0.5 - 2 }
                values[dtype.blockSize + 1] = -7
                values[dtype.blockSize + 2] = 7
            }
            guard let expected = ReferenceQuant.quantize(dtype, values: values) else {
                Issue.record("reference has no \(dtype) encoder")
                return
            }
            for isa in ISA.available {
                let bytes = try Quantization.quantize(values, as: dtype, isa: isa)
                let same = bytes == expected
                #expect(same, "\(dtype) \(isa) \(count): first differing byte \(Self.firstDifference(bytes, expected))")
            }
        }
    }

    @Test(arguments: decodable)
    func unalignedRowsDecodeTheSame(dtype: DType) {
        // Rows inside a GGUF mapping or a Swift array sit at any address; the kernels must not
        // assume alignment. Decode from offsets 1, 2 and 3 into an offset destination too.
        var random = SplitMix64(seed: 0xA11)
        let count = 7 * max(dtype.blockSize, 32)
        let bytes = randomBlocks(dtype, count: count, random: &random)
        let expected = ReferenceQuant.dequantize(dtype, bytes: bytes, count: count)
        for offset in 1...3 {
            let shifted = [UInt8](repeating: 0xAB, count: offset) + bytes
            var output = [Float](repeating: 0, count: count + 1)
            for isa in ISA.available {
                shifted.withUnsafeBytes { source in
                    output.withUnsafeMutableBufferPointer { destination in
                        Quantization.dequantizeRow(dtype, source: source.baseAddress! + offset,
                                                   destination: destination.baseAddress! + 1, count: count, isa: isa)
                    }
                }
                Self.expectSameFloats(Array(output[1...]), expected, "\(dtype) \(isa) offset \(offset)")
            }
        }
    }

    /// The per-format C entry points other kernels call directly (`energon_dequantize_row_q4_0`
    /// and friends) run the best level and agree with the Swift API.
    @Test func perFormatEntryPointsMatchTheDispatcher() throws {
        typealias Decoder = @convention(c) (UnsafeRawPointer?, UnsafeMutablePointer<Float>?, Int64) -> Void
        typealias Encoder = @convention(c) (UnsafePointer<Float>?, UnsafeMutableRawPointer?, Int64) -> Void
        let decoders: [(DType, Decoder)] = [
            (.f32, energon_dequantize_row_f32), (.f16, energon_dequantize_row_f16), (.bf16, energon_dequantize_row_bf16),
            (.q4_0, energon_dequantize_row_q4_0), (.q4_1, energon_dequantize_row_q4_1),
            (.q5_0, energon_dequantize_row_q5_0), (.q5_1, energon_dequantize_row_q5_1),
            (.q8_0, energon_dequantize_row_q8_0), (.q8_1, energon_dequantize_row_q8_1),
            (.q2_K, energon_dequantize_row_q2_K), (.q3_K, energon_dequantize_row_q3_K),
            (.q4_K, energon_dequantize_row_q4_K), (.q5_K, energon_dequantize_row_q5_K),
            (.q6_K, energon_dequantize_row_q6_K), (.q8_K, energon_dequantize_row_q8_K),
        ]
        var random = SplitMix64(seed: 0xC0DE)
        for (dtype, decode) in decoders {
            let count = 3 * max(dtype.blockSize, 32)
            let bytes = randomBlocks(dtype, count: count, random: &random)
            var output = [Float](repeating: 0, count: count)
            bytes.withUnsafeBytes { decode($0.baseAddress, &output, Int64(count)) }
            Self.expectSameFloats(output, ReferenceQuant.dequantize(dtype, bytes: bytes, count: count), "C \(dtype)")
        }
        let encoders: [(DType, Encoder)] = [
            (.f16, energon_quantize_row_f16), (.bf16, energon_quantize_row_bf16),
            (.q4_0, energon_quantize_row_q4_0), (.q4_1, energon_quantize_row_q4_1),
            (.q5_0, energon_quantize_row_q5_0), (.q5_1, energon_quantize_row_q5_1),
            (.q8_0, energon_quantize_row_q8_0), (.q8_K, energon_quantize_row_q8_K),
            (.q2_K, energon_quantize_row_q2_K), (.q3_K, energon_quantize_row_q3_K),
            (.q4_K, energon_quantize_row_q4_K), (.q5_K, energon_quantize_row_q5_K),
            (.q6_K, energon_quantize_row_q6_K),
        ]
        let values = (0..<512).map { _ in Float(random.normal()) }
        for (dtype, encode) in encoders {
            var bytes = [UInt8](repeating: 0, count: dtype.rowBytes(values.count)!)
            bytes.withUnsafeMutableBytes { encode(values, $0.baseAddress, Int64(values.count)) }
            // The K-quants have no Swift reference encoder; their bytes are pinned by the ggml
            // fixtures, so here they must match the dispatcher.
            let expected = try ReferenceQuant.quantize(dtype, values: values) ?? Quantization.quantize(values, as: dtype)
            let same = bytes == expected
            #expect(same, "C encoder \(dtype)")
        }
    }

    // MARK: - Round trips

    /// Worst error of decode(encode(x)) per block, with the bound each format guarantees:
    /// Q8_0 d/2 (d = amax/127); Q4_0/Q5_0 one full step d = amax/8 or amax/16, because the
    /// side opposite the largest value gets one code less; Q4_1/Q5_1 half a step of
    /// (max - min)/15 or /31. Each adds the f16 rounding of d and m (relative 2^-11).
    @Test(arguments: [DType.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q8_K])
    func roundTripErrorIsBounded(dtype: DType) throws {
        var random = SplitMix64(seed: 0x7217 + UInt64(dtype.rawValue))
        let count = 129 * 256
        let values = (0..<count).map { index in
            Float(random.normal() * (index % 512 < 256 ? 1 : 0.01) + (index % 1024 < 512 ? 0 : 0.5))
        }
        let decoded = Quantization.dequantize(try Quantization.quantize(values, as: dtype), as: dtype, count: count)
        let half = 0x1p-11
        for start in stride(from: 0, to: count, by: dtype.blockSize) {
            let block = values[start..<(start + dtype.blockSize)].map(Double.init)
            let amax = block.map(\.magnitude).max()!, low = block.min()!, high = block.max()!
            let bound: Double = switch dtype {
            case .q8_0: amax / 127 * (0.5 + 127 * half)
            case .q4_0: amax / 8 * (1 + 8 * half)
            case .q5_0: amax / 16 * (1 + 16 * half)
            case .q4_1: (high - low) / 15 * (0.5 + 15 * half) + abs(low) * half
            case .q5_1: (high - low) / 31 * (0.5 + 31 * half) + abs(low) * half
            default: amax / 127 * 0.5 * (1 + 1e-5)
            }
            let error = (0..<dtype.blockSize).map { abs(block[$0] - Double(decoded[start + $0])) }.max()!
            #expect(error <= bound * (1 + 1e-6), "\(dtype) block at \(start): error \(error) > bound \(bound)")
        }
    }

    /// The K-quant encoders search for good scales rather than guarantee a worst case, so their
    /// bound is on each super-block's RMS error relative to its RMS value, for normal data with
    /// and without an offset: ceilings a little above the worst measured on these inputs
    /// (Q2_K 0.32, Q3_K 0.17, Q4_K 0.078, Q5_K 0.040, Q6_K 0.021). A packing or scale bug gives
    /// errors of order 1.
    @Test(arguments: [(DType.q2_K, 0.40), (.q3_K, 0.22), (.q4_K, 0.10), (.q5_K, 0.05), (.q6_K, 0.03)])
    func kQuantRoundTripErrorIsBounded(dtype: DType, bound: Double) throws {
        var random = SplitMix64(seed: 0x4B4B + UInt64(dtype.rawValue))
        let count = 129 * 256
        let values = (0..<count).map { index in
            Float(random.normal() * (index % 512 < 256 ? 1 : 0.01) + (index % 1024 < 512 ? 0 : 0.5))
        }
        for isa in ISA.available {
            let bytes = try Quantization.quantize(values, as: dtype, isa: isa)
            let decoded = Quantization.dequantize(bytes, as: dtype, count: count, isa: isa)
            for start in stride(from: 0, to: count, by: 256) {
                var squaredError = 0.0, squaredValue = 0.0
                for index in start..<(start + 256) {
                    let error = Double(values[index]) - Double(decoded[index])
                    squaredError += error * error
                    squaredValue += Double(values[index]) * Double(values[index])
                }
                let relative = (squaredError / squaredValue).squareRoot()
                #expect(relative <= bound, "\(dtype) \(isa) block at \(start): relative RMS error \(relative) > \(bound)")
            }
        }
    }

    @Test func everyHalfAndBFloat16RoundTripsExactly() {
        let all = (0...UInt16.max).map { $0 }
        for isa in ISA.available {
            let halves = Quantization.floatsFromHalf(bits: all, isa: isa)
            let brains = Quantization.floatsFromBFloat16(bits: all, isa: isa)
            Self.expectSameFloats(halves, all.map(ReferenceQuant.halfToFloat), "f16 decode \(isa)")
            Self.expectSameFloats(brains, all.map(ReferenceQuant.bfloat16ToFloat), "bf16 decode \(isa)")
            // NaN payloads too must not depend on the level: every level returns the portable bits.
            let portable = Quantization.floatsFromHalf(bits: all, isa: .portable)
            let samePayloads = halves.map(\.bitPattern) == portable.map(\.bitPattern)
            #expect(samePayloads, "f16 decode \(isa) differs from portable")
            let halfBack = Quantization.halfBitsFromFloats(halves, isa: isa)
            let brainBack = Quantization.bfloat16FromFloats(brains, isa: isa)
            // Non-NaN patterns return unchanged; NaNs come back as quiet NaNs of the same sign.
            for bits in all {
                let index = Int(bits)
                if (bits & 0x7C00) == 0x7C00 && (bits & 0x3FF) != 0 {
                    #expect(halfBack[index] == bits | 0x200, "f16 NaN \(bits) \(isa)")
                } else {
                    #expect(halfBack[index] == bits, "f16 \(bits) \(isa)")
                }
                if (bits & 0x7F80) == 0x7F80 && (bits & 0x7F) != 0 {
                    #expect(brainBack[index] == bits | 0x40, "bf16 NaN \(bits) \(isa)")
                } else {
                    #expect(brainBack[index] == bits, "bf16 \(bits) \(isa)")
                }
            }
        }
    }

    // MARK: - API

    @Test func unsupportedAndMisalignedInputsThrow() {
        var output = [UInt8](repeating: 0, count: 4096)
        let input = [Float](repeating: 1, count: 256)
        for dtype in [DType.q8_1, .i8, .i16, .i32, .i64, .f64] {
            #expect(!Quantization.canQuantize(dtype))
            #expect(throws: QuantizationError.unsupported(dtype)) {
                try Quantization.quantizeRow(dtype, source: input, destination: &output, count: 256)
            }
        }
        #expect(throws: QuantizationError.misalignedCount(dtype: .q8_0, count: 33)) {
            try Quantization.quantizeRow(.q8_0, source: input, destination: &output, count: 33)
        }
        #expect(throws: QuantizationError.misalignedCount(dtype: .q8_K, count: 128)) {
            try Quantization.quantize(Array(input[0..<128]), as: .q8_K)
        }
        #expect(throws: QuantizationError.shapeMismatch(shape: [2, 64], valueCount: 256)) {
            try Tensor(quantizing: input, shape: [2, 64], dtype: .q8_0)
        }
        #expect(throws: QuantizationError.misalignedCount(dtype: .q4_0, count: 16)) {
            try Tensor(quantizing: input, shape: [16, 16], dtype: .q4_0)
        }
        #expect(DType.allCases.allSatisfy(Quantization.canDequantize))
        #expect(QuantizationError.misalignedCount(dtype: .q8_0, count: 33).description.contains("32"))
    }

    @Test(arguments: [DType.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q8_K,
                      .q2_K, .q3_K, .q4_K, .q5_K, .q6_K])
    func tensorQuantizesRowByRow(dtype: DType) throws {
        var random = SplitMix64(seed: 0x7E45)
        let shape = [3, 2, 512]
        let values = (0..<(3 * 2 * 512)).map { _ in Float(random.normal()) }
        let tensor = try Tensor(quantizing: values, shape: shape, dtype: dtype)
        #expect(tensor.dtype == dtype && tensor.shape == shape && tensor.rows == 6)
        #expect(tensor.byteCount == 6 * dtype.rowBytes(512)!)
        let bytes = [UInt8](UnsafeRawBufferPointer(start: tensor.data, count: tensor.byteCount))
        var expectedBytes: [UInt8] = []
        for row in 0..<6 { expectedBytes += try Quantization.quantize(Array(values[(512 * row)..<(512 * row + 512)]), as: dtype) }
        let same = bytes == expectedBytes
        #expect(same, "tensor \(dtype) bytes differ from row-by-row encoding")
        Self.expectSameFloats(tensor.dequantized(), ReferenceQuant.dequantize(dtype, bytes: bytes, count: values.count),
                         "tensor \(dtype)")
        // Threaded and single-row decoding give the same floats.
        let context = ComputeContext(threads: 3)
        Self.expectSameFloats(tensor.dequantized(context: context), tensor.dequantized(), "threaded \(dtype)")
        var row = [Float](repeating: 0, count: 512)
        tensor.dequantizeRow(4, into: &row)
        Self.expectSameFloats(row, Array(tensor.dequantized()[(4 * 512)..<(5 * 512)]), "row 4 \(dtype)")
        if dtype == .f32 {
            let exact = tensor.dequantized() == values
            #expect(exact)
        }
    }

    // MARK: - Helpers

    /// Random blocks of `dtype`: random bytes, with every f16/f32 scale field replaced by a
    /// finite value of sane size (so products are neither NaN nor overflowing), except that
    /// the plain F16/BF16/F32/F64 formats keep random bits (NaNs and infinities included).
    func randomBlocks(_ dtype: DType, count: Int, random: inout SplitMix64) -> [UInt8] {
        var bytes = (0..<dtype.rowBytes(count)!).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let halfFields: [Int] = switch dtype {
        case .q4_0, .q5_0, .q8_0: [0]
        case .q4_1, .q5_1, .q8_1, .q4_K, .q5_K: [0, 2]
        case .q2_K: [80, 82]
        case .q3_K: [108]
        case .q6_K: [208]
        default: []
        }
        for block in 0..<(count / dtype.blockSize) {
            let base = block * dtype.blockBytes
            for field in halfFields {
                let bits = ReferenceQuant.floatToHalf(Float(random.signedLogUniform(-14, 2)))
                bytes[base + field] = UInt8(bits & 0xFF)
                bytes[base + field + 1] = UInt8(bits >> 8)
            }
            if dtype == .q8_K {
                let bits = Float(random.signedLogUniform(-14, 2)).bitPattern
                for byte in 0..<4 { bytes[base + byte] = UInt8(truncatingIfNeeded: bits >> (8 * UInt32(byte))) }
            }
        }
        return bytes
    }
}

extension QuantTests {
    /// Bitwise equality, except that any NaN matches any NaN (payloads and quiet bits differ
    /// between numpy, F16C and the reference by design).
    static func expectSameFloats(_ actual: [Float], _ expected: [Float], _ label: String,
                          sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(actual.count == expected.count, "\(label): count \(actual.count) != \(expected.count)",
                sourceLocation: sourceLocation)
        for index in 0..<min(actual.count, expected.count) {
            let a = actual[index], e = expected[index]
            if a.isNaN && e.isNaN { continue }
            if a.bitPattern != e.bitPattern {
                Issue.record("\(label): element \(index) is \(a) (0x\(String(a.bitPattern, radix: 16))), expected \(e) (0x\(String(e.bitPattern, radix: 16)))",
                             sourceLocation: sourceLocation)
                return
            }
        }
    }

    static func firstDifference<Element: Equatable>(_ a: [Element], _ b: [Element]) -> Int {
        (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
    }

    /// Loads fixtures from Tests/EnergonCoreTests/Fixtures/quants.
    enum Fixture {
        struct Missing: Error, CustomStringConvertible {
            let name: String
            var description: String { "fixture \(name) not found in the test bundle; run scripts/make_quant_fixtures.py" }
        }

        static func bytes(_ name: String) throws -> [UInt8] {
            guard let url = Bundle.module.url(forResource: name, withExtension: "bin", subdirectory: "Fixtures/quants") else {
                throw Missing(name: name)
            }
            return [UInt8](try Data(contentsOf: url))
        }

        static func floats(_ name: String) throws -> [Float] {
            guard let url = Bundle.module.url(forResource: name, withExtension: "f32", subdirectory: "Fixtures/quants") else {
                throw Missing(name: name)
            }
            let data = try Data(contentsOf: url)
            return data.withUnsafeBytes { raw in
                (0..<(data.count / 4)).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) }
            }
        }
    }

    /// A small seeded generator so failures reproduce.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
        /// Standard normal (Box-Muller).
        mutating func normal() -> Double {
            let u = max(uniform(), 0x1p-53), v = uniform()
            return (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * Double.pi * v)
        }
        /// 2^uniform(low, high).
        mutating func logUniform(_ low: Double, _ high: Double) -> Double {
            Foundation.pow(2, low + (high - low) * uniform())
        }
        /// logUniform with a random sign.
        mutating func signedLogUniform(_ low: Double, _ high: Double) -> Double {
            (next() & 1 == 0 ? 1 : -1) * logUniform(low, high)
        }
    }
}
