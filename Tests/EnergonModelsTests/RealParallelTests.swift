import EnergonCheckpoint
import EnergonCore
import EnergonEngine
import EnergonModels
import Foundation
import Testing

/// The real SmolLM2-135M (9 query heads, 3 KV heads: tensor parallelism splits it unevenly, by
/// whole GQA groups) over tp 2 × pp 2 thread ranks against the serial runner.
///
/// The two differ only in float summation order (a row-parallel layer adds its ranks' partial
/// sums), but this Q4_1 model's Q8_1 activation rounding and f16 KV cache amplify any rounding
/// difference: two *serial* runs at different kernel levels (AVX-512 and portable) differ by
/// about 5% of the mean logit, and flip near-tied greedy choices (measured: " Paris.\n\nThe"
/// then 2988 vs 1797 at a top-2 gap of 0.24). Pipeline stages alone are bit-exact. So: the
/// parallel logits must stay within twice the portable-vs-AVX-512 difference, greedy decoding
/// (both fed the serial's choice) must pick the serial token at every step whose top-2 gap is
/// not a near-tie, free-running greedy text must be identical up to the first near-tie, and
/// perplexity must be within 0.5%. (Mathematically equivalent runs of this file over these
/// 1024 tokens spread by about ±0.3% in perplexity: serial with an f32 cache +0.22%, tp 3
/// +0.12%, tp 4 −0.10%, portable ISA −0.06%, tp 2 −0.39%; so 0.5% is not a wide margin. With
/// F32 weights, `smolLM2F32SplitIsExact`, the split is exact.)
@Suite(.serialized) struct RealParallelTests {
    static let model = "SmolLM2-135M-Instruct.Q4_1.gguf"
    /// A top-2 logit gap below this is a near-tie that rounding may swap (e^0.5 ≈ 1.6× in probability).
    static let nearTie: Float = 0.5

    static func greedyStep(_ runner: any ModelRunner, tokens: [Int32], start: Int, table: inout [Int32]) throws
        -> (best: Int32, margin: Float, logits: [Float]) {
        let vocabulary = runner.configuration.vocabularySize
        try runner.blocks.ensureCapacity(&table, positions: start + tokens.count)
        var batch = ForwardBatch(sequences: [(tokens: tokens, startPosition: start, blockTable: table)])
        batch.logitRows = [tokens.count - 1]
        let row = Array(UnsafeBufferPointer(start: try #require(try runner.forward(batch)), count: vocabulary))
        var best = 0, second = -Float.infinity
        for index in 1..<vocabulary where row[index] > row[best] { best = index }
        for index in 0..<vocabulary where index != best { second = max(second, row[index]) }
        return (Int32(best), row[best] - second, row)
    }

    @Test func smolLM2SplitOverTwoByTwoRanksMatchesSerial() throws {
        let path = try #require(RealModelTests.find(Self.model), "\(Self.model) missing: run scripts/fetch_models.sh")
        let checkpoint = try Checkpoint.open(path: path)
        #expect(checkpoint.configuration.headCount == 9 && checkpoint.configuration.kvHeadCount == 3)
        let serial = Generator(runner: try checkpoint.makeRunner(threadsPerRank: 2, contextLength: 512),
                               tokenizer: checkpoint.tokenizer)
        let parallel = Generator(runner: try checkpoint.makeRunner(tensorParallel: 2, pipelineStages: 2, threadsPerRank: 1,
                                                                   contextLength: 512),
                                 tokenizer: checkpoint.tokenizer)
        #expect(parallel.runner is LocalParallelRunner)

        // Greedy decoding, all fed the serial's choice; a portable-ISA serial run measures the rounding noise.
        let noise = try checkpoint.makeRunner(threadsPerRank: 1, isa: .portable, contextLength: 512)
        let prompt = checkpoint.tokenizer.encode("The capital of France is", addSpecialTokens: true, parseSpecialTokens: true)
        var serialTable: [Int32] = [], parallelTable: [Int32] = [], noiseTable: [Int32] = []
        var input = prompt, position = 0, chosen: [Int32] = [], firstNearTie: Int?
        var parallelGap: Float = 0, noiseGap: Float = 0
        func gap(_ a: [Float], _ b: [Float]) -> Float {
            zip(a, b).reduce(0) { $0 + abs($1.0 - $1.1) } / b.reduce(0) { $0 + abs($1) }
        }
        let steps = 16
        for step in 0..<steps {
            let s = try Self.greedyStep(serial.runner, tokens: input, start: position, table: &serialTable)
            let p = try Self.greedyStep(parallel.runner, tokens: input, start: position, table: &parallelTable)
            let n = try Self.greedyStep(noise, tokens: input, start: position, table: &noiseTable)
            parallelGap += gap(p.logits, s.logits) / Float(steps)
            noiseGap += gap(n.logits, s.logits) / Float(steps)
            #expect(p.best == s.best || s.margin < Self.nearTie,
                    "step \(step): parallel \(p.best), serial \(s.best) by a margin of \(s.margin)")
            if s.margin < Self.nearTie && firstNearTie == nil { firstNearTie = step }
            chosen.append(s.best)
            position += input.count
            input = [s.best]
        }
        serial.runner.blocks.free(serialTable)
        parallel.runner.blocks.free(parallelTable)
        #expect(parallelGap <= 2 * noiseGap, "mean |Δlogit| / mean |logit|: tp 2 × pp 2 \(parallelGap), portable ISA \(noiseGap)")
        #expect(checkpoint.tokenizer.decode(chosen).contains("Paris"))
        // Free-running, the two generate the same text up to the first near-tie.
        let expected = try serial.generate(prompt: prompt, maxTokens: steps)
        let actual = try parallel.generate(prompt: prompt, maxTokens: steps)
        #expect(expected.tokens == chosen)
        let agreed = firstNearTie ?? steps
        #expect(agreed >= 3 && Array(actual.tokens.prefix(agreed)) == Array(expected.tokens.prefix(agreed)),
                "serial: \(expected.text)\nparallel: \(actual.text)")
        print("RealParallelTests: logit gap tp 2 × pp 2 \(parallelGap) vs portable ISA \(noiseGap); greedy identical for "
              + "\(agreed) of \(steps) tokens (first near-tie: \(firstNearTie.map(String.init) ?? "none")): "
              + "serial \(expected.text.debugDescription), parallel \(actual.text.debugDescription)")

        // Perplexity over two chunks of 512 tokens of the fixture text.
        let fixture = try #require(RealModelTests.fixture)
        let text = try String(contentsOfFile: fixture.text, encoding: .utf8)
        let tokens = checkpoint.tokenizer.encode(text, addSpecialTokens: false, parseSpecialTokens: false)
        let (serialPerplexity, serialScored) = try Perplexity.compute(generator: serial, tokens: tokens, context: 512, maxChunks: 2)
        let (parallelPerplexity, parallelScored) = try Perplexity.compute(generator: parallel, tokens: tokens, context: 512, maxChunks: 2)
        #expect(parallelScored == serialScored && serialScored > 500)
        #expect(serialPerplexity > 10 && serialPerplexity < 30)
        #expect(abs(parallelPerplexity - serialPerplexity) / serialPerplexity <= 0.005,
                "tp 2 × pp 2: \(parallelPerplexity), serial: \(serialPerplexity)")
        print("RealParallelTests: perplexity serial \(serialPerplexity), tp 2 × pp 2 \(parallelPerplexity)")
    }

    /// With F32 weights and an F32 KV cache nothing is quantized, so the split is exact up to
    /// float summation order: the same greedy text and the same perplexity (to 1e-4). Where
    /// llama.cpp's F32 conversion is not at hand (CI), the shipped Q4_1 file dequantized to F32
    /// serves: its weights are then exact floats too.
    @Test func smolLM2F32SplitIsExact() throws {
        let path = try RealModelTests.find("SmolLM2-135M-Instruct.F32.gguf") ?? Self.dequantizedSmolLM2()
        defer { if path.hasPrefix(NSTemporaryDirectory()) { try? FileManager.default.removeItem(atPath: path) } }
        let checkpoint = try Checkpoint.open(path: path)
        let serial = Generator(runner: try checkpoint.makeRunner(threadsPerRank: 2, contextLength: 256, kvCacheType: .f32),
                               tokenizer: checkpoint.tokenizer)
        let parallel = Generator(runner: try checkpoint.makeRunner(tensorParallel: 2, pipelineStages: 2, threadsPerRank: 1,
                                                                   contextLength: 256, kvCacheType: .f32),
                                 tokenizer: checkpoint.tokenizer)
        let prompt = checkpoint.tokenizer.encode("The capital of France is", addSpecialTokens: true, parseSpecialTokens: true)
        let expected = try serial.generate(prompt: prompt, maxTokens: 16)
        let actual = try parallel.generate(prompt: prompt, maxTokens: 16)
        #expect(actual.tokens == expected.tokens, "serial: \(expected.text)\nparallel: \(actual.text)")
        #expect(expected.text.contains("Paris"))
        let fixture = try #require(RealModelTests.fixture)
        let text = try String(contentsOfFile: fixture.text, encoding: .utf8)
        let tokens = checkpoint.tokenizer.encode(text, addSpecialTokens: false, parseSpecialTokens: false)
        let (serialPerplexity, _) = try Perplexity.compute(generator: serial, tokens: tokens, context: 256, maxChunks: 1)
        let (parallelPerplexity, _) = try Perplexity.compute(generator: parallel, tokens: tokens, context: 256, maxChunks: 1)
        #expect(abs(parallelPerplexity - serialPerplexity) / serialPerplexity <= 1e-4,
                "tp 2 × pp 2: \(parallelPerplexity), serial: \(serialPerplexity)")
    }

    /// Writes SmolLM2 Q4_1 with every tensor dequantized to F32 (same metadata and tokenizer)
    /// to a temporary file and returns its path.
    static func dequantizedSmolLM2() throws -> String {
        let source = try #require(RealModelTests.find("SmolLM2-135M-Instruct.Q4_1.gguf"), "run scripts/fetch_models.sh")
        let file = try GGUFFile(path: source)
        var writer = GGUFWriter()
        for key in file.metadataOrder where key != "general.alignment" {
            if let value = file.metadata[key] { writer.set(key, value) }
        }
        writer.set("general.file_type", .uint32(0))  // all F32
        for info in file.tensors {
            try writer.addTensor(name: info.name, shape: info.shape, floats: file.tensor(info).dequantized())
        }
        let path = NSTemporaryDirectory() + "energon-smollm2-q4_1-as-f32-\(ProcessInfo.processInfo.processIdentifier).gguf"
        try writer.write(to: path)
        return path
    }
}
