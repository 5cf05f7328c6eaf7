import ArgumentParser
import EnergonCore
import EnergonEngine
import EnergonModels
import Foundation

/// Serving benchmarks of the engine (the controller): throughput under concurrency, ragged
/// against padded batches, and the prefix cache's time to first token.
struct BenchEngineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-engine",
        abstract: "Serving throughput of the engine: concurrency, ragged vs padded batches, prefix cache.",
        discussion: """
        throughput: for each --concurrency N, N requests of --prompt-tokens random tokens each \
        generating --gen-tokens tokens are submitted at once (continuous batching); prints the \
        wall time, total tokens/s ((prompt + generated) / time, as llama-batched-bench's S) and \
        generated tokens/s. ragged: 8 prompts of 16..512 tokens prefilled in one batch, ragged and \
        then padded to the longest (--padded-batches is the switch the engine has). prefix: time to \
        first token of a request whose long system prompt (--prompt-tokens) is cold, then warm in \
        the prefix cache.
        """)

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "throughput, ragged or prefix.")
    var scenario: String = "throughput"

    @Option(name: .long, help: "Concurrent requests, comma-separated (throughput).")
    var concurrency: String = "1,4,8,16"

    @Option(name: .long, help: "Prompt tokens per request (prefix: the system prompt's length).")
    var promptTokens: Int = 64

    @Option(name: .long, help: "Tokens generated per request.")
    var genTokens: Int = 128

    @Option(name: .long, help: "Most tokens in one forward pass.")
    var batchTokens: Int = 512

    @Option(name: .long, help: "Batches in flight in the pipeline (default: one per stage; 1 = blocking).")
    var batchesInFlight: Int?

    @Flag(name: .long, help: "Pad every batch to its longest sequence (throughput).")
    var paddedBatches = false

    @Option(name: .long, help: "Repetitions (mean reported).")
    var repetitions: Int = 1

    @Flag(name: .long, help: "Print one JSON object per measurement.")
    var json = false

    @Flag(name: .long, help: ArgumentHelp("Print each sequence's generated token ids (throughput, first repetition).",
                                          visibility: .hidden))
    var printOutputs = false

    func validate() throws {
        guard ["throughput", "ragged", "prefix"].contains(scenario) else {
            throw ValidationError("--scenario must be throughput, ragged or prefix, got \(scenario)")
        }
        guard parsedConcurrency != nil else {
            throw ValidationError("--concurrency must be comma-separated counts from 1 to 1024, got \(concurrency)")
        }
        guard promptTokens >= 1, genTokens >= 1, batchTokens >= 1, repetitions >= 1 else {
            throw ValidationError("--prompt-tokens, --gen-tokens, --batch-tokens and --repetitions must be ≥ 1")
        }
        if let batchesInFlight, batchesInFlight < 1 { throw ValidationError("--batches-in-flight must be ≥ 1") }
    }

    var parsedConcurrency: [Int]? {
        let values = concurrency.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 1024 }) else { return nil }
        return values.compactMap { $0 }
    }

    func run() throws {
        let checkpoint = try Checkpoint.open(path: options.model)
        let maxConcurrency = scenario == "throughput" ? (parsedConcurrency?.max() ?? 1) : 8
        let perSequence = scenario == "ragged" ? 512 + 16 : promptTokens + genTokens + 16
        let blocks = (maxConcurrency + 2) * ((perSequence + 15) / 16 + 1)
        let runner: any ModelRunner
        do {
            // In process, or over the processes of an MPI job (`mpirun -np tp×pp`; the other
            // ranks serve forward passes inside this call and never return from it).
            runner = try options.makeParallelRunner(checkpoint: checkpoint, contextLength: max(perSequence, 16),
                                                    batchesInFlight: batchesInFlight ?? (options.pp > 1 ? options.pp : nil),
                                                    cacheBlocks: blocks)
        } catch let error as ParallelGridError {
            throw ValidationError("\(error)")
        }
        let vocabulary = Int32(checkpoint.configuration.vocabularySize)
        var random = SplitMix64(seed: 7)
        func randomTokens(_ count: Int) -> [Int32] { (0..<count).map { _ in Int32.random(in: 0..<vocabulary, using: &random) } }
        let label = "\(URL(fileURLWithPath: options.model).lastPathComponent) tp \(options.tp) pp \(options.pp) "
            + "threads \(options.threads) in-flight \(batchesInFlight.map(String.init) ?? "auto")"
        // Warm-up: touch every weight once.
        _ = try Generator(runner: runner, tokenizer: checkpoint.tokenizer).generate(prompt: randomTokens(8), maxTokens: 2)

        switch scenario {
        case "throughput":
            for count in parsedConcurrency ?? [1] {
                var seconds: [Double] = [], firstTokens: [Double] = [], sampling = 0.0, batches = 0
                let pipeline = runner as? LocalParallelRunner
                let activityBefore = pipeline?.stageActivity() ?? []
                for _ in 0..<repetitions {
                    let engine = Engine(runner: runner, tokenizer: checkpoint.tokenizer, configuration: .init(
                        maxBatchTokens: batchTokens, maxRunningSequences: max(count, 1), maxWaitingRequests: count + 1,
                        batchesInFlight: batchesInFlight, prefixCaching: false, paddedBatches: paddedBatches))
                    let prompts = (0..<count).map { _ in randomTokens(promptTokens) }
                    let result = try serve(engine, prompts: prompts, maxTokens: genTokens)
                    if printOutputs && seconds.isEmpty {
                        for (index, tokens) in result.outputs.enumerated() {
                            printJSON(["sequence": index, "tokens": tokens.map(Int.init)])
                        }
                    }
                    engine.shutdownGracefully(timeout: 60)
                    sampling += engine.statistics.samplingSeconds
                    batches += engine.statistics.batches
                    seconds.append(result.seconds)
                    firstTokens.append(result.meanFirstToken)
                }
                let time = seconds.reduce(0, +) / Double(seconds.count)
                let total = Double(count * (promptTokens + genTokens)) / time
                let generated = Double(count * genTokens) / time
                print(String(format: "%@ concurrency %3d: %.2f s, %.1f tokens/s total, %.1f generated tokens/s, TTFT %.0f ms, "
                             + "%d batches, sampling %.1f%% of the time",
                             label, count, time, total, generated, firstTokens.reduce(0, +) / Double(firstTokens.count) * 1000,
                             batches / repetitions, sampling / seconds.reduce(0, +) * 100))
                // Each rank's share of the measured time computing / waiting for the previous stage / without work.
                let wall = seconds.reduce(0, +)
                let stages = zip(pipeline?.stageActivity() ?? [], activityBefore).map { $0.since($1) }
                if !stages.isEmpty {
                    print("  stages: " + stages.map { stage in
                        String(format: "S%d.%d compute %.0f%% waiting %.0f%% idle %.0f%%", stage.stage, stage.tensorRank,
                               stage.computeSeconds / wall * 100, stage.waitingSeconds / wall * 100, stage.idleSeconds / wall * 100)
                    }.joined(separator: " | "))
                }
                if json {
                    printJSON(["scenario": "throughput", "model": options.model, "concurrency": count, "seconds": time,
                               "stage_compute_fraction": stages.map { $0.computeSeconds / wall },
                               "stage_waiting_fraction": stages.map { $0.waitingSeconds / wall },
                               "total_tokens_per_second": total, "generation_tokens_per_second": generated,
                               "tp": options.tp, "pp": options.pp, "threads": options.threads,
                               "batches_in_flight": batchesInFlight ?? 0, "padded": paddedBatches])
                }
            }
        case "ragged":
            let lengths = [16, 48, 96, 160, 224, 320, 416, 512]
            var results: [(padded: Bool, seconds: Double, computed: Int, padding: Int)] = []
            for padded in [false, true] {
                var seconds: [Double] = []
                var statistics = Engine.Statistics()
                for _ in 0..<repetitions {
                    let engine = Engine(runner: runner, tokenizer: checkpoint.tokenizer, configuration: .init(
                        maxBatchTokens: lengths.reduce(0, +), maxRunningSequences: lengths.count, batchesInFlight: 1,
                        prefixCaching: false, paddedBatches: padded))
                    let result = try serve(engine, prompts: lengths.map(randomTokens), maxTokens: 1)
                    statistics = engine.statistics
                    engine.shutdownGracefully(timeout: 60)
                    seconds.append(result.seconds)
                }
                results.append((padded, seconds.reduce(0, +) / Double(seconds.count), statistics.computedTokens,
                                statistics.paddingTokens))
            }
            for result in results {
                print(String(format: "%@ %@: %.3f s for %d real + %d padding tokens", label, result.padded ? "padded" : "ragged",
                             result.seconds, result.computed, result.padding))
            }
            let ratio = results[1].seconds / results[0].seconds
            let work = Double(results[1].computed + results[1].padding) / Double(results[0].computed)
            print(String(format: "padded/ragged time: %.2f× (tokens computed: %.2f×)", ratio, work))
            if json {
                printJSON(["scenario": "ragged", "model": options.model, "ragged_seconds": results[0].seconds,
                           "padded_seconds": results[1].seconds, "real_tokens": results[0].computed,
                           "padded_tokens": results[1].computed + results[1].padding, "threads": options.threads])
            }
        default:  // prefix
            var cold: [Double] = [], warm: [Double] = []
            let engine = Engine(runner: runner, tokenizer: checkpoint.tokenizer, configuration: .init(
                maxBatchTokens: batchTokens, maxRunningSequences: 4, batchesInFlight: 1, prefixCaching: true))
            defer { engine.shutdown() }
            for _ in 0..<repetitions {
                let system = randomTokens(promptTokens)  // a new system prompt each time: cold
                cold.append(try serve(engine, prompts: [system + randomTokens(8)], maxTokens: 1).meanFirstToken)
                warm.append(try serve(engine, prompts: [system + randomTokens(8)], maxTokens: 1).meanFirstToken)
            }
            let coldMean = cold.reduce(0, +) / Double(cold.count), warmMean = warm.reduce(0, +) / Double(warm.count)
            print(String(format: "%@ system prompt %d tokens: TTFT cold %.1f ms, warm %.1f ms (%.1f× faster), %d tokens from cache",
                         label, promptTokens, coldMean * 1000, warmMean * 1000, coldMean / warmMean,
                         engine.statistics.prefixCachedTokens))
            if json {
                printJSON(["scenario": "prefix", "model": options.model, "system_tokens": promptTokens,
                           "cold_ttft_seconds": coldMean, "warm_ttft_seconds": warmMean, "threads": options.threads])
            }
        }
    }

    /// Submits every prompt at once and waits for all streams; returns the wall time and the
    /// mean time to first token.
    private func serve(_ engine: Engine, prompts: [[Int32]], maxTokens: Int) throws
        -> (seconds: Double, meanFirstToken: Double, outputs: [[Int32]]) {
        let start = monotonicClock()
        let streams = try prompts.map {
            try engine.submit(GenerationRequest(prompt: $0, maxTokens: maxTokens, ignoreEOS: true)).stream
        }
        let done = DispatchSemaphore(value: 0)
        let outcome = Outcome(count: streams.count)
        Task.detached {
            do {
                try await withThrowingTaskGroup(of: (Int, Double, [Int32]).self) { group in
                    for (index, stream) in streams.enumerated() {
                        group.addTask {
                            var first = 0.0
                            var tokens: [Int32] = []
                            for try await generated in stream {
                                if first == 0 { first = monotonicClock() - start }
                                tokens.append(generated.token)
                            }
                            return (index, first, tokens)
                        }
                    }
                    for try await (index, first, tokens) in group { outcome.add(first, tokens: tokens, at: index) }
                }
            } catch {
                outcome.fail(error)
            }
            done.signal()
        }
        guard done.wait(timeout: .now() + 3600) == .success else { throw EngineError.modelFailed("benchmark timed out") }
        let seconds = monotonicClock() - start
        let (firsts, outputs, error) = outcome.result
        if let error { throw error }
        return (seconds, firsts.reduce(0, +) / Double(max(1, firsts.count)), outputs)
    }

    private func printJSON(_ object: [String: Any]) {
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]),
           let text = String(data: data, encoding: .utf8) {
            print(text)
        }
    }
}

/// Results gathered by the benchmark's consuming task.
private final class Outcome: @unchecked Sendable {
    private let lock = NSLock()
    private var firsts: [Double] = []
    private var outputs: [[Int32]]
    private var error: (any Error)?

    init(count: Int) { outputs = Array(repeating: [], count: count) }

    func add(_ first: Double, tokens: [Int32], at index: Int) {
        lock.withLock {
            firsts.append(first)
            outputs[index] = tokens
        }
    }
    func fail(_ error: any Error) { lock.withLock { self.error = error } }
    var result: ([Double], [[Int32]], (any Error)?) { lock.withLock { (firsts, outputs, error) } }
}
