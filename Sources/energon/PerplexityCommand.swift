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
        let (loaded, _) = try options.load()
        let generator = Generator(loaded: loaded, context: options.makeContext(), contextLength: context)
        let tokenizer = loaded.tokenizer
        let tokens = tokenizer.encode(text, addSpecialTokens: false, parseSpecialTokens: false)
        let addBOS = tokenizer.addsBOS
        var chunkCount = tokens.count / context
        if chunks > 0 { chunkCount = min(chunkCount, chunks) }
        guard chunkCount > 0 else {
            throw ValidationError("--file has \(tokens.count) tokens, fewer than one chunk of \(context)")
        }
        let vocabulary = loaded.model.configuration.vocabularySize
        let first = context / 2
        var negativeLogLikelihood = 0.0
        var scored = 0
        let start = monotonicClock()
        var line = ""
        for chunk in 0..<chunkCount {
            var input = Array(tokens[(chunk * context)..<((chunk + 1) * context)])
            if addBOS, let bos = tokenizer.bosTokenID { input[0] = bos }
            var table: [Int32] = []
            defer { generator.release(&table) }
            guard let logits = try generator.forward(input, startPosition: 0, table: &table, logitsFrom: first) else { continue }
            // Row r of `logits` is position first + r; it predicts token first + r + 1.
            for r in 0..<(context - 1 - first) {
                let row = logits + r * vocabulary
                var maximum = -Float.infinity
                for i in 0..<vocabulary { maximum = max(maximum, row[i]) }
                var sum = 0.0
                for i in 0..<vocabulary { sum += Double(expf(row[i] - maximum)) }
                let target = Int(input[first + r + 1])
                negativeLogLikelihood += log(sum) + Double(maximum) - Double(row[target])
                scored += 1
            }
            line += String(format: "[%d]%.4f,", chunk + 1, exp(negativeLogLikelihood / Double(scored)))
            printError("\r" + line, terminator: "")
        }
        printError("")
        let seconds = monotonicClock() - start
        printError(String(format: "%d chunks of %d tokens, %d scored, %.1f s (%.1f tokens/s)", chunkCount, context, scored,
                          seconds, Double(chunkCount * context) / seconds))
        print(String(format: "perplexity: %.4f", exp(negativeLogLikelihood / Double(scored))))
    }
}
