import ArgumentParser
import EnergonCore
import EnergonEngine
import EnergonModels
import Foundation

/// `energon bench-parallel`: decode speed of a tp × pp grid with each token's time split into
/// computation and communication: the time every tensor-parallel rank spends inside its
/// collectives (`CommunicationClock`: all-reduces of the row-parallel layers and the embedding,
/// the logit all-gather; waiting for slower peers included) against the rest of the token.
struct BenchParallelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-parallel",
        abstract: "Decode speed of a tp × pp grid, with per-token compute and communication time per rank.",
        discussion: """
        Decodes --gen-tokens tokens one at a time after a --prompt-tokens prompt (untimed), \
        --repetitions times, and prints tokens/s, then for every rank its milliseconds per token \
        inside collectives and outside them (computation, including the rank's own bookkeeping). \
        With pipeline stages, a stage idles while the others run: the split covers tensor \
        parallelism only.
        """)

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "Prompt tokens before decoding (untimed).")
    var promptTokens: Int = 32

    @Option(name: .long, help: "Tokens decoded one at a time (timed).")
    var genTokens: Int = 32

    @Option(name: .long, help: "Repetitions.")
    var repetitions: Int = 3

    func validate() throws {
        guard promptTokens >= 1, genTokens >= 1 else { throw ValidationError("--prompt-tokens and --gen-tokens must be ≥ 1") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be ≥ 1") }
    }

    func run() throws {
        let (generator, _, _) = try options.makeGenerator(contextLength: promptTokens + genTokens + 1)
        let vocabulary = Int32(generator.configuration.vocabularySize)
        var random = SplitMix64(seed: 7)
        let prompt = (0..<promptTokens).map { _ in Int32.random(in: 0..<vocabulary, using: &random) }
        var rates: [Double] = []
        var communication: [String: Double] = [:]   // "stage.rank" -> seconds over all timed tokens
        var decodeSeconds = 0.0
        for _ in 0..<repetitions {
            var table: [Int32] = []
            _ = try generator.forward(prompt, startPosition: 0, table: &table)
            var token = prompt[prompt.count - 1]
            CommunicationClock.shared.reset()
            let start = monotonicClock()
            for index in 0..<genTokens {
                _ = try generator.forward([token], startPosition: promptTokens + index, table: &table)
                token = Int32((Int(token) + 7919) % Int(vocabulary))
            }
            let elapsed = monotonicClock() - start
            decodeSeconds += elapsed
            rates.append(Double(genTokens) / elapsed)
            for totals in CommunicationClock.shared.totals() {
                communication["\(totals.stage).\(totals.rank)", default: 0] += totals.seconds
            }
            generator.release(&table)
        }
        let mean = rates.reduce(0, +) / Double(rates.count)
        let deviation = (rates.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(1, rates.count - 1))).squareRoot()
        let tokens = Double(genTokens * repetitions)
        let perToken = decodeSeconds / tokens * 1000
        print(String(format: "tp %d × pp %d, %d thread(s) per rank: tg%d %.2f ± %.2f tokens/s, %.2f ms per token",
                     options.tp, options.pp, options.threads, genTokens, mean, deviation, perToken))
        guard options.tp > 1 else { return }
        print("| stage.rank | communication ms/token | compute ms/token | communication share |")
        print("| --- | ---: | ---: | ---: |")
        for key in communication.keys.sorted() {
            let inside = communication[key, default: 0] / tokens * 1000
            print(String(format: "| %@ | %.3f | %.3f | %.1f%% |", key, inside, perToken - inside, 100 * inside / perToken))
        }
    }
}
