import ArgumentParser
import EnergonCheckpoint
import EnergonCore
import EnergonModels
import Foundation

/// `energon forward-logits`: runs token ids through the model (no tokenizer needed) under any
/// tp × pp grid, in process or over MPI, and writes every logit row, so a parallel run can be
/// compared with a serial one and with reference logits.
struct ForwardLogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward-logits",
        abstract: "Write the logits of given token ids (prefill, then one token at a time) to a raw f32 file.",
        discussion: """
        The first --prefill ids run as one batch with every row's logits; the rest run one at a time. \
        The rows ([ids, vocabulary] little-endian f32) go to --output. Works with .gguf files that \
        carry no tokenizer (the test fixtures) and under `mpirun` like generate.
        """,
        shouldDisplay: false)

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "Comma-separated token ids.")
    var tokens: String

    @Option(name: .long, help: "How many of the ids run as one prefill batch (the rest decode one by one).")
    var prefill: Int = 1

    @Option(name: .long, help: "Where to write the logits.")
    var output: String

    var ids: [Int32]? {
        let parts = tokens.split(separator: ",").map { Int32($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? -1) >= 0 }) else { return nil }
        return parts.compactMap { $0 }
    }

    func validate() throws {
        guard let ids else { throw ValidationError("--tokens must be comma-separated non-negative ids, got \(tokens)") }
        guard (1...ids.count).contains(prefill) else { throw ValidationError("--prefill must be between 1 and \(ids.count)") }
    }

    func run() throws {
        let ids = self.ids ?? []
        let file = try GGUFFile(path: options.model)
        guard let architecture = file.architecture else { throw ValidationError("\(options.model): no general.architecture") }
        guard let embedding = file.tensorInfo(named: "token_embd.weight"), embedding.shape.count == 2 else {
            throw ValidationError("\(options.model): no token_embd.weight")
        }
        let configuration = try ModelRegistry.configuration(architecture: architecture, metadata: file.metadata,
                                                            vocabularySize: embedding.shape[0], source: options.model)
        if let bad = ids.first(where: { Int($0) >= configuration.vocabularySize }) {
            throw ValidationError("token \(bad) is outside the vocabulary of \(configuration.vocabularySize)")
        }
        let runner: any ModelRunner
        do {
            runner = try options.makeParallelRunner(configuration: configuration, weights: { WeightSource(gguf: file) },
                                                    contextLength: ids.count)
        } catch let error as ParallelGridError {
            throw ValidationError("\(error)")
        }
        let vocabulary = configuration.vocabularySize
        var rows: [Float] = []
        var table: [Int32] = []
        try runner.blocks.ensureCapacity(&table, positions: ids.count)
        var start = 0
        while start < ids.count {
            let count = start == 0 ? prefill : 1
            let batch = ForwardBatch(sequences: [(tokens: Array(ids[start..<(start + count)]), startPosition: start,
                                                  blockTable: table)], allLogits: true)
            guard let logits = try runner.forward(batch) else { throw ValidationError("the runner returned no logits") }
            rows.append(contentsOf: UnsafeBufferPointer(start: logits, count: count * vocabulary))
            start += count
        }
        runner.blocks.free(table)
        try rows.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: output)) }
        print("forward-logits: \(ids.count) tokens × \(vocabulary) logits, tp \(options.tp) pp \(options.pp) → \(output)")
    }
}
