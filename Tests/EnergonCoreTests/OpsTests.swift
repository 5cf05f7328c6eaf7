#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EnergonCore
import Testing

/// Seeded xorshift generator: fresh inputs on every run (seeded from the system generator), but
/// the seed goes into every failure message so a failure can be replayed.
struct OpsTestRandom: RandomNumberGenerator {
    let seed: UInt64
    private var state: UInt64

    init(seed: UInt64 = UInt64.random(in: 1...UInt64.max)) {
        self.seed = seed
        self.state = seed
    }

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }

    mutating func floats(_ count: Int, in range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<count).map { _ in Float.random(in: range, using: &self) }
    }
}

/// The largest `|got - expected| / (absolute + relative * |expected|)`: at most 1 when every
/// element is within `absolute + relative * |expected|`.
func opsWorstError(_ got: [Float], _ expected: [Float], absolute: Float, relative: Float) -> Float {
    precondition(got.count == expected.count)
    var worst: Float = 0
    for (value, reference) in zip(got, expected) {
        let allowed = absolute + relative * abs(reference)
        let ratio = value.isFinite ? abs(value - reference) / allowed : .infinity
        worst = max(worst, ratio)
    }
    return worst
}

@Suite struct OpsTests {
    static let sizes = [1, 7, 31, 32, 33, 255, 4097, 70_001]
    static let levels = ISA.available

    @Test(arguments: levels)
    func expIsWithinThreeUlp(isa: ISA) {
        var random = OpsTestRandom()
        var inputs = random.floats(20_000, in: -87...88)
        inputs += random.floats(5_000, in: -1...1) + [0, -0.0, 1, -1, 88.0, -87.0, 0.34657359, -0.34657359]
        var output = [Float](repeating: .nan, count: inputs.count)
        let context = ComputeContext(threads: 1, isa: isa)
        Ops.exp(inputs, output: &output, count: inputs.count, context: context)
        let expected = inputs.map { Float(exp(Double($0))) }
        // 3 ulp relative: the polynomial is ~1 ulp, the 2^n scaling and reduction add about 1 more.
        let worst = opsWorstError(output, expected, absolute: 0, relative: 3.6e-7)
        #expect(worst <= 1, "exp \(isa) worst \(worst) seed \(random.seed)")
        // Saturation and flush-to-zero at the documented limits; NaN passes through.
        var edges: [Float] = [-.infinity, -1000, -88, 100, .infinity, .nan]
        Ops.exp(edges, output: &edges, count: edges.count, context: context)
        #expect(edges[0] == 0 && edges[1] == 0 && edges[2] == 0)
        #expect(edges[3].isFinite && edges[3] > 2e38 && edges[4].isFinite)
        #expect(edges[5].isNaN)
    }

    @Test(arguments: levels, sizes)
    func activationsMatchReference(isa: ISA, count: Int) {
        var random = OpsTestRandom()
        let context = ComputeContext(threads: 3, isa: isa)
        let x = random.floats(count, in: -12...12)
        let up = random.floats(count, in: -3...3)
        // silu/gelu: absolute 1e-6 near zero, 8e-7 relative elsewhere (exp ~2 ulp plus one division).
        var silu = x
        Ops.silu(&silu, count: count, context: context)
        let siluError = opsWorstError(silu, x.map(ReferenceOps.silu), absolute: 1e-6, relative: 8e-7)
        #expect(siluError <= 1, "silu \(isa) n=\(count) \(siluError) seed \(random.seed)")
        for approximation in [Ops.GELUApproximation.tanh, .erf] {
            var gelu = x
            Ops.gelu(&gelu, count: count, approximation: approximation, context: context)
            let expected = x.map { ReferenceOps.gelu($0, approximation: approximation) }
            let error = opsWorstError(gelu, expected, absolute: 1e-6, relative: 8e-7)
            #expect(error <= 1, "gelu \(approximation) \(isa) n=\(count) \(error) seed \(random.seed)")

            var geglu = [Float](repeating: .nan, count: count)
            Ops.geglu(gate: x, up: up, output: &geglu, count: count, approximation: approximation, context: context)
            let gegluExpected = zip(expected, up).map { Float(Double($0) * Double($1)) }
            let gegluError = opsWorstError(geglu, gegluExpected, absolute: 3e-6, relative: 1e-6)
            #expect(gegluError <= 1, "geglu \(approximation) \(isa) n=\(count) \(gegluError) seed \(random.seed)")
        }
        var swiglu = [Float](repeating: .nan, count: count)
        Ops.swiglu(gate: x, up: up, output: &swiglu, count: count, context: context)
        let swigluExpected = zip(x, up).map { Float(Double(ReferenceOps.silu($0)) * Double($1)) }
        let swigluError = opsWorstError(swiglu, swigluExpected, absolute: 3e-6, relative: 1e-6)
        #expect(swigluError <= 1, "swiglu \(isa) n=\(count) \(swigluError) seed \(random.seed)")

        // In place (output aliasing gate) must give the same answer.
        var inPlace = x
        inPlace.withUnsafeMutableBufferPointer { buffer in
            Ops.swiglu(gate: buffer.baseAddress!, up: up, output: buffer.baseAddress!, count: count, context: context)
        }
        #expect(inPlace == swiglu)
    }

    @Test func activationsWithoutContextUseTheBestLevel() {
        var random = OpsTestRandom()
        let x = random.floats(1000, in: -6...6)
        var withDefault = x, withContext = x
        Ops.silu(&withDefault, count: x.count)
        Ops.silu(&withContext, count: x.count, context: ComputeContext(threads: 1, isa: .best))
        #expect(withDefault == withContext)
    }

    @Test(arguments: levels, [(1, 1), (3, 7), (4, 31), (2, 32), (2, 33), (5, 255), (4, 4097), (2, 70_001)])
    func softmaxMatchesReference(isa: ISA, shape: (rows: Int, columns: Int)) {
        var random = OpsTestRandom()
        let x = random.floats(shape.rows * shape.columns, in: -30...30)
        var output = x
        Ops.softmax(&output, rows: shape.rows, columns: shape.columns, context: ComputeContext(threads: 3, isa: isa))
        let expected = ReferenceOps.softmax(x, rows: shape.rows, columns: shape.columns)
        let error = opsWorstError(output, expected, absolute: 1e-9, relative: 2e-6)
        #expect(error <= 1, "softmax \(isa) \(shape) \(error) seed \(random.seed)")
        for row in 0..<shape.rows {
            let sum = output[(row * shape.columns)..<((row + 1) * shape.columns)].reduce(0.0) { $0 + Double($1) }
            #expect(abs(sum - 1) < 1e-5)
        }
    }

    @Test(arguments: levels)
    func softmaxGivesMaskedEntriesZero(isa: ISA) {
        var random = OpsTestRandom()
        var x = random.floats(100, in: -50...50)
        for index in stride(from: 0, to: 100, by: 3) { x[index] = -.infinity }
        var output = x
        Ops.softmax(&output, rows: 1, columns: 100, context: ComputeContext(threads: 1, isa: isa))
        let expected = ReferenceOps.softmax(x, rows: 1, columns: 100)
        #expect(opsWorstError(output, expected, absolute: 1e-9, relative: 2e-6) <= 1, "seed \(random.seed)")
        #expect(stride(from: 0, to: 100, by: 3).allSatisfy { output[$0] == 0 })
    }

    @Test(arguments: levels, sizes)
    func rmsNormMatchesReference(isa: ISA, dimension: Int) {
        var random = OpsTestRandom()
        let tokens = dimension > 4097 ? 2 : 5
        let x = random.floats(tokens * dimension, in: -4...4)
        let weight = random.floats(dimension, in: -2...2)
        let context = ComputeContext(threads: 3, isa: isa)
        for offset: Float in [0, 1] {
            var output = [Float](repeating: .nan, count: x.count)
            Ops.rmsNorm(input: x, weight: weight, output: &output, tokens: tokens, dimension: dimension,
                        epsilon: 1e-6, context: context, weightOffset: offset)
            let expected = ReferenceOps.rmsNorm(x, weight: weight, tokens: tokens, dimension: dimension,
                                                epsilon: 1e-6, weightOffset: offset)
            let error = opsWorstError(output, expected, absolute: 1e-6, relative: 2e-6)
            #expect(error <= 1, "rmsNorm \(isa) d=\(dimension) offset \(offset) \(error) seed \(random.seed)")
        }
        // In place.
        var inPlace = x
        inPlace.withUnsafeMutableBufferPointer { buffer in
            Ops.rmsNorm(input: buffer.baseAddress!, weight: weight, output: buffer.baseAddress!, tokens: tokens,
                        dimension: dimension, epsilon: 1e-6, context: context)
        }
        let expected = ReferenceOps.rmsNorm(x, weight: weight, tokens: tokens, dimension: dimension, epsilon: 1e-6)
        #expect(opsWorstError(inPlace, expected, absolute: 1e-6, relative: 2e-6) <= 1)
    }

    @Test(arguments: levels, sizes)
    func layerNormMatchesReference(isa: ISA, dimension: Int) {
        var random = OpsTestRandom()
        let tokens = 3
        // A large common offset checks the two-pass variance (one-pass would cancel).
        let x = random.floats(tokens * dimension, in: 99...101)
        let weight = random.floats(dimension, in: -2...2)
        let bias = random.floats(dimension, in: -1...1)
        let context = ComputeContext(threads: 3, isa: isa)
        for useBias in [false, true] {
            var output = [Float](repeating: .nan, count: x.count)
            if useBias {
                Ops.layerNorm(input: x, weight: weight, bias: bias, output: &output, tokens: tokens,
                              dimension: dimension, epsilon: 1e-5, context: context)
            } else {
                Ops.layerNorm(input: x, weight: weight, bias: nil, output: &output, tokens: tokens,
                              dimension: dimension, epsilon: 1e-5, context: context)
            }
            let expected = ReferenceOps.layerNorm(x, weight: weight, bias: useBias ? bias : nil, tokens: tokens,
                                                  dimension: dimension, epsilon: 1e-5)
            // The inputs carry ~1e-5 relative rounding of a value near 100, i.e. 1e-3 of their spread.
            let error = opsWorstError(output, expected, absolute: 2e-4, relative: 2e-4)
            #expect(error <= 1, "layerNorm \(isa) d=\(dimension) bias \(useBias) \(error) seed \(random.seed)")
        }
    }

    @Test func emptyInputsWriteNothing() throws {
        var sentinel: [Float] = [42]
        let context = ComputeContext(threads: 3)
        Ops.silu(&sentinel, count: 0, context: context)
        Ops.gelu(&sentinel, count: 0, approximation: .erf, context: context)
        Ops.swiglu(gate: [1], up: [1], output: &sentinel, count: 0, context: context)
        Ops.softmax(&sentinel, rows: 0, columns: 5, context: context)
        Ops.softmax(&sentinel, rows: 1, columns: 0, context: context)
        Ops.rmsNorm(input: [1], weight: [1], output: &sentinel, tokens: 0, dimension: 1, epsilon: 1e-6, context: context)
        Ops.rmsNorm(input: [1], weight: [1], output: &sentinel, tokens: 1, dimension: 0, epsilon: 1e-6, context: context)
        Ops.layerNorm(input: [1], weight: [1], bias: nil, output: &sentinel, tokens: 0, dimension: 1, epsilon: 1e-6,
                      context: context)
        RoPE(headDimension: 4, rotaryDimensions: 4, base: 1e4, style: .neox)
            .apply(&sentinel, tokens: 0, heads: 1, positions: [Int32(3)], context: context)
        RoPE(headDimension: 1, rotaryDimensions: 0, base: 1e4, style: .normal)
            .apply(&sentinel, tokens: 1, heads: 1, positions: [Int32(3)], context: context)
        try Embedding.lookup(table: Tensor(shape: [2, 1], floats: [5, 6]), ids: [Int32(0)], count: 0, output: &sentinel)
        var keyBlock: [Float] = [1, 2]
        keyBlock.withUnsafeMutableBufferPointer { block in
            let blocks = [block.baseAddress!]
            blocks.withUnsafeBufferPointer { table in
                let empty = AttentionSequence(queryOffset: 0, tokens: 0, startPosition: 0, keyBlocks: table.baseAddress!,
                                              valueBlocks: table.baseAddress!)
                Attention.compute(queries: [1], sequences: [empty], blockSize: 2, output: &sentinel,
                                  configuration: AttentionConfiguration(heads: 1, kvHeads: 1, headDimension: 1, scale: 1),
                                  context: context)
                Attention.compute(queries: [1], sequences: [], blockSize: 2, output: &sentinel,
                                  configuration: AttentionConfiguration(heads: 1, kvHeads: 1, headDimension: 1, scale: 1),
                                  context: context)
            }
        }
        #expect(sentinel == [42])
    }

    @Test(arguments: sizes)
    func addScaleAndBiasAreExact(count: Int) {
        var random = OpsTestRandom()
        let a = random.floats(count), b = random.floats(count)
        var sum = [Float](repeating: 0, count: count)
        Ops.add(a, b, output: &sum, count: count)
        #expect(sum == zip(a, b).map { $0 + $1 })
        var aliased = a
        aliased.withUnsafeMutableBufferPointer { buffer in
            Ops.add(buffer.baseAddress!, b, output: buffer.baseAddress!, count: count)
        }
        #expect(aliased == sum)
        var scaled = a
        Ops.scale(&scaled, by: -0.375, count: count)
        #expect(scaled == a.map { $0 * -0.375 })
        let dimension = count > 255 ? 31 : count
        let tokens = count / dimension
        let bias = random.floats(dimension)
        var biased = a
        Ops.addBias(bias, to: &biased, tokens: tokens, dimension: dimension)
        for index in 0..<count {
            let expected = index < tokens * dimension ? a[index] + bias[index % dimension] : a[index]
            #expect(biased[index] == expected, "addBias index \(index)")
        }
    }
}

@Suite struct RoPETests {
    @Test(arguments: [RoPE.Style.normal, .neox], [
        (headDimension: 64, rotary: 64, base: Float(1e4)),
        (headDimension: 128, rotary: 128, base: Float(1e6)),
        (headDimension: 80, rotary: 32, base: Float(1e4)),    // partial rotary (Phi-style)
        (headDimension: 256, rotary: 256, base: Float(1e6)),
        (headDimension: 2, rotary: 2, base: Float(1e4)),
    ])
    func matchesReference(style: RoPE.Style, shape: (headDimension: Int, rotary: Int, base: Float)) {
        var random = OpsTestRandom()
        for (tokens, heads) in [(1, 1), (7, 3), (33, 4), (40, 16)] {
            let x = random.floats(tokens * heads * shape.headDimension, in: -2...2)
            let positions = (0..<tokens).map { _ in Int32.random(in: 0...40_000, using: &random) }
            for frequencyScale: Float in [1, 0.25] {
                let rope = RoPE(headDimension: shape.headDimension, rotaryDimensions: shape.rotary, base: shape.base,
                                style: style, frequencyScale: frequencyScale)
                var output = x
                rope.apply(&output, tokens: tokens, heads: heads, positions: positions,
                           context: ComputeContext(threads: 3))
                let expected = ReferenceOps.rope(x, tokens: tokens, heads: heads, headDimension: shape.headDimension,
                                                 rotaryDimensions: shape.rotary, base: shape.base, style: style,
                                                 frequencyScale: frequencyScale, positions: positions)
                // cos/sin rounded to f32, then two products and a sum: a few ulp of |x| <= 2.
                let error = opsWorstError(output, expected, absolute: 1e-6, relative: 1e-6)
                #expect(error <= 1, "rope \(style) \(shape) t=\(tokens) h=\(heads) \(error) seed \(random.seed)")
                if shape.rotary < shape.headDimension {
                    // The unrotated tail passes through bit for bit.
                    for index in 0..<x.count where index % shape.headDimension >= shape.rotary {
                        #expect(output[index] == x[index])
                    }
                }
            }
        }
    }

    @Test(arguments: [RoPE.Style.normal, .neox])
    func cachedAndComputedAnglesAgreeExactly(style: RoPE.Style) {
        var random = OpsTestRandom()
        let tokens = 64, heads = 3
        let x = random.floats(tokens * heads * 128)
        // Positions on both sides of the cache boundary, and far beyond it.
        let positions = (0..<tokens).map { Int32([0, 1, 4094, 4095, 4096, 4097, 70_000][$0 % 7] + $0 / 7) }
        var cached = x, computed = x
        RoPE(headDimension: 128, rotaryDimensions: 96, base: 1e6, style: style)
            .apply(&cached, tokens: tokens, heads: heads, positions: positions, context: ComputeContext(threads: 3))
        RoPE(headDimension: 128, rotaryDimensions: 96, base: 1e6, style: style, cachedPositions: 0)
            .apply(&computed, tokens: tokens, heads: heads, positions: positions, context: ComputeContext(threads: 1))
        #expect(cached == computed)
    }

    @Test(arguments: [RoPE.Style.normal, .neox])
    func frequencyFactorsMatchReference(style: RoPE.Style) {
        var random = OpsTestRandom()
        // Llama 3.1-style factors: 1 for high frequencies, up to 8 for low ones.
        let factors = (0..<32).map { index in Float(1 + 7 * Double(index) / 31) }
        let x = random.floats(9 * 3 * 64, in: -2...2)
        let positions = (0..<9).map { _ in Int32.random(in: 0...9000, using: &random) }
        var output = x
        RoPE(headDimension: 64, rotaryDimensions: 64, base: 5e5, style: style, frequencyFactors: factors)
            .apply(&output, tokens: 9, heads: 3, positions: positions, context: ComputeContext(threads: 1))
        let expected = ReferenceOps.rope(x, tokens: 9, heads: 3, headDimension: 64, rotaryDimensions: 64, base: 5e5,
                                         style: style, frequencyFactors: factors, positions: positions)
        #expect(opsWorstError(output, expected, absolute: 1e-6, relative: 1e-6) <= 1, "seed \(random.seed)")
        let plain = ReferenceOps.rope(x, tokens: 9, heads: 3, headDimension: 64, rotaryDimensions: 64, base: 5e5,
                                      style: style, positions: positions)
        #expect(opsWorstError(output, plain, absolute: 1e-3, relative: 0) > 1)
    }

    @Test func positionZeroIsIdentityAndStylesDiffer() {
        var random = OpsTestRandom()
        let x = random.floats(64, in: -1...1)
        let zero: [Int32] = [0]
        var rotated = x
        RoPE(headDimension: 64, rotaryDimensions: 64, base: 1e4, style: .normal)
            .apply(&rotated, tokens: 1, heads: 1, positions: zero, context: ComputeContext(threads: 1))
        #expect(rotated == x)
        var normal = x, neox = x
        let five: [Int32] = [5]
        RoPE(headDimension: 64, rotaryDimensions: 64, base: 1e4, style: .normal)
            .apply(&normal, tokens: 1, heads: 1, positions: five, context: ComputeContext(threads: 1))
        RoPE(headDimension: 64, rotaryDimensions: 64, base: 1e4, style: .neox)
            .apply(&neox, tokens: 1, heads: 1, positions: five, context: ComputeContext(threads: 1))
        #expect(normal != neox)
        // Rotation preserves each pair's norm.
        for index in 0..<32 {
            let before = x[2 * index] * x[2 * index] + x[2 * index + 1] * x[2 * index + 1]
            let after = normal[2 * index] * normal[2 * index] + normal[2 * index + 1] * normal[2 * index + 1]
            #expect(abs(before - after) < 1e-5)
        }
    }
}

@Suite struct EmbeddingTests {
    static let vocabulary = 37, hidden = 512

    /// A table of `dtype` plus, per row, the floats each row must decode to, computed without
    /// `Embedding` (and for F32/F16/BF16 without the quantization code at all).
    func makeTable(_ dtype: DType, random: inout OpsTestRandom) throws -> (Tensor, [[Float]]) {
        let values = random.floats(Self.vocabulary * Self.hidden, in: -2...2)
        let rows = (0..<Self.vocabulary).map { Array(values[($0 * Self.hidden)..<(($0 + 1) * Self.hidden)]) }
        switch dtype {
        case .f32:
            return (Tensor(shape: [Self.vocabulary, Self.hidden], floats: values), rows)
        case .f16:
            let table = try Tensor(quantizing: values, shape: [Self.vocabulary, Self.hidden], dtype: .f16)
            return (table, rows.map { $0.map { Float(Float16($0)) } })
        case .bf16:
            let table = try Tensor(quantizing: values, shape: [Self.vocabulary, Self.hidden], dtype: .bf16)
            // Round to nearest even on the upper 16 bits.
            let rounded = rows.map { row in
                row.map { value -> Float in
                    let bits = value.bitPattern
                    return Float(bitPattern: ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16)
                }
            }
            return (table, rounded)
        default:
            let rowBytes = dtype.rowBytes(Self.hidden)!
            let table: Tensor
            if Quantization.canQuantize(dtype) {
                table = try Tensor(quantizing: values, shape: [Self.vocabulary, Self.hidden], dtype: dtype)
            } else {
                // No encoder (most K-quants): random blocks with finite, small f16 scales.
                table = Tensor(dtype: dtype, shape: [Self.vocabulary, Self.hidden]) { raw, bytes in
                    for index in 0..<bytes { raw.storeBytes(of: UInt8.random(in: 0...255, using: &random), toByteOffset: index, as: UInt8.self) }
                    let scale = Float16(0.01).bitPattern
                    for block in 0..<(bytes / dtype.blockBytes) {
                        let base = block * dtype.blockBytes
                        for offset in Self.scaleOffsets(dtype) {
                            raw.storeBytes(of: scale, toByteOffset: base + offset, as: UInt16.self)
                        }
                    }
                }
            }
            let decoded = (0..<Self.vocabulary).map { row in
                let bytes = [UInt8](UnsafeRawBufferPointer(start: table.row(row), count: rowBytes))
                return Quantization.dequantize(bytes, as: dtype, count: Self.hidden, isa: .portable)
            }
            return (table, decoded)
        }
    }

    /// Byte offsets of the f16 scale fields inside one block (ggml layouts).
    static func scaleOffsets(_ dtype: DType) -> [Int] {
        switch dtype {
        case .q2_K: [80, 82]
        case .q3_K: [108]
        case .q4_K, .q5_K: [0, 2]
        case .q6_K: [208]
        case .q8_1: [0, 2]
        default: [0]
        }
    }

    static let dtypes: [DType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    @Test(arguments: dtypes, [1, 3])
    func lookupDecodesTheSelectedRows(dtype: DType, threads: Int) throws {
        var random = OpsTestRandom()
        let (table, expectedRows) = try makeTable(dtype, random: &random)
        let ids = (0..<50).map { _ in Int32.random(in: 0..<Int32(Self.vocabulary), using: &random) } + [0, Int32(Self.vocabulary - 1)]
        for isa in ISA.available {
            var output = [Float](repeating: .nan, count: ids.count * Self.hidden)
            try Embedding.lookup(table: table, ids: ids, count: ids.count, output: &output,
                                 context: ComputeContext(threads: threads, isa: isa))
            for (token, id) in ids.enumerated() {
                let row = Array(output[(token * Self.hidden)..<((token + 1) * Self.hidden)])
                #expect(row == expectedRows[Int(id)], "\(dtype) \(isa) token \(token) id \(id) seed \(random.seed)")
            }
        }
    }

    @Test func quantizedRowsStayCloseToTheirSource() throws {
        var random = OpsTestRandom()
        let values = random.floats(Self.vocabulary * Self.hidden, in: -2...2)
        // Worst-case step of each format for values in [-2, 2]: half a quantization step of the
        // block's range, plus the f16 rounding of its scale.
        for (dtype, bound) in [(DType.q8_0, Float(2.0 / 127)), (.q5_0, 2.0 / 15), (.q5_1, 4.0 / 31), (.q4_0, 2.0 / 7), (.q4_1, 4.0 / 15)] {
            let table = try Tensor(quantizing: values, shape: [Self.vocabulary, Self.hidden], dtype: dtype)
            let ids = (0..<Int32(Self.vocabulary)).map { $0 }
            var output = [Float](repeating: .nan, count: values.count)
            try Embedding.lookup(table: table, ids: ids, count: ids.count, output: &output)
            let worst = zip(output, values).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= bound, "\(dtype) worst \(worst) seed \(random.seed)")
        }
    }

    @Test func badIdsThrowBeforeWriting() throws {
        let table = Tensor(shape: [4, 8], floats: (0..<32).map(Float.init))
        for bad: Int32 in [4, -1, 1000] {
            var output = [Float](repeating: 7, count: 3 * 8)
            let ids: [Int32] = [1, bad, 2]
            #expect(throws: EmbeddingError.tokenOutOfRange(Int(bad), 4)) {
                try Embedding.lookup(table: table, ids: ids, count: 3, output: &output)
            }
            #expect(output.allSatisfy { $0 == 7 })
        }
        let flat = Tensor(shape: [32], floats: (0..<32).map(Float.init))
        var output = [Float](repeating: 0, count: 8)
        #expect(throws: EmbeddingError.tableNotAMatrix(shape: [32])) {
            try Embedding.lookup(table: flat, ids: [Int32(0)], count: 1, output: &output)
        }
        #expect(EmbeddingError.tokenOutOfRange(9, 4).description.contains("9"))
    }
}
