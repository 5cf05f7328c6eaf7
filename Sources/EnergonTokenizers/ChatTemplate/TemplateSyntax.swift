// The syntax tree of a parsed template: statements (`Node`) holding expressions (`Expression`).
// Every expression carries its source location so that runtime errors can name line and column.

enum Literal: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
}

enum UnaryOperator: Sendable {
    case negate, plus, not
}

enum BinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", floorDivide = "//", modulo = "%"
    case power = "**", concatenate = "~", and, or
}

enum CompareOperator: String, Sendable {
    case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case contains = "in", notContains = "not in"
}

struct Argument: Sendable {
    /// `nil` for a positional argument.
    var name: String?
    var value: Expression
}

indirect enum Expression: Sendable {
    case literal(Literal, SourceLocation)
    case name(String, SourceLocation)
    case list([Expression], SourceLocation)
    case tuple([Expression], SourceLocation)
    case dictionary([(key: Expression, value: Expression)], SourceLocation)
    case attribute(Expression, String, SourceLocation)
    case index(Expression, Expression, SourceLocation)
    case slice(Expression, start: Expression?, stop: Expression?, step: Expression?, SourceLocation)
    case call(Expression, [Argument], SourceLocation)
    case filter(Expression, name: String, [Argument], SourceLocation)
    case test(Expression, name: String, negated: Bool, [Argument], SourceLocation)
    case unary(UnaryOperator, Expression, SourceLocation)
    case binary(BinaryOperator, Expression, Expression, SourceLocation)
    case compare(Expression, [(CompareOperator, Expression)], SourceLocation)
    case conditional(then: Expression, condition: Expression, otherwise: Expression?, SourceLocation)

    var location: SourceLocation {
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
enum AssignTarget: Sendable {
    case name(String)
    case tuple([String])
    /// `ns.attribute` where `ns` is a `namespace()`.
    case attribute(String, String)
}

struct FilterCall: Sendable {
    var name: String
    var arguments: [Argument]
    var location: SourceLocation
}

struct MacroParameter: Sendable {
    var name: String
    var defaultValue: Expression?
}

struct ForLoop: Sendable {
    var target: AssignTarget
    var iterable: Expression
    var condition: Expression?
    var body: [Node]
    var elseBody: [Node]
    var location: SourceLocation
}

struct MacroDefinition: Sendable {
    var name: String
    var parameters: [MacroParameter]
    var body: [Node]
    var location: SourceLocation
}

indirect enum Node: Sendable {
    case text(String)
    case output(Expression)
    case forLoop(ForLoop)
    case conditional([(condition: Expression, body: [Node])], elseBody: [Node])
    case set(AssignTarget, Expression, SourceLocation)
    case setBlock(AssignTarget, filters: [FilterCall], body: [Node], SourceLocation)
    case macro(MacroDefinition)
    /// `{% call(parameters) macro(...) %}body{% endcall %}`: `caller` is a macro with `body`.
    case callBlock(call: Expression, callerParameters: [MacroParameter], body: [Node], SourceLocation)
    case filterBlock(filters: [FilterCall], body: [Node])
    case with(assignments: [(AssignTarget, Expression)], body: [Node])
    case breakLoop(SourceLocation)
    case continueLoop(SourceLocation)
}
