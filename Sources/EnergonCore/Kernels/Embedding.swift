/// Why an embedding lookup failed.
public enum EmbeddingError: Error, CustomStringConvertible, Equatable {
    /// A token id (first value) outside `0 ..< vocabulary` (second value).
    case tokenOutOfRange(Int, Int)
    /// The table is not two-dimensional `[vocabulary, hidden]`.
    case tableNotAMatrix(shape: [Int])

    /// A message naming the bad id or shape.
    public var description: String {
        switch self {
        case .tokenOutOfRange(let id, let vocabulary):
            "token id \(id) is outside the embedding table's vocabulary of \(vocabulary) rows (valid ids: 0..<\(vocabulary))"
        case .tableNotAMatrix(let shape):
            "an embedding table must have shape [vocabulary, hidden], got \(shape)"
        }
    }
}

/// Token embedding lookup.
public enum Embedding {
    /// Rows of output below which splitting over the pool is not worth a dispatch.
    static let parallelElements = 1 << 15

    /// `output[t] = table[ids[t]]`, dequantized to f32.
    ///
    /// The table may be any `DType` (F32, F16, BF16 and every block format), row-major or
    /// `MatMul.prepare`d (a tied LM head's copy): each selected row is decoded with
    /// `Tensor.dequantizeRow`, so a quantized vocabulary is never expanded as a whole. Every id is
    /// checked before anything is written.
    /// - Parameters:
    ///   - table: `[vocabulary, hidden]`.
    ///   - ids: `count` token ids.
    ///   - count: tokens to look up.
    ///   - output: `[count, hidden]` floats.
    ///   - context: optional ISA level and threads; `nil` runs on the calling thread at `ISA.best`.
    /// - Throws: `EmbeddingError.tokenOutOfRange(id, vocabulary)` for an id outside the table,
    ///   `EmbeddingError.tableNotAMatrix` for a table that is not 2-D.
    public static func lookup(table: Tensor, ids: UnsafePointer<Int32>, count: Int, output: UnsafeMutablePointer<Float>,
                              context: ComputeContext? = nil) throws {
        guard table.shape.count == 2 else { throw EmbeddingError.tableNotAMatrix(shape: table.shape) }
        let vocabulary = table.shape[0], hidden = table.shape[1]
        for index in 0..<count where ids[index] < 0 || Int(ids[index]) >= vocabulary {
            throw EmbeddingError.tokenOutOfRange(Int(ids[index]), vocabulary)
        }
        let isa = context?.isa ?? .best
        let body = { (range: Range<Int>) in
            for token in range {
                table.dequantizeRow(Int(ids[token]), into: output + token * hidden, isa: isa)
            }
        }
        if let context, count > 1, count * hidden >= parallelElements {
            context.pool.parallelFor(count, body)
        } else {
            body(0..<count)
        }
    }
}
