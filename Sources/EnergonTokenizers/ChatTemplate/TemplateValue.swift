// The public value model handed to chat templates: the JSON-like data a caller puts into a template's
// context (messages, tools, flags, special tokens). The interpreter works on its own richer `JinjaValue`
// (with undefined, tuples, namespaces and callables); these two types are only the boundary.

/// A value a caller passes into a chat template: the JSON data model (null, booleans, numbers, strings,
/// arrays, objects with ordered keys).
///
/// Object keys keep their insertion order because templates print them (`tojson`, `items()`), and
/// Python dictionaries, which the reference renders, keep insertion order too.
public enum TemplateValue: Sendable, Equatable {
    /// Python's `None` (JSON `null`).
    case null
    /// A boolean.
    case bool(Bool)
    /// An integer.
    case int(Int)
    /// A floating-point number.
    case double(Double)
    /// A string.
    case string(String)
    /// A list.
    case array([TemplateValue])
    /// A dictionary with string keys in insertion order.
    case object(TemplateObject)
}

extension TemplateValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    /// Creates a `.string`.
    public init(stringLiteral value: String) { self = .string(value) }
    /// Creates an `.int`.
    public init(integerLiteral value: Int) { self = .int(value) }
    /// Creates a `.bool`.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// Creates a `.double`.
    public init(floatLiteral value: Double) { self = .double(value) }
    /// Creates an `.array`.
    public init(arrayLiteral elements: TemplateValue...) { self = .array(elements) }
    /// Creates an `.object` whose keys keep the literal's order.
    public init(dictionaryLiteral elements: (String, TemplateValue)...) { self = .object(TemplateObject(elements)) }
    /// Creates `.null`.
    public init(nilLiteral: ()) { self = .null }
}

/// A string-keyed dictionary that remembers insertion order, like a Python `dict`.
public struct TemplateObject: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    /// The keys in insertion order.
    public private(set) var keys: [String] = []
    private var storage: [String: TemplateValue] = [:]

    /// Creates an empty object.
    public init() {}

    /// Creates an object from key-value pairs; a repeated key keeps its first position and its last value.
    public init(_ pairs: [(String, TemplateValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    /// Creates an object whose keys keep the literal's order.
    public init(dictionaryLiteral elements: (String, TemplateValue)...) { self.init(elements) }

    /// The value for `key`; setting a new key appends it, setting `nil` removes it.
    public subscript(key: String) -> TemplateValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// The key-value pairs in insertion order.
    public var pairs: [(key: String, value: TemplateValue)] {
        keys.map { key in
            // invariant: `keys` and `storage` hold the same key set
            (key, storage[key]!)
        }
    }

    /// The number of keys.
    public var count: Int { keys.count }

    /// Objects are equal when they hold the same pairs in the same order.
    public static func == (left: TemplateObject, right: TemplateObject) -> Bool {
        left.keys == right.keys && left.storage == right.storage
    }
}

/// One message of a conversation as chat templates see it: a dictionary with `role`, `content` and any
/// extra fields (for example `tool_calls` or `name`).
public struct ChatMessage: Sendable, Equatable {
    /// The speaker: `system`, `user`, `assistant`, `tool`, ...
    public var role: String
    /// The text of the message.
    public var content: String
    /// Further fields the template may read, in the order they appear after `role` and `content`.
    public var extra: TemplateObject

    /// Creates a message.
    /// - Parameters:
    ///   - role: the speaker.
    ///   - content: the text.
    ///   - extra: further fields (a `content` or `role` key here replaces the one above).
    public init(role: String, content: String, extra: TemplateObject = TemplateObject()) {
        self.role = role
        self.content = content
        self.extra = extra
    }

    /// The dictionary the template sees: `role`, `content`, then the extra fields.
    public var templateValue: TemplateValue {
        var object: TemplateObject = ["role": .string(role), "content": .string(content)]
        for (key, value) in extra.pairs { object[key] = value }
        return .object(object)
    }
}
