#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Read-only bytes of a whole checkpoint file: a private, read-only memory mapping (so weights are
/// paged in on use and never copied), or an owned copy for in-memory parsing (tests, fuzzing).
///
/// `Tensor`s handed out over these bytes keep the mapping alive through their `owner`.
public final class FileMapping: @unchecked Sendable {
    /// The path the bytes came from (used in every error message).
    public let path: String
    /// First byte (never null, even for an empty file).
    public let base: UnsafeRawPointer
    /// Number of bytes.
    public let count: Int
    private let isMapped: Bool

    /// Maps the file at `path` with `PROT_READ` and `MAP_PRIVATE`.
    /// - Throws: `CheckpointError.io` when the file cannot be opened, sized or mapped.
    public init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw CheckpointError.io(path: path, message: "cannot open: \(FileMapping.errorText())") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw CheckpointError.io(path: path, message: "cannot stat: \(FileMapping.errorText())")
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw CheckpointError.io(path: path, message: "not a regular file")
        }
        let size = Int(status.st_size)
        if size == 0 {
            // mmap rejects a zero length; an empty file is still a (truncated) file to report on.
            let raw = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)
            base = UnsafeRawPointer(raw)
            count = 0
            isMapped = false
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let address, address != MAP_FAILED else {
            throw CheckpointError.io(path: path, message: "cannot map \(size) bytes: \(FileMapping.errorText())")
        }
        base = UnsafeRawPointer(address)
        count = size
        isMapped = true
    }

    /// Copies `bytes` into owned, 64-byte aligned storage; `name` stands for the path in errors.
    public init(bytes: [UInt8], name: String) {
        path = name
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { source in
            if let address = source.baseAddress { raw.copyMemory(from: address, byteCount: source.count) }
        }
        base = UnsafeRawPointer(raw)
        count = bytes.count
        isMapped = false
    }

    deinit {
        if isMapped {
            munmap(UnsafeMutableRawPointer(mutating: base), count)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    /// Drops the mapping's pages from this process's resident set (`MADV_DONTNEED`); they stay
    /// in the page cache and come back on the next read. A loader calls it once a model is built:
    /// weights copied to the layout the kernels read (`MatMul.prepare`) no longer need the
    /// file's pages, and reads of neighbouring tensors (the kernel maps up to 64 KiB around each
    /// fault) would otherwise leave scattered pages of them resident.
    public func releaseResidentPages() {
        #if os(Linux)
        if isMapped { _ = madvise(UnsafeMutableRawPointer(mutating: base), count, MADV_DONTNEED) }
        #endif
    }

    /// The bytes as a buffer.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    static func errorText() -> String { String(cString: strerror(errno)) }
}

/// Bounds-checked little-endian reads over a byte buffer; every read that would pass the end
/// throws `CheckpointError.truncated` naming what was being read.
struct ByteCursor {
    let base: UnsafeRawPointer
    let count: Int
    let path: String
    var position: Int = 0

    init(_ mapping: FileMapping) {
        base = mapping.base
        count = mapping.count
        path = mapping.path
    }

    var remaining: Int { count - position }

    /// Fails unless `length` more bytes are available.
    func require(_ length: Int, _ what: @autoclosure () -> String) throws {
        guard length >= 0, length <= count - position else {
            throw CheckpointError.truncated(path: path, offset: position, what: "\(what()) needs \(length) bytes, \(count - position) remain")
        }
    }

    mutating func read<T: FixedWidthInteger>(_ type: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try require(MemoryLayout<T>.size, what())
        // Checkpoint formats are little-endian; `init(littleEndian:)` keeps big-endian hosts right.
        let value = T(littleEndian: base.loadUnaligned(fromByteOffset: position, as: T.self))
        position += MemoryLayout<T>.size
        return value
    }

    mutating func readBytes(_ length: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try require(length, what())
        let buffer = UnsafeRawBufferPointer(start: base + position, count: length)
        position += length
        return buffer
    }
}
