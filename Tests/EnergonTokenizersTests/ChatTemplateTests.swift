import EnergonTokenizers
import Foundation
import Testing

/// Chat templates against jinja2 configured as transformers does (fixtures from
/// scripts/make_template_fixtures.py): real model templates byte for byte, expressions, filters, tests,
/// statements and whitespace control, and error reporting.
@Suite struct ChatTemplateTests {
    static let fixtures: TemplateObject = (try? ChatTemplateFixtures.load()) ?? TemplateObject()
    static let templateNames: [String] = (fixtures["templates"]?.arrayValue ?? []).compactMap {
        $0.objectValue["name"]?.stringValue
    }

    @Test func fixturesArePresent() {
        #expect(Self.templateNames.count >= 15)
        #expect(Self.templateNames.contains("smollm2"))
        #expect((Self.fixtures["expressions"]?.arrayValue.count ?? 0) > 50)
    }

    /// The local time the fixtures were rendered at (`strftime_now`).
    static let fixtureNow: Date = {
        let fields = (fixtures["now"]?.arrayValue ?? []).compactMap(\.intValue)
        guard fields.count == 6 else { return Date(timeIntervalSince1970: 0) }
        var parts = tm()
        parts.tm_year = Int32(fields[0] - 1900)
        parts.tm_mon = Int32(fields[1] - 1)
        parts.tm_mday = Int32(fields[2])
        parts.tm_hour = Int32(fields[3])
        parts.tm_min = Int32(fields[4])
        parts.tm_sec = Int32(fields[5])
        parts.tm_isdst = -1
        return Date(timeIntervalSince1970: TimeInterval(mktime(&parts)))
    }()

    static func messages(_ conversation: TemplateValue) -> [ChatMessage] {
        conversation.arrayValue.map { item in
            var fields = item.objectValue
            let role = fields["role"]?.stringValue ?? ""
            let content = fields["content"]?.stringValue ?? ""
            fields["role"] = nil
            if fields["content"]?.stringValue != nil {
                fields["content"] = nil  // non-string content (a list of parts) stays in `extra`, replacing it
            }
            return ChatMessage(role: role, content: content, extra: fields)
        }
    }

    @Test(arguments: templateNames)
    func rendersLikeJinja(name: String) throws {
        let template = try #require(Self.fixtures["templates"]?.arrayValue.first {
            $0.objectValue["name"]?.stringValue == name
        }?.objectValue)
        let source = try ChatTemplateFixtures.templateSource(try #require(template["file"]?.stringValue))
        let chatTemplate = try ChatTemplate(source: source)
        let conversations = try #require(Self.fixtures["conversations"]).objectValue
        for caseValue in template["cases"]?.arrayValue ?? [] {
            let testCase = caseValue.objectValue
            let caseName = testCase["name"]?.stringValue ?? "?"
            let conversationName = try #require(testCase["conversation"]?.stringValue)
            let conversation = try #require(conversations[conversationName])
            var extra: [String: TemplateValue] = [:]
            for (key, value) in testCase["extra"]?.objectValue.pairs ?? [] { extra[key] = value }
            let render = { () throws(ChatTemplateError) -> String in
                try chatTemplate.render(
                    messages: Self.messages(conversation), addGenerationPrompt: testCase["add_generation_prompt"]?.boolValue ?? false,
                    bosToken: template["bos_token"]?.stringValue ?? "", eosToken: template["eos_token"]?.stringValue ?? "",
                    extra: extra, now: Self.fixtureNow)
            }
            if let expected = testCase["expected"]?.stringValue {
                do {
                    let output = try render()
                    #expect(output == expected, "\(name) / \(caseName)")
                } catch {
                    Issue.record("\(name) / \(caseName): unexpected error \(error)")
                }
            } else {
                let message = testCase["error"]?.stringValue ?? ""
                do {
                    let output = try render()
                    Issue.record("\(name) / \(caseName): expected error \(message), rendered \(output.debugDescription)")
                } catch {
                    if testCase["raised"]?.boolValue == true {
                        #expect(error.kind == .raised, "\(name) / \(caseName)")
                        #expect(error.message == message, "\(name) / \(caseName)")
                    }
                }
            }
        }
    }

    @Test func expressionsMatchJinja() throws {
        for (caseIndex, caseValue) in (Self.fixtures["expressions"]?.arrayValue ?? []).enumerated() {
            let testCase = caseValue.objectValue
            let source = try #require(testCase["template"]?.stringValue)
            var context: [String: TemplateValue] = [:]
            for (key, value) in testCase["context"]?.objectValue.pairs ?? [] { context[key] = value }
            let result: Result<String, ChatTemplateError>
            do {
                result = .success(try ChatTemplate(source: source).render(context: context, now: Self.fixtureNow))
            } catch {
                result = .failure(error)
            }
            if let expected = testCase["expected"]?.stringValue {
                switch result {
                case .success(let output): #expect(output == expected, "case \(caseIndex), template: \(source.debugDescription)")
                case .failure(let error): Issue.record("case \(caseIndex), template: \(source.debugDescription): unexpected \(error)")
                }
            } else {
                let message = testCase["error"]?.stringValue ?? ""
                switch result {
                case .success(let output):
                    Issue.record("case \(caseIndex), template: \(source.debugDescription): expected error \(message), got \(output.debugDescription)")
                case .failure(let error):
                    if testCase["raised"]?.boolValue == true {
                        #expect(error.kind == .raised && error.message == message, "case \(caseIndex), template: \(source.debugDescription)")
                    } else if testCase["syntax"]?.boolValue == true {
                        #expect(error.kind == .syntax, "case \(caseIndex), template: \(source.debugDescription): \(error)")
                    } else {
                        #expect(error.kind == .runtime, "case \(caseIndex), template: \(source.debugDescription): \(error)")
                    }
                }
            }
        }
    }

    @Test func syntaxErrorsNameLineAndColumn() throws {
        for caseValue in Self.fixtures["syntax_errors"]?.arrayValue ?? [] {
            let testCase = caseValue.objectValue
            let source = try #require(testCase["template"]?.stringValue)
            do {
                _ = try ChatTemplate(source: source)
                Issue.record("template \(source.debugDescription) parsed but jinja2 rejects it")
            } catch {
                #expect(error.kind == .syntax)
                #expect(error.line == testCase["jinja_line"]?.intValue, "template \(source.debugDescription): \(error)")
                #expect(error.column == testCase["column"]?.intValue, "template \(source.debugDescription): \(error)")
                #expect(error.description.contains("line \(error.line), column \(error.column)"))
            }
        }
    }

    @Test func unsupportedSyntaxIsATypedError() {
        let cases: [(String, Int, Int)] = [
            ("a\nb\n  {% extends 'base.html' %}", 3, 6),
            ("{% include 'x' %}", 1, 4),
            ("{% for x in y recursive %}{% endfor %}", 1, 15),
            ("{{ f(*args) }}", 1, 6),
        ]
        for (source, line, column) in cases {
            do {
                _ = try ChatTemplate(source: source)
                Issue.record("\(source.debugDescription) should not parse")
            } catch {
                #expect(error.kind == .syntax && error.line == line && error.column == column, "\(source.debugDescription): \(error)")
            }
        }
    }

    @Test func runtimeErrorsNameTheirLocation() {
        do {
            _ = try ChatTemplate(source: "line one\n  {{ messages[0].missing.deeper }}").render(context: ["messages": [["role": "user"]]])
            Issue.record("expected an undefined error")
        } catch {
            #expect(error.kind == .runtime && error.line == 2 && error.column == 25, "\(error)")
        }
    }

    @Test func strftimeNowReadsTheClock() throws {
        let output = try ChatTemplate(source: "{{ strftime_now('%Y-%m') }}").render(context: [:])
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        let expected = String(format: "%04d-%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1)
        #expect(output == expected)
    }
}
