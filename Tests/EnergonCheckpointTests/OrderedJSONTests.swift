import EnergonCheckpoint
import Testing

/// The shared JSON scanner's ordered, byte-exact tree (what `tokenizer.json` needs) against
/// hand-checked documents, and its agreement with the keyed `JSONValue` tree.
@Suite struct OrderedJSONTests {
    /// Bytes of a document: keys "é" as U+00E9 (C3 A9), "e" + U+0301 (65 CC 81), U+00E9 again,
    /// U+FEFF + "x" (EF BB BF 78), then "b" and "a" (not in sorted order).
    static let equivalentKeys: [UInt8] = Array(#"{"\#u{E9}": 1, "e\#u{301}": 2, "\#u{E9}": 3, "\#u{FEFF}x": 4, "b": 5, "a": 6}"#.utf8)

    static func parseOrdered(_ bytes: [UInt8], options: JSONParsingOptions = .strict) throws -> OrderedJSONValue {
        try bytes.withUnsafeBytes { try OrderedJSONValue.parse($0, path: "x", options: options) }
    }

    @Test func canonicallyEquivalentKeysStayDistinctAndInFileOrder() throws {
        let value = try Self.parseOrdered(Self.equivalentKeys)
        let members = try #require(value.members)
        #expect(members.map { Array($0.key.utf8) } == [[0xC3, 0xA9], [0x65, 0xCC, 0x81], [0xC3, 0xA9], [0xEF, 0xBB, 0xBF, 0x78], [0x62], [0x61]])
        #expect(members.map { $0.value.scalarValue?.int } == [1, 2, 3, 4, 5, 6])
        // Lookup is byte-exact and the last repeat wins.
        #expect(value["\u{E9}"]?.scalarValue?.int == 3)
        #expect(value["e\u{301}"]?.scalarValue?.int == 2)
        #expect(value["\u{FEFF}x"]?.scalarValue?.int == 4)
        #expect(value["x"] == nil)
    }

    @Test func keyedTreeRejectsTheEquivalentKeyAsARepeat() {
        // `String ==` is canonical equivalence, so the keyed tree sees "e\u{301}" (at byte 10) as a
        // repeat of "é": the reason the tokenizer needs the ordered tree.
        let error = checkpointError { _ = try Self.equivalentKeys.withUnsafeBytes { try JSONValue.parse($0, path: "x") } }
        #expect(error == .badJSON(path: "x", offset: 10, message: "duplicate key \"e\u{301}\""))
    }

    @Test func valuesKeepExactIntegersAndStringBytes() throws {
        let value = try OrderedJSONValue.parse(#"[9007199254740993, -1, 2.5, 1e2, "\ufeffa\u0065\u0301", true, null, {}]"#, path: "x")
        let elements = try #require(value.array)
        #expect(elements.count == 8)
        #expect(elements[0].scalarValue?.int == 9_007_199_254_740_993)
        #expect(elements[1].scalarValue?.int == -1)
        #expect(elements[2].scalarValue?.double == 2.5 && elements[2].scalarValue?.int == nil)
        #expect(elements[3].scalarValue?.int == 100)
        #expect(elements[4].scalarValue?.string.map { Array($0.utf8) } == [0xEF, 0xBB, 0xBF, 0x61, 0x65, 0xCC, 0x81])
        #expect(elements[5].scalarValue?.bool == true)
        #expect(elements[6].scalarValue?.isNull == true)
        #expect(elements[7].members?.isEmpty == true)
    }

    @Test func byteOrderMarkIsSkippedOnlyWhenAsked() throws {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array(#"{"a": 1}"#.utf8)
        #expect(try Self.parseOrdered(bytes, options: JSONParsingOptions(skipsByteOrderMark: true))["a"]?.scalarValue?.int == 1)
        let strict = checkpointError { _ = try Self.parseOrdered(bytes) }
        #expect(strict == .badJSON(path: "x", offset: 0, message: "unexpected character '\u{EF}'"))
        let keyed = checkpointError { _ = try bytes.withUnsafeBytes { try JSONValue.parse($0, path: "x") } }
        #expect(keyed == strict)
    }

    @Test(arguments: [
        (#""\ud800""#, "\u{FFFD}"),
        (#""\udc00x""#, "\u{FFFD}x"),
        (#""\ud800\u0041""#, "\u{FFFD}A"),
        (#""\ud800\ud83d\ude00""#, "\u{FFFD}\u{1F600}"),
        (#""\ud83d\ude00""#, "\u{1F600}"),
    ])
    func unpairedSurrogatesAreReplacedOnlyWhenAsked(text: String, expected: String) throws {
        let lenient = JSONParsingOptions(replacesUnpairedSurrogates: true)
        #expect(try OrderedJSONValue.parse(text, path: "x", options: lenient).scalarValue?.string.map { Array($0.utf8) } == Array(expected.utf8))
        let strict = checkpointError { _ = try OrderedJSONValue.parse(text, path: "x") }
        if expected.unicodeScalars.contains("\u{FFFD}") {
            #expect({ if case .badJSON? = strict { true } else { false } }(), "\(text)")
        } else {
            #expect(strict == nil)
        }
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"abc", "\"\\x\"", "tru", "{} x",
                      "\"\u{01}\"", "[1 2]", "{\"a\":1,}", String(repeating: "[", count: 200) + String(repeating: "]", count: 200)])
    func orderedAndKeyedTreesRejectTheSameMalformedJSON(text: String) {
        let ordered = checkpointError { _ = try OrderedJSONValue.parse(text, path: "x") }
        let keyed = checkpointError { _ = try JSONValue.parse(text, path: "x") }
        #expect({ if case .badJSON? = ordered { true } else { false } }(), "\(text)")
        #expect(ordered == keyed, "\(text)")
    }
}
