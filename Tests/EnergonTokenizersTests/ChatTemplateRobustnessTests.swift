import EnergonTokenizers
import Foundation
import Testing

/// Malformed and hostile templates: every failure is a `ChatTemplateError` whose line and column lie
/// inside the source; nothing traps, recurses without bound or allocates without bound.
extension ChatTemplateTests {
    /// SplitMix64: a small deterministic generator so failures reproduce.
    struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
    }

    static func checkLocation(_ error: ChatTemplateError, in source: String) {
        let lineCount = source.split(separator: "\n", omittingEmptySubsequences: false).count
        #expect(error.line >= 1 && error.line <= lineCount + 1, "\(error) for \(source.prefix(200).debugDescription)")
        #expect(error.column >= 1, "\(error)")
    }

    @Test func mutatedRealTemplatesFailCleanly() throws {
        let fragments = ["{{", "}}", "{%", "%}", "{#", "#}", "(", ")", "[", "]", "{", "}", "'", "\"", "|", "-", "\\",
                         "\n", "é", "endfor", "endif", "if", "else", " is ", " not ", ".", ",", "=", "~", "**", "%"]
        var generator = SplitMix(state: 0x5EED)
        let messages = [ChatMessage(role: "system", content: "S"), ChatMessage(role: "user", content: "U"),
                        ChatMessage(role: "assistant", content: "A"), ChatMessage(role: "user", content: "V")]
        var parsed = 0
        var rejected = 0
        for name in Self.templateNames {
            let template = try #require(Self.fixtures["templates"]?.arrayValue.first {
                $0.objectValue["name"]?.stringValue == name
            }?.objectValue)
            let original = Array(try ChatTemplateFixtures.templateSource(try #require(template["file"]?.stringValue)).unicodeScalars)
            for _ in 0..<40 {
                var scalars = original
                for _ in 0..<(1 + generator.below(3)) {
                    let position = generator.below(scalars.count + 1)
                    switch generator.below(3) {
                    case 0:
                        let length = min(generator.below(12) + 1, scalars.count - position)
                        if length > 0 { scalars.removeSubrange(position..<(position + length)) }
                    case 1:
                        scalars.insert(contentsOf: fragments[generator.below(fragments.count)].unicodeScalars, at: position)
                    default:
                        let length = min(generator.below(20), scalars.count - position)
                        scalars.insert(contentsOf: scalars[position..<(position + length)], at: position)
                    }
                }
                var view = String.UnicodeScalarView()
                view.append(contentsOf: scalars)
                let source = String(view)
                do {
                    let chatTemplate = try ChatTemplate(source: source)
                    parsed += 1
                    do {
                        _ = try chatTemplate.render(messages: messages, addGenerationPrompt: true, bosToken: "<s>",
                                                    eosToken: "</s>", now: Self.fixtureNow)
                    } catch {
                        Self.checkLocation(error, in: source)
                    }
                } catch {
                    rejected += 1
                    #expect(error.kind == .syntax)
                    Self.checkLocation(error, in: source)
                }
            }
        }
        // Both outcomes must occur, or the mutations test nothing.
        #expect(parsed > 50 && rejected > 50, "parsed \(parsed), rejected \(rejected)")
    }

    @Test func hostileTemplatesAreBounded() {
        let deepParentheses = String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000)
        let deepNot = String(repeating: "not ", count: 5000) + "x"
        let deepIf = String(repeating: "{% if true %}", count: 5000) + String(repeating: "{% endif %}", count: 5000)
        for source in ["{{ \(deepParentheses) }}", "{{ \(deepNot) }}", deepIf, "{{ " + String(repeating: "-", count: 5000) + "1 }}"] {
            do {
                _ = try ChatTemplate(source: source)
                Issue.record("deep nesting should be rejected")
            } catch {
                #expect(error.kind == .syntax && error.message.contains("nests deeper"), "\(error)")
            }
        }
        let runtimeCases = [
            "{% macro forever(n) %}{{ forever(n + 1) }}{% endmacro %}{{ forever(0) }}",
            "{{ 'x' * 1000000000000 }}",
            "{{ [1] * 1000000000000 }}",
            "{{ range(1000000000) | length }}",
        ]
        for source in runtimeCases {
            do {
                _ = try ChatTemplate(source: source).render(context: [:])
                Issue.record("\(source) should fail")
            } catch {
                #expect(error.kind == .runtime && error.line == 1, "\(source): \(error)")
            }
        }
    }
}
