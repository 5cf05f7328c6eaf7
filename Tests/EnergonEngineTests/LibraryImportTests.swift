import Energon
import Testing

/// `import Energon` alone gives an app everything it needs to serve a model.
@Suite struct LibraryImportTests {
    @Test func oneImportServesARequest() async throws {
        let path = try #require(EngineTests.model, "run scripts/fetch_models.sh")
        let checkpoint = try Checkpoint.open(path: path)
        let engine = Engine(runner: try checkpoint.makeRunner(threadsPerRank: 1, contextLength: 64),
                            tokenizer: checkpoint.tokenizer)
        defer { engine.shutdown() }
        let (_, stream) = try engine.submit(GenerationRequest(prompt: checkpoint.tokenizer.encode("The capital of France is"),
                                                              maxTokens: 4))
        var text = ""
        for try await token in stream { text += token.text }
        #expect(text.contains("Paris"))
    }
}
