import EnergonCore

/// Where one tensor of a safetensors file lives.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    /// The tensor's name, verbatim (`model.layers.0.self_attn.q_proj.weight`).
    public let name: String
    /// The dtype as the header spells it (`F32`, `BF16`, `I64`, `BOOL`...).
    public let typeName: String
    /// The Energon type, or `nil` for `U8`, `BOOL` and other types without a `DType`.
    public let dtype: DType?
    /// Dimensions, outermost first (safetensors is row-major like Energon).
    public let shape: [Int]
    /// Absolute byte offset of the data in the file.
    public let offset: Int
    /// Bytes of data.
    public let byteCount: Int
}

/// A safetensors file, memory-mapped and validated on open.
///
/// Layout: an 8-byte little-endian header length `N`, `N` bytes of JSON mapping each tensor name
/// to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the end of the
/// header) plus an optional `"__metadata__"` object of strings, then the data.
public final class SafetensorsFile: TensorStore, @unchecked Sendable {
    /// The path the file was opened from.
    public let path: String
    /// Tensor descriptions, in data-offset order.
    public let tensors: [SafetensorsTensorInfo]
    /// The `__metadata__` strings (for example `{"format": "pt"}`).
    public let metadata: [String: String]
    /// Absolute offset of the data section.
    public let dataOffset: Int
    /// The mapped bytes; tensors keep it alive.
    public let mapping: FileMapping
    private let index: [String: Int]

    /// The largest header accepted (the reference implementation's limit).
    public static let maximumHeaderBytes = 100_000_000

    /// Element sizes of every safetensors dtype, and the Energon type of those that have one.
    static let types: [String: (bytes: Int, dtype: DType?)] = [
        "F64": (8, .f64), "F32": (4, .f32), "F16": (2, .f16), "BF16": (2, .bf16),
        "I64": (8, .i64), "I32": (4, .i32), "I16": (2, .i16), "I8": (1, .i8),
        "U64": (8, nil), "U32": (4, nil), "U16": (2, nil), "U8": (1, nil), "BOOL": (1, nil),
        "F8_E4M3": (1, nil), "F8_E5M2": (1, nil),
    ]

    /// Maps and validates the safetensors file at `path`.
    /// - Throws: `CheckpointError` naming the file and the first problem found.
    public convenience init(path: String) throws {
        try self.init(mapping: FileMapping(path: path))
    }

    /// Parses safetensors bytes held in memory; `name` stands for the path in errors.
    public convenience init(bytes: [UInt8], name: String = "<memory>") throws {
        try self.init(mapping: FileMapping(bytes: bytes, name: name))
    }

    /// Parses and validates a mapping.
    public init(mapping: FileMapping) throws {
        self.mapping = mapping
        path = mapping.path
        var cursor = ByteCursor(mapping)
        let headerLength = try cursor.read(UInt64.self, "safetensors header length")
        guard headerLength <= UInt64(SafetensorsFile.maximumHeaderBytes) else {
            throw CheckpointError.badHeader(path: path, message: "header length \(headerLength) exceeds the \(SafetensorsFile.maximumHeaderBytes)-byte limit")
        }
        let headerBytes = try cursor.readBytes(Int(headerLength), "safetensors header")
        guard headerBytes.first == UInt8(ascii: "{") else {
            throw CheckpointError.badHeader(path: path, message: "header does not start with '{'")
        }
        let header = try JSONValue.parse(headerBytes, path: path)
        guard case let .object(members) = header else {
            throw CheckpointError.badHeader(path: path, message: "header is not a JSON object")
        }
        dataOffset = cursor.position
        let available = mapping.count - dataOffset
        var metadata: [String: String] = [:]
        var tensors: [SafetensorsTensorInfo] = []
        tensors.reserveCapacity(members.count)
        for (name, entry) in members {
            if name == "__metadata__" {
                guard case let .object(pairs) = entry else {
                    throw CheckpointError.badHeader(path: path, message: "__metadata__ is not an object")
                }
                for (key, value) in pairs {
                    guard let text = value.string else {
                        throw CheckpointError.badHeader(path: path, message: "__metadata__ value `\(key)` is not a string")
                    }
                    metadata[key] = text
                }
                continue
            }
            tensors.append(try SafetensorsFile.describe(name: name, entry: entry, path: path, dataOffset: dataOffset, available: available))
        }
        tensors.sort { ($0.offset, $0.name) < ($1.offset, $1.name) }
        for (first, second) in zip(tensors, tensors.dropFirst()) where first.offset + first.byteCount > second.offset {
            // Empty tensors occupy no bytes and cannot overlap anything.
            if first.byteCount > 0 && second.byteCount > 0 {
                throw CheckpointError.overlappingTensors(path: path, first: first.name, second: second.name)
            }
        }
        self.tensors = tensors
        self.metadata = metadata
        var index: [String: Int] = [:]
        for (position, tensor) in tensors.enumerated() { index[tensor.name] = position }
        self.index = index
    }

    static func describe(name: String, entry: JSONValue, path: String, dataOffset: Int, available: Int) throws -> SafetensorsTensorInfo {
        guard case let .object(fields) = entry else {
            throw CheckpointError.badHeader(path: path, message: "entry for tensor `\(name)` is not an object")
        }
        guard let typeName = fields["dtype"]?.string else {
            throw CheckpointError.badHeader(path: path, message: "tensor `\(name)` has no string `dtype`")
        }
        guard let type = types[typeName] else {
            throw CheckpointError.unknownTensorType(path: path, tensor: name, type: typeName)
        }
        guard let dimensions = fields["shape"]?.array else {
            throw CheckpointError.badHeader(path: path, message: "tensor `\(name)` has no `shape` array")
        }
        var shape: [Int] = []
        var elements = 1
        for dimension in dimensions {
            guard case let .int(extent) = dimension, extent >= 0 else {
                throw CheckpointError.badTensorShape(path: path, tensor: name, shape: shape, reason: "dimension \(dimension) is not a non-negative integer")
            }
            shape.append(extent)
            let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
            guard !overflow else {
                throw CheckpointError.badTensorShape(path: path, tensor: name, shape: shape, reason: "element count overflows")
            }
            elements = product
        }
        let (expectedBytes, overflow) = elements.multipliedReportingOverflow(by: type.bytes)
        guard !overflow else {
            throw CheckpointError.badTensorShape(path: path, tensor: name, shape: shape, reason: "byte count overflows")
        }
        guard let offsets = fields["data_offsets"]?.array, offsets.count == 2,
              case let .int(begin) = offsets[0], case let .int(end) = offsets[1], begin >= 0, end >= begin else {
            throw CheckpointError.badHeader(path: path, message: "tensor `\(name)` needs `data_offsets` [begin, end] with 0 <= begin <= end")
        }
        guard end - begin == expectedBytes else {
            throw CheckpointError.badTensorShape(path: path, tensor: name, shape: shape,
                                                 reason: "data_offsets span \(end - begin) bytes, but \(typeName) \(shape) needs \(expectedBytes)")
        }
        guard end <= available else {
            throw CheckpointError.tensorDataOutOfRange(path: path, tensor: name, offset: begin, byteCount: end - begin, available: available)
        }
        return SafetensorsTensorInfo(name: name, typeName: typeName, dtype: type.dtype, shape: shape,
                                     offset: dataOffset + begin, byteCount: expectedBytes)
    }

    /// The description of the tensor called `name`, if present.
    public func tensorInfo(named name: String) -> SafetensorsTensorInfo? { index[name].map { tensors[$0] } }

    /// Every tensor, in data order.
    public var storedTensors: [StoredTensorInfo] { tensors.map(stored) }

    /// The description of `name`, if stored.
    public func storedTensor(named name: String) -> StoredTensorInfo? { tensorInfo(named: name).map(stored) }

    private func stored(_ info: SafetensorsTensorInfo) -> StoredTensorInfo {
        StoredTensorInfo(name: info.name, dtype: info.dtype, typeName: info.typeName, shape: info.shape, byteCount: info.byteCount, file: path)
    }

    /// Drops the file pages from the resident set (`FileMapping.releaseResidentPages`).
    public func releaseResidentPages() { mapping.releaseResidentPages() }

    /// A zero-copy tensor over `name`'s mapped data (the data may be only 8-byte aligned, or less:
    /// safetensors does not align tensors).
    /// - Throws: `.missingTensor`, or `.unsupported` for `U8`/`BOOL`/`F8` and other types without a `DType`.
    public func tensor(named name: String) throws -> Tensor {
        guard let info = tensorInfo(named: name) else { throw CheckpointError.missingTensor(path: path, name: name) }
        guard let dtype = info.dtype else {
            throw CheckpointError.unsupported(path: path, message: "tensor `\(name)` has type \(info.typeName), which Energon cannot compute with; use rawBytes(of:)")
        }
        return Tensor(dtype: dtype, shape: info.shape, data: mapping.base + info.offset, byteCount: info.byteCount, owner: mapping)
    }

    /// The raw bytes of `name`, whatever its type (valid while this file is alive).
    public func rawBytes(of name: String) throws -> UnsafeRawBufferPointer {
        guard let info = tensorInfo(named: name) else { throw CheckpointError.missingTensor(path: path, name: name) }
        return UnsafeRawBufferPointer(start: mapping.base + info.offset, count: info.byteCount)
    }
}
