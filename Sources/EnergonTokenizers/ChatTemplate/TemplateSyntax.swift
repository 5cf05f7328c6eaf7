// The syntax tree of a parsed template: statements (`TemplateNode`) holding expressions (`JinjaExpression`).
// Every expression carries its source location so that runtime errors can name line and column.

enum JinjaLiteral: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
}

enum JinjaUnaryOperator: Sendable {
    case negate, plus, not
}

enum JinjaBinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", floorDivide = "//", modulo = "%"
    case power = "**", concatenate = "~", and, or
}

enum JinjaCompareOperator: String, Sendable {
    case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case contains = "in", notContains = "not in"
}

struct JinjaArgument: Sendable {
    /// `nil` for a positional argument.
    var name: String?
    var value: JinjaExpression
}

indirect enum JinjaExpression: Sendable {
    case literal(JinjaLiteral, TemplateSourceLocation)
    case name(String, TemplateSourceLocation)
    case list([JinjaExpression], TemplateSourceLocation)
    case tuple([JinjaExpression], TemplateSourceLocation)
    case dictionary([(key: JinjaExpression, value: JinjaExpression)], TemplateSourceLocation)
    case attribute(JinjaExpression, String, TemplateSourceLocation)
    case index(JinjaExpression, JinjaExpression, TemplateSourceLocation)
    case slice(JinjaExpression, start: JinjaExpression?, stop: JinjaExpression?, step: JinjaExpression?, TemplateSourceLocation)
    case call(JinjaExpression, [JinjaArgument], TemplateSourceLocation)
    case filter(JinjaExpression, name: String, [JinjaArgument], TemplateSourceLocation)
    case test(JinjaExpression, name: String, negated: Bool, [JinjaArgument], TemplateSourceLocation)
    case unary(JinjaUnaryOperator, JinjaExpression, TemplateSourceLocation)
    case binary(JinjaBinaryOperator, JinjaExpression, JinjaExpression, TemplateSourceLocation)
    case compare(JinjaExpression, [(JinjaCompareOperator, JinjaExpression)], TemplateSourceLocation)
    case conditional(then: JinjaExpression, condition: JinjaExpression, otherwise: JinjaExpression?, TemplateSourceLocation)

    var location: TemplateSourceLocation {
        switch self {
        case .literal(_, let location), .name(_, let location), .list(_, let location), .tuple(_, let location),
            .dictionary(_, let location), .attribute(_, _, let location), .index(_, _, let location),
            .slice(_, _, _, _, let location), .call(_, _, let location), .filter(_, _, _, let location),
            .test(_, _, _, _, let location), .unary(_, _, let location), .binary(_, _, _, let location),
            .compare(_, _, let location), .conditional(_, _, _, let location):
            return location
        }
    }
}

/// The left side of `{% set %}` and the variables of `{% for %}`.
enum JinjaAssignTarget: Sendable {
    case name(String)
    case tuple([String])
    /// `ns.attribute` where `ns` is a `namespace()`.
    case attribute(String, String)
}

struct JinjaFilterCall: Sendable {
    var name: String
    var arguments: [JinjaArgument]
    var location: TemplateSourceLocation
}

struct JinjaMacroParameter: Sendable {
    var name: String
    var defaultValue: JinjaExpression?
}

struct JinjaForLoop: Sendable {
    var target: JinjaAssignTarget
    var iterable: JinjaExpression
    var condition: JinjaExpression?
    var body: [TemplateNode]
    var elseBody: [TemplateNode]
    var location: TemplateSourceLocation
}

struct JinjaMacroDefinition: Sendable {
    var name: String
    var parameters: [JinjaMacroParameter]
    var body: [TemplateNode]
    var location: TemplateSourceLocation
}

indirect enum TemplateNode: Sendable {
    case text(String)
    case output(JinjaExpression)
    case forLoop(JinjaForLoop)
    case conditional([(condition: JinjaExpression, body: [TemplateNode])], elseBody: [TemplateNode])
    case set(JinjaAssignTarget, JinjaExpression, TemplateSourceLocation)
    case setBlock(JinjaAssignTarget, filters: [JinjaFilterCall], body: [TemplateNode], TemplateSourceLocation)
    case macro(JinjaMacroDefinition)
    /// `{% call(parameters) macro(...) %}body{% endcall %}`: `caller` is a macro with `body`.
    case callBlock(call: JinjaExpression, callerParameters: [JinjaMacroParameter], body: [TemplateNode], TemplateSourceLocation)
    case filterBlock(filters: [JinjaFilterCall], body: [TemplateNode])
    case with(assignments: [(JinjaAssignTarget, JinjaExpression)], body: [TemplateNode])
    case breakLoop(TemplateSourceLocation)
    case continueLoop(TemplateSourceLocation)
}
