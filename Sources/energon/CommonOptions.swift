import ArgumentParser
import EnergonCore
import EnergonEngine
import EnergonModels
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Options every model command shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "A .gguf file (or a Hugging Face folder).")
    var model: String

    @Option(name: .long, help: "Compute threads per rank.")
    var threads: Int = defaultThreadCount()

    @Option(name: .long, help: "Kernel level: portable, avx2 or avx512 (default: the best this CPU has).")
    var isa: String?

    @Option(name: .long, help: "Tensor-parallel ranks (each layer split across them).")
    var tp: Int = 1

    @Option(name: .long, help: "Pipeline stages (layers split across them).")
    var pp: Int = 1

    @Option(name: .long, help: "Layers per pipeline stage, comma-separated (default: balanced by cost).")
    var stageLayers: String?

    @Option(name: .long, help: "KV cache element type: f16 (llama.cpp's default) or f32.")
    var kvCache: String = "f16"

    @Option(name: .long, help: "Seconds an MPI rank waits for another inside a forward pass before failing the job.")
    var rankTimeout: Double = 120

    func validate() throws {
        guard threads >= 1 && threads <= 1024 else { throw ValidationError("--threads must be between 1 and 1024, got \(threads)") }
        if let isa, ISA(name: isa) == nil { throw ValidationError("--isa must be portable, avx2 or avx512, got \(isa)") }
        guard tp >= 1 && tp <= 256 else { throw ValidationError("--tp must be between 1 and 256, got \(tp)") }
        guard pp >= 1 && pp <= 256 else { throw ValidationError("--pp must be between 1 and 256, got \(pp)") }
        guard rankTimeout > 0 else { throw ValidationError("--rank-timeout must be positive, got \(rankTimeout)") }
        guard kvCacheType != nil else { throw ValidationError("--kv-cache must be f16 or f32, got \(kvCache)") }
        if let stageLayers, parsedStageLayers == nil {
            throw ValidationError("--stage-layers must be comma-separated positive integers, got \(stageLayers)")
        }
    }

    var parsedStageLayers: [Int]? {
        guard let stageLayers else { return nil }
        let parts = stageLayers.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return parts.compactMap { $0 }
    }

    /// The `--kv-cache` element type, or `nil` if it names neither f16 nor f32.
    var kvCacheType: DType? {
        switch kvCache.lowercased() {
        case "f16": .f16
        case "f32": .f32
        default: nil
        }
    }

    /// Opens the checkpoint and builds a runner for the requested tp × pp grid.
    func makeGenerator(contextLength: Int? = nil) throws -> (Generator, Checkpoint, seconds: Double) {
        let start = monotonicClock()
        let interactive = isatty(STDERR_FILENO) != 0
        if interactive { printError("loading \(model)…", terminator: "") }
        let checkpoint = try Checkpoint.open(path: model)
        let runner: any ModelRunner
        do {
            runner = try makeParallelRunner(checkpoint: checkpoint, contextLength: contextLength)  // MPILaunch.swift
        } catch let error as ParallelGridError {
            throw ValidationError("\(error)")
        }
        if interactive { printError("\r\u{1B}[K", terminator: "") }
        return (Generator(runner: runner, tokenizer: checkpoint.tokenizer), checkpoint, monotonicClock() - start)
    }

}

/// Physical cores are what compute scales with; use every online CPU by default.
func defaultThreadCount() -> Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

/// Writes to standard error (unbuffered).
func printError(_ message: String, terminator: String = "\n") {
    writeAll(STDERR_FILENO, message + terminator)
}

/// Writes to standard output at once (unbuffered), for streamed text.
func writeOutput(_ text: String) {
    writeAll(STDOUT_FILENO, text)
}

private func writeAll(_ descriptor: Int32, _ text: String) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeMutableBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }  // invariant: non-empty
        if written <= 0 { return }
        offset += written
    }
    bytes.removeAll()
}

func monotonicClock() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}
