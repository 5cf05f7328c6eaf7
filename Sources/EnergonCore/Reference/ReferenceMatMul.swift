/// Naive matrix products used as the test oracle of `MatMul`: every weight row is decoded to
/// Float64 by a straightforward reading of ggml's block layouts, and products are summed in
/// Float64.
public enum ReferenceMatMul {
    /// `[tokens, out]` outputs of `input` `[tokens, in]` times `weight` `[out, in]` transposed.
    public static func compute(weight: Tensor, input: [Float], tokens: Int) -> [Float] {
        let (out, inputs) = (weight.shape[0], weight.shape[1])
        precondition(input.count == tokens * inputs, "input must be [tokens, in]")  // invariant: test inputs
        var output = [Float](repeating: 0, count: tokens * out)
        for row in 0..<out {
            let values = dequantizeRow(weight, row: row)
            for token in 0..<tokens {
                var sum = 0.0
                for index in 0..<inputs { sum += values[index] * Double(input[token * inputs + index]) }
                output[token * out + row] = Float(sum)
            }
        }
        return output
    }

    /// `Σ_i |weight[o, i]| * |input[t, i]|` for every output: the scale an error bound of an
    /// approximate product is relative to.
    public static func absoluteProducts(weight: Tensor, input: [Float], tokens: Int) -> [Double] {
        let (out, inputs) = (weight.shape[0], weight.shape[1])
        var output = [Double](repeating: 0, count: tokens * out)
        for row in 0..<out {
            let values = dequantizeRow(weight, row: row)
            for token in 0..<tokens {
                var sum = 0.0
                for index in 0..<inputs { sum += abs(values[index] * Double(input[token * inputs + index])) }
                output[token * out + row] = sum
            }
        }
        return output
    }

    /// Decodes row `row` of a 2-D weight (any format `MatMul` supports) to Float64.
    public static func dequantizeRow(_ weight: Tensor, row: Int) -> [Double] {
        let inputs = weight.shape[1]
        let bytes = UnsafeRawBufferPointer(start: weight.row(row), count: weight.rowBytes)
        var values = [Double](repeating: 0, count: inputs)
        switch weight.dtype {
        case .f32:
            for index in 0..<inputs { values[index] = Double(bytes.loadUnaligned(fromByteOffset: 4 * index, as: Float.self)) }
        case .f16:
            for index in 0..<inputs { values[index] = half(bytes, 2 * index) }
        case .bf16:
            for index in 0..<inputs {
                let bits = UInt32(bytes.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)) << 16
                values[index] = Double(Float(bitPattern: bits))
            }
        default:
            let size = weight.dtype.blockSize, blockBytes = weight.dtype.blockBytes
            for block in 0..<(inputs / size) {
                let decoded = decodeBlock(weight.dtype, UnsafeRawBufferPointer(rebasing: bytes[(block * blockBytes)...]))
                for index in 0..<size { values[block * size + index] = decoded[index] }
            }
        }
        return values
    }

    private static func half(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> Double {
        Double(Float(Float16(bitPattern: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
    }

    /// One block of a quantized format, decoded from its bytes (ggml's layouts).
    private static func decodeBlock(_ dtype: DType, _ b: UnsafeRawBufferPointer) -> [Double] {
        var y = [Double](repeating: 0, count: dtype.blockSize)
        switch dtype {
        case .q8_0:
            let d = half(b, 0)
            for i in 0..<32 { y[i] = d * Double(Int8(bitPattern: b[2 + i])) }
        case .q4_0, .q4_1:
            // q4_0: d, 16 bytes; q4_1: d, m, 16 bytes. Byte j: element j low nibble, j+16 high.
            let d = half(b, 0)
            let hasMin = dtype == .q4_1
            let m = hasMin ? half(b, 2) : 0
            let q = hasMin ? 4 : 2
            for j in 0..<16 {
                let low = Double(b[q + j] & 0xF), high = Double(b[q + j] >> 4)
                y[j] = hasMin ? d * low + m : d * (low - 8)
                y[j + 16] = hasMin ? d * high + m : d * (high - 8)
            }
        case .q5_0, .q5_1:
            let d = half(b, 0)
            let hasMin = dtype == .q5_1
            let m = hasMin ? half(b, 2) : 0
            let h = hasMin ? 4 : 2
            let high = UInt32(b[h]) | UInt32(b[h + 1]) << 8 | UInt32(b[h + 2]) << 16 | UInt32(b[h + 3]) << 24
            for j in 0..<16 {
                let low = Int(b[h + 4 + j] & 0xF) | Int((high >> UInt32(j)) & 1) << 4
                let top = Int(b[h + 4 + j] >> 4) | Int((high >> UInt32(j + 16)) & 1) << 4
                y[j] = hasMin ? d * Double(low) + m : d * Double(low - 16)
                y[j + 16] = hasMin ? d * Double(top) + m : d * Double(top - 16)
            }
        case .q4_K, .q5_K:
            let d = half(b, 0), dmin = half(b, 2)
            let isFive = dtype == .q5_K
            let scalesAt = 4, highAt = 16, quantsAt = isFive ? 48 : 16
            for sub in 0..<8 {
                let (scale, minimum) = kScaleMin(b, scalesAt, sub)
                let chunk = sub / 2, upper = sub % 2 == 1
                for l in 0..<32 {
                    let byte = b[quantsAt + 32 * chunk + l]
                    var q = Int(upper ? byte >> 4 : byte & 0xF)
                    if isFive { q |= Int((b[highAt + l] >> UInt8(sub)) & 1) << 4 }
                    y[32 * sub + l] = d * Double(scale) * Double(q) - dmin * Double(minimum)
                }
            }
        case .q6_K:
            let d = half(b, 208)
            for element in 0..<256 {
                let half128 = element / 128, within = element % 128
                let quarter = within / 32, l = within % 32
                let lowByte = b[64 * half128 + (quarter % 2) * 32 + l]
                let low = quarter < 2 ? lowByte & 0xF : lowByte >> 4
                let top = (b[128 + 32 * half128 + l] >> UInt8(2 * quarter)) & 3
                let q = Int(low) | Int(top) << 4
                let scale = Double(Int8(bitPattern: b[192 + element / 16]))
                y[element] = d * scale * Double(q - 32)
            }
        case .q2_K:
            let d = half(b, 80), dmin = half(b, 82)
            for element in 0..<256 {
                let half128 = element / 128, within = element % 128
                let shift = UInt8(2 * (within / 32)), l = within % 32
                let q = Double((b[16 + 32 * half128 + l] >> shift) & 3)
                let packed = b[element / 16]
                y[element] = d * Double(packed & 0xF) * q - dmin * Double(packed >> 4)
            }
        case .q3_K:
            let d = half(b, 108)
            for element in 0..<256 {
                let half128 = element / 128, within = element % 128
                let shift = UInt8(2 * (within / 32)), l = within % 32
                let low = Int((b[32 + 32 * half128 + l] >> shift) & 3)
                let third = Int((b[l] >> UInt8(element / 32)) & 1)
                let q = low - (third == 1 ? 0 : 4)
                let j = element / 16
                let lowScale = j < 8 ? Int(b[96 + j] & 0xF) : Int(b[96 + j - 8] >> 4)
                let highScale = Int((b[96 + 8 + j % 4] >> UInt8(2 * (j / 4))) & 3)
                let scale = (lowScale | highScale << 4) - 32
                y[element] = d * Double(scale) * Double(q)
            }
        default:
            preconditionFailure("ReferenceMatMul does not decode \(dtype)")  // invariant: tests pass supported formats
        }
        return y
    }

    /// Scale and min of sub-block `sub` of a Q4_K/Q5_K super-block (6 bits each, packed in 12 bytes).
    private static func kScaleMin(_ b: UnsafeRawBufferPointer, _ at: Int, _ sub: Int) -> (Int, Int) {
        if sub < 4 { return (Int(b[at + sub] & 63), Int(b[at + sub + 4] & 63)) }
        let scale = Int(b[at + sub + 4] & 0xF) | Int(b[at + sub - 4] >> 6) << 4
        let minimum = Int(b[at + sub + 4] >> 4) | Int(b[at + sub] >> 6) << 4
        return (scale, minimum)
    }
}
