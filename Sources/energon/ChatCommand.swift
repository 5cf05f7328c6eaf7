import ArgumentParser
import EnergonCore
import EnergonEngine
import EnergonModels
import EnergonTokenizers
import Foundation

struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with a model using its chat template.",
        discussion: """
        Each line read from standard input is one user message; the reply streams to standard \
        output. An empty line or end of input ends the chat. `/reset` clears the conversation.
        """)

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "A system prompt.")
    var system: String?

    @Option(name: .long, help: "Most tokens per reply.")
    var maxTokens: Int = 512

    @Option(name: .long, help: "Sampling temperature (0 = greedy).")
    var temperature: Float = 0.7

    @Option(name: .long, help: "Nucleus sampling threshold.")
    var topP: Float = 0.95

    @Option(name: .long, help: "Keep the k most likely tokens (0 = off).")
    var topK: Int = 40

    @Option(name: .long, help: "Random seed.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "A Jinja chat template file to use instead of the model's.")
    var chatTemplate: String?

    func validate() throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be ≥ 1") }
        do {
            try SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed).validate()
        } catch {
            throw ValidationError("\(error)")
        }
    }

    func run() throws {
        let (generator, checkpoint, _) = try options.makeGenerator()
        let source: String
        if let chatTemplate {
            guard let text = try? String(contentsOfFile: chatTemplate, encoding: .utf8) else {
                throw ValidationError("cannot read --chat-template \(chatTemplate)")
            }
            source = text
        } else if let embedded = checkpoint.chatTemplate {
            source = embedded
        } else {
            throw ValidationError("\(options.model) has no chat template; pass --chat-template FILE")
        }
        let template = try ChatTemplate(source: source)
        let tokenizer = checkpoint.tokenizer
        let bosText = tokenizer.bosTokenID.flatMap(tokenizer.tokenText) ?? ""
        let eosText = tokenizer.eosTokenIDs.sorted().first.flatMap(tokenizer.tokenText) ?? ""
        var messages: [ChatMessage] = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
        var turn = 0
        let interactive = isatty(STDIN_FILENO) != 0
        while true {
            if interactive { printError("> ", terminator: "") }
            guard let line = readLine(), !line.isEmpty else { break }
            if line == "/reset" {
                messages = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
                continue
            }
            messages.append(ChatMessage(role: "user", content: line))
            let prompt = try template.render(messages: messages, addGenerationPrompt: true, bosToken: bosText, eosToken: eosText)
            // Templates that write the BOS text themselves get no second BOS.
            let addBOS = tokenizer.addsBOS && !(bosText.isEmpty == false && prompt.hasPrefix(bosText))
            var ids = tokenizer.encode(prompt, addSpecialTokens: false, parseSpecialTokens: true)
            if addBOS, let bos = tokenizer.bosTokenID { ids.insert(bos, at: 0) }
            let sampling = SamplingParameters(temperature: temperature, topK: topK, topP: topP,
                                              seed: seed &+ UInt64(turn))
            let result = try generator.generate(prompt: ids, parameters: sampling, maxTokens: maxTokens) { text in
                writeOutput(text)
                return true
            }
            writeOutput("\n")
            messages.append(ChatMessage(role: "assistant", content: result.text))
            turn += 1
        }
    }
}
