import ArgumentParser
import EnergonCheckpoint
import Foundation

/// `energon inspect`: what a checkpoint holds (architecture, hyperparameters, tokenizer, chat
/// template, metadata, tensor table and totals), after full validation of the file(s).
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a model checkpoint: architecture, hyperparameters, tokenizer, tensors."
    )

    @Option(name: .long, help: "A .gguf file or a Hugging Face folder (config.json and *.safetensors).")
    var model: String

    @Flag(name: .long, help: "Leave out the per-tensor table (totals are still printed).")
    var noTensors = false

    @Flag(name: .long, help: "Leave out the chat template text (its length is still printed).")
    var noTemplate = false

    @Flag(name: .long, help: "Print to standard error how long opening and validating the checkpoint took.")
    var timeOpen = false

    func run() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let checkpoint = try ModelCheckpoint(path: model)
        if timeOpen {
            let elapsed = clock.now - start
            let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            FileHandle.standardError.write(Data("opened and validated \(model) in \(milliseconds) ms\n".utf8))
        }
        print(CheckpointSummary.render(checkpoint, includeTensors: !noTensors, includeTemplate: !noTemplate), terminator: "")
    }
}
