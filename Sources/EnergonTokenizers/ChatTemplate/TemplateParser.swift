// Recursive-descent parser from tokens to the syntax tree, following Jinja's grammar and operator
// precedence (jinja2/parser.py): conditional < or < and < not < comparisons (incl. in / not in)
// < + - < ~ < * / // % < ** < unary - + < primary with postfix (. [] ()) then filters `|` and tests `is`.
// So `'a' + x | trim` is `'a' + (x | trim)` and `not x in y` is `not (x in y)`.

struct TemplateParser {
    let tokens: [TemplateToken]
    var index = 0
    /// Current nesting of statements and sub-expressions; bounded so that a hostile template cannot
    /// exhaust the stack (real chat templates nest a handful of levels).
    var depth = 0
    static let maximumDepth = 64

    /// Counts one nesting level; call `depth -= 1` when leaving it.
    mutating func enterNesting() throws(ChatTemplateError) {
        depth += 1
        if depth > Self.maximumDepth {
            throw current.location.syntaxError("template nests deeper than \(Self.maximumDepth) levels")
        }
    }

    init(tokens: [TemplateToken]) {
        self.tokens = tokens
    }

    var current: TemplateToken { tokens[index] }
    var next: TemplateToken { tokens[min(index + 1, tokens.count - 1)] }

    mutating func advance() -> TemplateToken {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    func isSymbol(_ symbol: String) -> Bool {
        if case .symbol(symbol) = current.kind { return true }
        return false
    }

    func isName(_ name: String) -> Bool {
        if case .name(name) = current.kind { return true }
        return false
    }

    func describe(_ kind: TemplateTokenKind) -> String {
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

    mutating func expectSymbol(_ symbol: String) throws(ChatTemplateError) {
        guard isSymbol(symbol) else {
            throw current.location.syntaxError("expected `\(symbol)`, found \(describe(current.kind))")
        }
        _ = advance()
    }

    mutating func expectName() throws(ChatTemplateError) -> String {
        guard case .name(let name) = current.kind else {
            throw current.location.syntaxError("expected a name, found \(describe(current.kind))")
        }
        _ = advance()
        return name
    }

    mutating func expectKeyword(_ keyword: String) throws(ChatTemplateError) {
        guard isName(keyword) else {
            throw current.location.syntaxError("expected `\(keyword)`, found \(describe(current.kind))")
        }
        _ = advance()
    }

    mutating func expectBlockEnd() throws(ChatTemplateError) {
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
    mutating func parseBody(until endNames: Set<String>) throws(ChatTemplateError)
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

    mutating func parseStatement(_ name: String, _ location: TemplateSourceLocation) throws(ChatTemplateError) -> TemplateNode {
        try enterNesting()
        defer { depth -= 1 }
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

    var isBlockEnd: Bool {
        if case .blockEnd = current.kind { return true }
        return false
    }

    mutating func parseFor(_ location: TemplateSourceLocation) throws(ChatTemplateError) -> TemplateNode {
        // As in jinja2, a trailing comma (`for a, in x`) takes `in` as a name and then fails.
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

    mutating func parseIf() throws(ChatTemplateError) -> TemplateNode {
        var branches: [(condition: JinjaExpression, body: [TemplateNode])] = []
        // Jinja parses `if` / `elif` conditions without the inline `x if c else y` form.
        var condition = try parseTuple(withConditional: false, explicitParentheses: false)
        while true {
            try expectBlockEnd()
            let (body, end) = try parseBody(until: ["elif", "else", "endif"])
            branches.append((condition, body))
            switch end?.name {
            case "elif":
                condition = try parseTuple(withConditional: false, explicitParentheses: false)
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

    mutating func parseSet(_ location: TemplateSourceLocation) throws(ChatTemplateError) -> TemplateNode {
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

    /// Jinja's `parse_assign_target`: `name`, `ns.attribute`, or names separated by commas (optionally in
    /// parentheses); `extraEnds` are names that end a tuple (`in` for `for`).
    mutating func parseAssignTarget(extraEnds: Set<String> = []) throws(ChatTemplateError) -> JinjaAssignTarget {
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
            if isTupleEnd(extraEnds) { break }
            names.append(try expectName())
        }
        if parenthesized { try expectSymbol(")") }
        return isTuple ? .tuple(names) : .name(first)
    }

    mutating func parseMacroParameters() throws(ChatTemplateError) -> [JinjaMacroParameter] {
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

    mutating func parseMacro(_ location: TemplateSourceLocation) throws(ChatTemplateError) -> TemplateNode {
        let name = try expectName()
        let parameters = try parseMacroParameters()
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endmacro"])
        if case .name = current.kind { _ = advance() }  // `{% endmacro name %}`
        try expectBlockEnd()
        return .macro(JinjaMacroDefinition(name: name, parameters: parameters, body: body, location: location))
    }

    mutating func parseCallBlock(_ location: TemplateSourceLocation) throws(ChatTemplateError) -> TemplateNode {
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

    mutating func parseFilterChain(requireFirstPipe: Bool) throws(ChatTemplateError) -> [JinjaFilterCall] {
        var filters: [JinjaFilterCall] = []
        var first = true
        while isSymbol("|") || (first && !requireFirstPipe) {
            if isSymbol("|") { _ = advance() }
            first = false
            let location = current.location
            let name = try parseFilterName()
            let arguments = isSymbol("(") ? try parseCallArguments() : []
            filters.append(JinjaFilterCall(name: name, arguments: arguments, location: location))
        }
        return filters
    }
}
