import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// Loading one rank's slice of a weight given as an explicit range (the uneven splits of
/// `TensorSplit`). A range that is an even `ShardSpec` part goes through `WeightSource`'s own
/// sharding (which, for Hugging Face q/k weights, permutes only the rank's rows); any other
/// range loads the tensor and cuts it here: a zero-copy row view of a memory-mapped GGUF
/// tensor, or a copy (so a converted Hugging Face tensor is not kept whole by every rank).
extension WeightSource {
    /// The element format `name` (relative to the prefix) is stored in, if the checkpoint has it.
    func storedFormat(_ name: String) -> DType? {
        let full = prefix + name
        let candidates = [full] + (family.map { TensorNameMap.huggingFaceCandidates(forGGUF: full, family: $0) } ?? [])
        for candidate in candidates {
            if let stored = store.storedTensor(named: candidate) { return stored.dtype }
        }
        return nil
    }

    /// Rows `rows` of `name`, a tensor of full shape `shape` (outermost first).
    func tensor(_ name: String, shape: [Int], rows: Range<Int>) throws -> Tensor {
        let total = shape.first ?? 1
        if rows == 0..<total { return try tensor(name, shape: shape) }
        if let even = Self.evenPart(rows, of: total) { return try tensor(name, shape: shape, shard: ShardSpec(dimension: 0, rank: even.rank, count: even.count)) }
        let whole = try tensor(name, shape: shape)
        try checkRange(rows, total: total, name: name)
        let view = whole.slicingRows(rows)
        return format == .gguf ? view : Self.copy(view)
    }

    /// Columns `columns` (innermost dimension) of every row of `name`, a 2-D tensor of full shape
    /// `shape`; the range must hold whole blocks of the stored format.
    func tensor(_ name: String, shape: [Int], columns: Range<Int>) throws -> Tensor {
        let total = shape.last ?? 1
        if columns == 0..<total { return try tensor(name, shape: shape) }
        if let even = Self.evenPart(columns, of: total), (columns.count % (storedFormat(name)?.blockSize ?? 1)) == 0 {
            return try tensor(name, shape: shape, shard: ShardSpec(dimension: shape.count - 1, rank: even.rank, count: even.count))
        }
        let whole = try tensor(name, shape: shape)
        try checkRange(columns, total: total, name: name)
        let blockSize = whole.dtype.blockSize
        guard columns.lowerBound % blockSize == 0, columns.count % blockSize == 0 else {
            throw CheckpointError.badShard(path: store.path, tensor: prefix + name,
                                           message: "columns \(columns) are not whole \(whole.dtype.name) blocks of \(blockSize)")
        }
        let offset = columns.lowerBound / blockSize * whole.dtype.blockBytes
        let partBytes = columns.count / blockSize * whole.dtype.blockBytes
        var newShape = whole.shape
        newShape[newShape.count - 1] = columns.count
        return Tensor(dtype: whole.dtype, shape: newShape) { output, _ in
            for row in 0..<whole.rows {
                (output + row * partBytes).copyMemory(from: whole.row(row) + offset, byteCount: partBytes)
            }
        }
    }

    /// Elements `range` of the 1-D tensor `name` (a bias) of `count` elements, as floats.
    func floats(_ name: String, count: Int, range: Range<Int>) throws -> [Float] {
        let values = try tensor(name, shape: [count]).dequantized()
        try checkRange(range, total: count, name: name)
        return Array(values[range])
    }

    private func checkRange(_ range: Range<Int>, total: Int, name: String) throws {
        guard range.lowerBound >= 0, range.upperBound <= total, !range.isEmpty else {
            throw CheckpointError.badShard(path: store.path, tensor: prefix + name, message: "range \(range) is not a non-empty part of 0..<\(total)")
        }
    }

    /// `(rank, count)` when `range` is part `rank` of `count` equal parts of `0..<total`.
    private static func evenPart(_ range: Range<Int>, of total: Int) -> (rank: Int, count: Int)? {
        guard !range.isEmpty, total % range.count == 0, range.lowerBound % range.count == 0 else { return nil }
        return (range.lowerBound / range.count, total / range.count)
    }

    private static func copy(_ view: Tensor) -> Tensor {
        Tensor(dtype: view.dtype, shape: view.shape) { output, _ in output.copyMemory(from: view.data, byteCount: view.byteCount) }
    }
}
