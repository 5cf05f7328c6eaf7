import EnergonCore
import Testing

/// Attention over an F16 KV cache (`cacheType = .f16`): the kernel widens half keys and values
/// to f32, so it must match the Float64 reference run on the half-rounded keys and values with
/// the f32 path's tolerance, at every ISA level and on every path (multi-row tiles, GQA, sliding
/// window, softcap, ragged paged blocks, split-K decode).
extension AttentionTests {
    @Test(arguments: ISA.available, headShapes)
    func halfCacheGroupedQueryAttentionMatchesReference(isa: ISA, shape: (heads: Int, kvHeads: Int, headDimension: Int)) {
        var random = OpsTestRandom()
        let configuration = AttentionConfiguration(
            heads: shape.heads, kvHeads: shape.kvHeads, headDimension: shape.headDimension,
            scale: 1 / Float(shape.headDimension).squareRoot(), cacheType: .f16)
        for (start, tokens) in [(0, 70), (150, 1), (30, 9), (2000, 1)] {
            let sequence = makeSequence(startPosition: start, tokens: tokens, configuration: configuration,
                                        magnitude: 2, random: &random)
            let expected = reference([sequence], configuration: configuration)
            for threads in [1, 3] {
                let output = run([sequence], configuration: configuration, blockSize: 16, threads: threads, isa: isa,
                                 random: &random)
                let error = opsWorstError(output, expected, absolute: 2e-6, relative: 1e-5)
                #expect(error <= 1, "f16 attention \(isa) \(shape) start \(start) tokens \(tokens) threads \(threads) \(error) seed \(random.seed)")
            }
        }
    }

    /// Head sizes that leave every kind of conversion tail (masked AVX-512, scalar AVX2 tail).
    @Test(arguments: ISA.available, [1, 7, 31, 32, 33, 255, 272])
    func halfCacheEveryHeadDimensionMatchesReference(isa: ISA, headDimension: Int) {
        var random = OpsTestRandom()
        let configuration = AttentionConfiguration(heads: 2, kvHeads: 1, headDimension: headDimension,
                                                   scale: 1 / Float(headDimension).squareRoot(), cacheType: .f16)
        let sequence = makeSequence(startPosition: 5, tokens: 20, configuration: configuration, magnitude: 1.5,
                                    random: &random)
        let expected = reference([sequence], configuration: configuration)
        let output = run([sequence], configuration: configuration, blockSize: 16, threads: 1, isa: isa, random: &random)
        let error = opsWorstError(output, expected, absolute: 2e-6, relative: 1e-5)
        #expect(error <= 1, "f16 attention \(isa) d=\(headDimension) \(error) seed \(random.seed)")
    }

    @Test(arguments: ISA.available)
    func halfCacheSlidingWindowSoftcapAndRaggedBatch(isa: ISA) {
        var random = OpsTestRandom()
        for (window, softcap) in [(Int?.some(16), Float?.none), (nil, 5), (7, 2)] {
            let configuration = AttentionConfiguration(heads: 4, kvHeads: 2, headDimension: 64, scale: 0.5,
                                                       slidingWindow: window, logitSoftcap: softcap, cacheType: .f16)
            let sequence = makeSequence(startPosition: 40, tokens: 30, configuration: configuration, magnitude: 1.5,
                                        random: &random)
            let expected = reference([sequence], configuration: configuration)
            let output = run([sequence], configuration: configuration, blockSize: 16, threads: 3, isa: isa,
                             random: &random)
            let error = opsWorstError(output, expected, absolute: 3e-6, relative: 1e-5)
            #expect(error <= 1, "f16 attention \(isa) window \(String(describing: window)) softcap \(String(describing: softcap)) \(error) seed \(random.seed)")
        }
        // Ragged batch: paged == dense bit for bit for every block size, and the reference.
        for (window, softcap) in [(Int?.none, Float?.none), (24, 20)] {
            raggedBatch(isa: isa, configuration: AttentionConfiguration(
                heads: 8, kvHeads: 2, headDimension: 64, scale: 0.125, slidingWindow: window, logitSoftcap: softcap,
                cacheType: .f16))
        }
    }

    /// The split-K decode path over an F16 cache, and evidence the cache really is half: the
    /// output differs from attention over the unrounded f32 keys by far more than the tolerance.
    @Test(arguments: ISA.available)
    func halfCacheSplitKeyRangesMatchReference(isa: ISA) {
        var random = OpsTestRandom()
        for (window, softcap) in [(Int?.none, Float?.none), (1000, 30)] {
            let configuration = AttentionConfiguration(heads: 4, kvHeads: 1, headDimension: 64, scale: 0.125,
                                                       slidingWindow: window, logitSoftcap: softcap, cacheType: .f16)
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
                #expect(error <= 1, "f16 split \(isa) threads \(threads) \(error) seed \(random.seed)")
                #expect(opsWorstError(split, single, absolute: 1e-6, relative: 1e-5) <= 1)
            }
            var full = configuration
            full.cacheType = .f32
            #expect(opsWorstError(single, reference(sequences, configuration: full), absolute: 2e-6, relative: 1e-5) > 1,
                    "half rounding must be visible")
        }
    }
}
