// Executes a parsed template. Scoping follows Jinja: `{% if %}` opens no scope, each iteration of a
// `{% for %}` body gets a fresh scope on top of the enclosing ones (so `{% set %}` inside a loop never
// leaks out, which is why templates use `namespace()`), and a macro sees only the template's top-level
// scope plus its own parameters.

enum JinjaControlFlow {
    case normal
    case breakLoop
    case continueLoop
}

final class TemplateRenderer {
    var scopes: [[String: JinjaValue]]
    var output = ""
    /// Nesting of macro calls; bounded like Python's recursion limit bounds Jinja (a self-calling
    /// macro must fail cleanly, not overflow the stack).
    var macroDepth = 0
    static let maximumMacroDepth = 64
    /// Output larger than this fails (a template like `{{ 'x' * 10**12 }}` must not exhaust memory).
    static let maximumOutputScalars = 64 << 20

    init(globals: [String: JinjaValue]) {
        scopes = [globals]
    }

    func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() {
            if let value = scope[name] { return value }
        }
        return .undefined("'\(name)' is undefined")
    }

    func assign(_ name: String, _ value: JinjaValue) {
        // invariant: there is always at least the global scope
        scopes[scopes.count - 1][name] = value
    }

    /// Renders `nodes` into a separate buffer and returns it.
    func capture(_ nodes: [TemplateNode]) throws(ChatTemplateError) -> String {
        let saved = output
        output = ""
        defer { output = saved }
        _ = try execute(nodes)
        return output
    }

    func execute(_ nodes: [TemplateNode]) throws(ChatTemplateError) -> JinjaControlFlow {
        for node in nodes {
            switch node {
            case .text(let text):
                output += text
            case .output(let expression):
                output += try evaluate(expression).string
            case .conditional(let branches, let elseBody):
                var chosen = elseBody
                for branch in branches {
                    if try evaluate(branch.condition).isTruthy {
                        chosen = branch.body
                        break
                    }
                }
                let flow = try execute(chosen)
                if flow != .normal { return flow }
            case .forLoop(let loop):
                try executeFor(loop)
            case .set(let target, let expression, let location):
                try bind(target, try evaluate(expression), location)
            case .setBlock(let target, let filters, let body, let location):
                var value = JinjaValue.string(try capture(body))
                for filter in filters {
                    value = try applyFilter(filter.name, value, try evaluateArguments(filter.arguments, filter.location))
                }
                try bind(target, value, location)
            case .macro(let definition):
                assign(definition.name, .function(makeMacro(definition.name, definition.parameters, definition.body,
                                                            definition.location)))
            case .callBlock(let callExpression, let callerParameters, let body, let location):
                guard case .call(let callee, let arguments, let callLocation) = callExpression else {
                    throw location.syntaxError("`{% call %}` expects a macro call")
                }
                let function = try evaluate(callee)
                var evaluated = try evaluateArguments(arguments, callLocation)
                evaluated.keyword.append(("caller", .function(makeMacro("caller", callerParameters, body, location))))
                output += try call(function, evaluated, callLocation).string
            case .filterBlock(let filters, let body):
                var value = JinjaValue.string(try capture(body))
                for filter in filters {
                    value = try applyFilter(filter.name, value, try evaluateArguments(filter.arguments, filter.location))
                }
                output += value.string
            case .with(let assignments, let body):
                scopes.append([:])
                defer { scopes.removeLast() }
                for (target, expression) in assignments {
                    try bind(target, try evaluate(expression), expression.location)
                }
                let flow = try execute(body)
                if flow != .normal { return flow }
            case .breakLoop:
                return .breakLoop
            case .continueLoop:
                return .continueLoop
            }
        }
        return .normal
    }

    func bind(_ target: JinjaAssignTarget, _ value: JinjaValue, _ location: TemplateSourceLocation) throws(ChatTemplateError) {
        switch target {
        case .name(let name):
            assign(name, value)
        case .tuple(let names):
            let items = try iterate(value, location)
            guard items.count == names.count else {
                throw location.runtimeError(
                    "cannot unpack \(items.count) values into \(names.count) names (\(names.joined(separator: ", ")))")
            }
            for (name, item) in zip(names, items) { assign(name, item) }
        case .attribute(let name, let attribute):
            guard case .namespace(let namespace) = lookup(name) else {
                throw location.runtimeError("cannot assign attribute on non-namespace object `\(name)`")
            }
            namespace.attributes[attribute] = value
        }
    }

    /// The items a `for` loop visits: list and tuple items, dictionary keys, string characters.
    func iterate(_ value: JinjaValue, _ location: TemplateSourceLocation) throws(ChatTemplateError) -> [JinjaValue] {
        switch value.demoted {
        case .undefined: return []
        case .array(let items), .tuple(let items): return items
        case .range(let range): return range.values
        case .dictionary(let dictionary): return dictionary.keys
        case .iterator(let items), .view(_, let items): return items
        case .failedIterator(let reason): throw location.runtimeError(reason)
        case .string(let text): return text.unicodeScalars.map { .string(String($0)) }
        default: throw location.runtimeError("'\(value.typeName)' object is not iterable")
        }
    }

    private func executeFor(_ loop: JinjaForLoop) throws(ChatTemplateError) {
        var items = try iterate(try evaluate(loop.iterable), loop.iterable.location)
        if let condition = loop.condition {
            var kept: [JinjaValue] = []
            for item in items {
                scopes.append([:])
                defer { scopes.removeLast() }
                try bind(loop.target, item, loop.location)
                if try evaluate(condition).isTruthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            _ = try execute(loop.elseBody)
            return
        }
        let length = items.count
        for (index, item) in items.enumerated() {
            var loopObject = JinjaDictionary()
            loopObject["index"] = .int(index + 1)
            loopObject["index0"] = .int(index)
            loopObject["revindex"] = .int(length - index)
            loopObject["revindex0"] = .int(length - index - 1)
            loopObject["first"] = .bool(index == 0)
            loopObject["last"] = .bool(index == length - 1)
            loopObject["length"] = .int(length)
            loopObject["depth"] = .int(1)
            loopObject["depth0"] = .int(0)
            loopObject["previtem"] = index > 0 ? items[index - 1] : .undefined("there is no previous item")
            loopObject["nextitem"] = index + 1 < length ? items[index + 1] : .undefined("there is no next item")
            loopObject["cycle"] = .function(JinjaFunction(name: "cycle") { arguments throws(ChatTemplateError) in
                guard !arguments.positional.isEmpty else {
                    throw arguments.location.runtimeError("no items for cycling given")
                }
                return arguments.positional[index % arguments.positional.count]
            })
            scopes.append(["loop": .dictionary(loopObject)])
            defer { scopes.removeLast() }
            try bind(loop.target, item, loop.location)
            let flow = try execute(loop.body)
            if flow == .breakLoop { break }
        }
    }

    func makeMacro(_ name: String, _ parameters: [JinjaMacroParameter], _ body: [TemplateNode], _ location: TemplateSourceLocation)
        -> JinjaFunction
    {
        // Macros see the template's top-level scope (as it is when called) plus their parameters.
        JinjaFunction(name: name) { [unowned self] arguments throws(ChatTemplateError) in
            var frame: [String: JinjaValue] = [:]
            guard arguments.positional.count <= parameters.count else {
                throw arguments.location.runtimeError(
                    "macro `\(name)` takes \(parameters.count) arguments, \(arguments.positional.count) given")
            }
            for (parameter, value) in zip(parameters, arguments.positional) { frame[parameter.name] = value }
            for (key, value) in arguments.keyword {
                guard parameters.contains(where: { $0.name == key }) || key == "caller" else {
                    throw arguments.location.runtimeError("macro `\(name)` takes no keyword argument `\(key)`")
                }
                frame[key] = value
            }
            guard self.macroDepth < Self.maximumMacroDepth else {
                throw arguments.location.runtimeError("macros nest deeper than \(Self.maximumMacroDepth) calls")
            }
            let savedScopes = self.scopes
            let savedOutput = self.output
            self.macroDepth += 1
            defer {
                self.scopes = savedScopes
                self.output = savedOutput
                self.macroDepth -= 1
            }
            self.scopes = [savedScopes[0], frame]
            for parameter in parameters where self.scopes[1][parameter.name] == nil {
                if let defaultValue = parameter.defaultValue {
                    self.scopes[1][parameter.name] = try self.evaluate(defaultValue)
                } else {
                    self.scopes[1][parameter.name] = .undefined("parameter '\(parameter.name)' was not provided")
                }
            }
            self.output = ""
            _ = try self.execute(body)
            return .string(self.output)
        }
    }

    func call(_ callee: JinjaValue, _ arguments: JinjaArguments, _ location: TemplateSourceLocation) throws(ChatTemplateError) -> JinjaValue {
        switch callee {
        case .function(let function): return try function.body(arguments)
        case .undefined(let reason): throw location.runtimeError(reason)
        default: throw location.runtimeError("'\(callee.typeName)' object is not callable")
        }
    }

    func evaluateArguments(_ arguments: [JinjaArgument], _ location: TemplateSourceLocation) throws(ChatTemplateError) -> JinjaArguments {
        var result = JinjaArguments(location: location)
        for argument in arguments {
            let value = try evaluate(argument.value)
            if let name = argument.name { result.keyword.append((name, value)) } else { result.positional.append(value) }
        }
        return result
    }
}
