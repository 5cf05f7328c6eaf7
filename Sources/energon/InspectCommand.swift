import ArgumentParser
import EnergonCheckpoint

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

    func run() throws {
        let checkpoint = try ModelCheckpoint(path: model)
        print(CheckpointSummary.render(checkpoint, includeTensors: !noTensors, includeTemplate: !noTemplate), terminator: "")
    }
}
