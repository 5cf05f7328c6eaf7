import EnergonCheckpoint
import EnergonTokenizers
import Foundation

/// Loads the fixtures made by scripts/make_template_fixtures.py. The JSON is parsed in order
/// (Foundation's JSONSerialization forgets key order, and templates print keys in order, e.g.
/// through `tojson`).
enum ChatTemplateFixtures {
    static let directory: URL = {
        // invariant: the test target copies Fixtures/ as a resource
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    }()

    static func load() throws -> TemplateObject {
        let data = try Data(contentsOf: directory.appendingPathComponent("templates/chat_templates.json"))
        let path = directory.appendingPathComponent("templates/chat_templates.json").path
        guard case .object(let root) = try templateValue(data.withUnsafeBytes { try OrderedJSONValue.parse($0, path: path) }) else {
            throw FixtureError.malformed("root is not an object")
        }
        return root
    }

    static func templateSource(_ relativePath: String) throws -> String {
        let data = try Data(contentsOf: directory.appendingPathComponent(relativePath))
        guard let text = String(data: data, encoding: .utf8) else { throw FixtureError.malformed(relativePath) }
        return text
    }
}

enum FixtureError: Error {
    case malformed(String)
}

extension TemplateValue {
    var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var arrayValue: [TemplateValue] {
        if case .array(let items) = self { return items }
        return []
    }

    var objectValue: TemplateObject {
        if case .object(let object) = self { return object }
        return TemplateObject()
    }

    var boolValue: Bool {
        if case .bool(let flag) = self { return flag }
        return false
    }

    var intValue: Int? {
        if case .int(let number) = self { return number }
        return nil
    }
}

/// The fixture JSON as template values, objects in file order (the package's `OrderedJSONValue`
/// keeps members in order; integers stay integers).
private func templateValue(_ json: OrderedJSONValue) throws -> TemplateValue {
    switch json {
    case .array(let items):
        return .array(try items.map(templateValue))
    case .object(let members):
        var object = TemplateObject()
        for (key, value) in members { object[key] = try templateValue(value) }
        return .object(object)
    case .scalar(let value):
        switch value {
        case .null: return .null
        case .bool(let flag): return .bool(flag)
        case .int(let number): return .int(number)
        case .double(let number): return .double(number)
        case .string(let text): return .string(text)
        case .array, .object: throw FixtureError.malformed("a scalar holds a container")
        }
    }
}

