import EnergonCheckpoint
import EnergonCore
import Testing

/// Tiny random HF models and llama.cpp's own GGUF conversion of each (scripts/make_hf_fixture.py):
/// asking the HF folder for every GGUF name must give exactly the GGUF tensor (names mapped,
/// Llama q/k permuted, Gemma norms shifted, GPT-2 Conv1D weights transposed).
@Suite struct WeightSourceHFTests {
    static let converted = ["llama", "qwen2", "gemma3", "gpt2", "bert"]

    func bytes(_ tensor: Tensor) -> [UInt8] { Array(UnsafeRawBufferPointer(start: tensor.data, count: tensor.byteCount)) }

    @Test(arguments: converted)
    func huggingFaceFolderMatchesLlamaCppConversion(family: String) throws {
        let gguf = try ModelCheckpoint(path: TestFiles.fixture("hf/\(family).gguf"))
        let hf = try ModelCheckpoint(path: TestFiles.fixture("hf/\(family)"))
        #expect(hf.format == .huggingFace && gguf.format == .gguf)
        let ggufWeights = gguf.weights()
        let hfWeights = hf.weights()
        for info in gguf.store.storedTensors {
            let reference = try ggufWeights.tensor(info.name, shape: info.shape)
            let converted = try hfWeights.tensor(info.name, shape: info.shape)
            #expect(converted.shape == reference.shape && converted.dtype == reference.dtype, "\(family) \(info.name)")
            #expect(bytes(converted) == bytes(reference), "\(family) \(info.name)")
        }
        try ggufWeights.finish()
        try hfWeights.finish()  // every HF tensor was reached through a GGUF name
    }

    @Test(arguments: converted)
    func configurationsAgree(family: String) throws {
        let fromGGUF = try ModelCheckpoint(path: TestFiles.fixture("hf/\(family).gguf")).configuration
        let fromHF = try ModelCheckpoint(path: TestFiles.fixture("hf/\(family)")).configuration
        #expect(fromGGUF.hiddenSize == fromHF.hiddenSize)
        #expect(fromGGUF.layerCount == fromHF.layerCount)
        #expect(fromGGUF.attentionHeadCount == fromHF.attentionHeadCount)
        #expect(fromGGUF.keyValueHeadCount == fromHF.keyValueHeadCount)
        #expect(fromGGUF.headDimension == fromHF.headDimension)
        #expect(fromGGUF.intermediateSize == fromHF.intermediateSize)
        #expect(abs(fromGGUF.normEpsilon - fromHF.normEpsilon) < 1e-9 * max(1, fromHF.normEpsilon) + 1e-12)
        #expect(fromGGUF.family == fromHF.family)
        if family != "gemma3" && family != "bert" { #expect(fromGGUF.vocabularySize == fromHF.vocabularySize) }
    }

    @Test func optTableReachesEveryTensor() throws {
        let checkpoint = try ModelCheckpoint(path: TestFiles.fixture("hf/opt"))
        let configuration = checkpoint.configuration
        #expect(configuration.family == .opt && configuration.intermediateSize == 32 && configuration.tieWordEmbeddings)
        let weights = checkpoint.weights()
        let hidden = configuration.hiddenSize
        _ = try weights.tensor("token_embd.weight", shape: [configuration.vocabularySize, hidden])
        _ = try weights.tensor("position_embd.weight", shape: [configuration.maxPositionEmbeddings! + 2, hidden])  // OPT's offset of 2
        for part in ["weight", "bias"] { _ = try weights.tensor("output_norm.\(part)", shape: [hidden]) }
        #expect(try weights.tensorIfPresent("output.weight", shape: [configuration.vocabularySize, hidden]) == nil)
        for layer in 0..<configuration.layerCount {
            let block = weights.prefixed("blk.\(layer)")
            for name in ["attn_q", "attn_k", "attn_v", "attn_output"] {
                _ = try block.tensor("\(name).weight", shape: [hidden, hidden])
                _ = try block.tensor("\(name).bias", shape: [hidden])
            }
            for name in ["attn_norm", "ffn_norm"] {
                _ = try block.tensor("\(name).weight", shape: [hidden])
                _ = try block.tensor("\(name).bias", shape: [hidden])
            }
            _ = try block.tensor("ffn_up.weight", shape: [32, hidden])
            _ = try block.tensor("ffn_up.bias", shape: [32])
            _ = try block.tensor("ffn_down.weight", shape: [hidden, 32])
            _ = try block.tensor("ffn_down.bias", shape: [hidden])
        }
        try weights.finish()
    }

    /// The q permutation gathers only a rank's rows; the result equals slicing the GGUF tensor.
    @Test(arguments: [1, 2, 4])
    func permutedShardsMatchGGUFShards(count: Int) throws {
        let gguf = try ModelCheckpoint(path: TestFiles.fixture("hf/llama.gguf")).weights()
        let hf = try ModelCheckpoint(path: TestFiles.fixture("hf/llama")).weights()
        for rank in 0..<count {
            for (name, shape) in [("blk.1.attn_q.weight", [16, 16]), ("blk.1.attn_k.weight", [8, 16])] {
                let shard = ShardSpec(dimension: 0, rank: rank, count: count)
                let expected = try gguf.tensor(name, shape: shape, shard: shard)
                let actual = try hf.tensor(name, shape: shape, shard: shard)
                #expect(actual.shape == [shape[0] / count, 16])
                #expect(bytes(actual) == bytes(expected))
            }
        }
    }

    @Test func verbatimHuggingFaceNamesSkipConversions() throws {
        let hf = try ModelCheckpoint(path: TestFiles.fixture("hf/llama"))
        let layer = hf.weights().prefixed("model.layers.0")
        let verbatim = try layer.tensor("self_attn.q_proj.weight", shape: [16, 16])
        let folder = try #require(hf.folder)
        #expect(bytes(verbatim) == bytes(try folder.tensor(named: "model.layers.0.self_attn.q_proj.weight")))
        #expect(verbatim.data == (try folder.tensor(named: "model.layers.0.self_attn.q_proj.weight")).data)  // zero-copy
    }

    @Test func shardedFolderIsReadThroughItsIndex() throws {
        let folder = try SafetensorsFolder(path: TestFiles.fixture("hf/llama"))
        #expect(folder.files.count > 1)
        #expect(folder.storedTensors.count == 3 + 9 * 2)
        #expect(Set(folder.files.map { $0.path.split(separator: "/").last! }).count == folder.files.count)
    }
}
