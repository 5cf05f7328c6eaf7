// Recursive-descent parser from tokens to the syntax tree, following Jinja's grammar and operator
// precedence (jinja2/parser.py): conditional < or < and < not < comparisons (incl. in / not in)
// < + - < ~ < * / // % < ** < unary - + < primary with postfix (. [] ()) then filters `|` and tests `is`.
// So `'a' + x | trim` is `'a' + (x | trim)` and `not x in y` is `not (x in y)`.

struct TemplateParser {
    private let tokens: [TemplateToken]
    private var index = 0

    init(tokens: [TemplateToken]) {
        self.tokens = tokens
    }

    private var current: TemplateToken { tokens[index] }
    private var next: TemplateToken { tokens[min(index + 1, tokens.count - 1)] }

    private mutating func advance() -> TemplateToken {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    private func isSymbol(_ symbol: String) -> Bool {
        if case .symbol(symbol) = current.kind { return true }
        return false
    }

    private func isName(_ name: String) -> Bool {
        if case .name(name) = current.kind { return true }
        return false
    }

    private func describe(_ kind: TemplateTokenKind) -> String {
        switch kind {
        case .text: return "template text"
        case .variableBegin: return "`{{`"
        case .variableEnd: return "`}}`"
        case .blockBegin: return "`{%`"
        case .blockEnd: return "`%}`"
        case .name(let name): return "`\(name)`"
        case .string: return "a string"
        case .integer(let value): return "`\(value)`"
        case .float(let value): return "`\(value)`"
        case .symbol(let symbol): return "`\(symbol)`"
        case .endOfInput: return "the end of the template"
        }
    }

    private mutating func expectSymbol(_ symbol: String) throws(ChatTemplateError) {
        guard isSymbol(symbol) else {
            throw current.location.syntaxError("expected `\(symbol)`, found \(describe(current.kind))")
        }
        _ = advance()
    }

    private mutating func expectName() throws(ChatTemplateError) -> String {
        guard case .name(let name) = current.kind else {
            throw current.location.syntaxError("expected a name, found \(describe(current.kind))")
        }
        _ = advance()
        return name
    }

    private mutating func expectKeyword(_ keyword: String) throws(ChatTemplateError) {
        guard isName(keyword) else {
            throw current.location.syntaxError("expected `\(keyword)`, found \(describe(current.kind))")
        }
        _ = advance()
    }

    private mutating func expectBlockEnd() throws(ChatTemplateError) {
        guard case .blockEnd = current.kind else {
            throw current.location.syntaxError("expected `%}`, found \(describe(current.kind))")
        }
        _ = advance()
    }

    // MARK: Statements

    mutating func parseTemplate() throws(ChatTemplateError) -> [TemplateNode] {
        let (nodes, end) = try parseBody(until: [])
        if let end {
            throw end.location.syntaxError("unexpected `{% \(end.name) %}`")
        }
        return nodes
    }

    /// Parses nodes until `{% name %}` with a name in `endNames` (consumed up to and including the name)
    /// or the end of input (only allowed when `endNames` is empty).
    private mutating func parseBody(until endNames: Set<String>) throws(ChatTemplateError)
        -> ([TemplateNode], (name: String, location: TemplateSourceLocation)?)
    {
        var nodes: [TemplateNode] = []
        while true {
            let token = current
            switch token.kind {
            case .endOfInput:
                if endNames.isEmpty { return (nodes, nil) }
                throw token.location.syntaxError(
                    "unexpected end of template, expected one of: "
                        + endNames.sorted().map { "`{% \($0) %}`" }.joined(separator: ", "))
            case .text(let text):
                _ = advance()
                nodes.append(.text(text))
            case .variableBegin:
                _ = advance()
                let expression = try parseTuple(withConditional: true, explicitParentheses: false)
                guard case .variableEnd = current.kind else {
                    throw current.location.syntaxError("expected `}}`, found \(describe(current.kind))")
                }
                _ = advance()
                nodes.append(.output(expression))
            case .blockBegin:
                _ = advance()
                let nameToken = current
                let name = try expectName()
                if endNames.contains(name) { return (nodes, (name, nameToken.location)) }
                let statementEnds = ["endfor", "else", "elif", "endif", "endset", "endmacro", "endcall",
                                     "endfilter", "endwith", "endgeneration"]
                if statementEnds.contains(name) {
                    throw nameToken.location.syntaxError("unexpected `{% \(name) %}`")
                }
                nodes.append(try parseStatement(name, nameToken.location))
            default:
                throw token.location.syntaxError("unexpected \(describe(token.kind))")
            }
        }
    }

    private mutating func parseStatement(_ name: String, _ location: TemplateSourceLocation) throws(ChatTemplateError) -> TemplateNode {
        switch name {
        case "for": return try parseFor(location)
        case "if": return try parseIf()
        case "set": return try parseSet(location)
        case "macro": return try parseMacro(location)
        case "call": return try parseCallBlock(location)
        case "filter":
            let filters = try parseFilterChain(requireFirstPipe: false)
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endfilter"])
            try expectBlockEnd()
            return .filterBlock(filters: filters, body: body)
        case "with":
            var assignments: [(JinjaAssignTarget, JinjaExpression)] = []
            while !isBlockEnd {
                if !assignments.isEmpty { try expectSymbol(",") }
                let target = try parseAssignTarget()
                try expectSymbol("=")
                assignments.append((target, try parseExpression(withConditional: true)))
            }
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endwith"])
            try expectBlockEnd()
            return .with(assignments: assignments, body: body)
        case "generation":
            // transformers' AssistantTracker tag: renders its body unchanged.
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endgeneration"])
            try expectBlockEnd()
            return .with(assignments: [], body: body)
        case "break":
            try expectBlockEnd()
            return .breakLoop(location)
        case "continue":
            try expectBlockEnd()
            return .continueLoop(location)
        default:
            throw location.syntaxError("unsupported tag `{% \(name) %}`")
        }
    }

    private var isBlockEnd: Bool {
        if case .blockEnd = current.kind { return true }
        return false
    }

    private mutating func parseFor(_ location: TemplateSourceLocation) throws(ChatTemplateError) -> TemplateNode {
        let target = try parseAssignTarget()
        try expectKeyword("in")
        let iterable = try parseTuple(withConditional: false, explicitParentheses: false, extraEnds: ["recursive"])
        var condition: JinjaExpression? = nil
        if isName("if") {
            _ = advance()
            condition = try parseExpression(withConditional: true)
        }
        if isName("recursive") {
            throw current.location.syntaxError("recursive for loops are not supported")
        }
        try expectBlockEnd()
        let (body, end) = try parseBody(until: ["endfor", "else"])
        try expectBlockEnd()
        var elseBody: [TemplateNode] = []
        if end?.name == "else" {
            (elseBody, _) = try parseBody(until: ["endfor"])
            try expectBlockEnd()
        }
        return .forLoop(JinjaForLoop(target: target, iterable: iterable, condition: condition, body: body,
                                elseBody: elseBody, location: location))
    }

    private mutating func parseIf() throws(ChatTemplateError) -> TemplateNode {
        var branches: [(condition: JinjaExpression, body: [TemplateNode])] = []
        var condition = try parseTuple(withConditional: true, explicitParentheses: false)
        while true {
            try expectBlockEnd()
            let (body, end) = try parseBody(until: ["elif", "else", "endif"])
            branches.append((condition, body))
            switch end?.name {
            case "elif":
                condition = try parseTuple(withConditional: true, explicitParentheses: false)
            case "else":
                try expectBlockEnd()
                let (elseBody, _) = try parseBody(until: ["endif"])
                try expectBlockEnd()
                return .conditional(branches, elseBody: elseBody)
            default:
                try expectBlockEnd()
                return .conditional(branches, elseBody: [])
            }
        }
    }

    private mutating func parseSet(_ location: TemplateSourceLocation) throws(ChatTemplateError) -> TemplateNode {
        let target = try parseAssignTarget()
        if isSymbol("=") {
            _ = advance()
            let value = try parseTuple(withConditional: true, explicitParentheses: false)
            try expectBlockEnd()
            return .set(target, value, location)
        }
        let filters = isSymbol("|") ? try parseFilterChain(requireFirstPipe: true) : []
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endset"])
        try expectBlockEnd()
        return .setBlock(target, filters: filters, body: body, location)
    }

    private mutating func parseAssignTarget() throws(ChatTemplateError) -> JinjaAssignTarget {
        let parenthesized = isSymbol("(")
        if parenthesized { _ = advance() }
        let first = try expectName()
        if !parenthesized && isSymbol(".") {
            _ = advance()
            return .attribute(first, try expectName())
        }
        var names = [first]
        var isTuple = false
        while isSymbol(",") {
            _ = advance()
            isTuple = true
            guard case .name(let name) = current.kind else { break }
            _ = advance()
            names.append(name)
        }
        if parenthesized {
            try expectSymbol(")")
            isTuple = true
        }
        return isTuple ? .tuple(names) : .name(first)
    }

    private mutating func parseMacroParameters() throws(ChatTemplateError) -> [JinjaMacroParameter] {
        try expectSymbol("(")
        var parameters: [JinjaMacroParameter] = []
        while !isSymbol(")") {
            if !parameters.isEmpty { try expectSymbol(",") }
            if isSymbol(")") { break }
            let name = try expectName()
            var defaultValue: JinjaExpression? = nil
            if isSymbol("=") {
                _ = advance()
                defaultValue = try parseExpression(withConditional: true)
            }
            parameters.append(JinjaMacroParameter(name: name, defaultValue: defaultValue))
        }
        try expectSymbol(")")
        return parameters
    }

    private mutating func parseMacro(_ location: TemplateSourceLocation) throws(ChatTemplateError) -> TemplateNode {
        let name = try expectName()
        let parameters = try parseMacroParameters()
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endmacro"])
        if case .name = current.kind { _ = advance() }  // `{% endmacro name %}`
        try expectBlockEnd()
        return .macro(JinjaMacroDefinition(name: name, parameters: parameters, body: body, location: location))
    }

    private mutating func parseCallBlock(_ location: TemplateSourceLocation) throws(ChatTemplateError) -> TemplateNode {
        let parameters = isSymbol("(") ? try parseMacroParameters() : []
        let call = try parseExpression(withConditional: true)
        guard case .call = call else {
            throw call.location.syntaxError("`{% call %}` expects a macro call")
        }
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endcall"])
        try expectBlockEnd()
        return .callBlock(call: call, callerParameters: parameters, body: body, location)
    }

    private mutating func parseFilterChain(requireFirstPipe: Bool) throws(ChatTemplateError) -> [JinjaFilterCall] {
        var filters: [JinjaFilterCall] = []
        var first = true
        while isSymbol("|") || (first && !requireFirstPipe) {
            if isSymbol("|") { _ = advance() }
            first = false
            let location = current.location
            let name = try parseDottedName()
            let arguments = isSymbol("(") ? try parseCallArguments() : []
            filters.append(JinjaFilterCall(name: name, arguments: arguments, location: location))
        }
        return filters
    }

    // MARK: Expressions

    private func isTupleEnd(_ extraEnds: Set<String>) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .endOfInput: return true
        case .symbol(let symbol): return symbol == ")" || symbol == "]" || symbol == "}"
        case .name(let name): return extraEnds.contains(name)
        default: return false
        }
    }

    /// Jinja's `parse_tuple`: one expression, or several separated by commas (a tuple).
    private mutating func parseTuple(withConditional: Bool, explicitParentheses: Bool,
                                     extraEnds: Set<String> = []) throws(ChatTemplateError) -> JinjaExpression
    {
        let location = current.location
        var items: [JinjaExpression] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectSymbol(",") }
            if isTupleEnd(extraEnds) { break }
            items.append(try parseExpression(withConditional: withConditional))
            if isSymbol(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let only = items.first { return only }
            if !explicitParentheses {
                throw current.location.syntaxError("expected an expression, found \(describe(current.kind))")
            }
        }
        return .tuple(items, location)
    }

    private mutating func parseExpression(withConditional: Bool) throws(ChatTemplateError) -> JinjaExpression {
        withConditional ? try parseConditional() : try parseOr()
    }

    private mutating func parseConditional() throws(ChatTemplateError) -> JinjaExpression {
        var expression = try parseOr()
        while isName("if") {
            let location = current.location
            _ = advance()
            let condition = try parseOr()
            var otherwise: JinjaExpression? = nil
            if isName("else") {
                _ = advance()
                otherwise = try parseConditional()
            }
            expression = .conditional(then: expression, condition: condition, otherwise: otherwise, location)
        }
        return expression
    }

    private mutating func parseOr() throws(ChatTemplateError) -> JinjaExpression {
        var left = try parseAnd()
        while isName("or") {
            let location = advance().location
            left = .binary(.or, left, try parseAnd(), location)
        }
        return left
    }

    private mutating func parseAnd() throws(ChatTemplateError) -> JinjaExpression {
        var left = try parseNot()
        while isName("and") {
            let location = advance().location
            left = .binary(.and, left, try parseNot(), location)
        }
        return left
    }

    private mutating func parseNot() throws(ChatTemplateError) -> JinjaExpression {
        if isName("not") {
            let location = advance().location
            return .unary(.not, try parseNot(), location)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws(ChatTemplateError) -> JinjaExpression {
        let location = current.location
        let left = try parseMath1()
        var operations: [(JinjaCompareOperator, JinjaExpression)] = []
        while true {
            if case .symbol(let symbol) = current.kind, let operation = JinjaCompareOperator(rawValue: symbol) {
                _ = advance()
                operations.append((operation, try parseMath1()))
            } else if isName("in") {
                _ = advance()
                operations.append((.contains, try parseMath1()))
            } else if isName("not"), case .name("in") = next.kind {
                _ = advance()
                _ = advance()
                operations.append((.notContains, try parseMath1()))
            } else {
                break
            }
        }
        return operations.isEmpty ? left : .compare(left, operations, location)
    }

    private mutating func parseMath1() throws(ChatTemplateError) -> JinjaExpression {
        var left = try parseConcat()
        while isSymbol("+") || isSymbol("-") {
            let token = advance()
            let operation: JinjaBinaryOperator = token.kind == .symbol("+") ? .add : .subtract
            left = .binary(operation, left, try parseConcat(), token.location)
        }
        return left
    }

    private mutating func parseConcat() throws(ChatTemplateError) -> JinjaExpression {
        var left = try parseMath2()
        while isSymbol("~") {
            let location = advance().location
            left = .binary(.concatenate, left, try parseMath2(), location)
        }
        return left
    }

    private mutating func parseMath2() throws(ChatTemplateError) -> JinjaExpression {
        var left = try parsePower()
        while true {
            guard case .symbol(let symbol) = current.kind,
                let operation = JinjaBinaryOperator(rawValue: symbol),
                [.multiply, .divide, .floorDivide, .modulo].contains(operation)
            else { return left }
            let location = advance().location
            left = .binary(operation, left, try parsePower(), location)
        }
    }

    private mutating func parsePower() throws(ChatTemplateError) -> JinjaExpression {
        var left = try parseUnary(withFilter: true)
        while isSymbol("**") {
            let location = advance().location
            left = .binary(.power, left, try parseUnary(withFilter: true), location)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool) throws(ChatTemplateError) -> JinjaExpression {
        var expression: JinjaExpression
        if isSymbol("-") || isSymbol("+") {
            let token = advance()
            let operation: JinjaUnaryOperator = token.kind == .symbol("-") ? .negate : .plus
            expression = .unary(operation, try parseUnary(withFilter: false), token.location)
        } else {
            expression = try parsePrimary()
        }
        expression = try parsePostfix(expression)
        if withFilter { expression = try parseFilterAndTests(expression) }
        return expression
    }

    private mutating func parsePrimary() throws(ChatTemplateError) -> JinjaExpression {
        let token = current
        switch token.kind {
        case .name(let name):
            _ = advance()
            switch name {
            case "true", "True": return .literal(.bool(true), token.location)
            case "false", "False": return .literal(.bool(false), token.location)
            case "none", "None": return .literal(.none, token.location)
            default: return .name(name, token.location)
            }
        case .string(var text):
            _ = advance()
            // Adjacent string literals concatenate, as in Python.
            while case .string(let more) = current.kind {
                text += more
                _ = advance()
            }
            return .literal(.string(text), token.location)
        case .integer(let value):
            _ = advance()
            return .literal(.int(value), token.location)
        case .float(let value):
            _ = advance()
            return .literal(.double(value), token.location)
        case .symbol("("):
            _ = advance()
            let expression = try parseTuple(withConditional: true, explicitParentheses: true)
            try expectSymbol(")")
            return expression
        case .symbol("["):
            _ = advance()
            var items: [JinjaExpression] = []
            while !isSymbol("]") {
                if !items.isEmpty { try expectSymbol(",") }
                if isSymbol("]") { break }
                items.append(try parseExpression(withConditional: true))
            }
            try expectSymbol("]")
            return .list(items, token.location)
        case .symbol("{"):
            _ = advance()
            var pairs: [(key: JinjaExpression, value: JinjaExpression)] = []
            while !isSymbol("}") {
                if !pairs.isEmpty { try expectSymbol(",") }
                if isSymbol("}") { break }
                let key = try parseExpression(withConditional: true)
                try expectSymbol(":")
                pairs.append((key, try parseExpression(withConditional: true)))
            }
            try expectSymbol("}")
            return .dictionary(pairs, token.location)
        default:
            throw token.location.syntaxError("unexpected \(describe(token.kind))")
        }
    }

    private mutating func parsePostfix(_ base: JinjaExpression) throws(ChatTemplateError) -> JinjaExpression {
        var expression = base
        while true {
            if isSymbol(".") {
                let location = advance().location
                switch current.kind {
                case .name(let name):
                    _ = advance()
                    expression = .attribute(expression, name, location)
                case .integer(let value):
                    _ = advance()
                    expression = .index(expression, .literal(.int(value), location), location)
                default:
                    throw current.location.syntaxError("expected an attribute name after `.`")
                }
            } else if isSymbol("[") {
                let location = advance().location
                expression = try parseSubscript(expression, location)
            } else if isSymbol("(") {
                let location = current.location
                expression = .call(expression, try parseCallArguments(), location)
            } else {
                return expression
            }
        }
    }

    private mutating func parseSubscript(_ base: JinjaExpression, _ location: TemplateSourceLocation) throws(ChatTemplateError)
        -> JinjaExpression
    {
        var parts: [JinjaExpression?] = []
        var sawColon = false
        var currentPart: JinjaExpression? = nil
        while !isSymbol("]") {
            if isSymbol(":") {
                _ = advance()
                sawColon = true
                parts.append(currentPart)
                currentPart = nil
                continue
            }
            if currentPart != nil {
                throw current.location.syntaxError("expected `]` or `:` in subscript")
            }
            currentPart = try parseExpression(withConditional: true)
        }
        try expectSymbol("]")
        parts.append(currentPart)
        if !sawColon {
            guard let index = parts[0] else { throw location.syntaxError("empty subscript `[]`") }
            return .index(base, index, location)
        }
        guard parts.count <= 3 else { throw location.syntaxError("a slice takes at most three parts") }
        return .slice(base, start: parts[0], stop: parts.count > 1 ? parts[1] : nil,
                      step: parts.count > 2 ? parts[2] : nil, location)
    }

    private mutating func parseCallArguments() throws(ChatTemplateError) -> [JinjaArgument] {
        try expectSymbol("(")
        var arguments: [JinjaArgument] = []
        while !isSymbol(")") {
            if !arguments.isEmpty { try expectSymbol(",") }
            if isSymbol(")") { break }
            if isSymbol("*") || isSymbol("**") {
                throw current.location.syntaxError("`*args` / `**kwargs` in calls are not supported")
            }
            if case .name(let name) = current.kind, case .symbol("=") = next.kind {
                _ = advance()
                _ = advance()
                arguments.append(JinjaArgument(name: name, value: try parseExpression(withConditional: true)))
            } else {
                if arguments.contains(where: { $0.name != nil }) {
                    throw current.location.syntaxError("positional argument after keyword argument")
                }
                arguments.append(JinjaArgument(name: nil, value: try parseExpression(withConditional: true)))
            }
        }
        try expectSymbol(")")
        return arguments
    }

    private mutating func parseDottedName() throws(ChatTemplateError) -> String {
        var name = try expectName()
        while isSymbol("."), case .name(let part) = next.kind {
            _ = advance()
            _ = advance()
            name += "." + part
        }
        return name
    }

    private mutating func parseFilterAndTests(_ base: JinjaExpression) throws(ChatTemplateError) -> JinjaExpression {
        var expression = base
        while true {
            if isSymbol("|") {
                let location = advance().location
                let name = try parseDottedName()
                let arguments = isSymbol("(") ? try parseCallArguments() : []
                expression = .filter(expression, name: name, arguments, location)
            } else if isName("is") {
                let location = advance().location
                var negated = false
                if isName("not") {
                    _ = advance()
                    negated = true
                }
                let name = try parseDottedName()
                var arguments: [JinjaArgument] = []
                if isSymbol("(") {
                    arguments = try parseCallArguments()
                } else if startsBareTestArgument {
                    let argument = try parsePostfix(try parsePrimary())
                    arguments = [JinjaArgument(name: nil, value: argument)]
                }
                expression = .test(expression, name: name, negated: negated, arguments, location)
            } else if isSymbol("(") {
                let location = current.location
                expression = .call(expression, try parseCallArguments(), location)
            } else {
                return expression
            }
        }
    }

    /// `x is divisibleby 3`: a test may take one argument without parentheses.
    private var startsBareTestArgument: Bool {
        switch current.kind {
        case .name(let name): return !["else", "or", "and", "if", "in", "not", "is"].contains(name)
        case .string, .integer, .float: return true
        case .symbol(let symbol): return symbol == "[" || symbol == "{"
        default: return false
        }
    }
}
