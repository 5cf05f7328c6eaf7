import EnergonCheckpoint
import EnergonCore
import EnergonDistributed

/// A normalisation layer applied row by row (RMSNorm, LayerNorm).
public protocol RowNorm: AnyObject, Sendable {
    /// Normalises each of `rows` rows of `input` into `output` (may be the same memory).
    func callAsFunction(_ input: UnsafePointer<Float>, rows: Int, output: UnsafeMutablePointer<Float>, context: ComputeContext)
}

extension RMSNorm: RowNorm {}
extension LayerNorm: RowNorm {}

/// The two ends every decoder shares: the token embedding (first pipeline stage) and the final
/// norm plus LM head (last stage, tied to the embedding when the checkpoint has no `output`).
/// A worker builds only the ends its stage needs.
public final class DecoderEnds: @unchecked Sendable {
    let embedding: VocabParallelEmbedding?
    let finalNorm: (any RowNorm)?
    let lmHead: ParallelLMHead?

    /// Loads `token_embd` on the first stage and `output_norm` + `output` (or the tied
    /// `token_embd`) on the last.
    /// - Parameter makeNorm: builds the final norm from the source and its tensor name.
    public init(_ weights: WeightSource, configuration c: DecoderConfiguration, parallel: ParallelContext,
                makeNorm: (WeightSource, String) throws -> any RowNorm) throws {
        let tied = !weights.contains("output.weight")
        if parallel.isLastStage {
            finalNorm = try makeNorm(weights, "output_norm")
            lmHead = try ParallelLMHead(weights, tied ? "token_embd" : "output", vocabularySize: c.vocabularySize,
                                        hiddenSize: c.hiddenSize, parallel: parallel)
        } else {
            finalNorm = nil
            lmHead = nil
        }
        if !parallel.isFirstStage {
            embedding = nil
        } else if tied, let lmHead {
            // One stage holds both ends of a tied model: look rows up in the head's prepared copy
            // rather than keep the file's pages of the same matrix resident as well.
            embedding = VocabParallelEmbedding(sharing: lmHead.weight, vocabularySize: c.vocabularySize,
                                               hiddenSize: c.hiddenSize, parallel: parallel)
        } else {
            embedding = try VocabParallelEmbedding(weights, "token_embd", vocabularySize: c.vocabularySize,
                                                   hiddenSize: c.hiddenSize, parallel: parallel)
        }
    }

    /// Writes the token embeddings of `tokens` to `hidden` (`[tokens, hidden]`); nothing off the first stage.
    public func embed(_ tokens: [Int32], into hidden: UnsafeMutablePointer<Float>) throws {
        try embedding?(tokens, output: hidden)
    }

    /// Final norm and projection of `rows` rows to logits; nothing off the last stage.
    public func head(_ hidden: UnsafeMutablePointer<Float>, rows: Int, logits: UnsafeMutablePointer<Float>,
                     buffers: ActivationBuffers, context: ComputeContext) throws {
        guard let finalNorm, let lmHead else { return }
        finalNorm(hidden, rows: rows, output: hidden, context: context)
        try lmHead(hidden, rows: rows, logits: logits, buffers: buffers, context: context)
    }
}
