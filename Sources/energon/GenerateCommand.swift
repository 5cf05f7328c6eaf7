import ArgumentParser
import EnergonCore
import EnergonEngine
import EnergonModels
import Foundation

#if canImport(Glibc)
import Glibc
#endif

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Continue a prompt, streaming the text to stdout.")

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "The prompt text.")
    var prompt: String

    @Option(name: .long, help: "Most tokens to generate.")
    var maxTokens: Int = 128

    @Option(name: .long, help: "Sampling temperature (0 = greedy).")
    var temperature: Float = 0

    @Option(name: .long, help: "Keep the k most likely tokens (0 = off).")
    var topK: Int = 0

    @Option(name: .long, help: "Nucleus sampling threshold (1 = off).")
    var topP: Float = 1

    @Option(name: .long, help: "Minimum probability relative to the best token (0 = off).")
    var minP: Float = 0

    @Option(name: .long, help: "Repetition penalty (1 = off).")
    var repeatPenalty: Float = 1

    @Option(name: .long, help: "Random seed.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Stop when this text appears (repeatable).")
    var stop: [String] = []

    @Flag(name: .long, help: "Do not parse special-token strings in the prompt.")
    var noSpecial = false

    func validate() throws {
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be ≥ 0") }
        do {
            try sampling.validate()
        } catch {
            throw ValidationError("\(error)")
        }
    }

    var sampling: SamplingParameters {
        SamplingParameters(temperature: temperature, topK: topK, topP: topP, minP: minP,
                           repetitionPenalty: repeatPenalty, seed: seed)
    }

    func run() throws {
        let (generator, _, loadSeconds) = try options.makeGenerator()
        let ids = generator.tokenizer.encode(prompt, addSpecialTokens: true, parseSpecialTokens: !noSpecial)
        let result = try generator.generate(prompt: ids, parameters: sampling, maxTokens: maxTokens, stopStrings: stop) { text in
            writeOutput(text)
            return true
        }
        writeOutput("\n")
        printError(String(format: "prompt: %d tokens, %.1f tok/s | generation: %d tokens, %.1f tok/s | load: %.2f s | finish: %@",
                          result.promptTokens, result.promptTokensPerSecond, result.tokens.count,
                          result.generationTokensPerSecond, loadSeconds, result.finishReason.rawValue))
    }
}
