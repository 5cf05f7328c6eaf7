/// Errors raised while building or running a model.
public enum ModelError: Error, CustomStringConvertible {
    /// A required configuration key is absent.
    case missingKey(String, source: String)
    /// A configuration value is present but unusable.
    case invalidValue(key: String, value: String, reason: String)
    /// The checkpoint's architecture has no implementation.
    case unsupportedArchitecture(String, supported: [String])
    /// A tensor has a format the kernels cannot use.
    case unsupportedFormat(tensor: String, format: String)
    /// A token id outside the vocabulary.
    case tokenOutOfRange(id: Int32, vocabularySize: Int)
    /// The prompt plus generation would exceed the context length.
    case contextOverflow(needed: Int, limit: Int)

    public var description: String {
        switch self {
        case let .missingKey(key, source): "\(source): missing configuration key `\(key)`"
        case let .invalidValue(key, value, reason): "configuration key `\(key)` = \(value): \(reason)"
        case let .unsupportedArchitecture(name, supported):
            "architecture `\(name)` is not supported (supported: \(supported.joined(separator: ", ")))"
        case let .unsupportedFormat(tensor, format): "tensor `\(tensor)` has unsupported format \(format)"
        case let .tokenOutOfRange(id, size): "token id \(id) is outside the vocabulary of \(size) tokens"
        case let .contextOverflow(needed, limit): "\(needed) positions exceed the context length \(limit)"
        }
    }
}
