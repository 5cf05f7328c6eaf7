import ArgumentParser
import EnergonCore
import EnergonEngine
import EnergonModels
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Prompt and generation speed, measured as llama-bench measures them.",
        discussion: """
        pp: one forward pass over a prompt of --prompt-tokens random tokens. tg: --gen-tokens tokens \
        decoded one at a time. Both start after --depth tokens already in the cache (untimed). Each \
        is repeated --repetitions times; the mean and standard deviation are printed.
        """)

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "Prompt tokens (0 = skip the prompt test).")
    var promptTokens: Int = 512

    @Option(name: .long, help: "Generated tokens (0 = skip the generation test).")
    var genTokens: Int = 128

    @Option(name: .long, help: "Tokens already in the KV cache before each test.")
    var depth: Int = 0

    @Option(name: .long, help: "Repetitions of each test.")
    var repetitions: Int = 5

    @Flag(name: .long, help: "Print one JSON object as the last line.")
    var json = false

    func validate() throws {
        guard promptTokens >= 0, genTokens >= 0, depth >= 0 else { throw ValidationError("token counts must be ≥ 0") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be ≥ 1") }
    }

    func run() throws {
        let length = depth + max(promptTokens, genTokens) + 1
        let (generator, _, _) = try options.makeGenerator(contextLength: length)
        generator.prefillChunk = max(512, promptTokens)
        let vocabulary = Int32(generator.configuration.vocabularySize)
        var random = SplitMix64(seed: 42)
        func randomTokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32.random(in: 0..<vocabulary, using: &random) } }

        func prepareDepth(_ table: inout [Int32]) throws {
            var position = 0
            while position < depth {
                let n = min(512, depth - position)
                _ = try generator.forward(randomTokens(n), startPosition: position, table: &table)
                position += n
            }
        }
        // Warm-up: touch the weights once.
        var warm: [Int32] = []
        _ = try generator.forward(randomTokens(min(16, max(1, promptTokens))), startPosition: 0, table: &warm)
        generator.release(&warm)

        var promptRates: [Double] = []
        var generationRates: [Double] = []
        for _ in 0..<repetitions {
            if promptTokens > 0 {
                var table: [Int32] = []
                try prepareDepth(&table)
                let prompt = randomTokens(promptTokens)
                let start = monotonicClock()
                _ = try generator.forward(prompt, startPosition: depth, table: &table)
                promptRates.append(Double(promptTokens) / (monotonicClock() - start))
                generator.release(&table)
            }
            if genTokens > 0 {
                var table: [Int32] = []
                try prepareDepth(&table)
                var token = randomTokens(1)[0]
                let start = monotonicClock()
                for i in 0..<genTokens {
                    _ = try generator.forward([token], startPosition: depth + i, table: &table)
                    token = Int32((Int(token) + 7919) % Int(vocabulary))
                }
                generationRates.append(Double(genTokens) / (monotonicClock() - start))
                generator.release(&table)
            }
        }
        let name = URL(fileURLWithPath: options.model).lastPathComponent
        func summary(_ rates: [Double]) -> (mean: Double, deviation: Double) {
            guard !rates.isEmpty else { return (0, 0) }
            let mean = rates.reduce(0, +) / Double(rates.count)
            let variance = rates.count > 1 ? rates.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(rates.count - 1) : 0
            return (mean, variance.squareRoot())
        }
        let pp = summary(promptRates), tg = summary(generationRates)
        print("| model | threads | test | tokens/s |")
        print("| --- | ---: | --- | ---: |")
        let depthSuffix = depth > 0 ? " @ d\(depth)" : ""
        if promptTokens > 0 {
            print(String(format: "| %@ | %d | pp%d%@ | %.2f ± %.2f |", name, options.threads, promptTokens, depthSuffix, pp.mean, pp.deviation))
        }
        if genTokens > 0 {
            print(String(format: "| %@ | %d | tg%d%@ | %.2f ± %.2f |", name, options.threads, genTokens, depthSuffix, tg.mean, tg.deviation))
        }
        if json {
            let object: [String: Any] = [
                "model": name, "threads": options.threads, "prompt_tokens": promptTokens, "gen_tokens": genTokens,
                "depth": depth, "repetitions": repetitions, "isa": options.makeContextISA(), "tp": options.tp, "pp": options.pp,
                "prompt_tokens_per_second": pp.mean, "prompt_tokens_per_second_stddev": pp.deviation,
                "generation_tokens_per_second": tg.mean, "generation_tokens_per_second_stddev": tg.deviation,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }
}

extension ModelOptions {
    /// The kernel level these options select, by name.
    func makeContextISA() -> String { (isa.flatMap(ISA.init(name:)) ?? .best).description }
}
