import CEnergonKernels

/// Row encoders and decoders for every GGUF/ggml element format, bit-exact with ggml's
/// reference code and the `gguf` Python package.
///
/// The work is done by C kernels (`Sources/CEnergonKernels/quants*.c`) with AVX-512 and AVX2
/// decoders for the formats on hot paths (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q4_K, Q6_K) and
/// F16/BF16 encoders, and a portable version of everything; every level returns the same bits.
public enum Quantization {
    /// Whether `dequantizeRow` can decode `dtype` (true for every `DType`: block formats, floats
    /// and the plain integer types).
    public static func canDequantize(_ dtype: DType) -> Bool {
        energon_can_dequantize(dtype.rawValue) != 0
    }

    /// Whether `quantizeRow` can encode `dtype`: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
    /// Q8_K and the K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (the bytes of ggml's reference
    /// quantizers, which `llama-quantize` writes when no importance matrix is given).
    public static func canQuantize(_ dtype: DType) -> Bool {
        energon_can_quantize(dtype.rawValue) != 0
    }

    /// Decodes `count` elements (a whole number of blocks) of `dtype` at `source` into floats.
    ///
    /// - Parameters:
    ///   - dtype: The format of the bytes at `source`.
    ///   - source: `dtype.rowBytes(count)` bytes, at any alignment.
    ///   - destination: Room for `count` floats.
    ///   - count: Elements to decode; must be a multiple of `dtype.blockSize` (rows of a
    ///     `Tensor` always are, which `DType.rowBytes` checked when the tensor was made).
    ///   - isa: Kernel level; a level above `ISA.best` runs at `ISA.best`.
    public static func dequantizeRow(_ dtype: DType, source: UnsafeRawPointer,
                                     destination: UnsafeMutablePointer<Float>, count: Int, isa: ISA = .best) {
        // invariant: callers decode whole blocks of validated tensors; a partial block is a bug.
        precondition(count >= 0 && count % dtype.blockSize == 0,
                     "dequantizeRow: \(count) elements is not a whole number of \(dtype) blocks")
        let status = energon_dequantize_row(dtype.rawValue, source, destination, Int64(count), isa.cValue)
        precondition(status == 0, "dequantizeRow: no decoder for \(dtype)")  // invariant: every DType has one
    }

    /// Encodes `count` floats as `dtype`.
    ///
    /// - Parameters:
    ///   - dtype: The target format (see `canQuantize`).
    ///   - source: `count` floats.
    ///   - destination: Room for `dtype.rowBytes(count)` bytes, at any alignment.
    ///   - count: Elements to encode; a multiple of `dtype.blockSize`.
    ///   - isa: Kernel level; a level above `ISA.best` runs at `ISA.best`.
    /// - Throws: `QuantizationError.unsupported` for formats without an encoder,
    ///   `.misalignedCount` when `count` is not a multiple of the block size.
    public static func quantizeRow(_ dtype: DType, source: UnsafePointer<Float>,
                                   destination: UnsafeMutableRawPointer, count: Int, isa: ISA = .best) throws {
        guard canQuantize(dtype) else { throw QuantizationError.unsupported(dtype) }
        guard count >= 0, count % dtype.blockSize == 0 else {
            throw QuantizationError.misalignedCount(dtype: dtype, count: count)
        }
        let status = energon_quantize_row(dtype.rawValue, source, destination, Int64(count), isa.cValue)
        precondition(status == 0, "quantizeRow: encoder for \(dtype) refused \(count)")  // invariant: checked above
    }

    /// Encodes `values` as `dtype` and returns the bytes.
    /// - Throws: As `quantizeRow(_:source:destination:count:isa:)`.
    public static func quantize(_ values: [Float], as dtype: DType, isa: ISA = .best) throws -> [UInt8] {
        guard canQuantize(dtype) else { throw QuantizationError.unsupported(dtype) }
        guard let byteCount = dtype.rowBytes(values.count) else {
            throw QuantizationError.misalignedCount(dtype: dtype, count: values.count)
        }
        var bytes = [UInt8](repeating: 0, count: byteCount)
        try values.withUnsafeBufferPointer { source in
            try bytes.withUnsafeMutableBytes { destination in
                guard let input = source.baseAddress, let output = destination.baseAddress else { return }
                try quantizeRow(dtype, source: input, destination: output, count: values.count, isa: isa)
            }
        }
        return bytes
    }

    /// Decodes `count` elements of `dtype` from `bytes`.
    /// - Precondition: `bytes.count == dtype.rowBytes(count)`.
    public static func dequantize(_ bytes: [UInt8], as dtype: DType, count: Int, isa: ISA = .best) -> [Float] {
        precondition(dtype.rowBytes(count) == bytes.count,
                     "dequantize: \(bytes.count) bytes do not hold \(count) \(dtype) elements")  // invariant: caller sizes
        guard count > 0 else { return [] }
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { source in
                // invariant: count > 0, so both buffers have storage
                dequantizeRow(dtype, source: source.baseAddress!, destination: buffer.baseAddress!, count: count, isa: isa)
            }
            initialized = count
        }
    }
}
