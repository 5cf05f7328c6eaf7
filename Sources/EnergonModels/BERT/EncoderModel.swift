import EnergonCheckpoint
import EnergonCore
import EnergonDistributed
import EnergonTokenizers

/// A ragged batch for an encoder: whole sequences (an encoder has no cache, so every call sees
/// each sequence from position 0) packed into one `[totalTokens, hidden]` matrix, no padding.
public struct EncoderBatch: Sendable {
    /// One sequence's rows in the packed matrix.
    public struct Sequence: Sendable {
        /// First packed row.
        public var offset: Int
        /// Tokens in the sequence.
        public var count: Int
    }

    /// Packed token ids, `[totalTokens]`.
    public var tokens: [Int32]
    /// Packed token type (segment) ids, `[totalTokens]`; 0 when the caller gives none.
    public var typeIDs: [Int32]
    /// Position of each packed token within its sequence, `[totalTokens]`.
    public var positions: [Int32]
    /// The sequences, in packing order.
    public var sequences: [Sequence]

    /// Packs `sequences`; a sequence without type ids gets all zeros.
    /// - Throws: `ModelError.invalidValue` when a sequence's type ids and tokens differ in length.
    public init(sequences entries: [(tokens: [Int32], typeIDs: [Int32]?)]) throws {
        tokens = []
        typeIDs = []
        positions = []
        sequences = []
        for (index, entry) in entries.enumerated() {
            if let types = entry.typeIDs, types.count != entry.tokens.count {
                throw ModelError.invalidValue(key: "token_type_ids", value: "\(types.count) ids",
                                              reason: "sequence \(index) has \(entry.tokens.count) tokens")
            }
            sequences.append(Sequence(offset: tokens.count, count: entry.tokens.count))
            tokens += entry.tokens
            typeIDs += entry.typeIDs ?? Array(repeating: 0, count: entry.tokens.count)
            positions += (0..<Int32(entry.tokens.count)).map { $0 }
        }
    }

    /// Total packed tokens.
    public var totalTokens: Int { tokens.count }
}

/// An encoder-only model (BERT): every token attends to its whole sequence, and the result is
/// the last hidden states, for embeddings or classification heads.
public protocol EncoderModel: AnyObject, Sendable {
    /// The model's hyperparameters (the decoder fields carry over; rotary ones are unused).
    var configuration: DecoderConfiguration { get }
    /// Encodes `batch`; returns the final hidden states `[batch.totalTokens, hiddenSize]`, valid
    /// until the next call with the same `buffers`.
    func encode(_ batch: EncoderBatch, buffers: ActivationBuffers, context: ComputeContext) throws -> UnsafeMutablePointer<Float>
}

extension EncoderModel {
    /// The final hidden states of one sequence, `[tokens.count · hiddenSize]` row-major.
    public func encode(tokens: [Int32], typeIDs: [Int32]? = nil, context: ComputeContext) throws -> [Float] {
        let batch = try EncoderBatch(sequences: [(tokens, typeIDs)])
        let buffers = ActivationBuffers()
        let hidden = try encode(batch, buffers: buffers, context: context)
        return Array(UnsafeBufferPointer(start: hidden, count: batch.totalTokens * configuration.hiddenSize))
    }

    /// One embedding per sequence of `batch`: the mean of its final hidden states, scaled to unit
    /// L2 norm (sentence-transformers' mean pooling + normalisation, llama.cpp's `pooling_type` 1).
    public func embeddings(_ batch: EncoderBatch, buffers: ActivationBuffers, context: ComputeContext) throws -> [[Float]] {
        let hiddenSize = configuration.hiddenSize
        let hidden = try encode(batch, buffers: buffers, context: context)
        return batch.sequences.map { sequence in
            var sum = [Double](repeating: 0, count: hiddenSize)
            for row in sequence.offset..<(sequence.offset + sequence.count) {
                for index in 0..<hiddenSize { sum[index] += Double(hidden[row * hiddenSize + index]) }
            }
            let mean = sum.map { $0 / Double(max(1, sequence.count)) }
            let norm = mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return mean.map { Float(norm > 0 ? $0 / norm : 0) }
        }
    }
}

/// An encoder opened from a checkpoint (a `.gguf` file or a Hugging Face folder) with its
/// tokenizer: what `/v1/embeddings` needs.
public final class LoadedEncoder: @unchecked Sendable {
    /// The network.
    public let model: any EncoderModel
    /// The tokenizer the checkpoint carries.
    public let tokenizer: any Tokenizer
    /// The file or folder the model came from.
    public let path: String

    init(model: any EncoderModel, tokenizer: any Tokenizer, path: String) {
        self.model = model
        self.tokenizer = tokenizer
        self.path = path
    }

    /// Opens `path` and builds the encoder; every checkpoint tensor must be used or known to be
    /// unneeded (task heads, the pooler).
    public static func load(path: String, parallel: ParallelContext = .serial) throws -> LoadedEncoder {
        let checkpoint = try Checkpoint.open(path: path)
        let weights = checkpoint.weights()
        let model = try ModelRegistry.buildEncoder(configuration: checkpoint.configuration, weights: weights, parallel: parallel)
        try weights.finish()
        return LoadedEncoder(model: model, tokenizer: checkpoint.tokenizer, path: path)
    }

    /// Tokenizes each text (with the tokenizer's special tokens, `[CLS] … [SEP]` for BERT) and
    /// returns one unit-length mean-pooled embedding per text.
    /// - Throws: `ModelError.contextOverflow` for a text longer than the model's positions.
    public func embed(_ texts: [String], context: ComputeContext) throws -> [[Float]] {
        let limit = model.configuration.contextLength
        let sequences: [(tokens: [Int32], typeIDs: [Int32]?)] = try texts.map { text in
            let ids = tokenizer.encode(text, addSpecialTokens: true)
            if ids.count > limit { throw ModelError.contextOverflow(needed: ids.count, limit: limit) }
            return (ids, nil)
        }
        return try model.embeddings(try EncoderBatch(sequences: sequences), buffers: ActivationBuffers(), context: context)
    }
}
