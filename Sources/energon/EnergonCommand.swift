import ArgumentParser
import EnergonCore

@main
struct Energon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "energon",
        abstract: "Energon: inference for large transformer language models on CPUs.",
        version: EnergonInfo.version,
        subcommands: [TokenizeCommand.self, BenchKernels.self, InspectCommand.self]
    )
}
