/// Everything that can be wrong with a checkpoint (GGUF file, safetensors file or folder,
/// `config.json`) or with the way a model asks for its weights.
///
/// Every case names the file (or folder) and says what is wrong and where, so the message alone
/// lets a user act on it.
public enum CheckpointError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file could not be opened, sized, mapped or written (`message` is the system's reason).
    case io(path: String, message: String)
    /// The file ends before a structure that must be there; `offset` is where reading stopped.
    case truncated(path: String, offset: Int, what: String)
    /// The first bytes are not the format's magic.
    case badMagic(path: String, found: [UInt8])
    /// A GGUF version this reader does not understand (it reads 2 and 3).
    case unsupportedVersion(path: String, version: Int)
    /// A structural field holds an impossible value (a count, a length, a flag, a nesting depth).
    case malformed(path: String, offset: Int, what: String)
    /// A GGUF metadata value (or array element) has a type id outside the specification.
    case unknownValueType(path: String, key: String, typeID: UInt32)
    /// A tensor's element type is unknown to Energon (a GGUF type id or a safetensors dtype name).
    case unknownTensorType(path: String, tensor: String, type: String)
    /// A tensor's shape is invalid: too many dimensions, a zero or negative dimension, a product
    /// that overflows, or an innermost length that is not a whole number of blocks.
    case badTensorShape(path: String, tensor: String, shape: [Int], reason: String)
    /// A tensor's bytes are not inside the file's data section.
    case tensorDataOutOfRange(path: String, tensor: String, offset: Int, byteCount: Int, available: Int)
    /// A tensor's data offset is not a multiple of the file's alignment.
    case misalignedTensor(path: String, tensor: String, offset: Int, alignment: Int)
    /// Two tensors' byte ranges overlap.
    case overlappingTensors(path: String, first: String, second: String)
    /// A name (metadata key or tensor) occurs twice.
    case duplicateName(path: String, name: String)
    /// JSON text is not well formed; `offset` is the byte where parsing failed.
    case badJSON(path: String, offset: Int, message: String)
    /// A safetensors header or index is well-formed JSON but does not describe a valid file.
    case badHeader(path: String, message: String)
    /// The shards of a sharded checkpoint do not agree with their index or with each other.
    case inconsistentShards(path: String, message: String)
    /// A tensor the model needs is not in the checkpoint.
    case missingTensor(path: String, name: String)
    /// A tensor has a different shape than the model expects.
    case shapeMismatch(path: String, tensor: String, actual: [Int], expected: [Int])
    /// Tensors in the checkpoint that the model neither used nor explicitly ignored.
    case unusedTensors(path: String, names: [String])
    /// A shard request cannot be served (bad rank/count, uneven split, split inside a block).
    case badShard(path: String, tensor: String, message: String)
    /// A required `config.json` (or GGUF metadata) key is absent.
    case missingKey(path: String, key: String)
    /// A configuration key is present but its value has the wrong type or an impossible value.
    case badKey(path: String, key: String, message: String)
    /// The request is valid but not supported (an unknown architecture, a dtype with no zero-copy view).
    case unsupported(path: String, message: String)

    public var description: String {
        switch self {
        case let .io(path, message):
            return "\(path): \(message)"
        case let .truncated(path, offset, what):
            return "\(path): file is truncated at byte \(offset): \(what)"
        case let .badMagic(path, found):
            let hex = found.map { String($0, radix: 16, uppercase: true) }.joined(separator: " ")
            return "\(path): not a recognised checkpoint (first bytes \(hex))"
        case let .unsupportedVersion(path, version):
            return "\(path): unsupported GGUF version \(version) (Energon reads versions 2 and 3)"
        case let .malformed(path, offset, what):
            return "\(path): malformed at byte \(offset): \(what)"
        case let .unknownValueType(path, key, typeID):
            return "\(path): metadata key `\(key)` has unknown value type \(typeID)"
        case let .unknownTensorType(path, tensor, type):
            return "\(path): tensor `\(tensor)` has unknown type \(type)"
        case let .badTensorShape(path, tensor, shape, reason):
            return "\(path): tensor `\(tensor)` has invalid shape \(shape): \(reason)"
        case let .tensorDataOutOfRange(path, tensor, offset, byteCount, available):
            return "\(path): tensor `\(tensor)` data (\(byteCount) bytes at offset \(offset)) lies outside the \(available) bytes of the data section"
        case let .misalignedTensor(path, tensor, offset, alignment):
            return "\(path): tensor `\(tensor)` data offset \(offset) is not a multiple of the alignment \(alignment)"
        case let .overlappingTensors(path, first, second):
            return "\(path): the data of tensors `\(first)` and `\(second)` overlap"
        case let .duplicateName(path, name):
            return "\(path): `\(name)` occurs more than once"
        case let .badJSON(path, offset, message):
            return "\(path): invalid JSON at byte \(offset): \(message)"
        case let .badHeader(path, message):
            return "\(path): invalid header: \(message)"
        case let .inconsistentShards(path, message):
            return "\(path): inconsistent shards: \(message)"
        case let .missingTensor(path, name):
            return "\(path): tensor `\(name)` not found"
        case let .shapeMismatch(path, tensor, actual, expected):
            return "\(path): tensor `\(tensor)` has shape \(actual), expected \(expected)"
        case let .unusedTensors(path, names):
            let shown = names.prefix(20).map { "`\($0)`" }.joined(separator: ", ")
            let more = names.count > 20 ? " and \(names.count - 20) more" : ""
            return "\(path): \(names.count) tensor(s) were neither used nor ignored by the model: \(shown)\(more)"
        case let .badShard(path, tensor, message):
            return "\(path): cannot shard tensor `\(tensor)`: \(message)"
        case let .missingKey(path, key):
            return "\(path): required key `\(key)` is missing"
        case let .badKey(path, key, message):
            return "\(path): key `\(key)`: \(message)"
        case let .unsupported(path, message):
            return "\(path): \(message)"
        }
    }
}
