import ArgumentParser
import EnergonTokenizers
import Foundation

/// `energon tokenize`: prints the token ids a prompt becomes, or the round-tripped text.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of a prompt, space-separated, on one line."
    )

    @Option(name: .long, help: "A .gguf file or a Hugging Face folder with tokenizer.json.")
    var model: String

    @Option(name: .long, help: "The prompt text.")
    var text: String?

    @Option(name: .long, help: "A file holding the prompt text (read verbatim, as UTF-8).")
    var file: String?

    @Flag(name: .long, help: "Print the round-tripped text (the prompt's ids decoded, without added BOS/EOS) instead of the ids.")
    var decode = false

    @Flag(name: .long, help: "Neither add BOS/EOS nor parse special-token text such as <|im_start|>.")
    var noSpecial = false

    @Option(name: .long, help: "Encode the prompt N times and print the throughput to standard error.")
    var benchmark: Int?

    func validate() throws {
        if (text == nil) == (file == nil) {
            throw ValidationError("give exactly one of --text and --file")
        }
        if let benchmark, benchmark < 1 {
            throw ValidationError("--benchmark needs a positive repetition count")
        }
    }

    func run() throws {
        let prompt: String
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read --file \(file)")
            }
            prompt = String(decoding: data, as: UTF8.self)
        } else {
            prompt = text ?? ""
        }
        let tokenizer = try TokenizerLoader.load(path: model)
        let ids = tokenizer.encode(prompt, addSpecialTokens: !noSpecial, parseSpecialTokens: !noSpecial)
        if let benchmark {
            let clock = ContinuousClock()
            var best = Duration.seconds(1_000_000)
            for _ in 0..<benchmark {
                let start = clock.now
                let again = tokenizer.encode(prompt, addSpecialTokens: !noSpecial, parseSpecialTokens: !noSpecial)
                let elapsed = clock.now - start
                precondition(again == ids)  // invariant: encoding is deterministic
                best = min(best, elapsed)
            }
            let seconds = Double(best.components.seconds) + Double(best.components.attoseconds) * 1e-18
            let megabytes = Double(prompt.utf8.count) / 1e6
            FileHandle.standardError.write(Data(String(
                format: "encode: %d bytes -> %d tokens, best of %d: %.4f s, %.2f MB/s\n",
                prompt.utf8.count, ids.count, benchmark, seconds, megabytes / seconds).utf8))
        }
        if decode {
            // The round trip of the prompt itself: without the BOS/EOS that encoding adds.
            let bare = noSpecial ? ids : tokenizer.encode(prompt, addSpecialTokens: false, parseSpecialTokens: true)
            print(tokenizer.decode(bare), terminator: prompt.hasSuffix("\n") ? "" : "\n")
        } else {
            print(ids.map(String.init).joined(separator: " "))
        }
    }
}
