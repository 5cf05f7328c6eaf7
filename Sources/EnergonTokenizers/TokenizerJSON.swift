import EnergonCheckpoint
import Foundation

/// Typed access to a parsed `tokenizer.json` (or `tokenizer_config.json`) value, with errors that
/// name the file and the field path.
///
/// The JSON is parsed by EnergonCheckpoint's shared scanner into an `OrderedJSONValue`, which keeps
/// object members in file order with byte-exact keys: vocabulary entries such as "é" (U+00E9) and
/// "e\u{301}" are distinct tokens although Swift's `String ==` calls them equal, and a string's
/// leading U+FEFF is kept (Foundation's `JSONSerialization` loses both on Linux).
struct JSONNode {
    let value: OrderedJSONValue?
    let path: String
    let file: String

    /// The leniencies Hugging Face's own loader (serde_json) allows in tokenizer files.
    static let options = JSONParsingOptions(skipsByteOrderMark: true, replacesUnpairedSurrogates: true)

    static func parse(file: String) throws -> JSONNode {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw TokenizerError.unreadableFile(path: file, reason: "no such file or not readable")
        }
        return JSONNode(value: try parse(data, file: file), path: "", file: file)
    }

    /// Parses UTF-8 bytes, turning the scanner's error into the tokenizer's.
    static func parse(_ data: Data, file: String) throws -> OrderedJSONValue {
        do {
            return try data.withUnsafeBytes { try OrderedJSONValue.parse($0, path: file, options: options) }
        } catch CheckpointError.badJSON(let path, let offset, let message) {
            throw TokenizerError.malformedJSON(path: path, reason: "\(message) at byte \(offset)")
        } catch {
            throw TokenizerError.malformedJSON(path: file, reason: "\(error)")
        }
    }

    /// True for a missing member or an explicit `null`.
    var isNull: Bool {
        guard let value else { return true }
        return value.scalarValue?.isNull == true
    }

    /// Member `key` (the last of that exact name, as in serde_json's maps); a missing member is a
    /// node whose value is nil, so callers learn the full path when they read it.
    subscript(key: String) -> JSONNode {
        JSONNode(value: value?[key], path: path.isEmpty ? key : path + "." + key, file: file)
    }

    func error(_ reason: String) -> TokenizerError {
        .invalidValue(source: file, key: path, reason: reason)
    }

    /// The members of an object in file order.
    func members() throws -> [(key: String, value: JSONNode)] {
        guard let members = value?.members else { throw error("is not an object") }
        return members.map { ($0.key, JSONNode(value: $0.value, path: path + "." + $0.key, file: file)) }
    }

    func array() throws -> [JSONNode] {
        guard let list = value?.array else { throw error("is not an array") }
        return list.enumerated().map { JSONNode(value: $0.element, path: "\(path)[\($0.offset)]", file: file) }
    }

    var stringValue: String? { value?.scalarValue?.string }

    func string() throws -> String {
        guard let text = stringValue else { throw error("is not a string") }
        return text
    }

    func optionalString() throws -> String? { isNull ? nil : try string() }

    func bool(default fallback: Bool) throws -> Bool {
        if isNull { return fallback }
        guard let flag = value?.scalarValue?.bool else { throw error("is not a boolean") }
        return flag
    }

    func int() throws -> Int {
        guard let exact = value?.scalarValue?.int else { throw error("is not an integer") }
        return exact
    }

    func optionalInt() throws -> Int? { isNull ? nil : try int() }
}
