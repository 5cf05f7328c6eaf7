import Foundation

/// Typed access to a parsed JSON value with errors that name the file and the field path.
struct JSONNode {
    let value: Any?
    let path: String
    let file: String

    static func parse(file: String) throws -> JSONNode {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw TokenizerError.unreadableFile(path: file, reason: "no such file or not readable")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw TokenizerError.malformedJSON(path: file, reason: "\(error.localizedDescription)")
        }
        return JSONNode(value: object, path: "", file: file)
    }

    var isNull: Bool { value == nil || value is NSNull }

    subscript(key: String) -> JSONNode {
        let child = (value as? [String: Any])?[key]
        return JSONNode(value: child, path: path.isEmpty ? key : path + "." + key, file: file)
    }

    func error(_ reason: String) -> TokenizerError {
        .invalidValue(source: file, key: path, reason: reason)
    }

    func object() throws -> [String: Any] {
        guard let dictionary = value as? [String: Any] else { throw error("is not an object") }
        return dictionary
    }

    func array() throws -> [JSONNode] {
        guard let list = value as? [Any] else { throw error("is not an array") }
        return list.enumerated().map { JSONNode(value: $0.element, path: "\(path)[\($0.offset)]", file: file) }
    }

    func string() throws -> String {
        guard let text = value as? String else { throw error("is not a string") }
        return text
    }

    func optionalString() throws -> String? { isNull ? nil : try string() }

    func bool(default fallback: Bool) throws -> Bool {
        if isNull { return fallback }
        if let flag = value as? Bool { return flag }
        throw error("is not a boolean")
    }

    func int() throws -> Int {
        guard let number = value as? NSNumber, let exact = Int(exactly: number.doubleValue) else {
            throw error("is not an integer")
        }
        return exact
    }

    func optionalInt() throws -> Int? { isNull ? nil : try int() }
}
