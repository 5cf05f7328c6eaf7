// Jinja's `is` tests (jinja2/tests.py) and the global functions transformers' environment provides:
// Jinja's `range`, `dict`, `namespace`, plus transformers' `raise_exception` and `strftime_now`.

import Foundation

extension TemplateRenderer {
    func applyTest(_ name: String, _ rawValue: JinjaValue, _ arguments: JinjaArguments) throws(ChatTemplateError) -> Bool {
        let value = rawValue.demoted
        let location = arguments.location
        let takesArgument: Set<String> = ["divisibleby", "sameas", "in", "eq", "equalto", "==", "ne", "!=", "lt",
                                          "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">="]
        let given = arguments.positional.count + arguments.keyword.count
        if given > (takesArgument.contains(name) ? 1 : 0) {
            throw location.runtimeError("test `\(name)` takes \(takesArgument.contains(name) ? 1 : 0) argument(s), \(given) given")
        }
        func argument() throws(ChatTemplateError) -> JinjaValue {
            guard let first = arguments.positional.first ?? arguments.keyword.first?.1 else {
                throw location.runtimeError("test `\(name)` needs an argument")
            }
            return first
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none":
            if case .none = value { return true }
            return false
        case "boolean":
            if case .bool = value { return true }
            return false
        case "true":
            if case .bool(true) = value { return true }
            return false
        case "false":
            if case .bool(false) = value { return true }
            return false
        case "integer":
            if case .int = value { return true }
            return false
        case "float":
            if case .double = value { return true }
            return false
        case "number": return value.numericValue != nil
        case "string":
            if case .string = value { return true }
            return false
        case "mapping":
            if case .dictionary = value { return true }
            return false
        case "iterable":
            switch value {
            case .undefined, .string, .array, .tuple, .dictionary, .iterator, .failedIterator, .view, .range: return true
            default: return false
            }
        case "sequence":
            switch value {
            case .undefined, .string, .array, .tuple, .dictionary, .view, .range: return true
            default: return false
            }
        case "callable":
            switch value {
            case .function, .undefined: return true  // Jinja's Undefined defines __call__ (it raises)
            default: return false
            }
        case "even", "odd", "divisibleby":
            // value % 2 == 0 (or == 1, or % num == 0) with Python's numeric semantics, floats included.
            let divisor = name == "divisibleby" ? try argument() : .int(2)
            let remainder = try arithmetic(.modulo, value, divisor, location)
            return remainder.equals(.int(name == "odd" ? 1 : 0))
        case "eq", "equalto", "==": return value.equals(try argument())
        case "ne", "!=": return !value.equals(try argument())
        case "lt", "lessthan", "<": return try compare(.less, value, try argument(), location)
        case "le", "<=": return try compare(.lessOrEqual, value, try argument(), location)
        case "gt", "greaterthan", ">": return try compare(.greater, value, try argument(), location)
        case "ge", ">=": return try compare(.greaterOrEqual, value, try argument(), location)
        case "in": return try contains(try argument(), value, location)
        case "sameas":
            let other = try argument()
            switch (value, other) {
            case (.none, .none), (.bool(true), .bool(true)), (.bool(false), .bool(false)): return true
            case (.namespace(let left), .namespace(let right)): return left === right
            case (.function(let left), .function(let right)): return left === right
            default: return false
            }
        case "lower", "upper":
            // str(value).islower() / .isupper(): some cased character, and all cased ones in that case.
            return pythonIsCase(value.string, lower: name == "lower")
        case "filter": return jinjaFilterNames.contains(value.string)
        case "test": return jinjaTestNames.contains(value.string)
        case "escaped": return rawValue.isMarkup
        default:
            throw location.runtimeError("test `\(name)` is not supported")
        }
    }
}

/// Every filter name Jinja 3.1 defines (jinja2/filters.py FILTERS). A name outside this set is a syntax
/// error, as in Jinja (which checks names when it compiles); the few defined here but not implemented
/// (`wordwrap`, `urlize`, ...) fail only when a render reaches them.
let jinjaFilterNames: Set<String> = [
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
    "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "join", "last",
    "length", "list", "lower", "items", "map", "min", "max", "pprint", "random", "reject", "rejectattr",
    "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags", "sum",
    "title", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
    "tojson",
]

/// Every test name Jinja 3.1 defines (jinja2/tests.py TESTS).
let jinjaTestNames: Set<String> = [
    "odd", "even", "divisibleby", "defined", "undefined", "filter", "test", "none", "boolean", "false", "true",
    "integer", "float", "number", "string", "mapping", "iterable", "sequence", "callable", "sameas", "escaped",
    "in", "lower", "upper", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt",
    "greaterthan", ">", "ge", ">=",
]

/// The functions every template can call.
func makeGlobalFunctions(now: time_t) -> [String: JinjaValue] {
    var globals: [String: JinjaValue] = [:]
    globals["raise_exception"] = .function(JinjaFunction(name: "raise_exception") { arguments throws(ChatTemplateError) in
        let message = arguments.value(0, "message")?.string ?? ""
        throw ChatTemplateError(kind: .raised, message: message, line: arguments.location.line,
                                column: arguments.location.column)
    })
    globals["range"] = .function(JinjaFunction(name: "range") { arguments throws(ChatTemplateError) in
        let numbers = arguments.positional.map(\.integerValue)
        guard !numbers.isEmpty, numbers.count <= 3, !numbers.contains(where: { $0 == nil }) else {
            throw arguments.location.runtimeError("range expects 1 to 3 integer arguments")
        }
        let values = numbers.compactMap { $0 }
        let start = values.count > 1 ? values[0] : 0
        let stop = values.count > 1 ? values[1] : values[0]
        let step = values.count > 2 ? values[2] : 1
        guard step != 0 else { throw arguments.location.runtimeError("range() arg 3 must not be zero") }
        let range = JinjaRange(start: start, stop: stop, step: step)
        guard range.count <= 100_000 else {
            throw arguments.location.runtimeError("range too big, the sandbox blocks ranges larger than 100000")
        }
        return .range(range)
    })
    globals["namespace"] = .function(JinjaFunction(name: "namespace") { arguments throws(ChatTemplateError) in
        var attributes = JinjaDictionary()
        for positional in arguments.positional {
            guard case .dictionary(let dictionary) = positional else {
                throw arguments.location.runtimeError("namespace() positional argument must be a dict")
            }
            for pair in dictionary.pairs { attributes.set(pair.key, pair.value) }
        }
        for (key, value) in arguments.keyword { attributes[key] = value }
        return .namespace(JinjaNamespace(attributes))
    })
    globals["dict"] = .function(JinjaFunction(name: "dict") { arguments throws(ChatTemplateError) in
        var dictionary = JinjaDictionary()
        for positional in arguments.positional {
            guard case .dictionary(let source) = positional else {
                throw arguments.location.runtimeError("dict() positional argument must be a dict")
            }
            for pair in source.pairs { dictionary.set(pair.key, pair.value) }
        }
        for (key, value) in arguments.keyword { dictionary[key] = value }
        return .dictionary(dictionary)
    })
    globals["strftime_now"] = .function(JinjaFunction(name: "strftime_now") { arguments throws(ChatTemplateError) in
        guard case .string(let format)? = arguments.value(0, "format") else {
            throw arguments.location.runtimeError("strftime_now expects a format string")
        }
        return .string(formatLocalTime(format, now))
    })
    return globals
}

/// A time formatted in the local time zone with C's `strftime` (what Python's `datetime.now().strftime`
/// uses).
func formatLocalTime(_ format: String, _ time: time_t) -> String {
    var now = time
    var parts = tm()
    localtime_r(&now, &parts)
    var buffer = [CChar](repeating: 0, count: 512)
    let length = strftime(&buffer, buffer.count, format, &parts)
    return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
