// libFuzzer entry point for the tokenizer.json path: JSON parsing, tokenizer construction from
// the parsed document, and encoding/decoding with whatever tokenizer results. Built by
// scripts/fuzz_tokenizer_json.sh together with the EnergonTokenizers sources (one module, so the
// internal initializer is reachable). Any trap or sanitizer report is a bug: hostile input must
// only ever produce a TokenizerError.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizerJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let document = try? JSONDocument.parse(bytes, file: "fuzz.json") else { return 0 }
    let root = JSONNode(value: document, path: "", file: "fuzz.json")
    guard let tokenizer = try? HuggingFaceTokenizer(root: root, config: nil) else { return 0 }
    for text in ["Hello, world! 123", "  é e\u{301} 中文 👩‍💻\n\t", String(decoding: bytes.prefix(64), as: UTF8.self)] {
        let ids = tokenizer.encode(text, addSpecialTokens: true, parseSpecialTokens: true)
        _ = tokenizer.decode(ids)
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        for id in ids { _ = decoder.feed(id) }
        _ = decoder.finish()
    }
    return 0
}
