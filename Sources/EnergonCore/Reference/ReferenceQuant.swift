/// A deliberately naive decoder for every GGUF/ggml format and encoders for the formats Energon
/// writes, written element by element from ggml's block definitions (`ggml-common.h`) and
/// sharing no code with the C kernels. Tests compare the kernels against it; nothing else
/// should call it.
///
/// Each element is decoded on its own: find its bytes and bits, then apply the same f32
/// products in the same order ggml uses (products of f32 values are exact to compare; Swift
/// never fuses them into FMAs), so results must match bit for bit.
public enum ReferenceQuant {
    /// Decodes `count` elements of `dtype` from `bytes` (which must hold exactly
    /// `dtype.rowBytes(count)` bytes).
    public static func dequantize(_ dtype: DType, bytes: [UInt8], count: Int) -> [Float] {
        precondition(dtype.rowBytes(count) == bytes.count, "reference: byte count does not fit")  // invariant: test sizes
        let reader = ByteReader(bytes: bytes)
        return (0..<count).map { element in
            let block = element / dtype.blockSize, index = element % dtype.blockSize
            return decode(dtype, reader, base: block * dtype.blockBytes, index: index)
        }
    }

    /// IEEE half bits -> Float, from the definition: (-1)^s * 2^(e-15) * 1.m, or 2^-14 * 0.m
    /// for e == 0. Any NaN becomes the default quiet NaN with the same sign.
    public static func halfToFloat(_ bits: UInt16) -> Float {
        let negative = bits & 0x8000 != 0
        let exponent = Int((bits >> 10) & 0x1F), mantissa = Int(bits & 0x3FF)
        let magnitude: Float
        switch exponent {
        case 0x1F: magnitude = mantissa == 0 ? .infinity : .nan
        case 0: magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        default: magnitude = Float(1024 + mantissa) * Float(sign: .plus, exponent: exponent - 25, significand: 1)
        }
        return negative ? -magnitude : magnitude
    }

    /// bfloat16 bits -> Float (the top half of an f32).
    public static func bfloat16ToFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// Float -> IEEE half bits, rounded to nearest even, computed in Double by scaling onto the
    /// half grid (not by bit manipulation, to stay independent of the C code). NaN -> quiet NaN
    /// keeping the top 10 payload bits, as F16C does.
    public static func floatToHalf(_ value: Float) -> UInt16 {
        let sign: UInt16 = value.sign == .minus ? 0x8000 : 0
        if value.isNaN { return sign | 0x7E00 | UInt16((value.bitPattern >> 13) & 0x3FF) }
        let magnitude = Double(value.magnitude)
        if magnitude >= 65520 { return sign | 0x7C00 }
        // Grid spacing: 2^-24 below 2^-14, else 2^(floor(log2 x) - 10).
        let exponent = magnitude < 0x1p-14 ? -14 : Int(magnitude.exponent)
        let spacing = Double(sign: .plus, exponent: exponent - 10, significand: 1)
        let units = (magnitude / spacing).rounded(.toNearestOrEven)  // exact: a power-of-two divide
        // units * spacing is the rounded value; re-encode it from its own exponent.
        let rounded = units * spacing
        if rounded == 0 { return sign }
        if rounded < 0x1p-14 { return sign | UInt16(units) }
        let biased = Int(rounded.exponent) + 15
        let fraction = rounded / Double(sign: .plus, exponent: Int(rounded.exponent), significand: 1) - 1
        return sign | UInt16(biased << 10) | UInt16((fraction * 1024).rounded())
    }

    /// Float -> bfloat16 bits, rounded to nearest even, NaN quiet (ggml_compute_fp32_to_bf16),
    /// computed in Double on the bf16 grid.
    public static func floatToBFloat16(_ value: Float) -> UInt16 {
        if value.isNaN { return UInt16(value.bitPattern >> 16) | 0x40 }
        if value.isInfinite || value == 0 { return UInt16(value.bitPattern >> 16) }
        let magnitude = Double(value.magnitude)
        let exponent = max(Int(magnitude.exponent), -126)
        let spacing = Double(sign: .plus, exponent: exponent - 7, significand: 1)
        let rounded = Float((magnitude / spacing).rounded(.toNearestOrEven) * spacing)  // may round to inf
        return UInt16((value.sign == .minus ? -rounded : rounded).bitPattern >> 16)
    }

    /// Encodes `values` as `dtype` following ggml's reference quantizers as gguf-py restates
    /// them, one block at a time; `nil` for formats without an encoder. Only the stored scales
    /// are rounded to f16; codes come from the f32 scale's f32 reciprocal.
    public static func quantize(_ dtype: DType, values: [Float]) -> [UInt8]? {
        precondition(values.count % dtype.blockSize == 0, "reference: whole blocks only")  // invariant: test sizes
        switch dtype {
        case .f32: return values.flatMap { littleEndian($0.bitPattern) }
        case .f16: return values.flatMap { littleEndian(floatToHalf($0)) }
        case .bf16: return values.flatMap { littleEndian(floatToBFloat16($0)) }
        case .q8_K: return quantizeQ8K(values)
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1:
            return stride(from: 0, to: values.count, by: 32).flatMap { start in
                legacyBlock(dtype, Array(values[start..<(start + 32)]))
            }
        default: return nil
        }
    }

    private static func legacyBlock(_ dtype: DType, _ x: [Float]) -> [UInt8] {
        func reciprocal(_ d: Float) -> Float { d == 0 ? 0 : 1 / d }
        switch dtype {
        case .q8_0:
            // d = amax / 127, codes round half away from zero.
            let d = (x.map(\.magnitude).max() ?? 0) / 127, id = reciprocal(d)
            return littleEndian(floatToHalf(d)) + x.map { UInt8(bitPattern: Int8(($0 * id).rounded(.toNearestOrAwayFromZero))) }
        case .q4_0, .q5_0:
            // The signed value of largest magnitude (first on ties) maps to code 0: d = it / -8
            // (or -16); codes are trunc(x / d + 8.5), capped at 15 (or 16.5 and 31).
            var best = 0
            for index in x.indices where x[index].magnitude > x[best].magnitude { best = index }
            let levels: Float = dtype == .q4_0 ? 8 : 16
            let d = x[best] / -levels, id = reciprocal(d)
            let codes = x.map { min(Int(levels) * 2 - 1, Int(($0 * id + (levels + 0.5)).rounded(.towardZero))) }
            return littleEndian(floatToHalf(d)) + highBits(codes, dtype == .q5_0) + packedNibbles(codes)
        default:
            // Q4_1 / Q5_1: d = (max - min) / 15 (or 31), m = min, codes trunc((x - min) / d + 0.5).
            let low = x.min() ?? 0, high = x.max() ?? 0
            let top = dtype == .q4_1 ? 15 : 31
            let d = (high - low) / Float(top), id = reciprocal(d)
            let codes = x.map { min(top, Int((($0 - low) * id + 0.5).rounded(.towardZero))) }
            return littleEndian(floatToHalf(d)) + littleEndian(floatToHalf(low))
                + highBits(codes, dtype == .q5_1) + packedNibbles(codes)
        }
    }

    /// Byte j holds element j's code in its low nibble and element j + 16's in its high nibble.
    private static func packedNibbles(_ codes: [Int]) -> [UInt8] {
        (0..<16).map { UInt8((codes[$0] & 0xF) | (codes[$0 + 16] & 0xF) << 4) }
    }

    /// For 5-bit formats: bit e of a little-endian 32-bit word is bit 4 of code e.
    private static func highBits(_ codes: [Int], _ present: Bool) -> [UInt8] {
        guard present else { return [] }
        let word = codes.indices.reduce(UInt32(0)) { $0 | UInt32((codes[$1] >> 4) & 1) << UInt32($1) }
        return littleEndian(word)
    }

    /// ggml's `quantize_row_q8_K_ref`: per 256 values, the signed value of largest magnitude
    /// `max` (first one on ties) gives iscale = -127 / max; codes are round-half-even of
    /// iscale * x capped at 127; d = 1 / iscale (f32); bsums are the sums of each 16 codes.
    /// An all-zero block encodes as all zero bytes.
    public static func quantizeQ8K(_ values: [Float]) -> [UInt8] {
        precondition(values.count % 256 == 0, "reference: Q8_K needs whole blocks")  // invariant: test sizes
        var output: [UInt8] = []
        for start in stride(from: 0, to: values.count, by: 256) {
            let block = values[start..<(start + 256)]
            var maximum: Float = 0, amax: Float = 0
            for value in block where value.magnitude > amax { amax = value.magnitude; maximum = value }
            if amax == 0 {
                output += [UInt8](repeating: 0, count: 292)
                continue
            }
            let iscale = -127 / maximum
            let codes = block.map { min(127, Int((iscale * $0).rounded(.toNearestOrEven))) }
            output += littleEndian((1 / iscale).bitPattern)
            output += codes.map { UInt8(bitPattern: Int8($0)) }
            for group in 0..<16 {
                let sum = codes[(16 * group)..<(16 * group + 16)].reduce(0, +)
                output += littleEndian(UInt16(bitPattern: Int16(sum)))
            }
        }
        return output
    }

    private static func littleEndian<Value: FixedWidthInteger>(_ value: Value) -> [UInt8] {
        (0..<(Value.bitWidth / 8)).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    // MARK: - One element

    private struct ByteReader {
        let bytes: [UInt8]
        func u8(_ offset: Int) -> Int { Int(bytes[offset]) }
        func i8(_ offset: Int) -> Int { Int(Int8(bitPattern: bytes[offset])) }
        func u16(_ offset: Int) -> UInt16 { UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8 }
        func u32(_ offset: Int) -> UInt32 {
            (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
        }
        func u64(_ offset: Int) -> UInt64 {
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
        }
        func half(_ offset: Int) -> Float { ReferenceQuant.halfToFloat(u16(offset)) }
        /// Bit `bit` of the little-endian bit string starting at `offset`.
        func bit(_ offset: Int, _ bit: Int) -> Int { (u8(offset + bit / 8) >> (bit % 8)) & 1 }
    }

    /// Element `index` of the block starting at byte `base`.
    private static func decode(_ dtype: DType, _ r: ByteReader, base: Int, index e: Int) -> Float {
        switch dtype {
        case .f32: return Float(bitPattern: r.u32(base))
        case .f16: return r.half(base)
        case .bf16: return bfloat16ToFloat(r.u16(base))
        case .f64: return Float(Double(bitPattern: r.u64(base)))
        case .i8: return Float(r.i8(base))
        case .i16: return Float(Int16(bitPattern: r.u16(base)))
        case .i32: return Float(Int32(bitPattern: r.u32(base)))
        case .i64: return Float(Int64(bitPattern: r.u64(base)))

        // Legacy formats: element e < 16 is the low nibble of qs[e], e >= 16 the high nibble of
        // qs[e - 16]; the 5-bit formats take bit e of the 32-bit qh as bit 4.
        case .q4_0:
            return Float(nibble(r, base + 2, e) - 8) * r.half(base)
        case .q4_1:
            return Float(nibble(r, base + 4, e)) * r.half(base) + r.half(base + 2)
        case .q5_0:
            let code = nibble(r, base + 6, e) | (r.bit(base + 2, e) << 4)
            return Float(code - 16) * r.half(base)
        case .q5_1:
            let code = nibble(r, base + 8, e) | (r.bit(base + 4, e) << 4)
            return Float(code) * r.half(base) + r.half(base + 2)
        case .q8_0:
            return Float(r.i8(base + 2 + e)) * r.half(base)
        case .q8_1:
            return Float(r.i8(base + 4 + e)) * r.half(base)

        // K-quants (256 elements).
        case .q2_K:
            // scales[16] @0 (low nibble scale, high nibble min), qs[64] @16, d @80, dmin @82.
            // Element e: byte 32*(e/128) + e%32 of qs, bits 2*((e%128)/32).
            let code = (r.u8(base + 16 + 32 * (e / 128) + e % 32) >> (2 * ((e % 128) / 32))) & 3
            let scale = r.u8(base + e / 16)
            let dl = r.half(base + 80) * Float(scale & 0xF), ml = r.half(base + 82) * Float(scale >> 4)
            return dl * Float(code) - ml
        case .q3_K:
            // hmask[32] @0, qs[64] @32, scales[12] @96, d @108. Low 2 bits as in Q2_K; bit e/32
            // of hmask[e%32] set means "no -4".
            let low = (r.u8(base + 32 + 32 * (e / 128) + e % 32) >> (2 * ((e % 128) / 32))) & 3
            let high = (r.u8(base + e % 32) >> (e / 32)) & 1
            let k = e / 16
            let scaleLow = k < 8 ? r.u8(base + 96 + k) & 0xF : r.u8(base + 96 + k - 8) >> 4
            let scaleHigh = (r.u8(base + 96 + 8 + k % 4) >> (2 * (k / 4))) & 3
            let dl = r.half(base + 108) * Float((scaleLow | scaleHigh << 4) - 32)
            return dl * Float(low - (high == 1 ? 0 : 4))
        case .q4_K, .q5_K:
            // d @0, dmin @2, scales[12] @4, (Q5_K: qh[32] @16), qs[128] @16 or @48.
            // Sub-block s = e/32 covers nibble s%2 of qs[32*(s/2) + e%32].
            let s = e / 32
            let quants = dtype == .q4_K ? base + 16 : base + 48
            var code = (r.u8(quants + 32 * (s / 2) + e % 32) >> (4 * (s % 2))) & 0xF
            if dtype == .q5_K { code |= ((r.u8(base + 16 + e % 32) >> s) & 1) << 4 }
            let (scale, minimum) = kScaleMin(r, base + 4, s)
            return r.half(base) * Float(scale) * Float(code) - r.half(base + 2) * Float(minimum)
        case .q6_K:
            // ql[128] @0, qh[64] @128, scales[16] (int8) @192, d @208. In each half of 128,
            // element 32*k + l: nibble k/2 of ql[64*half + 32*(k%2) + l], bits 2k of qh[32*half + l].
            let half = e / 128, k = (e % 128) / 32, l = e % 32
            let low = (r.u8(base + 64 * half + 32 * (k % 2) + l) >> (4 * (k / 2))) & 0xF
            let high = (r.u8(base + 128 + 32 * half + l) >> (2 * k)) & 3
            return r.half(base + 208) * Float(r.i8(base + 192 + e / 16)) * Float((low | high << 4) - 32)
        case .q8_K:
            return Float(bitPattern: r.u32(base)) * Float(r.i8(base + 4 + e))
        }
    }

    private static func nibble(_ r: ByteReader, _ quants: Int, _ e: Int) -> Int {
        e < 16 ? r.u8(quants + e) & 0xF : r.u8(quants + e - 16) >> 4
    }

    /// Scale and min of sub-block `s` from Q4_K/Q5_K's 12 bytes, read as three rows of four:
    /// rows 0 and 1 hold the low 6 bits of scales/mins 0-3 and, in their top 2 bits, the high
    /// bits of scales/mins 4-7; row 2 holds the low nibbles of scales 4-7 and mins 4-7.
    private static func kScaleMin(_ r: ByteReader, _ offset: Int, _ s: Int) -> (Int, Int) {
        let scaleRow = (0..<4).map { r.u8(offset + $0) }
        let minRow = (0..<4).map { r.u8(offset + 4 + $0) }
        let mixedRow = (0..<4).map { r.u8(offset + 8 + $0) }
        if s < 4 { return (scaleRow[s] & 63, minRow[s] & 63) }
        let j = s - 4
        return ((mixedRow[j] & 0xF) | ((scaleRow[j] >> 6) << 4), (mixedRow[j] >> 4) | ((minRow[j] >> 6) << 4))
    }
}
