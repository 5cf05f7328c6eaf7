extension Tensor {
    /// Every element decoded to `Float`, row-major (a copy; for tests, synthetic models and
    /// one-off conversions, not the hot path).
    public func dequantized(isa: ISA = .best) -> [Float] {
        let count = elementCount, columns = self.columns
        guard count > 0, columns > 0 else { return [] }
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            let destination = buffer.baseAddress!  // invariant: count > 0
            for index in 0..<rows {
                Quantization.dequantizeRow(dtype, source: row(index), destination: destination + index * columns,
                                           count: columns, isa: isa)
            }
            initialized = count
        }
    }

    /// An owned tensor of `dtype` holding `values` (row-major, `shape` outermost first), each
    /// innermost row encoded with `Quantization.quantizeRow`.
    ///
    /// - Throws: `QuantizationError.shapeMismatch` when `values` does not fill `shape`,
    ///   `.unsupported` when `dtype` has no encoder, `.misalignedCount` when the innermost
    ///   dimension is not a multiple of `dtype.blockSize`.
    public convenience init(quantizing values: [Float], shape: [Int], dtype: DType, isa: ISA = .best) throws {
        var elements = 1
        for dimension in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard dimension >= 0, !overflow else {
                throw QuantizationError.shapeMismatch(shape: shape, valueCount: values.count)
            }
            elements = product
        }
        guard elements == values.count else {
            throw QuantizationError.shapeMismatch(shape: shape, valueCount: values.count)
        }
        guard Quantization.canQuantize(dtype) else { throw QuantizationError.unsupported(dtype) }
        let columns = shape.last ?? 1
        guard columns % dtype.blockSize == 0, let rowBytes = dtype.rowBytes(columns),
              Tensor.byteCount(dtype: dtype, shape: shape) != nil else {
            throw QuantizationError.misalignedCount(dtype: dtype, count: columns)
        }
        try self.init(dtype: dtype, shape: shape) { raw, _ in
            guard elements > 0 else { return }
            try values.withUnsafeBufferPointer { source in
                let input = source.baseAddress!  // invariant: elements > 0
                for index in 0..<(elements / columns) {
                    try Quantization.quantizeRow(dtype, source: input + index * columns,
                                                 destination: raw + index * rowBytes, count: columns, isa: isa)
                }
            }
        }
    }
}
