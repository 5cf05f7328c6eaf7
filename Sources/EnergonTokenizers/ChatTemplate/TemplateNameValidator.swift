// Jinja reports an unknown filter or test name when it compiles the template, except inside
// `{% if %}` blocks and `x if c else y` expressions ("soft" frames), where the error waits until a
// render actually applies it (jinja2/compiler.py `_filter_test_common`). This pass reproduces that: it
// walks the tree after parsing and rejects unknown names outside soft positions; the renderer raises
// the deferred ones.

struct TemplateNameValidator {
    static func validate(_ nodes: [TemplateNode]) throws(ChatTemplateError) {
        for node in nodes { try validate(node, soft: false) }
    }

    private static func validate(_ node: TemplateNode, soft: Bool) throws(ChatTemplateError) {
        switch node {
        case .text, .breakLoop, .continueLoop:
            return
        case .output(let expression):
            try validate(expression, soft: soft)
        case .forLoop(let loop):
            try validate(loop.iterable, soft: soft)
            // The loop body (and its filter condition) compile in a new, hard frame.
            if let condition = loop.condition { try validate(condition, soft: false) }
            for child in loop.body { try validate(child, soft: false) }
            for child in loop.elseBody { try validate(child, soft: false) }
        case .conditional(let branches, let elseBody):
            for branch in branches {
                try validate(branch.condition, soft: true)
                for child in branch.body { try validate(child, soft: true) }
            }
            for child in elseBody { try validate(child, soft: true) }
        case .set(_, let expression, _):
            try validate(expression, soft: soft)
        case .setBlock(_, let filters, let body, _):
            try validate(filters, soft: false)
            for child in body { try validate(child, soft: false) }
        case .macro(let definition):
            for parameter in definition.parameters {
                if let defaultValue = parameter.defaultValue { try validate(defaultValue, soft: false) }
            }
            for child in definition.body { try validate(child, soft: false) }
        case .callBlock(let call, let parameters, let body, _):
            try validate(call, soft: soft)
            for parameter in parameters {
                if let defaultValue = parameter.defaultValue { try validate(defaultValue, soft: false) }
            }
            for child in body { try validate(child, soft: false) }
        case .filterBlock(let filters, let body):
            try validate(filters, soft: false)
            for child in body { try validate(child, soft: false) }
        case .with(let assignments, let body):
            for (_, expression) in assignments { try validate(expression, soft: soft) }
            for child in body { try validate(child, soft: false) }
        }
    }

    private static func validate(_ filters: [JinjaFilterCall], soft: Bool) throws(ChatTemplateError) {
        for filter in filters {
            if !soft && !jinjaFilterNames.contains(filter.name) {
                throw filter.location.syntaxError("no filter named `\(filter.name)`")
            }
            for argument in filter.arguments { try validate(argument.value, soft: soft) }
        }
    }

    private static func validate(_ expression: JinjaExpression, soft: Bool) throws(ChatTemplateError) {
        switch expression {
        case .literal, .name:
            return
        case .list(let items, _), .tuple(let items, _):
            for item in items { try validate(item, soft: soft) }
        case .dictionary(let pairs, _):
            for pair in pairs {
                try validate(pair.key, soft: soft)
                try validate(pair.value, soft: soft)
            }
        case .attribute(let base, _, _):
            try validate(base, soft: soft)
        case .index(let base, let index, _):
            try validate(base, soft: soft)
            try validate(index, soft: soft)
        case .slice(let base, let start, let stop, let step, _):
            try validate(base, soft: soft)
            for part in [start, stop, step] { if let part { try validate(part, soft: soft) } }
        case .call(let callee, let arguments, _):
            try validate(callee, soft: soft)
            for argument in arguments { try validate(argument.value, soft: soft) }
        case .filter(let base, let name, let arguments, let location):
            if !soft && !jinjaFilterNames.contains(name) { throw location.syntaxError("no filter named `\(name)`") }
            try validate(base, soft: soft)
            for argument in arguments { try validate(argument.value, soft: soft) }
        case .test(let base, let name, _, let arguments, let location):
            if !soft && !jinjaTestNames.contains(name) { throw location.syntaxError("no test named `\(name)`") }
            try validate(base, soft: soft)
            for argument in arguments { try validate(argument.value, soft: soft) }
        case .unary(_, let operand, _):
            try validate(operand, soft: soft)
        case .binary(_, let left, let right, _):
            try validate(left, soft: soft)
            try validate(right, soft: soft)
        case .compare(let first, let operations, _):
            try validate(first, soft: soft)
            for (_, operand) in operations { try validate(operand, soft: soft) }
        case .conditional(let then, let condition, let otherwise, _):
            try validate(then, soft: true)
            try validate(condition, soft: true)
            if let otherwise { try validate(otherwise, soft: true) }
        }
    }
}
