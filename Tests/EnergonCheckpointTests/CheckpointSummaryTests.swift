import EnergonCheckpoint
import Testing

/// The `energon inspect` report over the committed fixtures.
@Suite struct CheckpointSummaryTests {
    @Test func ggufReport() throws {
        let checkpoint = try ModelCheckpoint(path: TestFiles.fixture("hf/llama.gguf"))
        let report = CheckpointSummary.render(checkpoint)
        let lines = report.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("Format: GGUF version 3, alignment 32, data at byte \(checkpoint.gguf!.dataOffset), file ") })
        #expect(lines.contains("  hidden size        16"))
        #expect(lines.contains("  key/value heads    2"))
        #expect(lines.contains("  norm epsilon       1e-06"))
        let query = try #require(lines.first { $0.hasPrefix("  blk.0.attn_q.weight ") })
        #expect(query.split(separator: " ").map(String.init) == ["blk.0.attn_q.weight", "F32", "[16,", "16]", "1024"])
        #expect(report.contains("Tensors (21):"))
        let parameters = checkpoint.store.storedTensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
        #expect(report.contains("Totals: 21 tensors, \(parameters) parameters"))
        #expect(report.contains("  tokenizer.ggml.model"))
    }

    @Test func huggingFaceReportShowsGGUFNames() throws {
        let report = CheckpointSummary.render(try ModelCheckpoint(path: TestFiles.fixture("hf/llama")), includeTensors: true)
        #expect(report.contains("Format: Hugging Face folder, 3 safetensors file(s)"))
        #expect(report.contains("Architecture: llama (LlamaForCausalLM), tensor-name family: llama"))
        let line = try #require(report.split(separator: "\n").first { $0.contains("model.layers.1.self_attn.k_proj.weight") })
        #expect(line.hasSuffix("blk.1.attn_k.weight"))
        let short = CheckpointSummary.render(try ModelCheckpoint(path: TestFiles.fixture("hf/llama")), includeTensors: false)
        #expect(!short.contains("model.layers.1.self_attn.k_proj.weight") && short.contains("Totals: 21 tensors"))
    }

    @Test func filesInsideAFolderOpenTheFolder() throws {
        for file in ["config.json", "model.safetensors.index.json", "model-00002-of-00003.safetensors"] {
            let checkpoint = try ModelCheckpoint(path: TestFiles.fixture("hf/llama/\(file)"))
            #expect(checkpoint.format == .huggingFace && checkpoint.path == TestFiles.fixture("hf/llama"))
        }
    }
}
