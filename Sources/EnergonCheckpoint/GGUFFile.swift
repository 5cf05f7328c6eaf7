import EnergonCore

/// Where one tensor of a GGUF file lives and what it holds.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// The tensor's name, verbatim (`blk.0.attn_q.weight`).
    public let name: String
    /// Element type or block format.
    public let dtype: DType
    /// Dimensions outermost first: the reverse of GGUF's `ne[]`, so a linear weight is `[out, in]`.
    public let shape: [Int]
    /// Absolute byte offset of the data in the file.
    public let offset: Int
    /// Bytes of data.
    public let byteCount: Int

    /// Memberwise initializer.
    public init(name: String, dtype: DType, shape: [Int], offset: Int, byteCount: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.offset = offset
        self.byteCount = byteCount
    }
}

/// A GGUF (version 2 or 3) file, memory-mapped and fully validated on open.
///
/// Opening parses the header, every metadata value and every tensor description, and checks each
/// count, length, offset and size against the file size with overflow-checked arithmetic before
/// using it, so a hostile or damaged file produces a `CheckpointError`, never a crash. Tensor data
/// is not read: `tensor(named:)` returns a view over the mapping.
///
/// Layout (little-endian): magic `GGUF`, version (u32), tensor count (u64), metadata count (u64),
/// the metadata key/value pairs, the tensor infos (name, dimension count, `ne[]`, type, offset
/// relative to the data section), padding to `general.alignment` (default 32), the data section.
public final class GGUFFile: @unchecked Sendable {
    /// The path the file was opened from.
    public let path: String
    /// The GGUF version (2 or 3).
    public let version: Int
    /// Every metadata value, by key.
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataOrder: [String]
    /// Tensor descriptions in file order.
    public let tensors: [GGUFTensorInfo]
    /// Alignment of the data section and of every tensor's data (`general.alignment`, default 32).
    public let alignment: Int
    /// Absolute offset of the data section.
    public let dataOffset: Int
    /// The mapped bytes; tensors returned by `tensor(named:)` keep it alive.
    public let mapping: FileMapping
    private let tensorIndex: [String: Int]

    /// GGUF's magic, "GGUF" read as a little-endian u32.
    static let magic: UInt32 = 0x4655_4747
    /// The default alignment when `general.alignment` is absent.
    public static let defaultAlignment = 32
    /// ggml's limit on the number of dimensions.
    public static let maximumDimensions = 4
    /// Nesting limit for metadata arrays (real files use one level; the limit bounds recursion).
    static let maximumNesting = 8
    /// The most entries reserved before parsing them (a 262k-token vocabulary fits; a hostile
    /// count cannot make the reader allocate gigabytes before the file runs out).
    static let reservationLimit = 1 << 20

    /// Maps and validates the GGUF file at `path`.
    /// - Throws: `CheckpointError` naming the file and the first problem found.
    public convenience init(path: String) throws {
        try self.init(mapping: FileMapping(path: path))
    }

    /// Parses and validates GGUF bytes held in memory; `name` stands for the path in errors.
    public convenience init(bytes: [UInt8], name: String = "<memory>") throws {
        try self.init(mapping: FileMapping(bytes: bytes, name: name))
    }

    /// Parses and validates a mapping.
    public init(mapping: FileMapping) throws {
        self.mapping = mapping
        path = mapping.path
        var cursor = ByteCursor(mapping)
        if mapping.count < 4 {
            throw CheckpointError.truncated(path: path, offset: 0, what: "GGUF magic needs 4 bytes, \(mapping.count) remain")
        }
        let magic = try cursor.read(UInt32.self, "magic")
        guard magic == GGUFFile.magic else {
            throw CheckpointError.badMagic(path: path, found: Array(UnsafeRawBufferPointer(start: mapping.base, count: 4)))
        }
        let rawVersion = try cursor.read(UInt32.self, "version")
        guard rawVersion == 2 || rawVersion == 3 else {
            throw CheckpointError.unsupportedVersion(path: path, version: Int(rawVersion))
        }
        version = Int(rawVersion)
        let tensorCount = try cursor.read(UInt64.self, "tensor count")
        let metadataCount = try cursor.read(UInt64.self, "metadata count")
        // The smallest key/value pair is 8 (key length) + 4 (type) + 1 (u8 value) bytes; the
        // smallest tensor info 8 + 4 + 4 + 8 bytes: counts that cannot fit are rejected before
        // anything is reserved.
        try GGUFFile.checkCount(metadataCount, minimumBytes: 13, cursor: cursor, what: "metadata key/value pairs")
        try GGUFFile.checkCount(tensorCount, minimumBytes: 24, cursor: cursor, what: "tensor infos")

        var metadata: [String: GGUFValue] = [:]
        var order: [String] = []
        // Counts are bounded by the file size, but a multi-GB file could still claim hundreds of
        // millions of entries: reserve at most `reservationLimit` up front and grow past it as entries parse.
        metadata.reserveCapacity(min(Int(metadataCount), GGUFFile.reservationLimit))
        order.reserveCapacity(min(Int(metadataCount), GGUFFile.reservationLimit))
        for _ in 0..<Int(metadataCount) {
            let key = try GGUFFile.readString(&cursor, "metadata key")
            let type = try cursor.read(UInt32.self, "type of `\(key)`")
            let value = try GGUFFile.readValue(&cursor, type: type, key: key, depth: 0)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw CheckpointError.duplicateName(path: path, name: key)
            }
            order.append(key)
        }
        self.metadata = metadata
        metadataOrder = order

        var alignment = GGUFFile.defaultAlignment
        if let value = metadata["general.alignment"] {
            guard case let .uint32(raw) = value, raw > 0, raw.nonzeroBitCount == 1 else {
                throw CheckpointError.badKey(path: path, key: "general.alignment",
                                             message: "must be a power-of-two u32, found \(value.summary())")
            }
            alignment = Int(raw)
        }
        self.alignment = alignment

        var infos: [(name: String, dtype: DType, shape: [Int], relative: Int, bytes: Int)] = []
        infos.reserveCapacity(min(Int(tensorCount), GGUFFile.reservationLimit))
        var index: [String: Int] = [:]
        index.reserveCapacity(min(Int(tensorCount), GGUFFile.reservationLimit))
        for position in 0..<Int(tensorCount) {
            let name = try GGUFFile.readString(&cursor, "tensor name")
            let dimensionCount = try cursor.read(UInt32.self, "dimension count of `\(name)`")
            guard dimensionCount <= GGUFFile.maximumDimensions else {
                throw CheckpointError.badTensorShape(path: path, tensor: name, shape: [],
                                                     reason: "\(dimensionCount) dimensions, at most \(GGUFFile.maximumDimensions) allowed")
            }
            var extents: [Int] = []
            for _ in 0..<Int(dimensionCount) {
                let extent = try cursor.read(UInt64.self, "dimensions of `\(name)`")
                guard let value = Int(exactly: extent), value > 0 else {
                    throw CheckpointError.badTensorShape(path: path, tensor: name, shape: extents + [Int(truncatingIfNeeded: extent)],
                                                         reason: "every dimension must be positive and fit in Int")
                }
                extents.append(value)
            }
            let shape = Array(extents.reversed())
            let typeID = try cursor.read(UInt32.self, "type of `\(name)`")
            guard let dtype = DType(rawValue: typeID) else {
                throw CheckpointError.unknownTensorType(path: path, tensor: name, type: "GGUF type id \(typeID)")
            }
            let relative = try cursor.read(UInt64.self, "data offset of `\(name)`")
            guard let byteCount = Tensor.byteCount(dtype: dtype, shape: shape) else {
                let reason = (shape.last ?? 1) % dtype.blockSize != 0
                    ? "row length \(shape.last ?? 1) is not a multiple of the \(dtype.name) block size \(dtype.blockSize)"
                    : "size overflows"
                throw CheckpointError.badTensorShape(path: path, tensor: name, shape: shape, reason: reason)
            }
            guard let relativeOffset = Int(exactly: relative) else {
                throw CheckpointError.tensorDataOutOfRange(path: path, tensor: name, offset: Int.max, byteCount: byteCount, available: 0)
            }
            guard relativeOffset % alignment == 0 else {
                throw CheckpointError.misalignedTensor(path: path, tensor: name, offset: relativeOffset, alignment: alignment)
            }
            guard index.updateValue(position, forKey: name) == nil else {
                throw CheckpointError.duplicateName(path: path, name: name)
            }
            infos.append((name, dtype, shape, relativeOffset, byteCount))
        }

        // The data section starts at the next multiple of the alignment after the tensor infos.
        let (padded, overflow) = cursor.position.addingReportingOverflow(alignment - 1)
        // invariant: position <= file size and alignment is at most 2^31, so this cannot overflow.
        precondition(!overflow)
        let dataStart = padded / alignment * alignment
        dataOffset = dataStart
        let available = max(0, mapping.count - dataStart)
        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(infos.count)
        for info in infos {
            let (end, endOverflow) = info.relative.addingReportingOverflow(info.bytes)
            guard !endOverflow, end <= available else {
                throw CheckpointError.tensorDataOutOfRange(path: path, tensor: info.name, offset: info.relative,
                                                           byteCount: info.bytes, available: available)
            }
            tensors.append(GGUFTensorInfo(name: info.name, dtype: info.dtype, shape: info.shape,
                                          offset: dataStart + info.relative, byteCount: info.bytes))
        }
        // Overlap check over tensors sorted by offset: each must end before the next begins.
        let sorted = tensors.sorted { $0.offset < $1.offset }
        for (first, second) in zip(sorted, sorted.dropFirst()) where first.offset + first.byteCount > second.offset {
            throw CheckpointError.overlappingTensors(path: path, first: first.name, second: second.name)
        }
        self.tensors = tensors
        tensorIndex = index
    }

    /// The architecture name (`general.architecture`), e.g. `llama`.
    public var architecture: String? { metadata["general.architecture"]?.string }

    /// The description of the tensor called `name`, if present.
    public func tensorInfo(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// A zero-copy tensor over the mapped data of `name`; it keeps the mapping alive.
    /// - Throws: `CheckpointError.missingTensor` if there is no such tensor.
    public func tensor(named name: String) throws -> Tensor {
        guard let info = tensorInfo(named: name) else { throw CheckpointError.missingTensor(path: path, name: name) }
        return tensor(info)
    }

    /// A zero-copy tensor over the data `info` (one of `tensors`) describes.
    public func tensor(_ info: GGUFTensorInfo) -> Tensor {
        Tensor(dtype: info.dtype, shape: info.shape, data: mapping.base + info.offset, byteCount: info.byteCount, owner: mapping)
    }

    /// Total bytes of tensor data.
    public var totalTensorBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }

    // MARK: - Parsing helpers

    static func checkCount(_ count: UInt64, minimumBytes: Int, cursor: ByteCursor, what: String) throws {
        let capacity = UInt64(cursor.remaining / minimumBytes)
        guard count <= capacity else {
            throw CheckpointError.truncated(path: cursor.path, offset: cursor.position,
                                            what: "\(count) \(what) need at least \(minimumBytes) bytes each, \(cursor.remaining) remain")
        }
    }

    static func readString(_ cursor: inout ByteCursor, _ what: @autoclosure () -> String) throws -> String {
        let length = try cursor.read(UInt64.self, "length of \(what())")
        guard let count = Int(exactly: length), count <= cursor.remaining else {
            throw CheckpointError.truncated(path: cursor.path, offset: cursor.position - 8,
                                            what: "\(what()) of \(length) bytes, \(cursor.remaining) remain")
        }
        let bytes = try cursor.readBytes(count, what())
        // GGUF strings are UTF-8; an invalid sequence is repaired (U+FFFD) rather than rejected,
        // as llama.cpp does not validate them either.
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Bytes of one element of a fixed-size type, or the minimum bytes of a variable-size one.
    static func minimumBytes(ofType type: UInt32) -> Int? {
        switch type {
        case 0, 1, 7: 1
        case 2, 3: 2
        case 4, 5, 6: 4
        case 10, 11, 12: 8
        case 8: 8       // length
        case 9: 12      // element type + count
        default: nil
        }
    }

    static func readValue(_ cursor: inout ByteCursor, type: UInt32, key: String, depth: Int) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try cursor.read(UInt8.self, "value of `\(key)`"))
        case 1: return .int8(try cursor.read(Int8.self, "value of `\(key)`"))
        case 2: return .uint16(try cursor.read(UInt16.self, "value of `\(key)`"))
        case 3: return .int16(try cursor.read(Int16.self, "value of `\(key)`"))
        case 4: return .uint32(try cursor.read(UInt32.self, "value of `\(key)`"))
        case 5: return .int32(try cursor.read(Int32.self, "value of `\(key)`"))
        case 6: return .float32(Float(bitPattern: try cursor.read(UInt32.self, "value of `\(key)`")))
        case 7:
            let offset = cursor.position
            let raw = try cursor.read(UInt8.self, "value of `\(key)`")
            guard raw <= 1 else {
                throw CheckpointError.malformed(path: cursor.path, offset: offset, what: "boolean `\(key)` holds \(raw), not 0 or 1")
            }
            return .bool(raw == 1)
        case 8: return .string(try readString(&cursor, "string value of `\(key)`"))
        case 9: return try readArray(&cursor, key: key, depth: depth)
        case 10: return .uint64(try cursor.read(UInt64.self, "value of `\(key)`"))
        case 11: return .int64(try cursor.read(Int64.self, "value of `\(key)`"))
        case 12: return .float64(Double(bitPattern: try cursor.read(UInt64.self, "value of `\(key)`")))
        default: throw CheckpointError.unknownValueType(path: cursor.path, key: key, typeID: type)
        }
    }

    static func readArray(_ cursor: inout ByteCursor, key: String, depth: Int) throws -> GGUFValue {
        let headerOffset = cursor.position
        guard depth < maximumNesting else {
            throw CheckpointError.malformed(path: cursor.path, offset: headerOffset, what: "arrays in `\(key)` nest deeper than \(maximumNesting) levels")
        }
        let elementType = try cursor.read(UInt32.self, "array element type of `\(key)`")
        let count64 = try cursor.read(UInt64.self, "array length of `\(key)`")
        guard let minimum = minimumBytes(ofType: elementType) else {
            throw CheckpointError.unknownValueType(path: cursor.path, key: key, typeID: elementType)
        }
        try checkCount(count64, minimumBytes: minimum, cursor: cursor, what: "elements of array `\(key)`")
        let count = Int(count64)
        var elements: [GGUFValue] = []
        elements.reserveCapacity(min(count, reservationLimit))
        // Fast paths for the big arrays real files carry (vocabularies, scores, token types):
        // one bounds check for the whole run of fixed-size elements.
        switch elementType {
        case 6:
            let bytes = try cursor.readBytes(count * 4, "array `\(key)`")
            for index in 0..<count {
                elements.append(.float32(Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))))
            }
        case 5:
            let bytes = try cursor.readBytes(count * 4, "array `\(key)`")
            for index in 0..<count {
                elements.append(.int32(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 4, as: Int32.self))))
            }
        case 4:
            let bytes = try cursor.readBytes(count * 4, "array `\(key)`")
            for index in 0..<count {
                elements.append(.uint32(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self))))
            }
        case 9:
            for _ in 0..<count { elements.append(try readArray(&cursor, key: key, depth: depth + 1)) }
        default:
            for _ in 0..<count { elements.append(try readValue(&cursor, type: elementType, key: key, depth: depth + 1)) }
        }
        return .array(elements)
    }
}
