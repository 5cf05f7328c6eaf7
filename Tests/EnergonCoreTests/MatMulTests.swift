import EnergonCore
import Testing

/// A small deterministic generator (SplitMix64), so a failing case can be replayed.
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Byte offsets of the f16 scale fields in one block of each quantized format.
private func halfFieldOffsets(_ dtype: DType) -> [Int] {
    switch dtype {
    case .q8_0, .q4_0, .q5_0: [0]
    case .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
    case .q6_K: [208]
    case .q2_K: [80, 82]
    case .q3_K: [108]
    default: []
    }
}

/// A random `[out, in]` weight: random bytes for the quantized payload (every bit pattern is a
/// valid block) with sane f16 scales, or random values for float formats.
private func randomWeight(_ dtype: DType, out: Int, inputs: Int, generator: inout SeededGenerator) -> Tensor {
    Tensor(dtype: dtype, shape: [out, inputs]) { raw, bytes in
        let data = raw.assumingMemoryBound(to: UInt8.self)
        switch dtype {
        case .f32:
            for index in 0..<(bytes / 4) {
                raw.storeBytes(of: Float.random(in: -1...1, using: &generator), toByteOffset: 4 * index, as: Float.self)
            }
        case .f16:
            for index in 0..<(bytes / 2) {
                raw.storeBytes(of: Float16(Float.random(in: -1...1, using: &generator)).bitPattern,
                               toByteOffset: 2 * index, as: UInt16.self)
            }
        case .bf16:
            for index in 0..<(bytes / 2) {
                let bits = Float.random(in: -1...1, using: &generator).bitPattern
                raw.storeBytes(of: UInt16(bits >> 16), toByteOffset: 2 * index, as: UInt16.self)
            }
        default:
            for index in 0..<bytes { data[index] = UInt8.random(in: 0...255, using: &generator) }
            for block in 0..<(bytes / dtype.blockBytes) {
                for offset in halfFieldOffsets(dtype) {
                    let value = Float16(Float.random(in: 0.001...0.05, using: &generator))
                    raw.storeBytes(of: value.bitPattern, toByteOffset: block * dtype.blockBytes + offset, as: UInt16.self)
                }
            }
        }
    }
}

/// One product shape.
private struct Shape: CustomStringConvertible {
    let inputs: Int, out: Int, tokens: Int
    var description: String { "in \(inputs) out \(out) tokens \(tokens)" }
}

private let allFormats: [DType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

private func shapes(for dtype: DType) -> [Shape] {
    let small = dtype.blockSize == 256 ? 256 : 32
    // Float weights take any row length: odd ones exercise the masked tails.
    let odd = dtype.isQuantized ? [] : [Shape(inputs: 37, out: 5, tokens: 3), Shape(inputs: 301, out: 33, tokens: 13)]
    return odd + [
        Shape(inputs: small, out: 1, tokens: 1),
        Shape(inputs: small, out: 7, tokens: 2),
        Shape(inputs: 256, out: 33, tokens: 5),
        Shape(inputs: 256, out: 31, tokens: 33),
        Shape(inputs: small, out: 255, tokens: 9),
        Shape(inputs: 4096 + 256, out: 32, tokens: 1),
        Shape(inputs: 4096 + 256, out: 7, tokens: 33),
        Shape(inputs: small, out: 4097, tokens: 1),
        Shape(inputs: 4096 + 256 + (dtype.blockSize == 256 ? 0 : 32), out: 33, tokens: 6),
        // At and past the switch to the GEMM kernels (40 tokens for quantized weights).
        Shape(inputs: 256, out: 33, tokens: 40),
        Shape(inputs: small, out: 47, tokens: 64),
    ]
}

/// Relative error bound (of Σ|w||x|) per format: float weights accumulate in f32; the integer
/// paths quantize activations to int8 per 32 inputs (relative step 1/127 of the block maximum).
private func tolerance(_ dtype: DType) -> Double {
    dtype.isQuantized ? 1.2e-2 : 2e-5
}

@Suite("MatMulTests")
struct MatMulTests {
    @Test("matches the Float64 reference for every ISA level, shape and thread count", arguments: allFormats)
    func matchesReference(dtype: DType) {
        #expect(MatMul.supports(dtype))
        var generator = SeededGenerator(state: 0x5EED_0000 + UInt64(dtype.rawValue))
        let contexts = ISA.available.flatMap { isa in [1, 3].map { ComputeContext(threads: $0, isa: isa) } }
        for shape in shapes(for: dtype) {
            let weight = randomWeight(dtype, out: shape.out, inputs: shape.inputs, generator: &generator)
            let input = (0..<(shape.tokens * shape.inputs)).map { _ in Float.random(in: -1...1, using: &generator) }
            let expected = ReferenceMatMul.compute(weight: weight, input: input, tokens: shape.tokens)
            let scale = ReferenceMatMul.absoluteProducts(weight: weight, input: input, tokens: shape.tokens)
            for context in contexts {
                var output = [Float](repeating: .nan, count: shape.tokens * shape.out)
                input.withUnsafeBufferPointer { x in
                    output.withUnsafeMutableBufferPointer { y in
                        MatMul.compute(weight: weight, input: x.baseAddress!, tokens: shape.tokens,
                                       output: y.baseAddress!, context: context)
                    }
                }
                var worst = 0.0
                for index in output.indices {
                    let error = abs(Double(output[index]) - Double(expected[index]))
                    worst = max(worst, error / (scale[index] + 1e-30))
                    if !(error <= tolerance(dtype) * scale[index] + 1e-6) {
                        Issue.record("\(dtype) \(shape) isa \(context.isa) threads \(context.pool.threadCount): output \(index) = \(output[index]), expected \(expected[index]) (Σ|wx| \(scale[index]))")
                        break
                    }
                }
                // A real error is far larger than the bound; a tiny worst case shows the
                // comparison is not vacuous for the float formats.
                if !dtype.isQuantized { #expect(worst < 2e-5) }
            }
        }
    }

    /// Weight sets sharing one input: one format each, and a mix (Gemma 3 files mix Q4_K, Q6_K,
    /// Q5_0 and Q8_0 within a layer; float and quantized weights need different inputs).
    static let manyFormats: [[DType]] = [[.q4_1, .q4_1, .q4_1], [.q8_0, .q8_0, .q8_0], [.f16, .f16, .f16],
                                         [.q6_K, .q6_K, .q6_K], [.q4_K, .q6_K, .q5_0], [.f32, .q8_0, .bf16]]

    @Test("computeMany equals compute for each weight", arguments: manyFormats)
    func computeManyEqualsCompute(formats: [DType]) {
        var generator = SeededGenerator(state: 0xC0FFEE + UInt64(formats.map(\.rawValue).reduce(0, +)))
        let inputs = 512
        let outs = [64, 33, 129]
        for tokens in [1, 3, 17] {
            let weights = zip(formats, outs).map { randomWeight($0, out: $1, inputs: inputs, generator: &generator) }
            let input = (0..<(tokens * inputs)).map { _ in Float.random(in: -1...1, using: &generator) }
            for isa in ISA.available {
                let context = ComputeContext(threads: 3, isa: isa)
                var separate = outs.map { [Float](repeating: 0, count: tokens * $0) }
                var together = outs.map { [Float](repeating: .nan, count: tokens * $0) }
                input.withUnsafeBufferPointer { x in
                    for index in weights.indices {
                        separate[index].withUnsafeMutableBufferPointer { y in
                            MatMul.compute(weight: weights[index], input: x.baseAddress!, tokens: tokens,
                                           output: y.baseAddress!, context: context)
                        }
                    }
                    var buffers = together.map { values in
                        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: values.count)
                        pointer.initialize(repeating: .nan, count: values.count)
                        return pointer
                    }
                    MatMul.computeMany(weights: weights, input: x.baseAddress!, tokens: tokens, outputs: buffers,
                                       context: context)
                    for index in weights.indices {
                        together[index] = Array(UnsafeBufferPointer(start: buffers[index], count: together[index].count))
                        buffers[index].deallocate()
                    }
                    buffers.removeAll()
                }
                #expect(separate == together, "\(formats) tokens \(tokens) isa \(isa)")
            }
        }
    }

    @Test("reference row decoder agrees with ReferenceQuant (checked against gguf-py)", arguments: allFormats)
    func referenceDecoderAgrees(dtype: DType) {
        var generator = SeededGenerator(state: 0xDEC0DE + UInt64(dtype.rawValue))
        let inputs = 2 * max(dtype.blockSize, 32)
        let weight = randomWeight(dtype, out: 3, inputs: inputs, generator: &generator)
        for row in 0..<3 {
            let bytes = Array(UnsafeRawBufferPointer(start: weight.row(row), count: weight.rowBytes))
            let independent = ReferenceQuant.dequantize(dtype, bytes: bytes, count: inputs)
            let ours = ReferenceMatMul.dequantizeRow(weight, row: row)
            for index in 0..<inputs {
                let difference = abs(Double(independent[index]) - ours[index])
                #expect(difference <= 1e-6 * abs(ours[index]) + 1e-12, "\(dtype) row \(row) element \(index)")
            }
        }
    }

    @Test("rejects a K-quant weight whose rows are not whole super-blocks")
    func rejectsPartialBlocks() async {
        await #expect(processExitsWith: .failure) {
            let weight = Tensor(dtype: .q4_K, shape: [2, 576]) { _, _ in }
            var input = [Float](repeating: 1, count: 576)
            var output = [Float](repeating: 0, count: 2)
            input.withUnsafeMutableBufferPointer { x in
                output.withUnsafeMutableBufferPointer { y in
                    MatMul.compute(weight: weight, input: x.baseAddress!, tokens: 1, output: y.baseAddress!,
                                   context: ComputeContext(threads: 1))
                }
            }
        }
    }

    @Test("supports exactly the weight formats it implements")
    func supportedFormats() {
        for dtype in allFormats { #expect(MatMul.supports(dtype)) }
        for dtype in [DType.q8_1, .q8_K, .i8, .i16, .i32, .i64, .f64] { #expect(!MatMul.supports(dtype)) }
        #expect(MatMul.supports(.q4_K, inputs: 512) && !MatMul.supports(.q4_K, inputs: 576))
        #expect(MatMul.supports(.q4_1, inputs: 576) && !MatMul.supports(.q4_1, inputs: 100))
        #expect(MatMul.supports(.f16, inputs: 37) && !MatMul.supports(.i8, inputs: 32))
    }
}
