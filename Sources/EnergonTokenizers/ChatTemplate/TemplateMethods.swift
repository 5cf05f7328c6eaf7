// Python methods templates call on values: `content.strip()`, `role.startswith('tool')`,
// `message.get('tool_calls')`, `messages.index(m)`. Like Jinja's ImmutableSandboxedEnvironment, methods
// that would mutate a list or dictionary are refused.

extension TemplateRenderer {
    func method(of rawValue: JinjaValue, _ name: String, _ location: TemplateSourceLocation) -> JinjaValue? {
        let value = rawValue.demoted
        switch value {
        case .string(let text): return stringMethod(text, name)
        case .dictionary(let dictionary): return dictionaryMethod(dictionary, name)
        case .array(let items), .tuple(let items): return listMethod(items, name, value.typeName)
        case .range(let range) where name == "count" || name == "index": return listMethod(range.values, name, "range")
        default: return nil
        }
    }

    private func bound(_ name: String, _ body: @escaping (JinjaArguments) throws(ChatTemplateError) -> JinjaValue) -> JinjaValue {
        .function(JinjaFunction(name: name, body: body))
    }

    private func dictionaryMethod(_ dictionary: JinjaDictionary, _ name: String) -> JinjaValue? {
        switch name {
        case "items": return bound(name) { _ in .view("dict_items", dictionary.pairs.map { .tuple([$0.key, $0.value]) }) }
        case "keys": return bound(name) { _ in .view("dict_keys", dictionary.keys) }
        case "values": return bound(name) { _ in .view("dict_values", dictionary.pairs.map(\.value)) }
        case "get":
            return bound(name) { arguments throws(ChatTemplateError) in
                guard let key = arguments.value(0, "key") else {
                    throw arguments.location.runtimeError("get expected at least 1 argument, got 0")
                }
                let fallback = arguments.value(1, "default") ?? .none
                return dictionary.value(for: key) ?? fallback
            }
        case "copy": return bound(name) { _ in .dictionary(dictionary) }
        case "pop", "popitem", "update", "setdefault", "clear":
            return .undefined("access to attribute '\(name)' of 'dict' object is unsafe.")
        default: return nil
        }
    }

    private func listMethod(_ items: [JinjaValue], _ name: String, _ typeName: String) -> JinjaValue? {
        switch name {
        case "index":
            return bound(name) { arguments throws(ChatTemplateError) in
                let needle = arguments.value(0, "value") ?? .none
                guard let index = items.firstIndex(where: { $0.equals(needle) }) else {
                    throw arguments.location.runtimeError("\(needle.representation) is not in list")
                }
                return .int(index)
            }
        case "count":
            return bound(name) { arguments in
                let needle = arguments.value(0, "value") ?? .none
                return .int(items.filter { $0.equals(needle) }.count)
            }
        case "copy": return bound(name) { _ in .array(items) }
        case "append", "extend", "insert", "pop", "remove", "sort", "reverse", "clear":
            return .undefined("access to attribute '\(name)' of '\(typeName)' object is unsafe.")
        default: return nil
        }
    }

    private func stringArgument(_ arguments: JinjaArguments, _ position: Int, _ name: String, _ method: String)
        throws(ChatTemplateError) -> String?
    {
        guard let value = arguments.value(position, name) else { return nil }
        switch value {
        case .none: return nil
        case .string(let text): return text
        default:
            throw arguments.location.runtimeError("\(method)() argument must be str or None, not \(value.typeName)")
        }
    }

    private func stringMethod(_ text: String, _ name: String) -> JinjaValue? {
        switch name {
        case "strip", "lstrip", "rstrip":
            return bound(name) { [unowned self] arguments throws(ChatTemplateError) in
                let characters = try self.stringArgument(arguments, 0, "chars", name)
                return .string(pythonStrip(text, characters, leading: name != "rstrip", trailing: name != "lstrip"))
            }
        case "upper": return bound(name) { _ in .string(text.uppercased()) }
        case "lower": return bound(name) { _ in .string(pythonLowercase(text)) }
        case "title": return bound(name) { _ in .string(pythonTitle(text)) }
        case "capitalize": return bound(name) { _ in .string(pythonCapitalize(text)) }
        case "startswith", "endswith":
            return bound(name) { arguments throws(ChatTemplateError) in
                let candidates: [JinjaValue]
                switch arguments.value(0, "prefix") {
                case .string(let single)?: candidates = [.string(single)]
                case .tuple(let several)?, .array(let several)?: candidates = several
                default: throw arguments.location.runtimeError("\(name) first arg must be str or a tuple of str")
                }
                let scalars = Array(text.unicodeScalars)
                for candidate in candidates {
                    guard case .string(let affix) = candidate else {
                        throw arguments.location.runtimeError("tuple for \(name) must only contain str")
                    }
                    let affixScalars = Array(affix.unicodeScalars)
                    if name == "startswith" ? scalars.starts(with: affixScalars)
                        : scalars.reversed().starts(with: affixScalars.reversed())
                    {
                        return .bool(true)
                    }
                }
                return .bool(false)
            }
        case "split", "rsplit":
            return bound(name) { [unowned self] arguments throws(ChatTemplateError) in
                let separator = try self.stringArgument(arguments, 0, "sep", name)
                let limit = arguments.value(1, "maxsplit")?.integerValue ?? -1
                if separator == "" { throw arguments.location.runtimeError("empty separator") }
                return .array(pythonSplit(text, separator, limit, fromRight: name == "rsplit").map(JinjaValue.string))
            }
        case "splitlines":
            return bound(name) { _ in
                var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                if lines.last == "" { lines.removeLast() }
                return .array(lines.map(JinjaValue.string))
            }
        case "replace":
            return bound(name) { [unowned self] arguments throws(ChatTemplateError) in
                guard let old = try self.stringArgument(arguments, 0, "old", name),
                    let new = try self.stringArgument(arguments, 1, "new", name)
                else { throw arguments.location.runtimeError("replace expected 2 string arguments") }
                let count = arguments.value(2, "count")?.integerValue ?? -1
                return .string(pythonReplace(text, old, new, count))
            }
        case "find", "rfind", "count":
            return bound(name) { [unowned self] arguments throws(ChatTemplateError) in
                guard let needle = try self.stringArgument(arguments, 0, "sub", name) else {
                    throw arguments.location.runtimeError("\(name)() takes a string")
                }
                let haystack = Array(text.unicodeScalars)
                let pattern = Array(needle.unicodeScalars)
                var positions: [Int] = []
                var index = 0
                while index + pattern.count <= haystack.count {
                    if haystack[index..<(index + pattern.count)].elementsEqual(pattern) {
                        positions.append(index)
                        index += max(pattern.count, 1)
                    } else {
                        index += 1
                    }
                }
                if pattern.isEmpty && name == "count" { return .int(haystack.count + 1) }
                switch name {
                case "find": return .int(positions.first ?? -1)
                case "rfind": return .int(pattern.isEmpty ? haystack.count : positions.last ?? -1)
                default: return .int(positions.count)
                }
            }
        case "join":
            return bound(name) { [unowned self] arguments throws(ChatTemplateError) in
                let items = try self.iterate(arguments.value(0, "iterable") ?? .none, arguments.location)
                var parts: [String] = []
                for item in items {
                    guard case .string(let part) = item else {
                        throw arguments.location.runtimeError("sequence item: expected str instance, \(item.typeName) found")
                    }
                    parts.append(part)
                }
                return .string(parts.joined(separator: text))
            }
        case "format":
            return bound(name) { arguments throws(ChatTemplateError) in
                .string(try pythonFormat(text, arguments))
            }
        case "isdigit", "isalpha", "isspace", "isupper", "islower", "isalnum":
            return bound(name) { _ in
                let scalars = text.unicodeScalars
                guard !scalars.isEmpty else { return .bool(false) }
                switch name {
                case "isdigit": return .bool(scalars.allSatisfy { $0.properties.numericType == .decimal || $0.properties.numericType == .digit })
                case "isalpha": return .bool(scalars.allSatisfy { $0.properties.isAlphabetic })
                case "isspace": return .bool(scalars.allSatisfy(isPythonWhitespace))
                case "isalnum": return .bool(scalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
                case "isupper": return .bool(pythonIsCase(text, lower: false))
                default: return .bool(pythonIsCase(text, lower: true))
                }
            }
        default:
            return nil
        }
    }
}

/// Python `str.strip(chars)` (whitespace when `characters` is nil).
func pythonStrip(_ text: String, _ characters: String?, leading: Bool, trailing: Bool) -> String {
    let scalars = Array(text.unicodeScalars)
    let strip: (Unicode.Scalar) -> Bool
    if let characters {
        let set = Set(characters.unicodeScalars)
        strip = { set.contains($0) }
    } else {
        strip = isPythonWhitespace
    }
    var start = 0
    var end = scalars.count
    if leading { while start < end && strip(scalars[start]) { start += 1 } }
    if trailing { while end > start && strip(scalars[end - 1]) { end -= 1 } }
    var result = String.UnicodeScalarView()
    result.append(contentsOf: scalars[start..<end])
    return String(result)
}

/// Python `str.split(sep, maxsplit)` / `rsplit`.
func pythonSplit(_ text: String, _ separator: String?, _ limit: Int, fromRight: Bool) -> [String] {
    let scalars = Array(text.unicodeScalars)
    func make(_ range: Range<Int>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[range])
        return String(view)
    }
    var pieces: [Range<Int>] = []
    if let separator {
        let pattern = Array(separator.unicodeScalars)
        var matches: [Int] = []
        if fromRight {
            var index = scalars.count - pattern.count
            while index >= 0 && (limit < 0 || matches.count < limit) {
                if scalars[index..<(index + pattern.count)].elementsEqual(pattern) {
                    matches.insert(index, at: 0)
                    index -= pattern.count
                } else {
                    index -= 1
                }
            }
        } else {
            var index = 0
            while index + pattern.count <= scalars.count && (limit < 0 || matches.count < limit) {
                if scalars[index..<(index + pattern.count)].elementsEqual(pattern) {
                    matches.append(index)
                    index += pattern.count
                } else {
                    index += 1
                }
            }
        }
        var start = 0
        for match in matches {
            pieces.append(start..<match)
            start = match + pattern.count
        }
        pieces.append(start..<scalars.count)
        return pieces.map(make)
    }
    // Whitespace splitting: runs of whitespace separate, empty pieces are dropped.
    var words: [Range<Int>] = []
    var index = 0
    while index < scalars.count {
        while index < scalars.count && isPythonWhitespace(scalars[index]) { index += 1 }
        guard index < scalars.count else { break }
        var end = index
        while end < scalars.count && !isPythonWhitespace(scalars[end]) { end += 1 }
        words.append(index..<end)
        index = end
    }
    if limit >= 0 && words.count > limit + 1 {
        if fromRight {
            let kept = words.suffix(limit)
            var firstEnd = kept.first!.lowerBound  // invariant: limit + 1 < words.count so kept precedes a word
            while firstEnd > 0 && isPythonWhitespace(scalars[firstEnd - 1]) { firstEnd -= 1 }
            return [make(words[0].lowerBound..<firstEnd)] + kept.map(make)
        }
        let kept = words.prefix(limit)
        var restStart = kept.last.map { $0.upperBound } ?? 0
        while restStart < scalars.count && isPythonWhitespace(scalars[restStart]) { restStart += 1 }
        var restEnd = scalars.count
        while restEnd > restStart && isPythonWhitespace(scalars[restEnd - 1]) { restEnd -= 1 }
        return kept.map(make) + [make(restStart..<restEnd)]
    }
    return words.map(make)
}

/// Python `str.replace(old, new, count)`.
func pythonReplace(_ text: String, _ old: String, _ new: String, _ count: Int) -> String {
    let scalars = Array(text.unicodeScalars)
    let pattern = Array(old.unicodeScalars)
    var result = String.UnicodeScalarView()
    var replaced = 0
    var index = 0
    if pattern.isEmpty {
        for scalar in scalars {
            if count < 0 || replaced < count {
                result.append(contentsOf: new.unicodeScalars)
                replaced += 1
            }
            result.append(scalar)
        }
        if count < 0 || replaced < count { result.append(contentsOf: new.unicodeScalars) }
        return String(result)
    }
    while index < scalars.count {
        if (count < 0 || replaced < count) && index + pattern.count <= scalars.count
            && scalars[index..<(index + pattern.count)].elementsEqual(pattern)
        {
            result.append(contentsOf: new.unicodeScalars)
            index += pattern.count
            replaced += 1
        } else {
            result.append(scalars[index])
            index += 1
        }
    }
    return String(result)
}

/// Python `str.title()`: a cased letter after an uncased character starts a word.
func pythonTitle(_ text: String) -> String {
    var result = ""
    var previousCased = false
    let scalars = Array(text.unicodeScalars)
    for (index, scalar) in scalars.enumerated() {
        let properties = scalar.properties
        let isCased = properties.isCased
        if isCased {
            result += previousCased ? pythonLowercase(scalars, at: index) : properties.titlecaseMapping
        } else {
            result.unicodeScalars.append(scalar)
        }
        previousCased = isCased
    }
    return result
}

/// Python `str.capitalize()`: first character in title case, the rest lower case.
func pythonCapitalize(_ text: String) -> String {
    var result = ""
    let scalars = Array(text.unicodeScalars)
    for (index, scalar) in scalars.enumerated() {
        result += index == 0 ? scalar.properties.titlecaseMapping : pythonLowercase(scalars, at: index)
    }
    return result
}

/// Python `str.format` for `{}`, `{0}` and `{name}` fields without format specs.
func pythonFormat(_ format: String, _ arguments: JinjaArguments) throws(ChatTemplateError) -> String {
    var result = ""
    var automaticIndex = 0
    let scalars = Array(format.unicodeScalars)
    var index = 0
    while index < scalars.count {
        let scalar = scalars[index]
        if scalar == "{" && index + 1 < scalars.count && scalars[index + 1] == "{" {
            result += "{"
            index += 2
        } else if scalar == "}" && index + 1 < scalars.count && scalars[index + 1] == "}" {
            result += "}"
            index += 2
        } else if scalar == "{" {
            guard let close = scalars[index...].firstIndex(of: "}") else {
                throw arguments.location.runtimeError("Single '{' encountered in format string")
            }
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars[(index + 1)..<close])
            let field = String(view)
            let value: JinjaValue?
            if field.isEmpty {
                value = automaticIndex < arguments.positional.count ? arguments.positional[automaticIndex] : nil
                automaticIndex += 1
            } else if let position = Int(field) {
                value = position < arguments.positional.count ? arguments.positional[position] : nil
            } else {
                value = arguments.keywordValue(field)
            }
            guard let value else {
                throw arguments.location.runtimeError("format field {\(field)} has no matching argument")
            }
            result += value.string
            index = close + 1
        } else {
            result.unicodeScalars.append(scalar)
            index += 1
        }
    }
    return result
}

/// Python `str.lower()`: full lowercase mappings plus the Final_Sigma rule (Σ becomes ς at the end of
/// a word), which Swift's `lowercased()` does not apply.
func pythonLowercase(_ text: String) -> String {
    let scalars = Array(text.unicodeScalars)
    var result = ""
    for index in scalars.indices { result += pythonLowercase(scalars, at: index) }
    return result
}

/// The lowercase mapping of `scalars[index]` in its context (CPython's `lower_ucs4`).
func pythonLowercase(_ scalars: [Unicode.Scalar], at index: Int) -> String {
    let scalar = scalars[index]
    guard scalar.value == 0x3A3 else { return scalar.properties.lowercaseMapping }
    // Final sigma: preceded by a cased letter and not followed by one, skipping case-ignorable marks.
    var before = index - 1
    while before >= 0 && scalars[before].properties.isCaseIgnorable { before -= 1 }
    guard before >= 0 && scalars[before].properties.isCased else { return "σ" }
    var after = index + 1
    while after < scalars.count && scalars[after].properties.isCaseIgnorable { after += 1 }
    return after < scalars.count && scalars[after].properties.isCased ? "σ" : "ς"
}

/// Python `str.islower()` / `str.isupper()`: at least one cased character and none of the other case
/// (title-case letters count as neither lower nor upper).
func pythonIsCase(_ text: String, lower: Bool) -> Bool {
    var sawCased = false
    for scalar in text.unicodeScalars {
        let properties = scalar.properties
        let isTitle = properties.generalCategory == .titlecaseLetter
        if isTitle || (lower ? properties.isUppercase : properties.isLowercase) { return false }
        if lower ? properties.isLowercase : properties.isUppercase { sawCased = true }
    }
    return sawCased
}
