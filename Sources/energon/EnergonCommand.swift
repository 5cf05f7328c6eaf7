import ArgumentParser
import EnergonCore

#if canImport(Glibc)
import Glibc
#endif

@main
struct Energon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "energon",
        abstract: "Energon: inference for large transformer language models on CPUs.",
        version: EnergonInfo.version,
        subcommands: [GenerateCommand.self, ChatCommand.self, PerplexityCommand.self, BenchCommand.self, InspectCommand.self,
                      TokenizeCommand.self, BenchKernels.self, BenchSyncCommand.self, BenchEngineCommand.self,
                      MPICollectivesCommand.self, ForwardLogitsCommand.self, MakeSyntheticCommand.self,
                      BenchParallelCommand.self]
    )

    /// Runs the command line. Usage errors exit with 2, runtime errors (bad files, failed
    /// computations) with 1; both print one clear message on stderr.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            if let validation = error as? ValidationError {
                printError("error: \(validation.message)")  // a flag value the model cannot use
                Glibc.exit(2)
            }
            printError(fullMessage(for: error))
            Glibc.exit(code == .validationFailure ? 2 : 1)
        }
    }
}
