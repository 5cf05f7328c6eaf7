import EnergonCore
import EnergonModels
import Testing

extension TinyModelTests {
    /// The F16 KV cache (the default) rounds every stored key and value to half: logits move by
    /// more than the f32 path's 1e-4, but stay close to transformers' f32 logits, through a
    /// prefill and token-by-token decoding, at every ISA level; and they do differ from the f32
    /// cache's (the cache really holds halves).
    @Test("prefill and decoding over an F16 KV cache stay close to transformers", arguments: cases)
    func halfCacheDecodeStaysClose(_ testCase: Case) throws {
        let (model, expected) = try load(testCase)
        let vocabulary = testCase.vocabulary
        for isa in ISA.available {
            let context = ComputeContext(threads: 2, isa: isa)
            var worst: [DType: Float] = [:]
            var halfLogits: [Float] = [], fullLogits: [Float] = []
            for elementType in [DType.f16, .f32] {
                let cache = KVCache(layers: model.layerRange.count, blockSize: 2, kvDimension: model.kvDimensionPerRank,
                                    blockCount: 16, elementType: elementType)
                #expect(cache.elementType == elementType)
                let buffers = ActivationBuffers()
                let split = 5
                let table = try cache.allocate(cache.blocksNeeded(positions: testCase.tokens.count))
                let first = ForwardBatch(sequences: [(tokens: Array(testCase.tokens[..<split]), startPosition: 0, blockTable: table)])
                _ = try #require(try DecoderRuntime.forward(model, batch: first, cache: cache, buffers: buffers, context: context))
                var error: Float = 0
                var rows: [Float] = []
                for position in split..<testCase.tokens.count {
                    let step = ForwardBatch(sequences: [(tokens: [testCase.tokens[position]], startPosition: position,
                                                         blockTable: table)])
                    let row = try #require(try DecoderRuntime.forward(model, batch: step, cache: cache, buffers: buffers,
                                                                      context: context))
                    error = max(error, Self.relativeError(row, expected[(position * vocabulary)..<((position + 1) * vocabulary)]))
                    rows += Array(UnsafeBufferPointer(start: row, count: vocabulary))
                }
                worst[elementType] = error
                if elementType == .f16 { halfLogits = rows } else { fullLogits = rows }
                cache.free(table)
            }
            #expect(worst[.f16]! <= 2e-3, "\(isa) f16 cache error \(worst[.f16]!)")
            #expect(worst[.f32]! <= 1e-4, "\(isa) f32 cache error \(worst[.f32]!)")
            #expect(halfLogits != fullLogits, "\(isa): the F16 cache must round what it stores")
        }
    }
}
