// The interpreter's value model: Python's types as Jinja templates see them, plus Jinja's Undefined.
// Printing follows Python's `str()` (lists print their items with `repr()`), truthiness follows Python,
// equality follows Python (1 == 1.0 == True, a list never equals a tuple).

/// A string-keyed dictionary that keeps insertion order (Python `dict`).
struct JinjaDictionary {
    private(set) var keys: [String] = []
    private var storage: [String: JinjaValue] = [:]

    init() {}

    init(_ pairs: [(String, JinjaValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    subscript(key: String) -> JinjaValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    var pairs: [(key: String, value: JinjaValue)] {
        // invariant: `keys` and `storage` hold the same key set
        keys.map { ($0, storage[$0]!) }
    }

    var count: Int { keys.count }
}

/// Mutable attribute bag made by `namespace()`: the one way a template carries state out of a loop.
final class JinjaNamespace {
    var attributes: JinjaDictionary
    init(_ attributes: JinjaDictionary) { self.attributes = attributes }
}

/// Positional and keyword arguments of a call.
struct JinjaArguments {
    var positional: [JinjaValue] = []
    var keyword: [(String, JinjaValue)] = []
    var location: TemplateSourceLocation

    func keywordValue(_ name: String) -> JinjaValue? {
        keyword.last(where: { $0.0 == name })?.1
    }

    /// The argument at `position` or named `name`, or nil when absent.
    func value(_ position: Int, _ name: String) -> JinjaValue? {
        if position < positional.count { return positional[position] }
        return keywordValue(name)
    }
}

/// A callable value: a global function, a bound method, a macro or `caller`.
final class JinjaFunction {
    let name: String
    let body: (JinjaArguments) throws(ChatTemplateError) -> JinjaValue
    init(name: String, body: @escaping (JinjaArguments) throws(ChatTemplateError) -> JinjaValue) {
        self.name = name
        self.body = body
    }
}

enum JinjaValue {
    /// Jinja's Undefined; the payload explains why, for the error raised if it is used as a value.
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    case tuple([JinjaValue])
    case dictionary(JinjaDictionary)
    case namespace(JinjaNamespace)
    case function(JinjaFunction)

    init(_ value: TemplateValue) {
        switch value {
        case .null: self = .none
        case .bool(let flag): self = .bool(flag)
        case .int(let number): self = .int(number)
        case .double(let number): self = .double(number)
        case .string(let text): self = .string(text)
        case .array(let items): self = .array(items.map(JinjaValue.init))
        case .object(let object): self = .dictionary(JinjaDictionary(object.pairs.map { ($0.key, JinjaValue($0.value)) }))
        }
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    /// Python truthiness; Undefined is false.
    var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let flag): return flag
        case .int(let number): return number != 0
        case .double(let number): return number != 0
        case .string(let text): return !text.isEmpty
        case .array(let items), .tuple(let items): return !items.isEmpty
        case .dictionary(let dictionary): return dictionary.count > 0
        case .namespace, .function: return true
        }
    }

    /// Python's type name, for error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .tuple: return "tuple"
        case .dictionary: return "dict"
        case .namespace: return "JinjaNamespace"
        case .function: return "function"
        }
    }

    /// A number as Double when the value is numeric (bool, int, float).
    var numericValue: Double? {
        switch self {
        case .bool(let flag): return flag ? 1 : 0
        case .int(let number): return Double(number)
        case .double(let number): return number
        default: return nil
        }
    }

    /// An integer when the value is a bool or int.
    var integerValue: Int? {
        switch self {
        case .bool(let flag): return flag ? 1 : 0
        case .int(let number): return number
        default: return nil
        }
    }

    /// Python `str(value)`; Undefined prints as the empty string.
    var string: String {
        switch self {
        case .undefined: return ""
        case .string(let text): return text
        default: return representation
        }
    }

    /// Python `repr(value)`.
    var representation: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let flag): return flag ? "True" : "False"
        case .int(let number): return String(number)
        case .double(let number): return pythonFloatRepresentation(number)
        case .string(let text): return pythonStringRepresentation(text)
        case .array(let items): return "[" + items.map(\.representation).joined(separator: ", ") + "]"
        case .tuple(let items):
            if items.count == 1 { return "(" + items[0].representation + ",)" }
            return "(" + items.map(\.representation).joined(separator: ", ") + ")"
        case .dictionary(let dictionary):
            return "{" + dictionary.pairs.map { pythonStringRepresentation($0.key) + ": " + $0.value.representation }
                .joined(separator: ", ") + "}"
        case .namespace(let namespace):
            return "<JinjaNamespace " + JinjaValue.dictionary(namespace.attributes).representation + ">"
        case .function(let function): return "<function \(function.name)>"
        }
    }

    /// Python `==` (Undefined equals only Undefined).
    func equals(_ other: JinjaValue) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let left), .string(let right)): return left.unicodeScalars.elementsEqual(right.unicodeScalars)
        case (.array(let left), .array(let right)), (.tuple(let left), .tuple(let right)):
            return left.count == right.count && zip(left, right).allSatisfy { $0.equals($1) }
        case (.dictionary(let left), .dictionary(let right)):
            return left.count == right.count
                && left.pairs.allSatisfy { pair in right[pair.key].map { pair.value.equals($0) } ?? false }
        case (.namespace(let left), .namespace(let right)): return left === right
        case (.function(let left), .function(let right)): return left === right
        default:
            if let left = integerValue, let right = other.integerValue { return left == right }
            if let left = numericValue, let right = other.numericValue { return left == right }
            return false
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, `1e+20` / `1e-05` style exponents, `inf`, `nan`.
func pythonFloatRepresentation(_ number: Double) -> String {
    if number.isNaN { return "nan" }
    if number.isInfinite { return number < 0 ? "-inf" : "inf" }
    // Swift's description already gives the shortest round-trip digits and switches to exponent form at
    // the same magnitudes as Python (>= 1e16, < 1e-4); only the exponent spelling differs.
    var text = number.description
    if let exponentIndex = text.firstIndex(of: "e") {
        var mantissa = String(text[..<exponentIndex])
        var exponent = String(text[text.index(after: exponentIndex)...])
        if mantissa.hasSuffix(".0") { mantissa.removeLast(2) }
        var sign = "+"
        if exponent.hasPrefix("-") { sign = "-"; exponent.removeFirst() } else if exponent.hasPrefix("+") {
            exponent.removeFirst()
        }
        if exponent.count < 2 { exponent = "0" + exponent }
        text = mantissa + "e" + sign + exponent
    } else if !text.contains(".") {
        text += ".0"
    }
    return text
}

/// Whether Python's `str.isprintable` holds for a scalar (what `repr` leaves unescaped).
private func isPythonPrintable(_ scalar: Unicode.Scalar) -> Bool {
    if scalar == " " { return true }
    switch scalar.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator,
        .spaceSeparator:
        return false
    default:
        return true
    }
}

/// Python's `repr(str)`: single quotes unless the text has a single quote and no double quote.
func pythonStringRepresentation(_ text: String) -> String {
    let quote: Unicode.Scalar = text.contains("'") && !text.contains("\"") ? "\"" : "'"
    var result = String.UnicodeScalarView()
    result.append(quote)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\\": result.append(contentsOf: "\\\\".unicodeScalars)
        case "\n": result.append(contentsOf: "\\n".unicodeScalars)
        case "\r": result.append(contentsOf: "\\r".unicodeScalars)
        case "\t": result.append(contentsOf: "\\t".unicodeScalars)
        default:
            if scalar == quote {
                result.append("\\")
                result.append(scalar)
            } else if isPythonPrintable(scalar) {
                result.append(scalar)
            } else {
                let hex = String(scalar.value, radix: 16)
                let (prefix, width) = scalar.value < 0x100 ? ("\\x", 2) : scalar.value < 0x10000 ? ("\\u", 4) : ("\\U", 8)
                result.append(contentsOf: (prefix + String(repeating: "0", count: width - hex.count) + hex).unicodeScalars)
            }
        }
    }
    result.append(quote)
    return String(result)
}
