// The interpreter's value model: Python's types as Jinja templates see them, plus Jinja's Undefined.
// Printing follows Python's `str()` (lists print their items with `repr()`), truthiness follows Python,
// equality follows Python (1 == 1.0 == True, a list never equals a tuple).

/// A dictionary key as Python hashes it: 1, 1.0 and True are the same key.
enum JinjaDictionaryKey: Hashable {
    case string(String)
    case integer(Int)
    case float(Double)
    case none
    case tuple([JinjaDictionaryKey])

    /// The key for a value, or nil when the value is unhashable (list, dict, ...).
    init?(_ value: JinjaValue) {
        switch value {
        case .string(let text): self = .string(text)
        case .int(let number): self = .integer(number)
        case .bool(let flag): self = .integer(flag ? 1 : 0)
        case .double(let number):
            if number == number.rounded(), abs(number) < 9.2e18 { self = .integer(Int(number)) } else { self = .float(number) }
        case .none: self = .none
        case .tuple(let items):
            var keys: [JinjaDictionaryKey] = []
            for item in items {
                guard let key = JinjaDictionaryKey(item) else { return nil }
                keys.append(key)
            }
            self = .tuple(keys)
        default: return nil
        }
    }
}

/// A dictionary that keeps insertion order (Python `dict`); keys are any hashable value.
struct JinjaDictionary {
    private(set) var keys: [JinjaValue] = []
    private var storage: [JinjaDictionaryKey: (key: JinjaValue, value: JinjaValue)] = [:]

    init() {}

    init(_ pairs: [(String, JinjaValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    subscript(key: String) -> JinjaValue? {
        get { storage[.string(key)]?.value }
        set {
            if let newValue {
                set(.string(key), newValue)
            } else if storage.removeValue(forKey: .string(key)) != nil {
                keys.removeAll { JinjaDictionaryKey($0) == .string(key) }
            }
        }
    }

    /// Lookup by any value; an unhashable key finds nothing.
    func value(for key: JinjaValue) -> JinjaValue? {
        JinjaDictionaryKey(key).flatMap { storage[$0]?.value }
    }

    /// Stores `value` under a hashable key; returns false for an unhashable key.
    @discardableResult
    mutating func set(_ key: JinjaValue, _ value: JinjaValue) -> Bool {
        guard let hashed = JinjaDictionaryKey(key) else { return false }
        if let existing = storage[hashed] {
            storage[hashed] = (existing.key, value)  // Python keeps the first key object
        } else {
            storage[hashed] = (key, value)
            keys.append(key)
        }
        return true
    }

    var pairs: [(key: JinjaValue, value: JinjaValue)] {
        keys.map { key in
            // invariant: every entry of `keys` is hashable and stored
            storage[JinjaDictionaryKey(key)!]!
        }
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
    /// markupsafe's `Markup` (made by `|safe` and `|escape`): a string that escapes what is added to it.
    case markup(String)
    case array([JinjaValue])
    case tuple([JinjaValue])
    case dictionary(JinjaDictionary)
    /// A one-pass Python iterator (what `map`, `select`, `items`, `unique`, ... return in Jinja): iterable,
    /// always true, without a length, not JSON-serializable.
    case iterator([JinjaValue])
    /// A generator over a value that cannot be iterated (`2.5 | unique`): Jinja's filters are lazy, so
    /// the error only surfaces when something consumes it.
    case failedIterator(String)
    /// A dictionary view (`dict_keys`, `dict_values`, `dict_items`) from `keys()`, `values()`, `items()`:
    /// iterable, sized, true when non-empty, not JSON-serializable.
    case view(String, [JinjaValue])
    /// Python's `range` object (from `range()`): a sized, indexable sequence of integers that prints
    /// as `range(0, 3)` and is not JSON-serializable.
    case range(JinjaRange)
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

    var isMarkup: Bool {
        if case .markup = self { return true }
        return false
    }

    /// Markup as a plain string: every operation but `+` and the escaping filters treats it as one.
    var demoted: JinjaValue {
        if case .markup(let text) = self { return .string(text) }
        return self
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
        case .string(let text), .markup(let text): return !text.isEmpty
        case .array(let items), .tuple(let items): return !items.isEmpty
        case .range(let range): return range.count > 0
        case .dictionary(let dictionary): return dictionary.count > 0
        case .namespace, .function, .iterator, .failedIterator: return true
        case .view(_, let items): return !items.isEmpty
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
        case .markup: return "Markup"
        case .array: return "list"
        case .tuple: return "tuple"
        case .dictionary: return "dict"
        case .iterator, .failedIterator: return "generator"
        case .view(let kind, _): return kind
        case .range: return "range"
        case .namespace: return "Namespace"
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
        case .string(let text), .markup(let text): return text
        default: return representation
        }
    }

    /// Python `repr(value)`.
    var representation: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "None"
        case .bool(let flag): return flag ? "True" : "False"
        case .int(let number): return String(number)
        case .double(let number): return pythonFloatRepresentation(number)
        case .string(let text): return pythonStringRepresentation(text)
        case .markup(let text): return "Markup(" + pythonStringRepresentation(text) + ")"
        case .array(let items): return "[" + items.map(\.representation).joined(separator: ", ") + "]"
        case .range(let range):
            return "range(\(range.start), \(range.stop)" + (range.step == 1 ? ")" : ", \(range.step))")
        case .tuple(let items):
            if items.count == 1 { return "(" + items[0].representation + ",)" }
            return "(" + items.map(\.representation).joined(separator: ", ") + ")"
        case .dictionary(let dictionary):
            return "{" + dictionary.pairs.map { $0.key.representation + ": " + $0.value.representation }
                .joined(separator: ", ") + "}"
        case .namespace(let namespace):
            return "<Namespace " + JinjaValue.dictionary(namespace.attributes).representation + ">"
        case .function(let function): return "<function \(function.name)>"
        case .iterator, .failedIterator: return "<generator object>"
        case .view(let kind, let items): return kind + "(" + JinjaValue.array(items).representation + ")"
        }
    }

    /// Python `==` (Undefined equals only Undefined).
    func equals(_ other: JinjaValue) -> Bool {
        switch (self.demoted, other.demoted) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let left), .string(let right)): return left.unicodeScalars.elementsEqual(right.unicodeScalars)
        case (.array(let left), .array(let right)), (.tuple(let left), .tuple(let right)):
            return left.count == right.count && zip(left, right).allSatisfy { $0.equals($1) }
        case (.dictionary(let left), .dictionary(let right)):
            return left.count == right.count
                && left.pairs.allSatisfy { pair in right.value(for: pair.key).map { pair.value.equals($0) } ?? false }
        case (.namespace(let left), .namespace(let right)): return left === right
        case (.range(let left), .range(let right)): return left.elements.elementsEqual(right.elements)
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

/// `range(start, stop, step)` with Python's element rule (step is never zero).
struct JinjaRange {
    var start: Int
    var stop: Int
    var step: Int

    /// The number of elements (computed in 128 bits: the bounds come from the template and may be extreme;
    /// `range()` refuses more than 100,000 elements, so the result fits).
    var count: Int {
        let (start, stop, step) = (Int128(start), Int128(stop), Int128(step))
        let count = step > 0 ? max(0, (stop - start + step - 1) / step) : max(0, (start - stop - step - 1) / -step)
        return Int(clamping: count)
    }

    var elements: [Int] { (0..<count).map { start + $0 * step } }

    var values: [JinjaValue] { elements.map(JinjaValue.int) }
}
