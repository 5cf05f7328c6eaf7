#if MPI
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The MPI runtime end to end: `mpirun` starts the `energon` binary built alongside this test
/// bundle (same configuration, same `MPI` trait) as N processes. These tests exist only in
/// builds with the `MPI` trait (`make test`); they need `mpirun` (apt `openmpi-bin`) and fail,
/// with a message saying so, when it is missing.
@Suite(.serialized) struct MPIJobTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let fixtures = packageRoot.appendingPathComponent("Tests/EnergonModelsTests/Fixtures")

    /// The tiny reference decoders (token ids and transformers' logits) of
    /// scripts/make_model_fixtures.py: models.json, and the decoders of models-extra.json.
    struct Case: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let tokens: [Int32]
        let gguf: String
        let logits: String?
        let expected: String?
        let encoder: Bool?
        var testDescription: String { name }
        var reference: String { logits ?? expected ?? "" }
    }

    static var cases: [Case] {
        struct Manifest: Decodable { let cases: [Case] }
        return ["models.json", "models-extra.json"].flatMap { name -> [Case] in
            guard let data = try? Data(contentsOf: fixtures.appendingPathComponent(name)),
                  let manifest = try? JSONDecoder().decode(Manifest.self, from: data) else { return [] }
            return manifest.cases.filter { $0.encoder != true }
        }
    }

    @Test("collectives over MPI match closed forms", arguments: [1, 2, 3, 4])
    func collectives(processes: Int) throws {
        let result = try MPIProcess.run(processes: processes, ["mpi-collectives", "--verify", "--timeout", "20"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("\(processes) ranks, every check passed"), "\(result.standardOutput)")
    }

    @Test("the manifest lists the tiny models") func manifestIsThere() {
        #expect(Self.cases.count >= 6, "Tests/EnergonModelsTests/Fixtures/models.json or models-extra.json is missing or short")
    }

    @Test("tiny models at tp 2 × pp 2 over MPI give the serial logits and transformers'", arguments: cases)
    func tinyModelGrid(_ testCase: Case) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("energon-mpi-\(getpid())-\(testCase.name)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let tokens = testCase.tokens.map(String.init).joined(separator: ",")
        func arguments(_ output: URL, tp: Int, pp: Int) -> [String] {
            ["forward-logits", "--model", Self.fixtures.appendingPathComponent(testCase.gguf).path, "--tokens", tokens,
             "--prefill", "5", "--threads", "1", "--kv-cache", "f32", "--tp", "\(tp)", "--pp", "\(pp)", "--output", output.path]
        }
        let serialFile = directory.appendingPathComponent("serial.f32")
        let serial = try MPIProcess.runDirect(arguments(serialFile, tp: 1, pp: 1))
        try #require(serial.status == 0, "serial run: \(serial.standardError)")
        let expected = try Self.floats(Self.fixtures.appendingPathComponent(testCase.reference))
        let serialLogits = try Self.floats(serialFile)
        for (tp, pp) in [(2, 1), (1, 2), (2, 2)] {
            let file = directory.appendingPathComponent("tp\(tp)-pp\(pp).f32")
            let result = try MPIProcess.run(processes: tp * pp, arguments(file, tp: tp, pp: pp))
            try #require(result.status == 0, "tp \(tp) pp \(pp): \(result.standardError)")
            let logits = try Self.floats(file)
            try #require(logits.count == expected.count, "tp \(tp) pp \(pp): \(logits.count) logits, \(expected.count) expected")
            #expect(Self.relativeError(logits, expected) <= 1e-4, "tp \(tp) pp \(pp) against transformers")
            #expect(Self.relativeError(logits, serialLogits) <= 1e-5, "tp \(tp) pp \(pp) against the serial run")
        }
    }

    @Test("greedy SmolLM2 text over MPI equals the in-process text of the same grid")
    func smolLM2Greedy() throws {
        let model = Self.packageRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
        try #require(FileManager.default.fileExists(atPath: model), "\(model) missing: run scripts/fetch_models.sh")
        func arguments(tp: Int, pp: Int) -> [String] {
            ["generate", "--model", model, "--prompt", "The capital of France is", "--max-tokens", "24", "--threads", "1",
             "--tp", "\(tp)", "--pp", "\(pp)"]
        }
        let serial = try MPIProcess.runDirect(arguments(tp: 1, pp: 1))
        try #require(serial.status == 0, "\(serial.standardError)")
        #expect(serial.standardOutput.count > 20, "the serial run wrote \(serial.standardOutput.debugDescription)")
        // pp 2 does the serial arithmetic; tp 3 (9 heads, 3 KV heads) sums row-parallel partials,
        // so it is compared with the in-process tp 3 run.
        let pipelined = try MPIProcess.run(processes: 2, arguments(tp: 1, pp: 2))
        #expect(pipelined.status == 0, "\(pipelined.standardError)")
        #expect(pipelined.standardOutput == serial.standardOutput)
        let threadRanks = try MPIProcess.runDirect(arguments(tp: 3, pp: 1))
        try #require(threadRanks.status == 0, "\(threadRanks.standardError)")
        let tensor = try MPIProcess.run(processes: 3, arguments(tp: 3, pp: 1))
        #expect(tensor.status == 0, "\(tensor.standardError)")
        #expect(tensor.standardOutput == threadRanks.standardOutput)
        let gridInProcess = try MPIProcess.runDirect(arguments(tp: 2, pp: 2))
        try #require(gridInProcess.status == 0, "\(gridInProcess.standardError)")
        let grid = try MPIProcess.run(processes: 4, arguments(tp: 2, pp: 2))
        #expect(grid.status == 0, "\(grid.standardError)")
        #expect(grid.standardOutput == gridInProcess.standardOutput)
    }

    @Test("the engine over MPI at pp 2, blocking and non-blocking, serves what the in-process grid serves")
    func enginePipelineOverMPI() throws {
        let model = Self.packageRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
        try #require(FileManager.default.fileExists(atPath: model), "\(model) missing: run scripts/fetch_models.sh")
        // Four concurrent requests (seeded random prompts), each sequence's greedy token ids.
        func outputs(_ result: MPIProcess.Output) -> [String] {
            result.standardOutput.split(separator: "\n").map(String.init).filter { $0.hasPrefix("{\"sequence\"") }
        }
        for inFlight in [1, 2] {
            let arguments = ["bench-engine", "--model", model, "--threads", "1", "--pp", "2", "--batches-in-flight", "\(inFlight)",
                             "--concurrency", "4", "--prompt-tokens", "16", "--gen-tokens", "12", "--print-outputs", "--json"]
            let local = try MPIProcess.runDirect(arguments)
            try #require(local.status == 0, "\(local.standardError)")
            let expected = outputs(local)
            #expect(expected.count == 4, "\(local.standardOutput)")
            let spread = try MPIProcess.run(processes: 2, arguments)
            #expect(spread.status == 0, "\(spread.standardError)")
            #expect(outputs(spread) == expected, "in flight \(inFlight)")
            // Two lanes in flight: each step's batches are half as large, so twice as many.
            let batches = spread.standardOutput.components(separatedBy: " batches,").first?.split(separator: " ").last
            #expect(batches.flatMap { Int($0) }.map { inFlight == 2 ? $0 >= 2 * 12 : $0 >= 12 } == true, "\(spread.standardOutput)")
        }
    }

    /// Two chunks of 512 tokens, as RealParallelTests (shorter chunks amplify the tp rounding noise).
    @Test("SmolLM2 perplexity at tp 2 × pp 2 over MPI equals the in-process grid and is within 0.5% of serial")
    func smolLM2Perplexity() throws {
        let model = Self.packageRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
        try #require(FileManager.default.fileExists(atPath: model), "\(model) missing: run scripts/fetch_models.sh")
        let text = "/usr/share/common-licenses/GPL-3"  // the text of the perplexity fixtures (base-files)
        try #require(FileManager.default.fileExists(atPath: text), "\(text) missing (Debian's base-files)")
        func perplexity(_ result: MPIProcess.Output) throws -> Double {
            let line = result.standardOutput.split(separator: "\n").last { $0.hasPrefix("perplexity: ") }
            return try #require(line.flatMap { Double($0.dropFirst("perplexity: ".count)) }, "\(result.standardError)")
        }
        func arguments(tp: Int, pp: Int) -> [String] {
            ["perplexity", "--model", model, "--file", text, "--context", "512", "--chunks", "2", "--threads", "1",
             "--tp", "\(tp)", "--pp", "\(pp)"]
        }
        let serial = try perplexity(MPIProcess.runDirect(arguments(tp: 1, pp: 1)))
        let inProcess = try perplexity(MPIProcess.runDirect(arguments(tp: 2, pp: 2)))
        let overMPI = try perplexity(MPIProcess.run(processes: 4, arguments(tp: 2, pp: 2)))
        #expect(abs(overMPI - serial) / serial <= 0.005, "MPI \(overMPI), serial \(serial)")
        #expect(abs(overMPI - inProcess) / inProcess <= 1e-4, "MPI \(overMPI), thread ranks \(inProcess)")
    }

    @Test("a rank that stops answering makes every rank exit with an error naming it", arguments: [(2, 1, 1), (1, 2, 1), (2, 2, 3)])
    func stalledRank(tp: Int, pp: Int, stalled: Int) throws {
        let start = Date()
        let result = try MPIProcess.run(processes: tp * pp, Self.tinyArguments(tp: tp, pp: pp) + ["--rank-timeout", "2"],
                                        environment: ["ENERGON_MPI_STALL_RANK": "\(stalled)"], limit: 40)
        #expect(result.status != 0)
        #expect(result.standardError.contains("waiting for rank \(stalled)"), "\(result.standardError)")
        #expect(Date().timeIntervalSince(start) < 2 * (1 + 0.5 * Double(pp)) + 8)
    }

    @Test("a rank whose process dies ends the job with an error naming it")
    func killedRank() throws {
        let result = try MPIProcess.run(processes: 4, Self.tinyArguments(tp: 2, pp: 2) + ["--rank-timeout", "2"],
                                        environment: ["ENERGON_MPI_KILL_RANK": "2"], limit: 40)
        #expect(result.status != 0)
        #expect(result.standardError.contains("rank 2"), "\(result.standardError)")
    }

    @Test("a process count that is not tp × pp is refused, listing what works")
    func wrongProcessCount() throws {
        let result = try MPIProcess.run(processes: 2, Self.tinyArguments(tp: 2, pp: 2))
        #expect(result.status != 0)
        #expect(result.standardError.contains("mpirun started 2 processes but --tp 2 × --pp 2 = 4"), "\(result.standardError)")
        #expect(result.standardError.contains("--tp 1 --pp 2, or --tp 2 --pp 1"), "\(result.standardError)")
    }

    static func tinyArguments(tp: Int, pp: Int) -> [String] {
        ["forward-logits", "--model", fixtures.appendingPathComponent("tiny-llama.gguf").path, "--tokens", "1,17,42,99,3,64",
         "--prefill", "3", "--threads", "1", "--tp", "\(tp)", "--pp", "\(pp)", "--output", "/dev/null"]
    }

    static func floats(_ url: URL) throws -> [Float] {
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// max |a - b| / max |b|.
    static func relativeError(_ actual: [Float], _ expected: [Float]) -> Float {
        var difference: Float = 0, scale: Float = 0
        for (a, b) in zip(actual, expected) {
            difference = max(difference, abs(a - b))
            scale = max(scale, abs(b))
        }
        return difference / scale
    }
}

/// Runs the `energon` next to this test bundle, directly or under `mpirun`.
enum MPIProcess {
    struct Output {
        let status: Int32
        let standardOutput: String
        let standardError: String
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The `energon` built with this test bundle (same folder, same configuration and traits).
    static func binary() throws -> String {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var folder = executable.deletingLastPathComponent()
        // The bundle's executable sits in <config>/EnergonPackageTests.xctest (a file on Linux).
        while folder.path != "/" && !FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent("energon").path) {
            folder = folder.deletingLastPathComponent()
        }
        let path = folder.appendingPathComponent("energon").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw Failure(description: "no energon binary next to \(executable.path): build it (`swift build --traits MPI --build-tests` builds both)")
        }
        return path
    }

    static func mpirun() throws -> String {
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") + ["/usr/bin"] {
            let path = "\(folder)/mpirun"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw Failure(description: "mpirun not found: install openmpi-bin (make setup does)")
    }

    static func run(processes: Int, _ arguments: [String], environment: [String: String] = [:], limit: Double = 120) throws -> Output {
        let forwarded = environment.keys.sorted().flatMap { ["-x", $0] }
        return try execute(mpirun(), ["--allow-run-as-root", "--oversubscribe", "-np", "\(processes)"] + forwarded
                               + [try binary()] + arguments, environment: environment, limit: limit)
    }

    static func runDirect(_ arguments: [String], limit: Double = 120) throws -> Output {
        try execute(binary(), arguments, environment: [:], limit: limit)
    }

    private static func execute(_ path: String, _ arguments: [String], environment: [String: String], limit: Double) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var variables = ProcessInfo.processInfo.environment
        for variable in variables.keys where variable.hasPrefix("OMPI_") || variable.hasPrefix("PMIX_") { variables[variable] = nil }
        // Containers often forbid the cross-memory attach (ptrace) OpenMPI's shared-memory
        // transport uses for large messages; copying through shared memory works everywhere.
        variables["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
        variables.merge(environment) { $1 }
        process.environment = variables
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        let collected = Collected()
        let readers = DispatchGroup()
        for (pipe, isError) in [(output, false), (error, true)] {
            readers.enter()
            DispatchQueue.global().async {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                collected.set(data, isError: isError)
                readers.leave()
            }
        }
        try process.run()
        let deadline = Date().addingTimeInterval(limit)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            readers.wait()
            throw Failure(description: "\(path) \(arguments.joined(separator: " ")) did not finish within \(limit) s; stderr: \(collected.error)")
        }
        process.waitUntilExit()
        readers.wait()
        return Output(status: process.terminationStatus, standardOutput: collected.output, standardError: collected.error)
    }

    private final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var outputData = Data(), errorData = Data()
        func set(_ data: Data, isError: Bool) {
            lock.lock()
            if isError { errorData = data } else { outputData = data }
            lock.unlock()
        }
        var output: String { lock.lock(); defer { lock.unlock() }; return String(decoding: outputData, as: UTF8.self) }
        var error: String { lock.lock(); defer { lock.unlock() }; return String(decoding: errorData, as: UTF8.self) }
    }
}
#endif
