/// Why a tokenizer could not be loaded. Each message names the file or metadata key and what is wrong.
public enum TokenizerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A required metadata key or JSON field is absent.
    case missingKey(source: String, key: String)
    /// A key or field has the wrong type or an impossible value.
    case invalidValue(source: String, key: String, reason: String)
    /// The tokenizer kind is not one Energon implements.
    case unsupported(source: String, what: String)
    /// A file could not be read.
    case unreadableFile(path: String, reason: String)
    /// A file is not valid JSON or not the JSON shape expected.
    case malformedJSON(path: String, reason: String)

    /// A message a user can act on.
    public var description: String {
        switch self {
        case .missingKey(let source, let key):
            return "\(source): missing `\(key)`"
        case .invalidValue(let source, let key, let reason):
            return "\(source): `\(key)` \(reason)"
        case .unsupported(let source, let what):
            return "\(source): unsupported \(what)"
        case .unreadableFile(let path, let reason):
            return "\(path): cannot read (\(reason))"
        case .malformedJSON(let path, let reason):
            return "\(path): malformed JSON (\(reason))"
        }
    }
}
