#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import EnergonCore

/// `write(2)`, named apart from the writer's own `write(to:)`.
private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, buffer, count)
}

/// Writes GGUF (version 3 by default) files: metadata in insertion order, then tensors of any
/// dtype from a `Tensor` or from raw bytes, each padded to the alignment. What it writes,
/// `GGUFFile` reads back exactly (and so do llama.cpp and the `gguf` Python package).
public struct GGUFWriter {
    /// One tensor's data: a tensor (kept alive until written) or bytes the writer owns.
    enum Payload {
        case tensor(Tensor)
        case bytes([UInt8])
    }

    struct Entry {
        let name: String
        let dtype: DType
        let shape: [Int]
        let byteCount: Int
        let payload: Payload
    }

    /// Alignment of the data section and of each tensor (written as `general.alignment` unless 32).
    public let alignment: Int
    /// The GGUF version written (2 or 3; they share a layout).
    public let version: Int
    private(set) var keys: [String] = []
    private(set) var values: [String: GGUFValue] = [:]
    private(set) var entries: [Entry] = []
    private var tensorNames: Set<String> = []

    /// A writer with no metadata and no tensors.
    /// - Parameters:
    ///   - alignment: a power of two; 32 is GGUF's default.
    ///   - version: 2 or 3.
    public init(alignment: Int = 32, version: Int = 3) {
        precondition(alignment > 0 && alignment.nonzeroBitCount == 1 && alignment <= 1 << 30, "alignment must be a power of two")  // invariant: programmer input
        precondition(version == 2 || version == 3, "GGUF version must be 2 or 3")  // invariant: programmer input
        self.alignment = alignment
        self.version = version
        if alignment != GGUFFile.defaultAlignment {
            set("general.alignment", .uint32(UInt32(alignment)))
        }
    }

    /// Sets `key` to `value`; a new key goes last, an existing one keeps its place.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if values.updateValue(value, forKey: key) == nil { keys.append(key) }
    }

    /// Adds `tensor` (any dtype) under `name`.
    /// - Throws: `CheckpointError.duplicateName` if `name` was added before.
    public mutating func addTensor(name: String, tensor: Tensor) throws {
        try add(Entry(name: name, dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.byteCount, payload: .tensor(tensor)))
    }

    /// Adds a tensor given as raw bytes in the layout of `dtype` (whole blocks per row).
    /// - Throws: `CheckpointError.badTensorShape` if `bytes` does not match `shape` and `dtype`,
    ///   `CheckpointError.duplicateName` if `name` was added before.
    public mutating func addTensor(name: String, dtype: DType, shape: [Int], bytes: [UInt8]) throws {
        guard shape.count <= GGUFFile.maximumDimensions, shape.allSatisfy({ $0 > 0 }),
              let expected = Tensor.byteCount(dtype: dtype, shape: shape) else {
            throw CheckpointError.badTensorShape(path: "<GGUFWriter>", tensor: name, shape: shape,
                                                 reason: "not a valid \(dtype.name) shape")
        }
        guard expected == bytes.count else {
            throw CheckpointError.badTensorShape(path: "<GGUFWriter>", tensor: name, shape: shape,
                                                 reason: "\(bytes.count) bytes given, \(expected) needed")
        }
        try add(Entry(name: name, dtype: dtype, shape: shape, byteCount: bytes.count, payload: .bytes(bytes)))
    }

    /// Adds an F32 tensor holding `values`.
    public mutating func addTensor(name: String, shape: [Int], floats values: [Float]) throws {
        let bytes = values.withUnsafeBytes { Array($0) }
        try addTensor(name: name, dtype: .f32, shape: shape, bytes: bytes)
    }

    private mutating func add(_ entry: Entry) throws {
        guard entry.shape.count <= GGUFFile.maximumDimensions, entry.shape.allSatisfy({ $0 > 0 }) else {
            throw CheckpointError.badTensorShape(path: "<GGUFWriter>", tensor: entry.name, shape: entry.shape,
                                                 reason: "GGUF tensors have 1 to 4 positive dimensions")
        }
        guard tensorNames.insert(entry.name).inserted else {
            throw CheckpointError.duplicateName(path: "<GGUFWriter>", name: entry.name)
        }
        entries.append(entry)
    }

    /// The header: everything before the data section, padded to the alignment.
    /// - Throws: `CheckpointError.malformed` for an array whose elements differ in type.
    public func header() throws -> [UInt8] {
        var out: [UInt8] = []
        append(&out, GGUFFile.magic)
        append(&out, UInt32(version))
        append(&out, UInt64(entries.count))
        append(&out, UInt64(keys.count))
        for key in keys {
            // invariant: every key in `keys` has a value.
            let value = values[key]!
            appendString(&out, key)
            append(&out, value.typeID)
            try appendValue(&out, value, key: key)
        }
        var relative = 0
        for entry in entries {
            appendString(&out, entry.name)
            append(&out, UInt32(entry.shape.count))
            for extent in entry.shape.reversed() { append(&out, UInt64(extent)) }
            append(&out, entry.dtype.rawValue)
            append(&out, UInt64(relative))
            relative = padded(relative + entry.byteCount)
        }
        out.append(contentsOf: repeatElement(0, count: padded(out.count) - out.count))
        return out
    }

    /// The whole file as bytes (for small files: tests, fixtures).
    public func bytes() throws -> [UInt8] {
        var out = try header()
        for entry in entries {
            withBytes(of: entry) { out.append(contentsOf: $0) }
            out.append(contentsOf: repeatElement(0, count: padded(out.count) - out.count))
        }
        return out
    }

    /// Writes the file to `path`, streaming tensor data (no copy of the whole file in memory).
    /// - Throws: `CheckpointError.io` if the file cannot be created or written.
    public func write(to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw CheckpointError.io(path: path, message: "cannot create: \(FileMapping.errorText())") }
        defer { close(descriptor) }
        var written = 0
        func emit(_ buffer: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < buffer.count {
                // invariant: buffer is non-empty here, so it has a base address.
                let result = systemWrite(descriptor, buffer.baseAddress! + done, buffer.count - done)
                if result < 0 {
                    if errno == EINTR { continue }
                    throw CheckpointError.io(path: path, message: "write failed: \(FileMapping.errorText())")
                }
                done += result
            }
            written += buffer.count
        }
        let zeros = [UInt8](repeating: 0, count: alignment)
        try header().withUnsafeBytes { try emit($0) }
        for entry in entries {
            try withBytes(of: entry) { try emit($0) }
            let padding = padded(written) - written
            if padding > 0 { try zeros.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: $0[0..<padding])) } }
        }
    }

    private func withBytes<R>(of entry: Entry, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch entry.payload {
        case let .tensor(tensor): try body(UnsafeRawBufferPointer(start: tensor.data, count: tensor.byteCount))
        case let .bytes(bytes): try bytes.withUnsafeBytes { try body($0) }
        }
    }

    private func padded(_ offset: Int) -> Int { (offset + alignment - 1) / alignment * alignment }

    private func append<T: FixedWidthInteger>(_ out: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    private func appendString(_ out: inout [UInt8], _ text: String) {
        let utf8 = Array(text.utf8)
        append(&out, UInt64(utf8.count))
        out.append(contentsOf: utf8)
    }

    private func appendValue(_ out: inout [UInt8], _ value: GGUFValue, key: String) throws {
        switch value {
        case let .uint8(raw): append(&out, raw)
        case let .int8(raw): append(&out, raw)
        case let .uint16(raw): append(&out, raw)
        case let .int16(raw): append(&out, raw)
        case let .uint32(raw): append(&out, raw)
        case let .int32(raw): append(&out, raw)
        case let .float32(raw): append(&out, raw.bitPattern)
        case let .bool(raw): append(&out, UInt8(raw ? 1 : 0))
        case let .string(raw): appendString(&out, raw)
        case let .uint64(raw): append(&out, raw)
        case let .int64(raw): append(&out, raw)
        case let .float64(raw): append(&out, raw.bitPattern)
        case let .array(elements):
            // An empty array has no element to take a type from; u8 is as good as any.
            let elementType = elements.first?.typeID ?? 0
            guard elements.allSatisfy({ $0.typeID == elementType }) else {
                throw CheckpointError.malformed(path: "<GGUFWriter>", offset: out.count,
                                                what: "array `\(key)` mixes element types; GGUF arrays hold one type")
            }
            append(&out, elementType)
            append(&out, UInt64(elements.count))
            for element in elements { try appendValue(&out, element, key: key) }
        }
    }
}
