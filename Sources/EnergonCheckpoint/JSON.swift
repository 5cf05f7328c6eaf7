#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// One JSON scanner (RFC 8259) serves every JSON file Energon reads. It builds one of two trees:
//
// - `JSONValue`, with objects as `[String: JSONValue]` and duplicate keys rejected, for checkpoint
//   headers, shard indexes and `config.json`, which are looked up by key;
// - `OrderedJSONValue`, with object members kept in file order and their keys byte-exact, for
//   `tokenizer.json`. A `String`-keyed dictionary cannot serve there: Swift compares strings by
//   canonical equivalence, so the distinct vocabulary entries "é" (U+00E9) and "e\u{301}" would
//   collide. (Foundation's `JSONSerialization` has the same problem and on Linux also drops a
//   string's leading U+FEFF, which this scanner keeps.)
//
// Both trees keep integers that fit in `Int` exact, so 64-bit file offsets and token ids are never
// rounded through `Double`.

/// Choices for the leniencies some JSON producers need; the default (`strict`) rejects them.
public struct JSONParsingOptions: Sendable, Equatable {
    /// Skip a UTF-8 byte order mark (EF BB BF) before the document, which RFC 8259 §8.1 lets a
    /// parser ignore and which some editors write into `tokenizer.json`.
    public var skipsByteOrderMark: Bool
    /// Decode an unpaired UTF-16 surrogate in a `\u` escape as U+FFFD (as serde_json's lossy path
    /// does) instead of rejecting the document.
    public var replacesUnpairedSurrogates: Bool

    /// Creates options; every leniency is off unless asked for.
    public init(skipsByteOrderMark: Bool = false, replacesUnpairedSurrogates: Bool = false) {
        self.skipsByteOrderMark = skipsByteOrderMark
        self.replacesUnpairedSurrogates = replacesUnpairedSurrogates
    }

    /// RFC 8259 exactly: no byte order mark, no unpaired surrogates.
    public static let strict = JSONParsingOptions()
}

/// A parsed JSON value (RFC 8259), as checkpoint headers, indexes and `config.json` need.
///
/// Numbers that are integers and fit in `Int` stay exact (`int`), so 64-bit file offsets are never
/// rounded through `Double`; every other number is a `double`.
public enum JSONValue: Sendable, Equatable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// An integer that fits in `Int`, exactly.
    case int(Int)
    /// Any other number.
    case double(Double)
    /// A string (UTF-8 validated, escapes resolved).
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object (duplicate keys are rejected).
    case object([String: JSONValue])

    /// The value if it is a string.
    public var string: String? { if case let .string(value) = self { value } else { nil } }
    /// The value if it is an integer (or a double with an integral value that fits).
    public var int: Int? {
        switch self {
        case let .int(value): value
        case let .double(value): Int(exactly: value)
        default: nil
        }
    }
    /// The value as a `Double` if it is a number.
    public var double: Double? {
        switch self {
        case let .int(value): Double(value)
        case let .double(value): value
        default: nil
        }
    }
    /// The value if it is a boolean.
    public var bool: Bool? { if case let .bool(value) = self { value } else { nil } }
    /// The elements if the value is an array.
    public var array: [JSONValue]? { if case let .array(value) = self { value } else { nil } }
    /// The members if the value is an object.
    public var object: [String: JSONValue]? { if case let .object(value) = self { value } else { nil } }
    /// True for `null`.
    public var isNull: Bool { self == .null }

    /// Member `key` of an object (nil for other values or a missing key).
    public subscript(key: String) -> JSONValue? { object?[key] }

    /// Parses `bytes` as one JSON document; `path` names the source in errors.
    /// - Throws: `CheckpointError.badJSON` with the byte offset of the first problem, including a
    ///   key that repeats (by `String` equality) within one object.
    public static func parse(_ bytes: UnsafeRawBufferPointer, path: String,
                             options: JSONParsingOptions = .strict) throws -> JSONValue {
        try JSONScanner<KeyedJSONTree>.parseDocument(bytes, path: path, options: options)
    }

    /// Parses a UTF-8 string as one JSON document.
    public static func parse(_ text: String, path: String, options: JSONParsingOptions = .strict) throws -> JSONValue {
        try JSONScanner<KeyedJSONTree>.parseDocument(text, path: path, options: options)
    }
}

/// A parsed JSON value whose objects keep every member in file order with its key byte-exact.
///
/// Use it where keys are data rather than field names (a tokenizer vocabulary): distinct byte
/// sequences that Swift's `String ==` calls equal ("é" and "e\u{301}") stay distinct members, and
/// repeated keys are all kept. Nulls, booleans, numbers and strings are held as the keyed tree holds
/// them, so `JSONValue`'s accessors read them (numbers: exact `int` where they fit).
public enum OrderedJSONValue: Sendable {
    /// A null, boolean, number or string (never `.array` or `.object`).
    case scalar(JSONValue)
    /// An array.
    case array([OrderedJSONValue])
    /// An object's members in file order, repeated keys included.
    case object([(key: String, value: OrderedJSONValue)])

    /// The null, boolean, number or string this value is, if it is not an array or object.
    public var scalarValue: JSONValue? { if case let .scalar(value) = self { value } else { nil } }
    /// The elements if the value is an array.
    public var array: [OrderedJSONValue]? { if case let .array(value) = self { value } else { nil } }
    /// The members in file order if the value is an object.
    public var members: [(key: String, value: OrderedJSONValue)]? { if case let .object(value) = self { value } else { nil } }

    /// The value of the last member whose key has exactly the UTF-8 bytes of `key` (nil for other
    /// values or a missing key). The last one wins, as in serde_json's maps.
    public subscript(key: String) -> OrderedJSONValue? {
        members?.last(where: { $0.key.utf8.elementsEqual(key.utf8) })?.value
    }

    /// Parses `bytes` as one JSON document, keeping every object member; `path` names the source
    /// in errors.
    /// - Throws: `CheckpointError.badJSON` with the byte offset of the first problem.
    public static func parse(_ bytes: UnsafeRawBufferPointer, path: String,
                             options: JSONParsingOptions = .strict) throws -> OrderedJSONValue {
        try JSONScanner<OrderedJSONTree>.parseDocument(bytes, path: path, options: options)
    }

    /// Parses a UTF-8 string as one JSON document, keeping every object member.
    public static func parse(_ text: String, path: String, options: JSONParsingOptions = .strict) throws -> OrderedJSONValue {
        try JSONScanner<OrderedJSONTree>.parseDocument(text, path: path, options: options)
    }
}

/// How the scanner assembles a tree; one conformance per tree shape, so the scanner is written once
/// and specialized for each (no intermediate tree, no second pass).
protocol JSONTreeBuilder {
    associatedtype Value
    associatedtype Members
    /// Wraps a null, boolean, number or string.
    static func scalar(_ value: JSONValue) -> Value
    static func array(_ elements: [Value]) -> Value
    static func object(_ members: Members) -> Value
    static var emptyMembers: Members { get }
    /// Adds a member; false if this shape rejects `key` as a repeat.
    static func add(key: String, value: Value, to members: inout Members) -> Bool
}

/// Builds `JSONValue`: members keyed by `String`, repeats rejected.
enum KeyedJSONTree: JSONTreeBuilder {
    static func scalar(_ value: JSONValue) -> JSONValue { value }
    static func array(_ elements: [JSONValue]) -> JSONValue { .array(elements) }
    static func object(_ members: [String: JSONValue]) -> JSONValue { .object(members) }
    static var emptyMembers: [String: JSONValue] { [:] }
    static func add(key: String, value: JSONValue, to members: inout [String: JSONValue]) -> Bool {
        members.updateValue(value, forKey: key) == nil
    }
}

/// Builds `OrderedJSONValue`: members in file order, repeats kept.
enum OrderedJSONTree: JSONTreeBuilder {
    static var emptyMembers: [(key: String, value: OrderedJSONValue)] { [] }
    static func add(key: String, value: OrderedJSONValue, to members: inout [(key: String, value: OrderedJSONValue)]) -> Bool {
        members.append((key, value))
        return true
    }
    static func scalar(_ value: JSONValue) -> OrderedJSONValue { .scalar(value) }
    static func array(_ elements: [OrderedJSONValue]) -> OrderedJSONValue { .array(elements) }
    static func object(_ members: [(key: String, value: OrderedJSONValue)]) -> OrderedJSONValue { .object(members) }
}

/// A recursive-descent JSON scanner over raw bytes with a nesting limit (so hostile input cannot
/// exhaust the stack) and exact error offsets.
struct JSONScanner<Tree: JSONTreeBuilder> {
    let bytes: UnsafeRawBufferPointer
    let path: String
    let options: JSONParsingOptions
    var position = 0
    static var maximumDepth: Int { 128 }

    static func parseDocument(_ bytes: UnsafeRawBufferPointer, path: String, options: JSONParsingOptions) throws -> Tree.Value {
        var scanner = JSONScanner(bytes: bytes, path: path, options: options)
        if options.skipsByteOrderMark, bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            scanner.position = 3
        }
        scanner.skipWhitespace()
        let value = try scanner.parseValue(depth: 0)
        scanner.skipWhitespace()
        guard scanner.position == bytes.count else { throw scanner.error("unexpected text after the JSON value") }
        return value
    }

    static func parseDocument(_ text: String, path: String, options: JSONParsingOptions) throws -> Tree.Value {
        var copy = text
        return try copy.withUTF8 { try parseDocument(UnsafeRawBufferPointer($0), path: path, options: options) }
    }

    func error(_ message: String, at offset: Int? = nil) -> CheckpointError {
        CheckpointError.badJSON(path: path, offset: offset ?? position, message: message)
    }

    var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func parseValue(depth: Int) throws -> Tree.Value {
        guard depth < Self.maximumDepth else { throw error("nesting deeper than \(Self.maximumDepth) levels") }
        guard let byte = current else { throw error("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return Tree.scalar(.string(try parseString()))
        case UInt8(ascii: "t"): try expectLiteral("true"); return Tree.scalar(.bool(true))
        case UInt8(ascii: "f"): try expectLiteral("false"); return Tree.scalar(.bool(false))
        case UInt8(ascii: "n"): try expectLiteral("null"); return Tree.scalar(.null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected character '\(Unicode.Scalar(byte))'")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws {
        let length = literal.utf8CodeUnitCount
        guard length <= bytes.count - position,
              memcmp(bytes.baseAddress! + position, literal.utf8Start, length) == 0 else {  // invariant: non-empty input has a base
            throw error("invalid literal")
        }
        position += length
    }

    mutating func parseObject(depth: Int) throws -> Tree.Value {
        position += 1
        var members = Tree.emptyMembers
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            position += 1
            return Tree.object(members)
        }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let keyOffset = position
            let key = try parseString()
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw error("expected ':' after key") }
            position += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            guard Tree.add(key: key, value: value, to: &members) else {
                throw error("duplicate key \"\(key)\"", at: keyOffset)
            }
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"): position += 1; return Tree.object(members)
            default: throw error("expected ',' or '}' in object")
            }
        }
    }

    mutating func parseArray(depth: Int) throws -> Tree.Value {
        position += 1
        var elements: [Tree.Value] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            position += 1
            return Tree.array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"): position += 1; return Tree.array(elements)
            default: throw error("expected ',' or ']' in array")
            }
        }
    }

    /// Parses a string, keeping its bytes as they are (no Unicode normalization: `String` stores
    /// the validated UTF-8 unchanged, so canonically equivalent spellings stay distinct bytes).
    mutating func parseString() throws -> String {
        position += 1  // opening quote
        let start = position
        // Fast path: no escapes, so the bytes between the quotes are the string.
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
                position += 1
                guard let text = String(validating: slice, as: UTF8.self) else {
                    throw error("string is not valid UTF-8", at: start)
                }
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("control character in string") }
            position += 1
        }
        var utf8 = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
        while true {
            guard let byte = current else { throw error("unterminated string") }
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: utf8, as: UTF8.self) else {
                    throw error("string is not valid UTF-8", at: start)
                }
                return text
            case UInt8(ascii: "\\"):
                guard let escape = current else { throw error("unterminated escape") }
                position += 1
                switch escape {
                case UInt8(ascii: "\""): utf8.append(0x22)
                case UInt8(ascii: "\\"): utf8.append(0x5C)
                case UInt8(ascii: "/"): utf8.append(0x2F)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"): try parseUnicodeEscape(into: &utf8)
                default: throw error("invalid escape '\\\(Unicode.Scalar(escape))'")
                }
            default:
                if byte < 0x20 { throw error("control character in string") }
                utf8.append(byte)
            }
        }
    }

    /// Decodes the hex digits of a `\u` escape (and the low half of a surrogate pair) as UTF-8.
    mutating func parseUnicodeEscape(into utf8: inout [UInt8]) throws {
        var scalar = try parseHex4()
        while (0xD800..<0xDC00).contains(scalar) {
            // A high surrogate must be followed by an escaped low surrogate.
            guard current == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                guard options.replacesUnpairedSurrogates else { throw error("unpaired surrogate in \\u escape") }
                scalar = 0xFFFD
                break
            }
            position += 2
            let low = try parseHex4()
            if (0xDC00..<0xE000).contains(low) {
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                break
            }
            guard options.replacesUnpairedSurrogates else { throw error("invalid low surrogate in \\u escape") }
            // The high half is lost; the escape after it is decoded on its own (it may start a pair).
            Self.appendUTF8(0xFFFD, to: &utf8)
            scalar = low
        }
        if (0xDC00..<0xE000).contains(scalar) {
            guard options.replacesUnpairedSurrogates else { throw error("unpaired surrogate in \\u escape") }
            scalar = 0xFFFD
        }
        Self.appendUTF8(scalar, to: &utf8)
    }

    /// Appends the UTF-8 form of a Unicode scalar value.
    static func appendUTF8(_ scalar: UInt32, to utf8: inout [UInt8]) {
        // invariant: the caller excluded surrogates and four hex digits cannot exceed U+10FFFF.
        utf8.append(contentsOf: Unicode.Scalar(scalar)!.utf8)
    }

    mutating func parseHex4() throws -> UInt32 {
        guard bytes.count - position >= 4 else { throw error("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("invalid hex digit in \\u escape")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    mutating func parseNumber() throws -> Tree.Value {
        let start = position
        if current == UInt8(ascii: "-") { position += 1 }
        guard let first = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { throw error("invalid number") }
        if first == UInt8(ascii: "0") {
            position += 1
        } else {
            skipDigits()
        }
        var isInteger = true
        if current == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard skipDigits() > 0 else { throw error("digits expected after '.'") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard skipDigits() > 0 else { throw error("digits expected in exponent") }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        if isInteger, let value = Int(text) { return Tree.scalar(.int(value)) }
        guard let value = Double(text) else { throw error("invalid number", at: start) }
        return Tree.scalar(.double(value))
    }

    @discardableResult
    mutating func skipDigits() -> Int {
        let start = position
        while let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { position += 1 }
        return position - start
    }
}
