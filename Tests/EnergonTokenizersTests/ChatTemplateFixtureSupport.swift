import EnergonTokenizers
import Foundation

/// Loads the fixtures made by scripts/make_template_fixtures.py. The JSON is parsed by a small
/// order-preserving parser (Foundation's JSONSerialization forgets key order, and templates print keys
/// in order, e.g. through `tojson`).
enum ChatTemplateFixtures {
    static let directory: URL = {
        // invariant: the test target copies Fixtures/ as a resource
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    }()

    static func load() throws -> TemplateObject {
        let data = try Data(contentsOf: directory.appendingPathComponent("templates/chat_templates.json"))
        var parser = OrderedJSONParser(bytes: Array(data))
        guard case .object(let root) = try parser.parse() else { throw FixtureError.malformed("root is not an object") }
        return root
    }

    static func templateSource(_ relativePath: String) throws -> String {
        let data = try Data(contentsOf: directory.appendingPathComponent(relativePath))
        guard let text = String(data: data, encoding: .utf8) else { throw FixtureError.malformed(relativePath) }
        return text
    }
}

enum FixtureError: Error {
    case malformed(String)
}

extension TemplateValue {
    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var arrayValue: [TemplateValue] {
        if case .array(let items) = self { return items }
        return []
    }

    var objectValue: TemplateObject {
        if case .object(let object) = self { return object }
        return TemplateObject()
    }

    var boolValue: Bool {
        if case .bool(let flag) = self { return flag }
        return false
    }

    var intValue: Int? {
        if case .int(let number) = self { return number }
        return nil
    }
}

/// A strict RFC 8259 parser producing `TemplateValue` with ordered objects; integers stay integers.
struct OrderedJSONParser {
    let bytes: [UInt8]
    var position = 0

    mutating func parse() throws -> TemplateValue {
        let value = try parseValue()
        skipWhitespace()
        guard position == bytes.count else { throw FixtureError.malformed("trailing data at \(position)") }
        return value
    }

    private mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    private mutating func expect(_ literal: String) throws {
        for byte in literal.utf8 {
            guard position < bytes.count, bytes[position] == byte else {
                throw FixtureError.malformed("expected \(literal) at \(position)")
            }
            position += 1
        }
    }

    private mutating func parseValue() throws -> TemplateValue {
        skipWhitespace()
        guard position < bytes.count else { throw FixtureError.malformed("unexpected end") }
        switch bytes[position] {
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "["):
            position += 1
            var items: [TemplateValue] = []
            skipWhitespace()
            if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(items) }
            while true {
                items.append(try parseValue())
                skipWhitespace()
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                try expect("]")
                return .array(items)
            }
        case UInt8(ascii: "{"):
            position += 1
            var object = TemplateObject()
            skipWhitespace()
            if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(object) }
            while true {
                skipWhitespace()
                let key = try parseString()
                skipWhitespace()
                try expect(":")
                object[key] = try parseValue()
                skipWhitespace()
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                try expect("}")
                return .object(object)
            }
        default:
            let start = position
            while position < bytes.count, "+-0123456789.eE".utf8.contains(bytes[position]) { position += 1 }
            let text = String(decoding: bytes[start..<position], as: UTF8.self)
            if let integer = Int(text) { return .int(integer) }
            if let double = Double(text) { return .double(double) }
            throw FixtureError.malformed("bad number \(text) at \(start)")
        }
    }

    private mutating func parseString() throws -> String {
        try expect("\"")
        var scalars = String.UnicodeScalarView()
        var pendingHighSurrogate: UInt32? = nil
        var raw: [UInt8] = []
        func flushRaw() {
            scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
            raw.removeAll()
        }
        while true {
            guard position < bytes.count else { throw FixtureError.malformed("unterminated string") }
            let byte = bytes[position]
            position += 1
            if byte == UInt8(ascii: "\"") {
                flushRaw()
                return String(scalars)
            }
            guard byte == UInt8(ascii: "\\") else {
                raw.append(byte)
                continue
            }
            flushRaw()
            let escaped = bytes[position]
            position += 1
            switch escaped {
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "u"):
                let hex = String(decoding: bytes[position..<(position + 4)], as: UTF8.self)
                position += 4
                guard let value = UInt32(hex, radix: 16) else { throw FixtureError.malformed("bad \\u escape") }
                if (0xD800..<0xDC00).contains(value) {
                    pendingHighSurrogate = value
                } else if (0xDC00..<0xE000).contains(value), let high = pendingHighSurrogate {
                    let combined = 0x10000 + ((high - 0xD800) << 10) + (value - 0xDC00)
                    pendingHighSurrogate = nil
                    guard let scalar = Unicode.Scalar(combined) else { throw FixtureError.malformed("bad pair") }
                    scalars.append(scalar)
                } else {
                    guard let scalar = Unicode.Scalar(value) else { throw FixtureError.malformed("bad scalar") }
                    scalars.append(scalar)
                }
            default: scalars.append(Unicode.Scalar(escaped))
            }
        }
    }
}
