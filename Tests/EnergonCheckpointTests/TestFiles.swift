#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EnergonCheckpoint

/// Paths of committed fixtures (next to this source file) and scratch files for tests.
enum TestFiles {
    /// Absolute path of `Fixtures/<relative>`.
    static func fixture(_ relative: String) -> String {
        let source = "\(#filePath)"
        let directory = source[..<(source.lastIndex(of: "/") ?? source.startIndex)]
        return "\(directory)/Fixtures/\(relative)"
    }

    /// A fresh empty directory under the system temporary directory.
    static func temporaryDirectory() -> String {
        var template = Array("/tmp/energon-checkpoint-XXXXXX".utf8CString)
        let result = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(result != nil, "mkdtemp failed")
        return String(cString: template.map { UInt8(bitPattern: $0) } + [])
    }

    /// Removes a directory made by `temporaryDirectory()` and the files in it (no subfolders).
    static func remove(_ directory: String) {
        precondition(directory.hasPrefix("/tmp/energon-checkpoint-"), "refusing to remove \(directory)")
        if let names = try? FileSystem.list(directory) {
            for name in names { unlink("\(directory)/\(name)") }
        }
        rmdir(directory)
    }

    /// Writes `bytes` to `path`.
    static func write(_ bytes: [UInt8], to path: String) {
        let file = fopen(path, "wb")
        precondition(file != nil, "cannot create \(path)")
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
    }

    /// Writes UTF-8 `text` to `path`.
    static func write(_ text: String, to path: String) { write(Array(text.utf8), to: path) }

    /// Reads the whole file at `path`.
    static func read(_ path: String) -> [UInt8] {
        guard let file = fopen(path, "rb") else { return [] }
        defer { fclose(file) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
        }
        return result
    }

    /// FNV-1a 64 of `bytes` (the hash scripts/make_gguf_fixture.py records).
    static func fnv1a64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01B3
        }
        return hash
    }
}

/// Little-endian GGUF bytes assembled field by field, independent of `GGUFWriter`, so malformed
/// files can be built exactly.
struct GGUFBuilder {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func string(_ text: String) {
        u64(UInt64(text.utf8.count))
        bytes.append(contentsOf: text.utf8)
    }
    mutating func header(version: UInt32 = 3, tensors: UInt64, keys: UInt64) {
        bytes.append(contentsOf: Array("GGUF".utf8))
        u32(version)
        u64(tensors)
        u64(keys)
    }
    /// A tensor info with `ne` given innermost first, as GGUF stores it.
    mutating func tensorInfo(_ name: String, ne: [UInt64], type: UInt32, offset: UInt64) {
        string(name)
        u32(UInt32(ne.count))
        for extent in ne { u64(extent) }
        u32(type)
        u64(offset)
    }
    mutating func pad(to alignment: Int = 32) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }
    mutating func zeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: count)) }
}

/// The error a throwing closure throws, as a `CheckpointError` (nil if it did not throw one).
func checkpointError(_ body: () throws -> Void) -> CheckpointError? {
    do {
        try body()
        return nil
    } catch let error as CheckpointError {
        return error
    } catch {
        return nil
    }
}
