import ArgumentParser
import EnergonCheckpoint
import EnergonCore
import EnergonEngine
import Foundation

/// `energon make-synthetic`: writes a Llama-shape GGUF with random weights, for speed
/// measurements on a model larger than the small real ones (where compute, not overhead,
/// dominates). The tokenizer is copied from another GGUF so `energon bench` (and `generate`)
/// can load it; the text it produces is noise.
///
/// Memory stays small whatever the model size: each weight role (q, k, v, output, gate, up,
/// down) is drawn and encoded once, and every layer's tensor of that role is written from the
/// same bytes by `GGUFWriter.write(to:)`, which streams tensor data to the file. Each layer
/// still has its own bytes in the file, so a forward pass reads every layer's weights from
/// memory exactly as a real model's.
struct MakeSyntheticCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-synthetic",
        abstract: "Write a Llama-shape GGUF with random weights (for benchmarks).",
        discussion: """
        The defaults give about 1.2 billion parameters (hidden 2048, 24 layers, 32 heads, 8 KV \
        heads, MLP 5632, tied embeddings over the vocabulary of --tokenizer-from): about 1.3 GB \
        in Q8_0.
        """)

    @Option(name: .long, help: "The .gguf file to write.")
    var output: String

    @Option(name: .long, help: "A .gguf whose tokenizer (tokenizer.* metadata) the model takes; its token count is the vocabulary.")
    var tokenizerFrom: String

    @Option(name: .long, help: "Width of the residual stream.")
    var hidden: Int = 2048

    @Option(name: .long, help: "Transformer blocks.")
    var layers: Int = 24

    @Option(name: .long, help: "Query heads.")
    var heads: Int = 32

    @Option(name: .long, help: "Key/value heads (grouped-query attention; must divide --heads).")
    var kvHeads: Int = 8

    @Option(name: .long, help: "MLP features (SwiGLU).")
    var intermediate: Int = 5632

    @Option(name: .long, help: "Context length recorded in the metadata.")
    var context: Int = 4096

    @Option(name: .long, help: "Weight format of the matrices: q8_0, q4_0 or f16 (norms are f32).")
    var format: String = "q8_0"

    @Option(name: .long, help: "Seed of the random weights.")
    var seed: UInt64 = 1

    var dtype: DType? {
        switch format.lowercased() {
        case "q8_0": .q8_0
        case "q4_0": .q4_0
        case "f16": .f16
        default: nil
        }
    }

    func validate() throws {
        guard let dtype else { throw ValidationError("--format must be q8_0, q4_0 or f16, not \(format)") }
        guard hidden > 0, layers > 0, heads > 0, kvHeads > 0, intermediate > 0, context > 0 else {
            throw ValidationError("--hidden, --layers, --heads, --kv-heads, --intermediate and --context must be positive")
        }
        guard hidden % heads == 0, heads % kvHeads == 0, (hidden / heads) % 2 == 0 else {
            throw ValidationError("--heads \(heads) must divide --hidden \(hidden) into heads of an even width, and --kv-heads \(kvHeads) must divide --heads")
        }
        for (name, value) in [("--hidden", hidden), ("--intermediate", intermediate)] where value % dtype.blockSize != 0 {
            throw ValidationError("\(name) \(value) is not a whole number of \(dtype.name) blocks of \(dtype.blockSize)")
        }
    }

    func run() throws {
        guard let dtype else { throw ValidationError("--format must be q8_0, q4_0 or f16") }  // checked by validate()
        let source = try GGUFFile(path: tokenizerFrom)
        guard case let .array(tokens)? = source.metadata["tokenizer.ggml.tokens"], !tokens.isEmpty else {
            throw ValidationError("\(tokenizerFrom) has no tokenizer.ggml.tokens to copy")
        }
        let vocabulary = tokens.count
        let headDimension = hidden / heads
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        writer.set("general.name", .string("synthetic-llama-\(hidden)x\(layers)-\(dtype.name)"))
        for (key, value) in [("context_length", context), ("embedding_length", hidden), ("block_count", layers),
                             ("feed_forward_length", intermediate), ("attention.head_count", heads),
                             ("attention.head_count_kv", kvHeads), ("rope.dimension_count", headDimension),
                             ("vocab_size", vocabulary)] {
            writer.set("llama.\(key)", .uint32(UInt32(value)))
        }
        writer.set("llama.attention.layer_norm_rms_epsilon", .float32(1e-5))
        writer.set("llama.rope.freq_base", .float32(10000))
        for key in source.metadata.keys.sorted() where key.hasPrefix("tokenizer.") {
            writer.set(key, source.metadata[key]!)  // invariant: key comes from the dictionary
        }

        var random = SplitMix64(seed: seed)
        // Uniform in ±√3·σ with σ = 1/√inputs: unit-variance outputs for unit-variance inputs.
        func matrix(_ rows: Int, _ columns: Int) throws -> Tensor {
            let bound = Float(3.0 / Double(columns)).squareRoot()
            let rowBytes = dtype.rowBytes(columns)!  // invariant: validate() checked whole blocks
            var values = [Float](repeating: 0, count: columns)
            return try Tensor(dtype: dtype, shape: [rows, columns]) { output, _ in
                for row in 0..<rows {
                    for index in 0..<columns { values[index] = Float.random(in: -bound..<bound, using: &random) }
                    try values.withUnsafeBufferPointer {
                        try Quantization.quantizeRow(dtype, source: $0.baseAddress!, destination: output + row * rowBytes, count: columns)  // invariant: non-empty
                    }
                }
            }
        }
        let ones = Tensor(shape: [hidden], floats: [Float](repeating: 1, count: hidden))
        let embedding = try matrix(vocabulary, hidden)
        let roles: [(String, Tensor)] = [
            ("attn_q", try matrix(heads * headDimension, hidden)), ("attn_k", try matrix(kvHeads * headDimension, hidden)),
            ("attn_v", try matrix(kvHeads * headDimension, hidden)), ("attn_output", try matrix(hidden, heads * headDimension)),
            ("ffn_gate", try matrix(intermediate, hidden)), ("ffn_up", try matrix(intermediate, hidden)),
            ("ffn_down", try matrix(hidden, intermediate)),
        ]
        try writer.addTensor(name: "token_embd.weight", tensor: embedding)
        for layer in 0..<layers {
            try writer.addTensor(name: "blk.\(layer).attn_norm.weight", tensor: ones)
            try writer.addTensor(name: "blk.\(layer).ffn_norm.weight", tensor: ones)
            for (role, tensor) in roles { try writer.addTensor(name: "blk.\(layer).\(role).weight", tensor: tensor) }
        }
        try writer.addTensor(name: "output_norm.weight", tensor: ones)
        try writer.write(to: output)

        let perLayer = roles.reduce(0) { $0 + $1.1.elementCount } + 2 * hidden
        let parameters = vocabulary * hidden + layers * perLayer + hidden
        let bytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        print(String(format: "wrote %@: %.3f billion parameters, %.2f GB (%@ matrices, vocabulary %d from %@)",
                     output, Double(parameters) / 1e9, Double(bytes) / 1e9, dtype.name, vocabulary, tokenizerFrom))
    }
}
