// Jinja's built-in filters that chat templates use, with jinja2/filters.py semantics (for example `sort`,
// `unique` and `dictsort` ignore case by default; `round` rounds half to even like Python's `round`),
// plus transformers' own `tojson` (json.dumps without HTML escaping, ensure_ascii=False by default).

import Foundation

extension TemplateRenderer {
    func applyFilter(_ name: String, _ rawValue: JinjaValue, _ arguments: JinjaArguments) throws(ChatTemplateError) -> JinjaValue {
        switch name {
        case "safe": return rawValue.isMarkup ? rawValue : .markup(rawValue.string)
        case "escape", "e": return rawValue.isMarkup ? rawValue : .markup(htmlEscape(rawValue.string))
        case "forceescape": return .markup(htmlEscape(rawValue.string))
        default: break
        }
        let value = rawValue.demoted
        let location = arguments.location
        func text() -> String { value.string }
        switch name {
        case "string":
            return .string(text())
        case "trim":
            let characters: String?
            if case .string(let chars)? = arguments.value(0, "chars") { characters = chars } else { characters = nil }
            return .string(pythonStrip(text(), characters, leading: true, trailing: true))
        case "upper": return .string(text().uppercased())
        case "lower": return .string(pythonLowercase(text()))
        case "capitalize": return .string(pythonCapitalize(text()))
        case "title": return .string(jinjaTitle(text()))
        case "length", "count":
            switch value {
            case .undefined: return .int(0)
            case .string(let string): return .int(string.unicodeScalars.count)
            case .array(let items), .tuple(let items): return .int(items.count)
            case .range(let range): return .int(range.count)
            case .dictionary(let dictionary): return .int(dictionary.count)
            case .namespace(let namespace): return .int(namespace.attributes.count)
            case .view(_, let items): return .int(items.count)
            default: throw location.runtimeError("object of type '\(value.typeName)' has no len()")
            }
        case "default", "d":
            let fallback = arguments.value(0, "default_value") ?? .string("")
            let boolean = arguments.value(1, "boolean")?.isTruthy ?? false
            if value.isUndefined || (boolean && !value.isTruthy) { return fallback }
            return value
        case "join":
            let separator = arguments.value(0, "d")?.string ?? ""
            var items = try iterate(value, location)
            if let attribute = arguments.value(1, "attribute") {
                var mapped: [JinjaValue] = []
                for item in items { mapped.append(try lookupPath(item, attribute, location)) }
                items = mapped
            }
            return .string(items.map(\.string).joined(separator: separator))
        case "first":
            return try iterate(value, location).first ?? .undefined("No first item, sequence was empty.")
        case "last":
            if case .undefined = value { return .undefined("No last item, sequence was empty.") }
            switch value {
            case .iterator, .failedIterator: throw location.runtimeError("'generator' object is not reversible")
            default: break
            }
            return try iterate(value, location).last ?? .undefined("No last item, sequence was empty.")
        case "list": return .array(try iterate(value, location))
        case "reverse":
            if case .string(let string) = value { return .string(String(string.unicodeScalars.reversed().map(Character.init))) }
            if case .iterator(let items) = value { return .array(items.reversed()) }  // Python: list(value) reversed
            return .iterator(try iterate(value, location).reversed())
        case "int":
            if case .undefined(let reason) = value { throw location.runtimeError(reason) }
            let fallback = arguments.value(0, "default") ?? .int(0)
            switch value {
            case .int, .bool: return .int(value.integerValue ?? 0)
            case .double(let number):
                guard number.isFinite, abs(number) < 9.2e18 else { return fallback }
                return .int(Int(number.rounded(.towardZero)))
            case .string(let string):
                let trimmed = pythonStrip(string, nil, leading: true, trailing: true).replacingOccurrences(of: "_", with: "")
                if let number = Int(trimmed) { return .int(number) }
                if let number = Double(trimmed), number.isFinite, abs(number) < 9.2e18 {
                    return .int(Int(number.rounded(.towardZero)))
                }
                return fallback
            default: return fallback
            }
        case "float":
            if case .undefined(let reason) = value { throw location.runtimeError(reason) }
            let fallback = arguments.value(0, "default") ?? .double(0)
            switch value {
            case .int, .bool, .double: return .double(value.numericValue ?? 0)
            case .string(let string):
                return Double(pythonStrip(string, nil, leading: true, trailing: true)).map(JinjaValue.double) ?? fallback
            default: return fallback
            }
        case "abs":
            switch value {
            case .int(let number): return .int(abs(number))
            case .bool(let flag): return .int(flag ? 1 : 0)
            case .double(let number): return .double(abs(number))
            default: throw location.runtimeError("bad operand type for abs(): '\(value.typeName)'")
            }
        case "round":
            guard let number = value.numericValue else {
                throw location.runtimeError("type \(value.typeName) doesn't define __round__ method")
            }
            let precision = arguments.value(0, "precision")?.integerValue ?? 0
            let method = arguments.value(1, "method")?.string ?? "common"
            let scale = pow(10.0, Double(precision))
            switch method {
            case "common" where value.integerValue != nil:
                return .int(value.integerValue ?? 0)  // Python's round(int, n) stays an int
            case "common": return .double(Double(formatFixed(number, digits: max(precision, 0))) ?? number)
            case "ceil": return .double((number * scale).rounded(.up) / scale)
            case "floor": return .double((number * scale).rounded(.down) / scale)
            default: throw location.runtimeError("method must be common, ceil or floor")
            }
        case "tojson":
            let ensureASCII = arguments.value(0, "ensure_ascii")?.isTruthy ?? false
            let indentValue = arguments.value(1, "indent") ?? .none
            var indent: String? = nil
            if let count = indentValue.integerValue { indent = String(repeating: " ", count: max(count, 0)) }
            if case .string(let string) = indentValue { indent = string }
            var itemSeparator = indent == nil ? ", " : ","
            var keySeparator = ": "
            if let separators = arguments.value(2, "separators"), case .tuple(let pair) = separators, pair.count == 2 {
                itemSeparator = pair[0].string
                keySeparator = pair[1].string
            } else if let separators = arguments.value(2, "separators"), case .array(let pair) = separators, pair.count == 2 {
                itemSeparator = pair[0].string
                keySeparator = pair[1].string
            }
            let sortKeys = arguments.value(3, "sort_keys")?.isTruthy ?? false
            var writer = TemplateJSONWriter(ensureASCII: ensureASCII, indent: indent, itemSeparator: itemSeparator,
                                    keySeparator: keySeparator, sortKeys: sortKeys)
            try writer.write(value, level: 0, location)
            return .string(writer.output)
        case "items":
            switch value {
            case .undefined: return .iterator([])
            case .dictionary(let dictionary): return .iterator(dictionary.pairs.map { .tuple([$0.key, $0.value]) })
            default: return .failedIterator("Can only get item pairs from a mapping.")
            }
        case "dictsort":
            guard case .dictionary(let dictionary) = value else {
                throw location.runtimeError("dictsort expects a mapping, got \(value.typeName)")
            }
            let caseSensitive = arguments.value(0, "case_sensitive")?.isTruthy ?? false
            let byValue = arguments.value(1, "by")?.string == "value"
            let reverse = arguments.value(2, "reverse")?.isTruthy ?? false
            let pairs = dictionary.pairs.map { JinjaValue.tuple([$0.key, $0.value]) }
            return .array(try stableSort(pairs, reverse: reverse, location) { pair throws(ChatTemplateError) in
                guard case .tuple(let items) = pair else { return pair }
                return caseInsensitiveKey(items[byValue ? 1 : 0], caseSensitive)
            })
        case "sort":
            let reverse = arguments.value(0, "reverse")?.isTruthy ?? false
            let caseSensitive = arguments.value(1, "case_sensitive")?.isTruthy ?? false
            let attribute = arguments.value(2, "attribute")
            return .array(try stableSort(try iterate(value, location), reverse: reverse, location) { item throws(ChatTemplateError) in
                let key = try attribute.map { path throws(ChatTemplateError) in try lookupPath(item, path, location) } ?? item
                return caseInsensitiveKey(key, caseSensitive)
            })
        case "unique":
            let caseSensitive = arguments.value(0, "case_sensitive")?.isTruthy ?? false
            let attribute = arguments.value(1, "attribute")
            var seen: [JinjaValue] = []  // unique is a generator in Jinja
            var result: [JinjaValue] = []
            guard let source = try? iterate(value, location) else {
                return .failedIterator("'\(value.typeName)' object is not iterable")
            }
            for item in source {
                let key = caseInsensitiveKey(try attribute.map { path throws(ChatTemplateError) in try lookupPath(item, path, location) } ?? item,
                                             caseSensitive)
                if !seen.contains(where: { $0.equals(key) }) {
                    seen.append(key)
                    result.append(item)
                }
            }
            return .iterator(result)
        case "replace":
            guard let old = arguments.value(0, "old"), let new = arguments.value(1, "new") else {
                throw location.runtimeError("replace filter expects old and new strings")
            }
            let count = arguments.value(2, "count")?.integerValue ?? -1
            return .string(pythonReplace(text(), old.string, new.string, count))
        case "indent":
            // do_indent runs `s += "\n"`: only strings (and Markup) survive it.
            switch rawValue {
            case .string, .markup: break
            case .undefined(let reason): throw location.runtimeError(reason)
            default: throw location.runtimeError("unsupported operand type(s) for +=: '\(value.typeName)' and 'str'")
            }
            let widthValue = arguments.value(0, "width") ?? .int(4)
            let prefix = widthValue.integerValue.map { String(repeating: " ", count: max($0, 0)) } ?? widthValue.string
            let first = arguments.value(1, "first")?.isTruthy ?? false
            let blank = arguments.value(2, "blank")?.isTruthy ?? false
            return .string(jinjaIndent(text(), prefix: prefix, first: first, blank: blank))
        case "map", "select", "reject", "selectattr", "rejectattr":
            // Jinja's map/select/... are generators that yield nothing for a false input (`if value:`) and
            // fail only when consumed.
            guard value.isTruthy else { return .iterator([]) }
            guard let items = try? iterate(value, location) else {
                return .failedIterator("'\(value.typeName)' object is not iterable")
            }
            return .iterator(try mapOrSelect(name, items, arguments))
        case "attr":
            // Python getattr only: methods and namespace attributes, never dictionary keys.
            let attributeName = arguments.value(0, "name")?.string ?? ""
            if case .namespace(let namespace) = value { return namespace.attributes[attributeName] ?? .undefined("no attribute") }
            return method(of: value, attributeName, location) ?? .undefined("'\(value.typeName) object' has no attribute '\(attributeName)'")
        case "sum":
            var total = arguments.value(1, "start") ?? .int(0)
            for item in try iterate(value, location) {
                let term = try arguments.value(0, "attribute").map { path throws(ChatTemplateError) in try lookupPath(item, path, location) } ?? item
                total = try arithmetic(.add, total, term, location)
            }
            return total
        case "min", "max":
            let items = try iterate(value, location)
            guard var best = items.first else { return .undefined("No aggregated item, sequence was empty.") }
            for item in items.dropFirst() {
                let order = try ordering(caseInsensitiveKey(item, false), caseInsensitiveKey(best, false), "<", location)
                if name == "min" ? order < 0 : order > 0 { best = item }
            }
            return best
        case "wordcount":
            // len(re.findall(r"\w+", str(value)))
            var count = 0
            var inWord = false
            for scalar in text().unicodeScalars {
                let isWord = scalar == "_" || scalar.properties.isAlphabetic || scalar.properties.numericType != nil
                if isWord && !inWord { count += 1 }
                inWord = isWord
            }
            return .int(count)
        case "format":
            var formatArguments = arguments.positional
            if formatArguments.count == 1 { return .string(try percentFormat(text(), formatArguments.removeFirst(), location)) }
            return .string(try percentFormat(text(), .tuple(formatArguments), location))
        case "batch":
            guard let size = arguments.value(0, "linecount")?.integerValue, size > 0 else {
                throw location.runtimeError("batch expects a positive size")
            }
            guard let items = try? iterate(value, location) else {
                return .failedIterator("'\(value.typeName)' object is not iterable")
            }
            return .iterator(stride(from: 0, to: items.count, by: size).map { .array(Array(items[$0..<min($0 + size, items.count)])) })
        default:
            throw location.runtimeError("filter `\(name)` is not supported")
        }
    }

    /// `attribute='a.b'` or an integer index, as Jinja's `make_attrgetter`.
    func lookupPath(_ item: JinjaValue, _ path: JinjaValue, _ location: TemplateSourceLocation) throws(ChatTemplateError) -> JinjaValue {
        if let index = path.integerValue { return try self.item(of: item, .int(index), location) }
        var current = item
        for part in path.string.split(separator: ".") {
            let key = String(part)
            current = try self.item(of: current, Int(key).map(JinjaValue.int) ?? .string(key), location)
        }
        return current
    }

    private func mapOrSelect(_ name: String, _ items: [JinjaValue], _ arguments: JinjaArguments) throws(ChatTemplateError) -> [JinjaValue] {
        let location = arguments.location
        if name == "map" {
            if let attribute = arguments.keywordValue("attribute") {
                var result: [JinjaValue] = []
                for item in items {
                    var mapped = try lookupPath(item, attribute, location)
                    if mapped.isUndefined, let fallback = arguments.keywordValue("default") { mapped = fallback }
                    result.append(mapped)
                }
                return result
            }
            guard let filterName = arguments.positional.first?.string else {
                throw location.runtimeError("map requires a filter name or attribute=")
            }
            let rest = JinjaArguments(positional: Array(arguments.positional.dropFirst()), keyword: arguments.keyword,
                                 location: location)
            var result: [JinjaValue] = []
            for item in items { result.append(try applyFilter(filterName, item, rest)) }
            return result
        }
        let usesAttribute = name.hasSuffix("attr")
        let keep = name.hasPrefix("select")
        var positional = arguments.positional
        var attribute: JinjaValue? = nil
        if usesAttribute {
            guard !positional.isEmpty else { throw location.runtimeError("\(name) requires an attribute name") }
            attribute = positional.removeFirst()
        }
        let testName = positional.isEmpty ? nil : positional.removeFirst().string
        let testArguments = JinjaArguments(positional: positional, keyword: [], location: location)
        var result: [JinjaValue] = []
        for item in items {
            let subject = try attribute.map { path throws(ChatTemplateError) in try lookupPath(item, path, location) } ?? item
            let passes = try testName.map { test throws(ChatTemplateError) in try applyTest(test, subject, testArguments) } ?? subject.isTruthy
            if passes == keep { result.append(item) }
        }
        return result
    }

    private func stableSort(_ items: [JinjaValue], reverse: Bool, _ location: TemplateSourceLocation,
                            key: (JinjaValue) throws(ChatTemplateError) -> JinjaValue) throws(ChatTemplateError) -> [JinjaValue]
    {
        var keyed: [(key: JinjaValue, index: Int)] = []
        for (index, item) in items.enumerated() { keyed.append((try key(item), index)) }
        // Insertion sort keeps equal keys in order (Python's sort is stable) and lets comparison errors throw.
        var order: [(key: JinjaValue, index: Int)] = []
        for entry in keyed {
            var position = order.count
            while position > 0 {
                let comparison = try ordering(entry.key, order[position - 1].key, "<", location)
                if reverse ? comparison > 0 : comparison < 0 { position -= 1 } else { break }
            }
            order.insert(entry, at: position)
        }
        return order.map { items[$0.index] }
    }
}

private func caseInsensitiveKey(_ value: JinjaValue, _ caseSensitive: Bool) -> JinjaValue {
    if !caseSensitive, case .string(let text) = value { return .string(pythonLowercase(text)) }
    return value
}

/// Jinja's `title` filter: the text is split at runs of `-`, whitespace and opening brackets, and each
/// piece becomes `piece[0].upper() + piece[1:].lower()` (unlike Python's `str.title`).
func jinjaTitle(_ text: String) -> String {
    func isBoundary(_ scalar: Unicode.Scalar) -> Bool {
        isPythonWhitespace(scalar) || "-({[<".unicodeScalars.contains(scalar)
    }
    var result = ""
    var piece: [Unicode.Scalar] = []
    var pieceIsBoundary = false
    func flush() {
        guard let first = piece.first else { return }
        result += String(first).uppercased()
        var rest = String.UnicodeScalarView()
        rest.append(contentsOf: piece.dropFirst())
        result += pythonLowercase(String(rest))
        piece.removeAll()
    }
    for scalar in text.unicodeScalars {
        if isBoundary(scalar) != pieceIsBoundary && !piece.isEmpty { flush() }
        pieceIsBoundary = isBoundary(scalar)
        piece.append(scalar)
    }
    flush()
    return result
}

/// Python `str.splitlines()` (all of Python's line boundaries; `\r\n` counts as one).
func pythonSplitLines(_ text: String) -> [String] {
    var lines: [String] = []
    var current = String.UnicodeScalarView()
    var previousWasCarriageReturn = false
    for scalar in text.unicodeScalars {
        if scalar == "\n" && previousWasCarriageReturn {
            previousWasCarriageReturn = false
            continue
        }
        previousWasCarriageReturn = scalar == "\r"
        switch scalar.value {
        case 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029:
            lines.append(String(current))
            current = String.UnicodeScalarView()
        default:
            current.append(scalar)
        }
    }
    if !current.isEmpty { lines.append(String(current)) }
    return lines
}

/// Jinja's `indent` filter (jinja2/filters.py `do_indent`): lines after the first get `prefix` unless
/// empty (or always with `blank`); `first` also indents the first line.
func jinjaIndent(_ text: String, prefix: String, first: Bool, blank: Bool) -> String {
    let lines = pythonSplitLines(text + "\n")
    var result: String
    if blank {
        result = lines.joined(separator: "\n" + prefix)
    } else {
        result = lines.first ?? ""
        let rest = lines.dropFirst()
        if !rest.isEmpty {
            result += "\n" + rest.map { $0.isEmpty ? $0 : prefix + $0 }.joined(separator: "\n")
        }
    }
    return first ? prefix + result : result
}

func htmlEscape(_ text: String) -> String {
    var result = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "&": result += "&amp;"
        case "<": result += "&lt;"
        case ">": result += "&gt;"
        case "\"": result += "&#34;"
        case "'": result += "&#39;"
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result
}
