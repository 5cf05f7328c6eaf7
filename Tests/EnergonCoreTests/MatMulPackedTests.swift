import CEnergonKernels
import EnergonCore
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SplitMix64, so a failing case can be replayed.
private struct PackedTestGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random blocks of `dtype` (Q4_0 / Q4_1 / Q5_0 / Q8_0 / Q4_K) with sane f16 scales (and mins), `[out, inputs]`.
private func randomBlocks(_ dtype: DType, out: Int, inputs: Int, generator: inout PackedTestGenerator) -> [UInt8] {
    var bytes = (0..<(out * (dtype.rowBytes(inputs) ?? 0))).map { _ in UInt8.random(in: 0...255, using: &generator) }
    let halfFields = dtype == .q4_1 || dtype == .q4_K ? [0, 2] : [0]
    for block in 0..<(bytes.count / dtype.blockBytes) {
        for field in halfFields {
            let sign: Float = field == 2 ? -1 : 1  // Q4_1 mins are usually negative
            let bits = Float16(sign * Float.random(in: 0.001...0.05, using: &generator)).bitPattern
            bytes[block * dtype.blockBytes + field] = UInt8(bits & 0xFF)
            bytes[block * dtype.blockBytes + field + 1] = UInt8(bits >> 8)
        }
    }
    return bytes
}

/// `inputs` for the 32-block formats; for K-quants the nearest whole number of 256-blocks
/// (keeping an odd count odd: 96 -> 768).
private func inputCount(_ inputs: Int, for dtype: DType) -> Int {
    guard dtype.blockSize == 256 else { return inputs }
    return inputs < 256 ? (inputs / 32 % 2 == 1 ? 768 : 256) : inputs / 256 * 256 + (inputs % 256 == 0 ? 0 : 256)
}

private func tensor(_ dtype: DType, out: Int, inputs: Int, bytes: [UInt8]) -> Tensor {
    Tensor(dtype: dtype, shape: [out, inputs]) { raw, count in
        bytes.withUnsafeBytes { raw.copyMemory(from: $0.baseAddress!, byteCount: min(count, $0.count)) }  // invariant: non-empty
    }
}

private func product(_ weight: Tensor, _ input: [Float], tokens: Int, context: ComputeContext) -> [Float] {
    var output = [Float](repeating: .nan, count: tokens * weight.shape[0])
    input.withUnsafeBufferPointer { x in
        output.withUnsafeMutableBufferPointer { y in
            MatMul.compute(weight: weight, input: x.baseAddress!, tokens: tokens, output: y.baseAddress!, context: context)  // invariant: non-empty
        }
    }
    return output
}

private let packableFormats: [DType] = [.q4_0, .q4_1, .q5_0, .q8_0, .q4_K]

@Suite("MatMulPackedTests")
struct MatMulPackedTests {
    /// Output counts of issue #2 (around the 16-row groups and the 4-row grain), input counts
    /// with an even and an odd number of 32-blocks, and token counts on both sides of the
    /// matvec/GEMM switch (mm_gemm_min_tokens: 40 for Q5_0 and Q4_K, 128 for Q4_0, 384 for Q4_1,
    /// 640 for Q8_0), and row chunks of several 4-token groups.
    static let cases: [(out: Int, inputs: Int, tokens: Int)] = [
        (1, 32, 1), (7, 96, 2), (31, 576, 1), (32, 64, 5), (33, 4096 + 32, 1), (255, 96, 3), (4097, 64, 1),
        (33, 576, 6), (47, 96, 33), (64, 4096 + 32, 7), (47, 96, 40), (33, 576, 64), (50, 96, 130), (33, 576, 390),
        (17, 96, 641),
    ]

    // Packing itself is plain C: the tests pack with `isa: .avx512` (what `prepare` does on an
    // AVX-512 machine) and then compute at every level this machine has.
    @Test("packed weights match the Float64 reference at every ISA level and thread count", arguments: packableFormats)
    func packedMatchesReference(dtype: DType) {
        var generator = PackedTestGenerator(state: 0xBAC4_0000 + UInt64(dtype.rawValue))
        for original in Self.cases {
            let shape = (out: original.out, inputs: inputCount(original.inputs, for: dtype), tokens: original.tokens)
            let stored = tensor(dtype, out: shape.out, inputs: shape.inputs,
                                bytes: randomBlocks(dtype, out: shape.out, inputs: shape.inputs, generator: &generator))
            let packed = MatMul.prepare(stored, isa: .avx512)
            #expect(packed.layout == .matMulPacked && packed.dtype == dtype && packed.shape == stored.shape)
            let input = (0..<(shape.tokens * shape.inputs)).map { _ in Float.random(in: -1...1, using: &generator) }
            let expected = ReferenceMatMul.compute(weight: stored, input: input, tokens: shape.tokens)
            let scale = ReferenceMatMul.absoluteProducts(weight: stored, input: input, tokens: shape.tokens)
            for isa in ISA.available {
                for threads in [1, 3] {
                    let context = ComputeContext(threads: threads, isa: isa)
                    let output = product(packed, input, tokens: shape.tokens, context: context)
                    // Same bound as the row-major kernels: int8 activations per 32 inputs.
                    for index in output.indices {
                        let error = abs(Double(output[index]) - Double(expected[index]))
                        if !(error <= 1.2e-2 * scale[index] + 1e-6) {
                            Issue.record("\(dtype) out \(shape.out) in \(shape.inputs) tokens \(shape.tokens) isa \(isa) threads \(threads): output \(index) = \(output[index]), expected \(expected[index]) (Σ|wx| \(scale[index]))")
                            break
                        }
                    }
                    // The packed kernel sums the same integer products as the row-major one, in
                    // another order: the two agree far more closely than the bound above.
                    let rowMajor = product(stored, input, tokens: shape.tokens, context: context)
                    for index in output.indices where !(abs(output[index] - rowMajor[index]) <= Float(1e-4 * scale[index]) + 1e-6) {
                        Issue.record("\(dtype) out \(shape.out) in \(shape.inputs) isa \(isa): packed \(output[index]) vs row-major \(rowMajor[index])")
                        break
                    }
                }
            }
        }
    }

    @Test("unpacking a packed weight gives back the stored bytes", arguments: packableFormats)
    func packRoundTrip(dtype: DType) {
        var generator = PackedTestGenerator(state: 0x7E57 + UInt64(dtype.rawValue))
        for (out, given) in [(1, 32), (16, 64), (33, 96), (50, 4096 + 32)] {
            let inputs = inputCount(given, for: dtype)
            let bytes = randomBlocks(dtype, out: out, inputs: inputs, generator: &generator)
            let packed = MatMul.prepare(tensor(dtype, out: out, inputs: inputs, bytes: bytes), isa: .avx512)
            #expect(packed.byteCount == Int(energon_matmul_packed_bytes(dtype.rawValue, out, inputs)))
            var back = [UInt8](repeating: 0, count: bytes.count)
            back.withUnsafeMutableBufferPointer { destination in
                energon_matmul_unpack_rows(dtype.rawValue, packed.data.assumingMemoryBound(to: UInt8.self), out, inputs, 0, out,
                                           destination.baseAddress!)  // invariant: non-empty
            }
            #expect(back == bytes, "\(dtype) out \(out) in \(inputs)")
        }
    }

    @Test("row lookups of a packed weight decode the same values as the stored rows", arguments: packableFormats)
    func packedRowLookups(dtype: DType) {
        var generator = PackedTestGenerator(state: 0x10C + UInt64(dtype.rawValue))
        let (out, inputs) = (37, inputCount(96, for: dtype))
        let stored = tensor(dtype, out: out, inputs: inputs, bytes: randomBlocks(dtype, out: out, inputs: inputs, generator: &generator))
        let packed = MatMul.prepare(stored, isa: .avx512)
        #expect(packed.layout == .matMulPacked)
        #expect(packed.dequantized() == stored.dequantized())
        var row = [Float](repeating: .nan, count: inputs)
        for index in [0, 15, 16, 31, 32, 36] {
            row.withUnsafeMutableBufferPointer { packed.dequantizeRow(index, into: $0.baseAddress!) }  // invariant: non-empty
            #expect(row == Array(stored.dequantized()[(index * inputs)..<((index + 1) * inputs)]), "\(dtype) row \(index)")
        }
        #expect(packed.dequantized(context: ComputeContext(threads: 3)) == stored.dequantized())
    }

    @Test("prepare leaves formats without a packed layout unchanged")
    func prepareKeepsOtherFormats() {
        for dtype in [DType.f32, .f16, .bf16, .q5_1, .q5_K, .q6_K] {
            let weight = Tensor(dtype: dtype, shape: [32, 256]) { _, _ in }
            let prepared = MatMul.prepare(weight, isa: .avx512)
            #expect(prepared === weight && prepared.layout == .rowMajor, "\(dtype)")
        }
        let stored = Tensor(dtype: .q4_0, shape: [32, 64]) { _, _ in }
        let packed = MatMul.prepare(stored, isa: .avx512)
        #expect(MatMul.prepare(packed, isa: .avx512) === packed)
        // Below AVX-512 there is no packed kernel: the stored layout is faster there.
        #expect(MatMul.prepare(stored, isa: .avx2) === stored && MatMul.prepare(stored, isa: .portable) === stored)
        // Without an explicit level, `prepare` follows the level of the runner being built.
        #expect(MatMul.$preparationISA.withValue(.avx2) { MatMul.prepare(stored) } === stored)
        #expect(MatMul.$preparationISA.withValue(.avx512) { MatMul.prepare(stored) }.layout == .matMulPacked)
    }

    @Test("a weight of any other format in a file mapping comes back as a row-major copy: same bytes, same products")
    func prepareCopiesMappedWeights() throws {
        var generator = PackedTestGenerator(state: 0xC0B1)
        // Sizes below and above a 2 MiB copy chunk (F32 rows of 2048 inputs: 256 rows per chunk).
        for (dtype, out, inputs) in [(DType.f32, 300, 2048), (.f16, 33, 96), (.q6_K, 70, 512), (.q5_1, 17, 64)] {
            let bytes = saneWeightBytes(dtype, out: out, inputs: inputs, generator: &generator)
            try withMappedFile(bytes) { mapped in
                let weight = Tensor(dtype: dtype, shape: [out, inputs], data: mapped, byteCount: bytes.count, owner: nil)
                for isa in ISA.available {
                    let copy = MatMul.prepare(weight, isa: isa)
                    #expect(copy !== weight && copy.layout == .rowMajor && copy.data != weight.data, "\(dtype) \(isa)")
                    #expect(Array(UnsafeRawBufferPointer(start: copy.data, count: copy.byteCount)) == bytes, "\(dtype) \(isa)")
                    #expect(Int(bitPattern: copy.data) % 64 == 0)
                    // A copy is the process's own: preparing it again changes nothing.
                    #expect(MatMul.prepare(copy, isa: isa) === copy)
                }
                let input = (0..<(2 * inputs)).map { _ in Float.random(in: -1...1, using: &generator) }
                let context = ComputeContext(threads: 2)
                #expect(product(MatMul.prepare(weight), input, tokens: 2, context: context)
                        == product(weight, input, tokens: 2, context: context), "\(dtype)")
            }
        }
    }

    @Test("owned storage is zeroed, 64-byte aligned and never shared, for small and huge-page sizes")
    func ownedStorage() {
        var tensors: [Tensor] = []
        for (index, count) in [1, 3, 1000, 70_000, 3 << 20, 9 << 20, 17, 2 << 20, 5].enumerated() {
            let tensor = Tensor(dtype: .f32, shape: [count]) { raw, bytes in
                let floats = raw.assumingMemoryBound(to: Float.self)
                #expect((0..<(bytes / 4)).allSatisfy { floats[$0] == 0 }, "\(count) floats start zeroed")
                floats.update(repeating: Float(index + 1), count: bytes / 4)
            }
            #expect(Int(bitPattern: tensor.data) % 64 == 0)
            tensors.append(tensor)
        }
        // Every tensor still holds only its own value: no two allocations overlap.
        for (index, tensor) in tensors.enumerated() {
            let floats = tensor.data.assumingMemoryBound(to: Float.self)
            #expect((0..<tensor.elementCount).allSatisfy { floats[$0] == Float(index + 1) }, "tensor \(index)")
        }
    }

    @Test("the original pages of a file-mapped weight are released, and still read back from the file")
    func releasesMappedPages() throws {
        let dtype = DType.q4_1, out = 256, inputs = 2048
        var generator = PackedTestGenerator(state: 0xF11E)
        let bytes = randomBlocks(dtype, out: out, inputs: inputs, generator: &generator)
        try withMappedFile(bytes) { mapped in
            var checksum = 0
            for index in stride(from: 0, to: bytes.count, by: 64) { checksum &+= Int(mapped.load(fromByteOffset: index, as: UInt8.self)) }
            let weight = Tensor(dtype: dtype, shape: [out, inputs], data: mapped, byteCount: bytes.count, owner: nil)
            let packed = MatMul.prepare(weight, isa: .avx512)
            // The mapping still reads the file's bytes after its pages were dropped.
            #expect(Array(UnsafeRawBufferPointer(start: mapped, count: bytes.count)) == bytes)
            #expect(checksum > 0)
            // A second release of the (re-read) mapping drops whole pages; anonymous memory is kept.
            #expect(energon_release_mapped_pages(mapped, bytes.count) >= bytes.count - 8192)
            let anonymous = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 4096)
            defer { anonymous.deallocate() }
            anonymous.initializeMemory(as: UInt8.self, repeating: 7, count: 1 << 20)
            #expect(energon_release_mapped_pages(anonymous, 1 << 20) == 0)
            #expect(anonymous.load(fromByteOffset: 4096 * 100, as: UInt8.self) == 7)
            // And the packed copy computes the same product as the stored weight.
            let input = (0..<inputs).map { _ in Float.random(in: -1...1, using: &generator) }
            let context = ComputeContext(threads: 2)
            let reference = ReferenceMatMul.compute(weight: tensor(dtype, out: out, inputs: inputs, bytes: bytes), input: input, tokens: 1)
            let scale = ReferenceMatMul.absoluteProducts(weight: tensor(dtype, out: out, inputs: inputs, bytes: bytes), input: input, tokens: 1)
            let output = product(packed, input, tokens: 1, context: context)
            for index in output.indices { #expect(abs(Double(output[index]) - Double(reference[index])) <= 1.2e-2 * scale[index] + 1e-6) }
        }
    }
}

/// Writes `bytes` to a temporary file and runs `body` on a private read-only mapping of it.
private func withMappedFile(_ bytes: [UInt8], _ body: (UnsafeRawPointer) throws -> Void) throws {
    let path = "/tmp/energon-mapped-test-\(getpid())-\(bytes.count).bin"
    let descriptor = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
    try #require(descriptor >= 0)
    defer {
        close(descriptor)
        unlink(path)
    }
    let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress!, $0.count) }  // invariant: non-empty
    try #require(written == bytes.count)
    let mapping = mmap(nil, bytes.count, PROT_READ, MAP_PRIVATE, descriptor, 0)
    try #require(mapping != MAP_FAILED && mapping != nil)
    defer { munmap(mapping, bytes.count) }
    try body(UnsafeRawPointer(mapping!))  // invariant: checked above
}

/// Random weight bytes whose floats and block scales are all finite (`randomBlocks` sets only the
/// scales at a block's start).
private func saneWeightBytes(_ dtype: DType, out: Int, inputs: Int, generator: inout PackedTestGenerator) -> [UInt8] {
    func half(_ generator: inout PackedTestGenerator) -> UInt16 { Float16(Float.random(in: -0.05...0.05, using: &generator)).bitPattern }
    switch dtype {
    case .f32:
        return (0..<(out * inputs)).flatMap { _ in withUnsafeBytes(of: Float.random(in: -1...1, using: &generator).bitPattern) { Array($0) } }
    case .f16:
        return (0..<(out * inputs)).flatMap { _ in withUnsafeBytes(of: half(&generator)) { Array($0) } }
    default:
        var bytes = randomBlocks(dtype, out: out, inputs: inputs, generator: &generator)
        // The other f16 fields: Q5_1's min (bytes 2-3), Q6_K's scale (its last two bytes).
        let field = dtype == .q5_1 ? 2 : dtype == .q6_K ? dtype.blockBytes - 2 : nil
        if let field {
            for block in 0..<(bytes.count / dtype.blockBytes) {
                let bits = half(&generator)
                bytes[block * dtype.blockBytes + field] = UInt8(bits & 0xFF)
                bytes[block * dtype.blockBytes + field + 1] = UInt8(bits >> 8)
            }
        }
        return bytes
    }
}
