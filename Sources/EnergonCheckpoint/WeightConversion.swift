import EnergonCore

/// The tensor conversions `WeightSource` applies to Hugging Face tensors, and shard slicing.
enum WeightConversion {
    /// Applies `conversion`; `isSharded` says the result is already the rank's slice (the q/k
    /// permutation gathers only the rank's rows).
    static func apply(_ conversion: WeightSource.Conversion, to tensor: Tensor, name: String, path: String,
                      shard: ShardSpec?) throws -> (tensor: Tensor, isSharded: Bool) {
        switch conversion {
        case .none:
            return (tensor, false)
        case let .rotaryPermute(heads):
            return try permuteRows(tensor, heads: heads, name: name, path: path, shard: shard)
        case .addOne:
            return (try addOne(tensor, name: name, path: path), false)
        case .transpose:
            return (try transpose(tensor, name: name, path: path), false)
        }
    }

    /// llama.cpp's `LlamaModel.permute`: within each head of `D` rows, GGUF row `2i + j` is HF row
    /// `j * D/2 + i` (HF rotates the two halves of a head; GGUF rotates adjacent pairs).
    static func permuteRows(_ tensor: Tensor, heads: Int, name: String, path: String,
                            shard: ShardSpec?) throws -> (tensor: Tensor, isSharded: Bool) {
        let rows = tensor.shape.first ?? 0
        guard heads > 0, rows % heads == 0, (rows / heads) % 2 == 0 else {
            throw CheckpointError.badTensorShape(path: path, tensor: name, shape: tensor.shape,
                                                 reason: "\(rows) rows do not split into \(heads) heads of an even width")
        }
        let headRows = rows / heads
        let half = headRows / 2
        var range = 0..<rows
        if let shard, shard.dimension == 0 {
            range = try rowRange(rows: rows, shard: shard, name: name, path: path)
        }
        let rowBytes = tensor.byteCount / max(rows, 1)  // rows may be 0 in a safetensors file
        var shape = tensor.shape
        shape[0] = range.count
        let result = Tensor(dtype: tensor.dtype, shape: shape) { output, _ in
            for (index, row) in range.enumerated() {
                let head = row / headRows
                let within = row % headRows
                let source = head * headRows + (within % 2) * half + within / 2
                (output + index * rowBytes).copyMemory(from: tensor.data + source * rowBytes, byteCount: rowBytes)
            }
        }
        return (result, shard?.dimension == 0)
    }

    /// `1 + w` in F32 (Gemma's RMSNorm convention).
    static func addOne(_ tensor: Tensor, name: String, path: String) throws -> Tensor {
        let values = try floats(tensor, name: name, path: path)
        return Tensor(shape: tensor.shape, floats: values.map { $0 + 1 })
    }

    /// `[in, out]` -> `[out, in]`, for plain (non-block) types.
    static func transpose(_ tensor: Tensor, name: String, path: String) throws -> Tensor {
        guard tensor.dtype.blockSize == 1, tensor.shape.count == 2 else {
            throw CheckpointError.unsupported(path: path, message: "cannot transpose \(tensor.dtype.name) tensor \(name) of shape \(tensor.shape)")
        }
        let (inner, outer) = (tensor.shape[0], tensor.shape[1])
        let width = tensor.dtype.blockBytes
        return Tensor(dtype: tensor.dtype, shape: [outer, inner]) { output, _ in
            for row in 0..<inner {
                for column in 0..<outer {
                    (output + (column * inner + row) * width).copyMemory(from: tensor.data + (row * outer + column) * width, byteCount: width)
                }
            }
        }
    }

    /// The values of an F32, F16 or BF16 tensor as `Float`s.
    static func floats(_ tensor: Tensor, name: String, path: String) throws -> [Float] {
        let count = tensor.elementCount
        switch tensor.dtype {
        case .f32: return (0..<count).map { tensor.data.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        case .f16: return (0..<count).map { Float(tensor.data.loadUnaligned(fromByteOffset: $0 * 2, as: Float16.self)) }
        case .bf16: return (0..<count).map { Float(bitPattern: UInt32(tensor.data.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) << 16) }
        default:
            throw CheckpointError.unsupported(path: path, message: "tensor \(name) has type \(tensor.dtype.name); a float type is needed here")
        }
    }

    static func rowRange(rows: Int, shard: ShardSpec, name: String, path: String) throws -> Range<Int> {
        try validate(shard, rank: 1, name: name, path: path)
        guard rows % shard.count == 0 else {
            throw CheckpointError.badShard(path: path, tensor: name, message: "dimension 0 of length \(rows) does not split into \(shard.count) equal parts")
        }
        let part = rows / shard.count
        return shard.rank * part..<(shard.rank + 1) * part
    }

    static func validate(_ shard: ShardSpec, rank dimensions: Int, name: String, path: String) throws {
        guard shard.count > 0, (0..<shard.count).contains(shard.rank) else {
            throw CheckpointError.badShard(path: path, tensor: name, message: "rank \(shard.rank) is not in 0..<\(shard.count)")
        }
        guard (0..<max(dimensions, 1)).contains(shard.dimension) else {
            throw CheckpointError.badShard(path: path, tensor: name, message: "dimension \(shard.dimension) does not exist in a \(dimensions)-D tensor")
        }
    }

    /// Rank `shard.rank`'s part of `tensor`: a zero-copy row range for dimension 0, a copy of whole
    /// blocks of every row for the innermost dimension.
    static func slice(_ tensor: Tensor, shard: ShardSpec, name: String, path: String) throws -> Tensor {
        let shape = tensor.shape
        try validate(shard, rank: shape.count, name: name, path: path)
        let length = shape.isEmpty ? 1 : shape[shard.dimension]
        guard length % shard.count == 0 else {
            throw CheckpointError.badShard(path: path, tensor: name, message: "dimension \(shard.dimension) of length \(length) does not split into \(shard.count) equal parts")
        }
        let part = length / shard.count
        if shard.dimension == shape.count - 1 {
            // Innermost: each row keeps columns [rank * part, (rank + 1) * part), in whole blocks.
            let blockSize = tensor.dtype.blockSize
            guard part % blockSize == 0 else {
                throw CheckpointError.badShard(path: path, tensor: name,
                                               message: "a part of \(part) columns is not a whole number of \(tensor.dtype.name) blocks of \(blockSize)")
            }
            let partBytes = part / blockSize * tensor.dtype.blockBytes
            let rows = tensor.rows
            var newShape = shape
            newShape[shard.dimension] = part
            if rows == 1 {
                return Tensor(dtype: tensor.dtype, shape: newShape, data: tensor.data + shard.rank * partBytes, byteCount: partBytes, owner: tensor)
            }
            return Tensor(dtype: tensor.dtype, shape: newShape) { output, _ in
                for row in 0..<rows {
                    (output + row * partBytes).copyMemory(from: tensor.row(row) + shard.rank * partBytes, byteCount: partBytes)
                }
            }
        }
        guard shard.dimension == 0 else {
            throw CheckpointError.badShard(path: path, tensor: name, message: "only the outermost or innermost dimension can be split")
        }
        return tensor.slicingRows(shard.rank * part..<(shard.rank + 1) * part)
    }
}
