// Splits a template into text and the tokens inside `{{ }}` / `{% %}` tags, applying Jinja's whitespace
// control exactly as transformers configures it (`trim_blocks=True, lstrip_blocks=True`):
//   - `{%-`, `{{-`, `{#-` strip all whitespace before the tag; `-%}`, `-}}`, `-#}` strip all after it;
//   - trim_blocks: the first newline after `%}` or `#}` is removed (`+%}` keeps it);
//   - lstrip_blocks: spaces and tabs from the start of a line up to `{%` or `{#` are removed (`{%+` keeps
//     them), where "start of a line" also holds right after a tag whose end consumed a newline.
// Like Jinja (keep_trailing_newline=False), one trailing newline of the source is dropped, and `\r\n`
// and `\r` become `\n`.

enum TemplateTokenKind: Equatable, Sendable {
    case text(String)
    case variableBegin
    case variableEnd
    case blockBegin
    case blockEnd
    case name(String)
    case string(String)
    case integer(Int)
    case float(Double)
    case symbol(String)
    case endOfInput
}

struct TemplateToken: Sendable {
    var kind: TemplateTokenKind
    var location: TemplateSourceLocation
}

/// Python's `str.isspace` for one scalar (whitespace for `strip()`, `split()`, `rstrip()` in the lexer).
func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0: return true
    default: return scalar.value > 0x7F && scalar.properties.isWhitespace
    }
}

struct TemplateLexer {
    private let source: [Unicode.Scalar]
    private var lineStarts: [Int] = [0]
    private var position = 0
    private var tokens: [TemplateToken] = []

    init(_ text: String) {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.unicodeScalars.count)
        var previousWasCarriageReturn = false
        for scalar in text.unicodeScalars {
            if scalar == "\r" {
                scalars.append("\n")
                previousWasCarriageReturn = true
                continue
            }
            if scalar == "\n" && previousWasCarriageReturn {
                previousWasCarriageReturn = false
                continue
            }
            previousWasCarriageReturn = false
            scalars.append(scalar)
        }
        if scalars.last == "\n" { scalars.removeLast() }
        source = scalars
        for (index, scalar) in scalars.enumerated() where scalar == "\n" { lineStarts.append(index + 1) }
    }

    func location(_ offset: Int) -> TemplateSourceLocation {
        // Binary search for the last line start <= offset.
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if lineStarts[middle] <= offset { low = middle } else { high = middle - 1 }
        }
        return TemplateSourceLocation(line: low + 1, column: offset - lineStarts[low] + 1)
    }

    private func at(_ offset: Int) -> Unicode.Scalar? {
        offset < source.count ? source[offset] : nil
    }

    private func matches(_ literal: String, at offset: Int) -> Bool {
        var index = offset
        for scalar in literal.unicodeScalars {
            guard at(index) == scalar else { return false }
            index += 1
        }
        return true
    }

    private func string(_ start: Int, _ end: Int) -> String {
        var result = String.UnicodeScalarView()
        result.append(contentsOf: source[start..<end])
        return String(result)
    }

    mutating func tokenize() throws(ChatTemplateError) -> [TemplateToken] {
        var lineStarting = true
        while position < source.count {
            // Find the next tag opener.
            var opener = position
            var openerKind: Unicode.Scalar? = nil
            while opener + 1 < source.count {
                if source[opener] == "{", let next = at(opener + 1), next == "{" || next == "%" || next == "#" {
                    openerKind = next
                    break
                }
                opener += 1
            }
            guard let kind = openerKind else {
                emitText(position, source.count)
                position = source.count
                break
            }
            let sign = at(opener + 2).flatMap { $0 == "-" || $0 == "+" ? $0 : nil }
            var textEnd = opener
            if sign == "-" {
                while textEnd > position && isPythonWhitespace(source[textEnd - 1]) { textEnd -= 1 }
            } else if sign != "+" && kind != "{" {
                // lstrip_blocks
                var lineStart = textEnd
                while lineStart > position && source[lineStart - 1] != "\n" { lineStart -= 1 }
                let atLineStart = lineStart > position || lineStarting
                if atLineStart && lineStart < textEnd
                    && source[lineStart..<textEnd].allSatisfy({ isPythonWhitespace($0) })
                {
                    textEnd = lineStart
                }
            }
            emitText(position, textEnd)
            let tagStart = opener
            position = opener + 2 + (sign == nil ? 0 : 1)
            switch kind {
            case "#":
                try lexComment(tagStart)
            case "%":
                if try lexRawBlock(tagStart) { break }
                tokens.append(TemplateToken(kind: .blockBegin, location: location(tagStart)))
                try lexTagContents(tagStart, isBlock: true)
            default:
                tokens.append(TemplateToken(kind: .variableBegin, location: location(tagStart)))
                try lexTagContents(tagStart, isBlock: false)
            }
            lineStarting = position > 0 && source[position - 1] == "\n"
        }
        tokens.append(TemplateToken(kind: .endOfInput, location: location(source.count)))
        return tokens
    }

    private mutating func emitText(_ start: Int, _ end: Int) {
        guard start < end else { return }
        tokens.append(TemplateToken(kind: .text(string(start, end)), location: location(start)))
    }

    /// After a tag end: `-` strips all following whitespace; plain ends of blocks and comments drop one
    /// newline (trim_blocks); `+` keeps everything.
    private mutating func applyEndControl(_ sign: Unicode.Scalar?, isVariable: Bool) {
        if sign == "-" {
            while let scalar = at(position), isPythonWhitespace(scalar) { position += 1 }
        } else if sign == nil && !isVariable && at(position) == "\n" {
            position += 1
        }
    }

    private mutating func lexComment(_ tagStart: Int) throws(ChatTemplateError) {
        var index = position
        while index + 1 < source.count {
            if source[index] == "#" && source[index + 1] == "}" {
                let sign: Unicode.Scalar? = index > position && (source[index - 1] == "-" || source[index - 1] == "+")
                    ? source[index - 1] : nil
                position = index + 2
                applyEndControl(sign, isVariable: false)
                return
            }
            index += 1
        }
        throw location(tagStart).syntaxError("missing end of comment tag `#}`")
    }

    /// `{% raw %}...{% endraw %}`: the text in between is output verbatim.
    private mutating func lexRawBlock(_ tagStart: Int) throws(ChatTemplateError) -> Bool {
        var index = position
        while let scalar = at(index), isPythonWhitespace(scalar) { index += 1 }
        guard matches("raw", at: index) else { return false }
        index += 3
        while let scalar = at(index), isPythonWhitespace(scalar) { index += 1 }
        var openSign: Unicode.Scalar? = nil
        if let scalar = at(index), scalar == "-" || scalar == "+" { openSign = scalar; index += 1 }
        guard matches("%}", at: index) else { return false }
        position = index + 2
        if openSign == "-" { while let scalar = at(position), isPythonWhitespace(scalar) { position += 1 } }
        // Find `{%[-+]? endraw [-+]?%}`.
        var search = position
        while search + 1 < source.count {
            if source[search] == "{" && source[search + 1] == "%" {
                var cursor = search + 2
                var closeOpenSign: Unicode.Scalar? = nil
                if let scalar = at(cursor), scalar == "-" || scalar == "+" { closeOpenSign = scalar; cursor += 1 }
                while let scalar = at(cursor), isPythonWhitespace(scalar) { cursor += 1 }
                if matches("endraw", at: cursor) {
                    cursor += 6
                    while let scalar = at(cursor), isPythonWhitespace(scalar) { cursor += 1 }
                    var endSign: Unicode.Scalar? = nil
                    if let scalar = at(cursor), scalar == "-" || scalar == "+" { endSign = scalar; cursor += 1 }
                    if matches("%}", at: cursor) {
                        var textEnd = search
                        if closeOpenSign == "-" {
                            while textEnd > position && isPythonWhitespace(source[textEnd - 1]) { textEnd -= 1 }
                        }
                        emitText(position, textEnd)
                        position = cursor + 2
                        applyEndControl(endSign, isVariable: false)
                        return true
                    }
                }
            }
            search += 1
        }
        throw location(tagStart).syntaxError("missing `{% endraw %}` for this `{% raw %}`")
    }

    private mutating func lexTagContents(_ tagStart: Int, isBlock: Bool) throws(ChatTemplateError) {
        var brackets: [Unicode.Scalar] = []
        while true {
            while let scalar = at(position), isPythonWhitespace(scalar) { position += 1 }
            guard let scalar = at(position) else {
                throw location(tagStart).syntaxError(
                    "unexpected end of template: tag opened here is never closed with `\(isBlock ? "%}" : "}}")`")
            }
            let start = position
            if brackets.isEmpty {
                let close = isBlock ? "%}" : "}}"
                for sign in ["-", "+", ""] where !(sign == "+" && !isBlock) {
                    if matches(sign + close, at: position) {
                        position += sign.unicodeScalars.count + 2
                        tokens.append(TemplateToken(kind: isBlock ? .blockEnd : .variableEnd, location: location(start)))
                        applyEndControl(sign.unicodeScalars.first, isVariable: !isBlock)
                        return
                    }
                }
            }
            if scalar == "'" || scalar == "\"" {
                tokens.append(TemplateToken(kind: .string(try lexString(quote: scalar)), location: location(start)))
            } else if scalar.properties.numericType != nil && ("0"..."9").contains(scalar) {
                tokens.append(TemplateToken(kind: lexNumber(), location: location(start)))
            } else if scalar == "_" || scalar.properties.isAlphabetic {
                while let next = at(position), next == "_" || next.properties.isAlphabetic || ("0"..."9").contains(next) {
                    position += 1
                }
                tokens.append(TemplateToken(kind: .name(string(start, position)), location: location(start)))
            } else {
                let symbol = try lexSymbol()
                switch symbol {
                case "(", "[", "{": brackets.append(symbol.unicodeScalars.first!)  // invariant: symbol nonempty
                case ")", "]", "}":
                    let expected: Unicode.Scalar = symbol == ")" ? "(" : symbol == "]" ? "[" : "{"
                    guard brackets.last == expected else {
                        throw location(start).syntaxError("unexpected `\(symbol)`")
                    }
                    brackets.removeLast()
                default: break
                }
                tokens.append(TemplateToken(kind: .symbol(symbol), location: location(start)))
            }
        }
    }

    private mutating func lexSymbol() throws(ChatTemplateError) -> String {
        for symbol in ["//", "**", "==", "!=", ">=", "<="] where matches(symbol, at: position) {
            position += 2
            return symbol
        }
        // invariant: called with position < source.count
        let scalar = source[position]
        if "+-/*%~[](){}><=.:|,;".unicodeScalars.contains(scalar) {
            position += 1
            return String(scalar)
        }
        throw location(position).syntaxError("unexpected character `\(scalar)`")
    }

    private mutating func lexNumber() -> TemplateTokenKind {
        let start = position
        func digits() {
            while let scalar = at(position),
                ("0"..."9").contains(scalar) || (scalar == "_" && at(position + 1).map { ("0"..."9").contains($0) } == true)
            {
                position += 1
            }
        }
        digits()
        var isFloat = false
        if at(position) == ".", let next = at(position + 1), ("0"..."9").contains(next) {
            isFloat = true
            position += 1
            digits()
        }
        if let marker = at(position), marker == "e" || marker == "E" {
            var cursor = position + 1
            if let sign = at(cursor), sign == "+" || sign == "-" { cursor += 1 }
            if let digit = at(cursor), ("0"..."9").contains(digit) {
                isFloat = true
                position = cursor
                digits()
            }
        }
        let text = string(start, position).replacingOccurrences(of: "_", with: "")
        if isFloat { return .float(Double(text) ?? .nan) }
        if let value = Int(text) { return .integer(value) }
        return .float(Double(text) ?? .infinity)
    }

    /// A quoted string with Python's `unicode-escape` rules (what Jinja applies to string literals).
    private mutating func lexString(quote: Unicode.Scalar) throws(ChatTemplateError) -> String {
        let start = position
        position += 1
        var result = String.UnicodeScalarView()
        while true {
            guard let scalar = at(position) else {
                throw location(start).syntaxError("unterminated string literal")
            }
            position += 1
            if scalar == quote { return String(result) }
            guard scalar == "\\" else {
                result.append(scalar)
                continue
            }
            guard let escaped = at(position) else { throw location(start).syntaxError("unterminated string literal") }
            position += 1
            switch escaped {
            case "n": result.append("\n")
            case "t": result.append("\t")
            case "r": result.append("\r")
            case "\\": result.append("\\")
            case "'": result.append("'")
            case "\"": result.append("\"")
            case "a": result.append("\u{07}")
            case "b": result.append("\u{08}")
            case "f": result.append("\u{0C}")
            case "v": result.append("\u{0B}")
            case "\n": break
            case "0"..."7":
                var value = escaped.value - 0x30
                var count = 1
                while count < 3, let digit = at(position), ("0"..."7").contains(digit) {
                    value = value * 8 + digit.value - 0x30
                    position += 1
                    count += 1
                }
                // invariant: at most 0o777, a valid scalar
                result.append(Unicode.Scalar(value)!)
            case "x", "u", "U":
                let width = escaped == "x" ? 2 : escaped == "u" ? 4 : 8
                var value: UInt32 = 0
                for _ in 0..<width {
                    guard let digit = at(position), let nibble = UInt32(String(digit), radix: 16) else {
                        throw location(position).syntaxError("truncated \\\(escaped) escape in string literal")
                    }
                    value = value * 16 + nibble
                    position += 1
                }
                guard let decoded = Unicode.Scalar(value) else {
                    throw location(position).syntaxError("escape \\\(escaped) names no Unicode scalar")
                }
                result.append(decoded)
            default:
                result.append("\\")
                result.append(escaped)
            }
        }
    }
}
