// Python's `json.dumps` as transformers' `tojson` filter calls it: `ensure_ascii=False` by default (so
// non-ASCII text stays as is), no HTML escaping (unlike Jinja's own tojson), `indent` as spaces or a
// string with `","` item separators, floats spelled like Python's `repr`.

struct TemplateJSONWriter {
    var ensureASCII: Bool
    var indent: String?
    var itemSeparator: String
    var keySeparator: String
    var sortKeys: Bool
    var output = ""

    mutating func write(_ value: JinjaValue, level: Int, _ location: TemplateSourceLocation) throws(ChatTemplateError) {
        switch value.demoted {
        case .none: output += "null"
        case .bool(let flag): output += flag ? "true" : "false"
        case .int(let number): output += String(number)
        case .double(let number):
            if number.isNaN { output += "NaN" } else if number.isInfinite {
                output += number < 0 ? "-Infinity" : "Infinity"
            } else {
                output += pythonFloatRepresentation(number)
            }
        case .string(let text), .markup(let text): writeString(text)
        case .array(let items), .tuple(let items):
            try writeContainer(items.map { (nil, $0) }, open: "[", close: "]", level: level, location)
        case .dictionary(let dictionary):
            var pairs: [(key: String, value: JinjaValue, original: JinjaValue)] = []
            for pair in dictionary.pairs {
                let key: String
                switch pair.key {
                case .string(let text): key = text
                case .int(let number): key = String(number)
                case .double(let number): key = pythonFloatRepresentation(number)
                case .bool(let flag): key = flag ? "true" : "false"
                case .none: key = "null"
                default:
                    throw location.runtimeError(
                        "keys must be str, int, float, bool or None, not \(pair.key.typeName)")
                }
                pairs.append((key, pair.value, pair.key))
            }
            if sortKeys {
                // Python sorts the original keys; mixing strings and numbers is a TypeError there.
                let allStrings = pairs.allSatisfy { if case .string = $0.original { return true } else { return false } }
                let allNumbers = pairs.allSatisfy { $0.original.numericValue != nil }
                guard allStrings || allNumbers else {
                    throw location.runtimeError("'<' not supported between instances of 'int' and 'str'")
                }
                if allStrings {
                    pairs.sort { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) }
                } else {
                    pairs.sort { ($0.original.numericValue ?? 0) < ($1.original.numericValue ?? 0) }
                }
            }
            try writeContainer(pairs.map { ($0.key, $0.value) }, open: "{", close: "}", level: level, location)
        case .undefined, .namespace, .function, .iterator, .failedIterator, .view, .range:
            let typeName = value.isUndefined ? "Undefined" : value.typeName
            throw location.runtimeError("Object of type \(typeName) is not JSON serializable")
        }
    }

    private mutating func writeContainer(_ entries: [(String?, JinjaValue)], open: String, close: String, level: Int,
                                         _ location: TemplateSourceLocation) throws(ChatTemplateError)
    {
        guard !entries.isEmpty else {
            output += open + close
            return
        }
        output += open
        let innerIndent = indent.map { "\n" + String(repeating: $0, count: level + 1) }
        for (index, entry) in entries.enumerated() {
            if index > 0 { output += itemSeparator }
            if let innerIndent { output += innerIndent }
            if let key = entry.0 {
                writeString(key)
                output += keySeparator
            }
            try write(entry.1, level: level + 1, location)
        }
        if let indent { output += "\n" + String(repeating: indent, count: level) }
        output += close
    }

    private mutating func writeString(_ text: String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            default:
                if scalar.value < 0x20 || (ensureASCII && scalar.value > 0x7E) {
                    if scalar.value > 0xFFFF {
                        let offset = scalar.value - 0x10000
                        output += hexEscape(0xD800 + (offset >> 10)) + hexEscape(0xDC00 + (offset & 0x3FF))
                    } else {
                        output += hexEscape(scalar.value)
                    }
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        output += "\""
    }

    private func hexEscape(_ value: UInt32) -> String {
        let hex = String(value, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}
