// The public entry point: a chat template parsed once, rendered per conversation with the same context
// transformers' `apply_chat_template` builds (`messages`, `tools`, `documents`, `add_generation_prompt`,
// the special tokens, plus any extra keyword arguments).

import Foundation

/// A Hugging Face chat template (the Jinja text in a GGUF's `tokenizer.chat_template` or in
/// `tokenizer_config.json`), parsed once and rendered like transformers does: Jinja with
/// `trim_blocks` and `lstrip_blocks`, `raise_exception`, `strftime_now`, loop controls and a `tojson`
/// that does not escape HTML.
public struct ChatTemplate: Sendable {
    /// The template text as given.
    public let source: String
    private let nodes: [TemplateNode]

    /// Parses a template.
    /// - Parameter source: the Jinja template text.
    /// - Throws: `ChatTemplateError` of kind `.syntax` naming the line and column of the first problem,
    ///   including Jinja features this interpreter does not support (`extends`, `include`, ...).
    public init(source: String) throws(ChatTemplateError) {
        self.source = source
        var lexer = TemplateLexer(source)
        var parser = TemplateParser(tokens: try lexer.tokenize())
        let parsed = try parser.parseTemplate()
        try TemplateNameValidator.validate(parsed)
        nodes = parsed
    }

    /// Renders a conversation.
    /// - Parameters:
    ///   - messages: the conversation, oldest first.
    ///   - addGenerationPrompt: whether to end with the header that starts the assistant's reply.
    ///   - bosToken: the model's beginning-of-sequence token text (`bos_token` in the template).
    ///   - eosToken: the model's end-of-sequence token text (`eos_token` in the template).
    ///   - extra: further template variables (`tools`, `date_string`, `enable_thinking`, ...); they
    ///     override the defaults above of the same name.
    ///   - now: the time `strftime_now` formats (local time zone), the current time by default.
    /// - Returns: the prompt text.
    /// - Throws: `ChatTemplateError`: `.raised` when the template rejects the conversation through
    ///   `raise_exception` (the message is the template's), `.runtime` for type errors and undefined values.
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String, eosToken: String,
                       extra: [String: TemplateValue] = [:], now: Date = Date()) throws(ChatTemplateError) -> String
    {
        var context: [String: TemplateValue] = [
            "messages": .array(messages.map(\.templateValue)),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
            "tools": .null,
            "documents": .null,
        ]
        for (key, value) in extra { context[key] = value }
        return try render(context: context, now: now)
    }

    /// Renders with an explicit context: every variable the template reads (`messages` included).
    /// - Parameters:
    ///   - context: the template's variables.
    ///   - now: the time `strftime_now` formats (local time zone), the current time by default.
    /// - Returns: the rendered text.
    /// - Throws: `ChatTemplateError` as `render(messages:addGenerationPrompt:bosToken:eosToken:extra:)`.
    public func render(context: [String: TemplateValue], now: Date = Date()) throws(ChatTemplateError) -> String {
        var globals = makeGlobalFunctions(now: time_t(now.timeIntervalSince1970.rounded(.down)))
        for (key, value) in context { globals[key] = JinjaValue(value) }
        let renderer = TemplateRenderer(globals: globals)
        _ = try renderer.execute(nodes)
        return renderer.output
    }
}
