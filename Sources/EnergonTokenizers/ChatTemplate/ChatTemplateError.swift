/// An error from parsing or rendering a chat template. Every error names where in the template source it
/// arose (1-based line and column, columns counted in Unicode scalars).
public struct ChatTemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What failed.
    public enum Kind: Sendable, Equatable {
        /// The template text is not valid (or uses Jinja syntax this interpreter does not support).
        case syntax
        /// Rendering failed: a type error, an undefined value used where a value is needed, ...
        case runtime
        /// The template called `raise_exception(message)`, as chat templates do to reject a conversation.
        case raised
    }

    /// What failed.
    public var kind: Kind
    /// The explanation; for `.raised`, exactly the template's message.
    public var message: String
    /// The 1-based line in the template source.
    public var line: Int
    /// The 1-based column (in Unicode scalars) in the template source.
    public var column: Int

    /// Creates an error.
    public init(kind: Kind, message: String, line: Int, column: Int) {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
    }

    /// "chat template syntax error at line 3, column 7: ..." and similar.
    public var description: String {
        let what: String
        switch kind {
        case .syntax: what = "syntax error"
        case .runtime: what = "error"
        case .raised: what = "raised an exception"
        }
        return "chat template \(what) at line \(line), column \(column): \(message)"
    }
}

/// A position in the template source (1-based).
struct TemplateSourceLocation: Sendable, Equatable {
    var line: Int
    var column: Int

    static let unknown = TemplateSourceLocation(line: 0, column: 0)

    func syntaxError(_ message: String) -> ChatTemplateError {
        ChatTemplateError(kind: .syntax, message: message, line: line, column: column)
    }

    func runtimeError(_ message: String) -> ChatTemplateError {
        ChatTemplateError(kind: .runtime, message: message, line: line, column: column)
    }
}
