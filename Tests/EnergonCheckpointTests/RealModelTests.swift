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

    static let gemma = "\(folder)/gemma-3-270m-q4_k_m.gguf"

    @Test(.enabled(if: access(gemma, R_OK) == 0))
    func opensGemma3() throws {
        let checkpoint = try ModelCheckpoint(path: RealModelTests.gemma)
        let configuration = checkpoint.configuration
        #expect(configuration.family == .gemma3 && configuration.headDimension == 256 && configuration.keyValueHeadCount == 1)
        #expect(configuration.vocabularySize == 262_144 && configuration.slidingWindow == 512 && configuration.tieWordEmbeddings)
        let file = try #require(checkpoint.gguf)
        #expect(file.metadata["tokenizer.ggml.scores"]?.floats?.count == 262_144)
        let weights = checkpoint.weights()
        let query = try weights.prefixed("blk.0").tensor("attn_q.weight", shape: [4 * 256, 640])
        #expect(query.rowBytes == (try #require(query.dtype.rowBytes(640))))
        // A Q4_K/Q5_0 row splits only on whole blocks: 640 = 2.5 blocks of 256 for K-quants.
        if query.dtype.blockSize == 256 {
            #expect(throws: CheckpointError.self) { try weights.tensor("blk.0.attn_q.weight", shape: [1024, 640], shard: ShardSpec(dimension: 1, rank: 0, count: 2)) }
        }
        let rows = try weights.tensor("blk.0.attn_q.weight", shape: [1024, 640], shard: ShardSpec(dimension: 0, rank: 3, count: 4))
        #expect(rows.shape == [256, 640] && rows.data == query.data + 768 * query.rowBytes)
    }
}
