#if canImport(Glibc)
import Glibc
#endif
import EnergonCheckpoint
import EnergonCore
import Testing

/// Real SmolLM2 GGUFs from the llama.cpp anchor cache, when present (they are not committed).
/// Set `ENERGON_MODELS` to another folder to use it instead.
@Suite struct RealModelTests {
    static let folder: String = {
        guard let value = getenv("ENERGON_MODELS") else { return "/root/.cache/energon-anchor/models" }
        return String(cString: UnsafePointer(value))
    }()
    static let files = ["F32", "F16", "Q8_0", "Q4_0", "Q4_1"].map { (quant: String) -> String in "\(folder)/SmolLM2-135M-Instruct.\(quant).gguf" }
        .filter { access($0, R_OK) == 0 }

    @Test(.enabled(if: !files.isEmpty), arguments: files)
    func opensSmolLM2(path: String) throws {
        let file = try GGUFFile(path: path)
        #expect(file.architecture == "llama")
        #expect(file.metadata["llama.block_count"]?.int == 30)
        #expect(file.metadata["llama.embedding_length"]?.int == 576)
        #expect(file.metadata["tokenizer.ggml.tokens"]?.strings?.count == 49152)
        #expect(file.tensors.count == 272)
        let query = try file.tensor(named: "blk.0.attn_q.weight")
        #expect(query.shape == [576, 576])
        let keys = try file.tensor(named: "blk.0.attn_k.weight")
        #expect(keys.shape == [192, 576])
        #expect(file.tensors.allSatisfy { $0.offset % file.alignment == 0 })
    }
}
