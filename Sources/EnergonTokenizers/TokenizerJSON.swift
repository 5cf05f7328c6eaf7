import Foundation

/// A parsed JSON value that keeps object members in file order with their exact keys.
///
/// Foundation's `JSONSerialization` cannot be used for `tokenizer.json`: it returns dictionaries
/// keyed by `String`, and Swift (and `NSString` on Linux) compares strings by canonical
/// equivalence, so the distinct vocabulary entries "é" (U+00E9) and "e\u{301}" would collapse
/// into one; on Linux it also drops a string's leading U+FEFF.
indirect enum JSONDocument: Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONDocument])
    case object([(key: String, value: JSONDocument)])

    /// Parses UTF-8 bytes; `file` names the source in errors.
    static func parse(_ bytes: [UInt8], file: String) throws -> JSONDocument {
        try bytes.withUnsafeBufferPointer { buffer in
            var parser = Parser(bytes: buffer, file: file)
            // A UTF-8 byte order mark may precede the document.
            if buffer.count >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF { parser.position = 3 }
            parser.skipWhitespace()
            let value = try parser.value(depth: 0)
            parser.skipWhitespace()
            guard parser.position == buffer.count else { throw parser.error("unexpected text after the JSON value") }
            return value
        }
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        let file: String
        var position = 0

        func error(_ message: String) -> TokenizerError {
            .malformedJSON(path: file, reason: "\(message) at byte \(position)")
        }

        mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        mutating func expect(_ literal: String) throws {
            for byte in literal.utf8 {
                guard position < bytes.count, bytes[position] == byte else { throw error("expected `\(literal)`") }
                position += 1
            }
        }

        mutating func value(depth: Int) throws -> JSONDocument {
            guard depth < 128 else { throw error("nesting deeper than 128 levels") }
            guard position < bytes.count else { throw error("unexpected end of input") }
            switch bytes[position] {
            case UInt8(ascii: "{"):
                position += 1
                var members: [(key: String, value: JSONDocument)] = []
                skipWhitespace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
                while true {
                    skipWhitespace()
                    guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a member name") }
                    let key = try string()
                    skipWhitespace()
                    try expect(":")
                    skipWhitespace()
                    members.append((key, try value(depth: depth + 1)))
                    skipWhitespace()
                    guard position < bytes.count else { throw error("unterminated object") }
                    if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                    if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
                    throw error("expected `,` or `}`")
                }
            case UInt8(ascii: "["):
                position += 1
                var elements: [JSONDocument] = []
                skipWhitespace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return .array(elements) }
                while true {
                    skipWhitespace()
                    elements.append(try value(depth: depth + 1))
                    skipWhitespace()
                    guard position < bytes.count else { throw error("unterminated array") }
                    if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                    if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(elements) }
                    throw error("expected `,` or `]`")
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = position
                while position < bytes.count,
                      let scalar = Optional(bytes[position]),
                      (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(scalar) || [0x2B, 0x2D, 0x2E, 0x45, 0x65].contains(scalar) {
                    position += 1
                }
                let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                guard let number = Double(text) else { throw error("malformed number `\(text)`") }
                return .number(number)
            default:
                throw error("unexpected character")
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard position + 4 <= bytes.count else { throw error("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw error("bad \\u escape")
                }
                value = value << 4 | digit
                position += 1
            }
            return value
        }

        mutating func string() throws -> String {
            position += 1  // opening quote
            var output: [UInt8] = []
            while true {
                guard position < bytes.count else { throw error("unterminated string") }
                let byte = bytes[position]
                position += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard let text = String(validating: output, as: UTF8.self) else { throw error("string is not valid UTF-8") }
                    return text
                case UInt8(ascii: "\\"):
                    guard position < bytes.count else { throw error("unterminated escape") }
                    let escape = bytes[position]
                    position += 1
                    switch escape {
                    case UInt8(ascii: "\""): output.append(0x22)
                    case UInt8(ascii: "\\"): output.append(0x5C)
                    case UInt8(ascii: "/"): output.append(0x2F)
                    case UInt8(ascii: "b"): output.append(0x08)
                    case UInt8(ascii: "f"): output.append(0x0C)
                    case UInt8(ascii: "n"): output.append(0x0A)
                    case UInt8(ascii: "r"): output.append(0x0D)
                    case UInt8(ascii: "t"): output.append(0x09)
                    case UInt8(ascii: "u"):
                        var value = try hex4()
                        if (0xD800...0xDBFF).contains(value) {
                            // A surrogate pair; a lone surrogate becomes U+FFFD, as serde_json's lossy path.
                            if position + 6 <= bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") {
                                position += 2
                                let low = try hex4()
                                value = (0xDC00...0xDFFF).contains(low) ? 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00) : 0xFFFD
                            } else {
                                value = 0xFFFD
                            }
                        } else if (0xDC00...0xDFFF).contains(value) {
                            value = 0xFFFD
                        }
                        appendUTF8(value, to: &output)
                    default:
                        throw error("bad escape")
                    }
                default:
                    guard byte >= 0x20 else { throw error("control character in string") }
                    output.append(byte)
                }
            }
        }
    }
}

/// Typed access to a parsed JSON value with errors that name the file and the field path.
struct JSONNode {
    let value: JSONDocument?
    let path: String
    let file: String

    static func parse(file: String) throws -> JSONNode {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw TokenizerError.unreadableFile(path: file, reason: "no such file or not readable")
        }
        return JSONNode(value: try JSONDocument.parse([UInt8](data), file: file), path: "", file: file)
    }

    var isNull: Bool {
        if case .null = value { return true }
        return value == nil
    }

    subscript(key: String) -> JSONNode {
        var child: JSONDocument? = nil
        if case .object(let members) = value {
            // The last member of that name wins, as in serde_json's maps.
            child = members.last(where: { $0.key.utf8.elementsEqual(key.utf8) })?.value
        }
        return JSONNode(value: child, path: path.isEmpty ? key : path + "." + key, file: file)
    }

    func error(_ reason: String) -> TokenizerError {
        .invalidValue(source: file, key: path, reason: reason)
    }

    /// The members of an object in file order.
    func members() throws -> [(key: String, value: JSONNode)] {
        guard case .object(let members) = value else { throw error("is not an object") }
        return members.map { ($0.key, JSONNode(value: $0.value, path: path + "." + $0.key, file: file)) }
    }

    func array() throws -> [JSONNode] {
        guard case .array(let list) = value else { throw error("is not an array") }
        return list.enumerated().map { JSONNode(value: $0.element, path: "\(path)[\($0.offset)]", file: file) }
    }

    var stringValue: String? {
        if case .string(let text) = value { return text }
        return nil
    }

    func string() throws -> String {
        guard let text = stringValue else { throw error("is not a string") }
        return text
    }

    func optionalString() throws -> String? { isNull ? nil : try string() }

    func bool(default fallback: Bool) throws -> Bool {
        if isNull { return fallback }
        guard case .bool(let flag) = value else { throw error("is not a boolean") }
        return flag
    }

    func int() throws -> Int {
        guard case .number(let number) = value, let exact = Int(exactly: number) else { throw error("is not an integer") }
        return exact
    }

    func optionalInt() throws -> Int? { isNull ? nil : try int() }
}
