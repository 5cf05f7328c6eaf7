extension Tensor {
    /// Every element decoded to `Float`, row-major (a copy; for tests, synthetic models and
    /// one-off conversions, not the hot path).
    public func dequantized(isa: ISA = .best) -> [Float] {
        let count = elementCount, columns = self.columns
        guard count > 0, columns > 0 else { return [] }
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            let destination = buffer.baseAddress!  // invariant: count > 0
            for index in 0..<rows {
                decodeRow(index, into: destination + index * columns, isa: isa)
            }
            initialized = count
        }
    }

    /// Decodes row `index` (over the flattened outer dimensions) into `destination`, which has
    /// room for `columns` floats: an embedding lookup.
    /// - Precondition: `0 <= index < rows`.
    public func dequantizeRow(_ index: Int, into destination: UnsafeMutablePointer<Float>, isa: ISA = .best) {
        precondition(index >= 0 && index < rows, "row \(index) of \(rows)")  // invariant: callers validate token ids
        decodeRow(index, into: destination, isa: isa)
    }

    /// Decodes row `index` of a row-major tensor, or of a `MatMul.prepare`d one (its row is first
    /// gathered back into the stored block format, a few hundred bytes), so a packed weight can
    /// also serve row lookups (a tied embedding / LM head).
    private func decodeRow(_ index: Int, into destination: UnsafeMutablePointer<Float>, isa: ISA) {
        guard layout == .matMulPacked else {
            Quantization.dequantizeRow(dtype, source: row(index), destination: destination, count: columns, isa: isa)
            return
        }
        withUnsafeTemporaryAllocation(byteCount: max(rowBytes, 1), alignment: 64) { buffer in
            let bytes = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)  // invariant: non-empty allocation
            MatMul.unpackRow(self, index, into: bytes)
            Quantization.dequantizeRow(dtype, source: UnsafeRawPointer(bytes), destination: destination, count: columns, isa: isa)
        }
    }

    /// Decodes rows `range` into `destination` (room for `range.count * columns` floats), with
    /// the rows spread over `context`'s threads at `context.isa`.
    /// - Precondition: `range` lies within `0..<rows`.
    public func dequantizeRows(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>,
                               context: ComputeContext) {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "rows \(range) of \(rows)")  // invariant: callers validate
        let columns = self.columns
        // About 64 KiB of output per task keeps the split coarse for short rows.
        let grain = max(1, 16_384 / max(columns, 1))
        context.pool.parallelFor(range.count, grain: grain) { part in
            for offset in part {
                decodeRow(range.lowerBound + offset, into: destination + offset * columns, isa: context.isa)
            }
        }
    }

    /// Every element decoded to `Float`, row-major, using `context`'s threads.
    public func dequantized(context: ComputeContext) -> [Float] {
        let count = elementCount
        guard count > 0, columns > 0 else { return [] }
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            dequantizeRows(0..<rows, into: buffer.baseAddress!, context: context)  // invariant: count > 0
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
