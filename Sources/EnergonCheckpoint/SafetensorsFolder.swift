#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import EnergonCore

/// The safetensors weights of a Hugging Face model folder: one `model.safetensors`, or shards
/// listed by `model.safetensors.index.json`, or (with no index) every `*.safetensors` file.
///
/// With an index, the shards must agree with it exactly: every tensor the index names is in the
/// shard it names, every tensor of every shard is in the index, and no tensor is in two shards.
public final class SafetensorsFolder: TensorStore, @unchecked Sendable {
    /// The folder.
    public let path: String
    /// The opened files, in shard order.
    public let files: [SafetensorsFile]
    private let owner: [String: Int]
    /// Every tensor, shard by shard, in data order.
    public let storedTensors: [StoredTensorInfo]

    /// The name of the shard index Hugging Face writes.
    public static let indexName = "model.safetensors.index.json"

    /// Opens the safetensors files of the folder at `path`.
    /// - Throws: `CheckpointError` naming the file and problem: no weights, bad index JSON, a shard
    ///   missing or disagreeing with the index, a tensor in two shards, or any file-level problem.
    public init(path: String) throws {
        self.path = path
        let indexPath = "\(path)/\(SafetensorsFolder.indexName)"
        var files: [SafetensorsFile] = []
        var owner: [String: Int] = [:]
        if FileSystem.isRegularFile(indexPath) {
            let mapping = try FileMapping(path: indexPath)
            let index = try JSONValue.parse(mapping.bytes, path: indexPath)
            guard let weightMap = index["weight_map"]?.object else {
                throw CheckpointError.badHeader(path: indexPath, message: "no `weight_map` object")
            }
            var shardNames: [String] = []
            var expected: [String: String] = [:]
            for (tensor, value) in weightMap {
                guard let shard = value.string else {
                    throw CheckpointError.badHeader(path: indexPath, message: "weight_map entry `\(tensor)` is not a file name")
                }
                guard !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                    throw CheckpointError.badHeader(path: indexPath, message: "weight_map entry `\(tensor)` names `\(shard)`, not a file in the folder")
                }
                expected[tensor] = shard
                if !shardNames.contains(shard) { shardNames.append(shard) }
            }
            shardNames.sort()
            for shard in shardNames {
                let shardPath = "\(path)/\(shard)"
                guard FileSystem.isRegularFile(shardPath) else {
                    throw CheckpointError.inconsistentShards(path: indexPath, message: "shard `\(shard)` named by the index does not exist")
                }
                files.append(try SafetensorsFile(path: shardPath))
            }
            for (fileIndex, file) in files.enumerated() {
                let shard = shardNames[fileIndex]
                for tensor in file.tensors {
                    guard let listed = expected[tensor.name] else {
                        throw CheckpointError.inconsistentShards(path: indexPath, message: "tensor `\(tensor.name)` in shard `\(shard)` is not in the index")
                    }
                    guard listed == shard else {
                        throw CheckpointError.inconsistentShards(path: indexPath, message: "tensor `\(tensor.name)` is in shard `\(shard)` but the index says `\(listed)`")
                    }
                    owner[tensor.name] = fileIndex
                }
            }
            for (tensor, shard) in expected where owner[tensor] == nil {
                throw CheckpointError.inconsistentShards(path: indexPath, message: "tensor `\(tensor)` is listed in shard `\(shard)` but is not in it")
            }
        } else {
            let names = try FileSystem.list(path).filter { $0.hasSuffix(".safetensors") }.sorted()
            guard !names.isEmpty else {
                throw CheckpointError.io(path: path, message: "no *.safetensors files and no \(SafetensorsFolder.indexName)")
            }
            for name in names {
                let file = try SafetensorsFile(path: "\(path)/\(name)")
                for tensor in file.tensors {
                    if let previous = owner.updateValue(files.count, forKey: tensor.name) {
                        throw CheckpointError.inconsistentShards(path: path, message: "tensor `\(tensor.name)` is in both `\(files[previous].path)` and `\(file.path)`")
                    }
                }
                files.append(file)
            }
        }
        self.files = files
        self.owner = owner
        storedTensors = files.flatMap(\.storedTensors)
    }

    /// The description of `name`, if stored.
    public func storedTensor(named name: String) -> StoredTensorInfo? {
        owner[name].flatMap { files[$0].storedTensor(named: name) }
    }

    /// Drops the file pages from the resident set (`FileMapping.releaseResidentPages`).
    public func releaseResidentPages() { for file in files { file.releaseResidentPages() } }

    /// A zero-copy view of `name`'s data.
    public func tensor(named name: String) throws -> Tensor {
        guard let file = owner[name] else { throw CheckpointError.missingTensor(path: path, name: name) }
        return try files[file].tensor(named: name)
    }

    /// Total bytes of tensor data over all shards.
    public var totalTensorBytes: Int { storedTensors.reduce(0) { $0 + $1.byteCount } }
}

/// The few file-system queries checkpoint loading needs, on POSIX calls.
public enum FileSystem {
    /// True if `path` exists and is a regular file (following symbolic links).
    public static func isRegularFile(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG
    }

    /// True if `path` exists and is a directory.
    public static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }

    /// The names in the directory at `path` (without `.` and `..`).
    /// - Throws: `CheckpointError.io` if it cannot be read.
    public static func list(_ path: String) throws -> [String] {
        guard let directory = opendir(path) else {
            throw CheckpointError.io(path: path, message: "cannot list: \(FileMapping.errorText())")
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The JSON document in the file at `path`.
    /// - Throws: `CheckpointError.io` if it cannot be read, `.badJSON` if it is not valid JSON.
    public static func readJSON(_ path: String) throws -> JSONValue {
        let mapping = try FileMapping(path: path)
        return try JSONValue.parse(mapping.bytes, path: path)
    }
}
