import ArgumentParser
import EnergonCore
import EnergonModels

#if canImport(Glibc)
import Glibc
#endif

/// Options every model command shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "A .gguf file (or a Hugging Face folder).")
    var model: String

    @Option(name: .long, help: "Compute threads (per rank).")
    var threads: Int = defaultThreadCount()

    @Option(name: .long, help: "Kernel level: portable, avx2 or avx512 (default: the best this CPU has).")
    var isa: String?

    func validate() throws {
        guard threads >= 1 && threads <= 1024 else { throw ValidationError("--threads must be between 1 and 1024, got \(threads)") }
        if let isa, ISA(name: isa) == nil { throw ValidationError("--isa must be portable, avx2 or avx512, got \(isa)") }
    }

    /// The compute context these options ask for.
    func makeContext() -> ComputeContext {
        ComputeContext(threads: threads, isa: isa.flatMap(ISA.init(name:)) ?? .best)
    }

    /// Opens the model, showing a status line on a terminal.
    func load() throws -> (LoadedModel, seconds: Double) {
        let start = monotonicClock()
        let interactive = isatty(STDERR_FILENO) != 0
        if interactive { printError("loading \(model)…", terminator: "") }
        let loaded = try LoadedModel.load(path: model)
        if interactive { printError("\r\u{1B}[K", terminator: "") }
        return (loaded, monotonicClock() - start)
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
