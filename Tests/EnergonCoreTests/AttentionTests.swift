import EnergonCore
import Testing

/// A paged KV cache built from dense `[positions, kvHeads * headDimension]` keys and values.
/// Blocks are separate allocations handed out in a shuffled order (so a kernel that assumed
/// contiguous blocks would read the wrong rows), and rows past the sequence's end hold NaN (so a
/// kernel that read past the causal range would produce NaN). `Element` is `Float` for an f32
/// cache or `UInt16` (half bits) for an F16 cache.
final class PagedTestCache<Element> {
    let blockSize: Int
    private(set) var keyBlocks: [UnsafeMutablePointer<Element>] = []
    private(set) var valueBlocks: [UnsafeMutablePointer<Element>] = []
    private var allocations: [UnsafeMutablePointer<Element>] = []

    init(keys: [Element], values: [Element], nan: Element, positions: Int, rowWidth: Int, blockSize: Int,
         capacity: Int, random: inout OpsTestRandom) {
        self.blockSize = blockSize
        let blocks = (capacity + blockSize - 1) / blockSize
        var pool: [UnsafeMutablePointer<Element>] = []
        for _ in 0..<(2 * blocks) {
            let block = UnsafeMutablePointer<Element>.allocate(capacity: blockSize * rowWidth)
            block.initialize(repeating: nan, count: blockSize * rowWidth)
            pool.append(block)
        }
        allocations = pool
        pool.shuffle(using: &random)
        keyBlocks = Array(pool[0..<blocks])
        valueBlocks = Array(pool[blocks..<(2 * blocks)])
        for position in 0..<positions {
            let block = position / blockSize, row = position % blockSize
            for index in 0..<rowWidth {
                keyBlocks[block][row * rowWidth + index] = keys[position * rowWidth + index]
                valueBlocks[block][row * rowWidth + index] = values[position * rowWidth + index]
            }
        }
    }

    deinit {
        for block in allocations { block.deallocate() }
    }
}

/// One sequence of a test batch: its dense keys/values and queries.
struct AttentionTestSequence {
    var startPosition: Int
    var tokens: Int
    var queries: [Float]
    var keys: [Float]
    var values: [Float]
}

@Suite struct AttentionTests {
    /// Runs `Attention.compute` over `sequences` packed into one batch with the given block size
    /// and returns the packed output. With `configuration.cacheType == .f16` the cache holds the
    /// keys and values rounded to half (Swift's `Float16`, round to nearest even).
    func run(_ sequences: [AttentionTestSequence], configuration: AttentionConfiguration, blockSize: Int?,
             threads: Int, isa: ISA, random: inout OpsTestRandom) -> [Float] {
        if configuration.cacheType == .f16 {
            return run(sequences, configuration: configuration, blockSize: blockSize, threads: threads, isa: isa,
                       nan: Float16.nan.bitPattern, convert: { Float16($0).bitPattern },
                       makeEntry: { AttentionSequence(queryOffset: $0, tokens: $1, startPosition: $2, keyBlocks: $3, valueBlocks: $4) },
                       random: &random)
        }
        return run(sequences, configuration: configuration, blockSize: blockSize, threads: threads, isa: isa,
                   nan: Float.nan, convert: { $0 },
                   makeEntry: { AttentionSequence(queryOffset: $0, tokens: $1, startPosition: $2, keyBlocks: $3, valueBlocks: $4) },
                   random: &random)
    }

    func run<Element>(_ sequences: [AttentionTestSequence], configuration: AttentionConfiguration, blockSize: Int?,
                      threads: Int, isa: ISA, nan: Element, convert: (Float) -> Element,
                      makeEntry: (Int, Int, Int, UnsafePointer<UnsafeMutablePointer<Element>>,
                                  UnsafePointer<UnsafeMutablePointer<Element>>) -> AttentionSequence,
                      random: inout OpsTestRandom) -> [Float] {
        let rowWidth = configuration.kvHeads * configuration.headDimension
        var caches: [PagedTestCache<Element>] = []
        var packedQueries: [Float] = []
        // One block size for the whole batch: a dense cache is one block as large as the longest sequence.
        let capacity = sequences.map { $0.startPosition + $0.tokens }.max()! + 5
        for sequence in sequences {
            let positions = sequence.startPosition + sequence.tokens
            caches.append(PagedTestCache(keys: sequence.keys.map(convert), values: sequence.values.map(convert), nan: nan,
                                         positions: positions, rowWidth: rowWidth, blockSize: blockSize ?? capacity,
                                         capacity: capacity, random: &random))
            packedQueries += sequence.queries
        }
        var output = [Float](repeating: .nan, count: packedQueries.count)
        let context = ComputeContext(threads: threads, isa: isa)
        // Block tables must outlive the call: keep them in arrays pinned for its duration.
        let keyTables = caches.map { $0.keyBlocks }, valueTables = caches.map { $0.valueBlocks }
        func withTables(_ index: Int, _ built: [AttentionSequence], _ body: ([AttentionSequence]) -> Void) {
            if index == sequences.count { return body(built) }
            keyTables[index].withUnsafeBufferPointer { keys in
                valueTables[index].withUnsafeBufferPointer { values in
                    let offset = sequences[..<index].reduce(0) { $0 + $1.tokens }
                    let entry = makeEntry(offset, sequences[index].tokens, sequences[index].startPosition,
                                          keys.baseAddress!, values.baseAddress!)
                    withTables(index + 1, built + [entry], body)
                }
            }
        }
        withTables(0, []) { batch in
            Attention.compute(queries: packedQueries, sequences: batch, blockSize: caches.first?.blockSize ?? 1,
                              output: &output, configuration: configuration, context: context)
        }
        return output
    }

    func makeSequence(startPosition: Int, tokens: Int, configuration: AttentionConfiguration, magnitude: Float = 1,
                      random: inout OpsTestRandom) -> AttentionTestSequence {
        let positions = startPosition + tokens
        let rowWidth = configuration.kvHeads * configuration.headDimension
        return AttentionTestSequence(
            startPosition: startPosition, tokens: tokens,
            queries: random.floats(tokens * configuration.heads * configuration.headDimension,
                                   in: -magnitude...magnitude),
            keys: random.floats(positions * rowWidth, in: -magnitude...magnitude),
            values: random.floats(positions * rowWidth, in: -1...1))
    }

    /// The Float64 reference; for an F16 cache it runs on the keys and values rounded to half,
    /// as the cache holds them, so only summation order separates it from the kernel.
    func reference(_ sequences: [AttentionTestSequence], configuration: AttentionConfiguration) -> [Float] {
        let half = configuration.cacheType == .f16
        func stored(_ values: [Float]) -> [Float] { half ? values.map { Float(Float16($0)) } : values }
        return sequences.flatMap { sequence in
            ReferenceOps.attention(queries: sequence.queries, tokens: sequence.tokens,
                                   startPosition: sequence.startPosition, keys: stored(sequence.keys),
                                   values: stored(sequence.values), configuration: configuration)
        }
    }

    static let headShapes: [(heads: Int, kvHeads: Int, headDimension: Int)] = [
        (8, 2, 64), (4, 1, 80), (4, 4, 33), (3, 1, 256), (9, 3, 64), (7, 1, 32), (10, 2, 48),
    ]

    @Test(arguments: ISA.available, headShapes)
    func groupedQueryAttentionMatchesReference(isa: ISA, shape: (heads: Int, kvHeads: Int, headDimension: Int)) {
        var random = OpsTestRandom()
        let configuration = AttentionConfiguration(
            heads: shape.heads, kvHeads: shape.kvHeads, headDimension: shape.headDimension,
            scale: 1 / Float(shape.headDimension).squareRoot())
        // A prefill from 0 (crosses several 64-key chunks), decode steps (one at 4097 keys), a
        // chunked prefill.
        for (start, tokens) in [(0, 70), (150, 1), (30, 9), (4096, 1)] {
            let sequence = makeSequence(startPosition: start, tokens: tokens, configuration: configuration,
                                        magnitude: 2, random: &random)
            let expected = reference([sequence], configuration: configuration)
            for threads in [1, 3] {
                let output = run([sequence], configuration: configuration, blockSize: 16, threads: threads, isa: isa,
                                 random: &random)
                let error = opsWorstError(output, expected, absolute: 2e-6, relative: 1e-5)
                #expect(error <= 1, "attention \(isa) \(shape) start \(start) tokens \(tokens) threads \(threads) \(error) seed \(random.seed)")
            }
        }
    }

    @Test(arguments: ISA.available, [1, 7, 31, 32, 33, 255, 272])
    func everyHeadDimensionMatchesReference(isa: ISA, headDimension: Int) {
        var random = OpsTestRandom()
        let configuration = AttentionConfiguration(heads: 2, kvHeads: 1, headDimension: headDimension,
                                                   scale: 1 / Float(headDimension).squareRoot())
        let sequence = makeSequence(startPosition: 5, tokens: 20, configuration: configuration, magnitude: 1.5,
                                    random: &random)
        let expected = reference([sequence], configuration: configuration)
        let output = run([sequence], configuration: configuration, blockSize: 16, threads: 1, isa: isa, random: &random)
        let error = opsWorstError(output, expected, absolute: 2e-6, relative: 1e-5)
        #expect(error <= 1, "attention \(isa) d=\(headDimension) \(error) seed \(random.seed)")
    }

    @Test(arguments: ISA.available)
    func slidingWindowAndSoftcapMatchReference(isa: ISA) {
        var random = OpsTestRandom()
        for (window, softcap) in [(Int?.some(16), Float?.none), (nil, 5), (7, 2), (1, nil)] {
            let configuration = AttentionConfiguration(heads: 4, kvHeads: 2, headDimension: 64, scale: 0.5,
                                                       slidingWindow: window, logitSoftcap: softcap)
            // Large inputs make raw scores reach tens, so the softcap changes the result a lot.
            let sequence = makeSequence(startPosition: 40, tokens: 30, configuration: configuration, magnitude: 1.5,
                                        random: &random)
            let expected = reference([sequence], configuration: configuration)
            let output = run([sequence], configuration: configuration, blockSize: 16, threads: 3, isa: isa,
                             random: &random)
            let error = opsWorstError(output, expected, absolute: 3e-6, relative: 1e-5)
            #expect(error <= 1, "attention \(isa) window \(String(describing: window)) softcap \(String(describing: softcap)) \(error) seed \(random.seed)")
            // The option must matter: plain causal attention gives a clearly different answer.
            let plain = reference([sequence], configuration: AttentionConfiguration(
                heads: 4, kvHeads: 2, headDimension: 64, scale: 0.5))
            #expect(opsWorstError(output, plain, absolute: 1e-3, relative: 0) > 1)
        }
    }

    @Test(arguments: ISA.available)
    func raggedBatchPagedEqualsDenseAndReference(isa: ISA) {
        for (window, softcap) in [(Int?.none, Float?.none), (24, 20)] {
            raggedBatch(isa: isa, configuration: AttentionConfiguration(
                heads: 8, kvHeads: 2, headDimension: 64, scale: 0.125, slidingWindow: window, logitSoftcap: softcap))
        }
    }

    func raggedBatch(isa: ISA, configuration: AttentionConfiguration) {
        var random = OpsTestRandom()
        let sequences = [(0, 21), (100, 1), (37, 5), (16, 16), (250, 1)].map { start, tokens in
            makeSequence(startPosition: start, tokens: tokens, configuration: configuration, magnitude: 2,
                         random: &random)
        }
        let expected = reference(sequences, configuration: configuration)
        var outputs: [[Float]] = []
        for threads in [1, 3] {
            let paged = run(sequences, configuration: configuration, blockSize: 16, threads: threads, isa: isa,
                            random: &random)
            let dense = run(sequences, configuration: configuration, blockSize: nil, threads: threads, isa: isa,
                            random: &random)
            // Chunks follow positions, not blocks, so paging changes nothing, bit for bit, whatever
            // the block size (1: every key in its own block; 7 and 100: blocks that straddle chunks).
            #expect(paged == dense, "paged vs dense \(isa) threads \(threads) seed \(random.seed)")
            for blockSize in [1, 7, 100] {
                let other = run(sequences, configuration: configuration, blockSize: blockSize, threads: threads, isa: isa,
                                random: &random)
                #expect(other == dense, "block size \(blockSize) vs dense \(isa) threads \(threads) seed \(random.seed)")
            }
            let error = opsWorstError(paged, expected, absolute: 2e-6, relative: 1e-5)
            #expect(error <= 1, "ragged \(isa) threads \(threads) \(error) seed \(random.seed)")
            outputs.append(paged)
        }
        // Each (token, KV head) item is computed the same way whichever thread takes it.
        #expect(outputs[0] == outputs[1])
    }

    /// A decode step with fewer (token, KV head) items than threads splits each key range over
    /// the threads and merges the parts; it must agree with the reference and the one-thread run.
    @Test(arguments: ISA.available)
    func splitKeyRangesMatchSinglePass(isa: ISA) {
        var random = OpsTestRandom()
        for (window, softcap) in [(Int?.none, Float?.none), (1000, 30), (Int?.none, 5)] {
            let configuration = AttentionConfiguration(heads: 4, kvHeads: 1, headDimension: 64, scale: 0.125,
                                                       slidingWindow: window, logitSoftcap: softcap)
            // Two decode sequences and 2 items < 5 threads: each item splits in two.
            let sequences = [(3000, 1), (1500, 1)].map { start, tokens in
                makeSequence(startPosition: start, tokens: tokens, configuration: configuration, magnitude: 2,
                             random: &random)
            }
            let expected = reference(sequences, configuration: configuration)
            let single = run(sequences, configuration: configuration, blockSize: 16, threads: 1, isa: isa, random: &random)
            for threads in [2, 3, 5] {
                let split = run(sequences, configuration: configuration, blockSize: 16, threads: threads, isa: isa,
                                random: &random)
                let error = opsWorstError(split, expected, absolute: 2e-6, relative: 1e-5)
                #expect(error <= 1, "split \(isa) threads \(threads) window \(String(describing: window)) \(error) seed \(random.seed)")
                #expect(opsWorstError(split, single, absolute: 1e-6, relative: 1e-5) <= 1)
            }
        }
    }

    /// Encoder (non-causal) attention: every query sees its whole sequence, including later keys.
    @Test(arguments: ISA.available)
    func nonCausalSeesTheWholeSequence(isa: ISA) {
        var random = OpsTestRandom()
        let configuration = AttentionConfiguration(heads: 6, kvHeads: 6, headDimension: 64, scale: 0.125, causal: false)
        let sequences = [(0, 37), (0, 5), (0, 1), (0, 80)].map { start, tokens in
            makeSequence(startPosition: start, tokens: tokens, configuration: configuration, magnitude: 2, random: &random)
        }
        let expected = reference(sequences, configuration: configuration)
        for threads in [1, 3] {
            let output = run(sequences, configuration: configuration, blockSize: 16, threads: threads, isa: isa,
                             random: &random)
            let error = opsWorstError(output, expected, absolute: 2e-6, relative: 1e-5)
            #expect(error <= 1, "non-causal \(isa) threads \(threads) \(error) seed \(random.seed)")
        }
        var causal = configuration
        causal.causal = true
        #expect(opsWorstError(reference(sequences, configuration: causal), expected, absolute: 1e-3, relative: 0) > 1)
    }

    @Test func levelsAgreeClosely() {
        var random = OpsTestRandom()
        let configuration = AttentionConfiguration(heads: 8, kvHeads: 2, headDimension: 128, scale: 0.09,
                                                   logitSoftcap: 30)
        let sequence = makeSequence(startPosition: 10, tokens: 100, configuration: configuration, magnitude: 2,
                                    random: &random)
        let outputs = ISA.available.map { isa in
            run([sequence], configuration: configuration, blockSize: 32, threads: 2, isa: isa, random: &random)
        }
        for output in outputs.dropFirst() {
            #expect(opsWorstError(output, outputs[0], absolute: 1e-6, relative: 1e-5) <= 1)
        }
    }
}
