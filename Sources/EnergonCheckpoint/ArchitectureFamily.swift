/// Families of architectures that share tensor names (and checkpoint quirks), each with one
/// table mapping llama.cpp's GGUF names to Hugging Face names (see `TensorNameMap`).
public enum ArchitectureFamily: String, Sendable, CaseIterable {
    /// Llama and its GGUF-named relatives (SmolLM, Mistral): q/k permuted by llama.cpp's converter.
    case llama
    /// Qwen2: Llama names plus q/k/v biases; NeoX rotary layout, so no q/k permutation.
    case qwen2
    /// Gemma 3: extra norms (post-attention, pre/post feed-forward, q/k norms); RMSNorm weights
    /// stored as `w` in HF and as `1 + w` in GGUF.
    case gemma3
    /// GPT-2: fused QKV, learned positions, HF `Conv1D` weights stored transposed.
    case gpt2
    /// OPT: learned positions (offset 2), pre-norm decoder.
    case opt
    /// BERT: encoder with token-type embeddings and post-norms.
    case bert

    /// The family of an HF `model_type` or a GGUF `general.architecture`, if known.
    public init?(modelType: String) {
        switch modelType {
        case "llama", "mistral", "smollm", "smollm2": self = .llama
        case "qwen2": self = .qwen2
        case "gemma3", "gemma3_text": self = .gemma3
        case "gpt2": self = .gpt2
        case "opt": self = .opt
        case "bert": self = .bert
        default: return nil
        }
    }
}
