// Expression grammar of the template parser (see TemplateParser.swift for the precedence ladder).

extension TemplateParser {
    // MARK: Expressions

    func isTupleEnd(_ extraEnds: Set<String>) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .endOfInput: return true
        case .symbol(let symbol): return symbol == ")" || symbol == "]" || symbol == "}"
        case .name(let name): return extraEnds.contains(name)
        default: return false
        }
    }

    /// Jinja's `parse_tuple`: one expression, or several separated by commas (a tuple).
    mutating func parseTuple(withConditional: Bool, explicitParentheses: Bool,
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

    mutating func parseExpression(withConditional: Bool) throws(ChatTemplateError) -> JinjaExpression {
        try enterNesting()
        defer { depth -= 1 }
        return withConditional ? try parseConditional() : try parseOr()
    }

    mutating func parseConditional() throws(ChatTemplateError) -> JinjaExpression {
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

    mutating func parseOr() throws(ChatTemplateError) -> JinjaExpression {
        var left = try parseAnd()
        while isName("or") {
            let location = advance().location
            left = .binary(.or, left, try parseAnd(), location)
        }
        return left
    }

    mutating func parseAnd() throws(ChatTemplateError) -> JinjaExpression {
        var left = try parseNot()
        while isName("and") {
            let location = advance().location
            left = .binary(.and, left, try parseNot(), location)
        }
        return left
    }

    mutating func parseNot() throws(ChatTemplateError) -> JinjaExpression {
        try enterNesting()
        defer { depth -= 1 }
        if isName("not") {
            let location = advance().location
            return .unary(.not, try parseNot(), location)
        }
        return try parseCompare()
    }

    mutating func parseCompare() throws(ChatTemplateError) -> JinjaExpression {
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

    mutating func parseMath1() throws(ChatTemplateError) -> JinjaExpression {
        var left = try parseConcat()
        while isSymbol("+") || isSymbol("-") {
            let token = advance()
            let operation: JinjaBinaryOperator = token.kind == .symbol("+") ? .add : .subtract
            left = .binary(operation, left, try parseConcat(), token.location)
        }
        return left
    }

    mutating func parseConcat() throws(ChatTemplateError) -> JinjaExpression {
        var left = try parseMath2()
        while isSymbol("~") {
            let location = advance().location
            left = .binary(.concatenate, left, try parseMath2(), location)
        }
        return left
    }

    mutating func parseMath2() throws(ChatTemplateError) -> JinjaExpression {
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

    mutating func parsePower() throws(ChatTemplateError) -> JinjaExpression {
        var left = try parseUnary(withFilter: true)
        while isSymbol("**") {
            let location = advance().location
            left = .binary(.power, left, try parseUnary(withFilter: true), location)
        }
        return left
    }

    mutating func parseUnary(withFilter: Bool) throws(ChatTemplateError) -> JinjaExpression {
        try enterNesting()
        defer { depth -= 1 }
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

    mutating func parsePrimary() throws(ChatTemplateError) -> JinjaExpression {
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

    mutating func parsePostfix(_ base: JinjaExpression) throws(ChatTemplateError) -> JinjaExpression {
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

    mutating func parseSubscript(_ base: JinjaExpression, _ location: TemplateSourceLocation) throws(ChatTemplateError)
        -> JinjaExpression
    {
        var parts: [JinjaExpression?] = []
        var sawColon = false
        var currentPart: JinjaExpression? = nil
        var tupleItems: [JinjaExpression] = []
        var sawComma = false
        while !isSymbol("]") {
            if isSymbol(","), !sawColon, let part = currentPart {
                // `x[a, b]` subscripts with the tuple (a, b)
                _ = advance()
                sawComma = true
                tupleItems.append(part)
                currentPart = nil
                continue
            }
            if isSymbol(":") && !sawComma {
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
            // `x[]` subscripts with the empty tuple, as in Jinja (a runtime miss, not a syntax error).
            if let index = parts[0], !sawComma { return .index(base, index, location) }
            return .index(base, .tuple(tupleItems + (parts[0].map { [$0] } ?? []), location), location)
        }
        guard parts.count <= 3 else { throw location.syntaxError("a slice takes at most three parts") }
        return .slice(base, start: parts[0], stop: parts.count > 1 ? parts[1] : nil,
                      step: parts.count > 2 ? parts[2] : nil, location)
    }

    mutating func parseCallArguments() throws(ChatTemplateError) -> [JinjaArgument] {
        try expectSymbol("(")
        var arguments: [JinjaArgument] = []
        while !isSymbol(")") {
            if !arguments.isEmpty { try expectSymbol(",") }
            if isSymbol(")") { break }
            if isSymbol("*") || isSymbol("**") {
                throw current.location.syntaxError("`*args` / `**kwargs` in calls are not supported")
            }
            if case .name(let name) = current.kind, case .symbol("=") = next.kind {
                if arguments.contains(where: { $0.name == name }) {
                    throw current.location.syntaxError("keyword argument repeated: \(name)")
                }
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

    mutating func parseDottedName() throws(ChatTemplateError) -> String {
        var name = try expectName()
        while isSymbol("."), case .name(let part) = next.kind {
            _ = advance()
            _ = advance()
            name += "." + part
        }
        return name
    }

    /// A filter name (possibly dotted); unknown names are reported by `TemplateNameValidator`.
    mutating func parseFilterName() throws(ChatTemplateError) -> String {
        try parseDottedName()
    }

    mutating func parseFilterAndTests(_ base: JinjaExpression) throws(ChatTemplateError) -> JinjaExpression {
        var expression = base
        while true {
            if isSymbol("|") {
                let location = advance().location
                let name = try parseFilterName()
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
                    if isName("is") { throw current.location.syntaxError("you cannot chain multiple tests with `is`") }
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
    var startsBareTestArgument: Bool {
        switch current.kind {
        case .name(let name): return !["else", "or", "and"].contains(name)
        case .string, .integer, .float: return true
        case .symbol(let symbol): return symbol == "[" || symbol == "{" || symbol == "("
        default: return false
        }
    }
}
