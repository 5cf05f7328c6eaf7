import ArgumentParser
import EnergonCore
import EnergonEngine
import EnergonModels
import Foundation

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a text file, computed as llama.cpp's llama-perplexity does.",
        discussion: """
        The text is split into non-overlapping chunks of --context tokens (the first token of each \
        chunk becomes BOS when the model uses one); the second half of every chunk is scored. The \
        last line is `perplexity: X`.
        """)

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "A UTF-8 text file.")
    var file: String

    @Option(name: .long, help: "Tokens per chunk.")
    var context: Int = 512

    @Option(name: .long, help: "Score at most this many chunks (0 = all).")
    var chunks: Int = 0

    func validate() throws {
        guard context >= 4 else { throw ValidationError("--context must be at least 4, got \(context)") }
        guard chunks >= 0 else { throw ValidationError("--chunks must be ≥ 0") }
    }

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("cannot read --file \(file)")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw ValidationError("--file \(file) is not UTF-8 text") }
        let (generator, _, _) = try options.makeGenerator(contextLength: context)
        let tokens = generator.tokenizer.encode(text, addSpecialTokens: false, parseSpecialTokens: false)
        let start = monotonicClock()
        var line = ""
        let (perplexity, scored) = try Perplexity.compute(generator: generator, tokens: tokens, context: context,
                                                          maxChunks: chunks) { progress in
            line += String(format: "[%d]%.4f,", progress.chunk, progress.perplexity)
            printError("\r" + line, terminator: "")
        }
        printError("")
        let chunkCount = scored / (context - 1 - context / 2)
        let seconds = monotonicClock() - start
        printError(String(format: "%d chunks of %d tokens, %d scored, %.1f s (%.1f tokens/s)", chunkCount, context, scored,
                          seconds, Double(chunkCount * context) / seconds))
        print(String(format: "perplexity: %.4f", perplexity))
    }
}
