import EnergonCore
import Synchronization

/// Which slice of a tensor one rank reads: the tensor is split into `count` equal parts along
/// `dimension` (0 = outermost) and rank `rank` gets part `rank`.
public struct ShardSpec: Sendable, Equatable {
    /// The dimension split (0 = rows of a `[out, in]` weight; the last = its columns).
    public let dimension: Int
    /// This rank's part, `0..<count`.
    public let rank: Int
    /// Number of parts.
    public let count: Int

    /// A shard request; validated when used.
    public init(dimension: Int, rank: Int, count: Int) {
        self.dimension = dimension
        self.rank = rank
        self.count = count
    }
}

/// The one way models get weights: names relative to a prefix (so model construction mirrors the
/// checkpoint tree), shape checks, optional sharding, and strict accounting.
///
/// Model code asks for llama.cpp GGUF names (`blk.3.attn_q.weight`). Over a Hugging Face folder,
/// a name the folder does not hold verbatim is translated with the family's `TensorNameMap`
/// table and the conversion llama.cpp's converter applies is applied here too, so both formats
/// give identical tensors:
/// - Llama/Mistral `attn_q`/`attn_k`: rows permuted from HF's half-split rotary layout to GGUF's
///   interleaved pairs (llama.cpp's `LlamaModel.permute`); models use "normal" (GPT-J style) RoPE
///   for both formats. Asking for the HF name verbatim skips the permutation.
/// - Gemma 3 `*norm.weight`: HF stores `w` for `x * (1 + w)`; GGUF stores `1 + w` (result in F32).
/// - GPT-2 `attn_qkv`, `attn_output`, `ffn_up`, `ffn_down` weights: HF `Conv1D` stores `[in, out]`;
///   they are transposed to `[out, in]` (copied).
///
/// Every `prefixed` copy shares one ledger: `finish()` fails listing every checkpoint tensor
/// neither used nor `markIgnored`.
public final class WeightSource: @unchecked Sendable {
    /// Where a source's tensors come from.
    public enum Format: Sendable, Equatable {
        /// A GGUF file: names are GGUF names.
        case gguf
        /// A Hugging Face folder: GGUF names are translated with the family's table.
        case huggingFace
    }

    final class Ledger: Sendable {
        let used = Mutex<Set<String>>([])
        /// Bytes of tensors handed out since the file's pages were last released.
        let sinceRelease = Mutex(0)
    }

    /// While a model loads, the file pages it has read are released every this many bytes of
    /// tensors handed out: loaders copy weights to the layout the kernels read
    /// (`MatMul.prepare`), and reads of small tensors map up to 64 KiB of their neighbours, so
    /// without this the resident set would carry tens of MiB of stale file pages until the end.
    static let releaseInterval = 16 << 20

    /// The tensors.
    public let store: any TensorStore
    /// GGUF file or HF folder.
    public let format: Format
    /// The architecture family (selects the name table and conversions); `nil` uses names verbatim.
    public let family: ArchitectureFamily?
    /// The hyperparameters (head counts drive the q/k permutation).
    public let configuration: ModelConfiguration?
    /// The prefix this view adds, with a trailing dot (empty at the root).
    public let prefix: String
    private let ledger: Ledger

    /// A source over a GGUF file; the family comes from `general.architecture`. GGUF names are
    /// used verbatim, so the configuration (read if the metadata allows) is informational only.
    public convenience init(gguf file: GGUFFile) {
        self.init(store: file, format: .gguf, family: file.architecture.flatMap(ArchitectureFamily.init(modelType:)),
                  configuration: try? ModelConfiguration(gguf: file))
    }

    /// A source over a Hugging Face folder's safetensors, translated for `configuration`'s family.
    public convenience init(huggingFace folder: SafetensorsFolder, configuration: ModelConfiguration) {
        self.init(store: folder, format: .huggingFace, family: configuration.family, configuration: configuration)
    }

    /// A source over any store.
    public init(store: any TensorStore, format: Format, family: ArchitectureFamily?, configuration: ModelConfiguration?) {
        self.store = store
        self.format = format
        self.family = family
        self.configuration = configuration
        prefix = ""
        ledger = Ledger()
    }

    private init(parent: WeightSource, prefix: String) {
        store = parent.store
        format = parent.format
        family = parent.family
        configuration = parent.configuration
        self.prefix = prefix
        ledger = parent.ledger
    }

    /// A view whose names are relative to `component` under this view's prefix
    /// (`source.prefixed("blk.3").tensor("attn_q.weight", ...)` reads `blk.3.attn_q.weight`).
    public func prefixed(_ component: String) -> WeightSource {
        WeightSource(parent: self, prefix: prefix + component + ".")
    }

    /// A resolved request: the checkpoint tensor to read and the conversion to apply.
    struct Resolved {
        let requested: String
        let stored: StoredTensorInfo
        let conversion: Conversion
    }

    enum Conversion: Equatable {
        case none
        case rotaryPermute(heads: Int)
        case addOne
        case transpose
    }

    func resolve(_ name: String) throws -> Resolved? {
        let full = prefix + name
        if let stored = store.storedTensor(named: full) {
            return Resolved(requested: full, stored: stored, conversion: .none)
        }
        guard format == .huggingFace, let family else { return nil }
        for candidate in TensorNameMap.huggingFaceCandidates(forGGUF: full, family: family) {
            guard let stored = store.storedTensor(named: candidate) else { continue }
            return Resolved(requested: full, stored: stored, conversion: try conversion(for: full, family: family))
        }
        return nil
    }

    private func conversion(for ggufName: String, family: ArchitectureFamily) throws -> Conversion {
        switch family {
        case .llama:
            guard ggufName.hasSuffix("attn_q.weight") || ggufName.hasSuffix("attn_q.bias")
                    || ggufName.hasSuffix("attn_k.weight") || ggufName.hasSuffix("attn_k.bias") else { return .none }
            guard let configuration else {
                throw CheckpointError.unsupported(path: store.path, message: "the q/k permutation of `\(ggufName)` needs the head counts of a configuration")
            }
            let isQuery = ggufName.contains("attn_q.")
            return .rotaryPermute(heads: isQuery ? configuration.attentionHeadCount : configuration.keyValueHeadCount)
        case .gemma3:
            return ggufName.hasSuffix("norm.weight") ? .addOne : .none
        case .gpt2:
            for stem in ["attn_qkv.weight", "attn_output.weight", "ffn_up.weight", "ffn_down.weight"] where ggufName.hasSuffix(stem) {
                return .transpose
            }
            return .none
        case .qwen2, .opt, .bert:
            return .none
        }
    }

    /// True if `name` (relative to the prefix) is in the checkpoint.
    public func contains(_ name: String) -> Bool { (try? resolve(name)) != nil }

    /// The tensor `name` (relative to the prefix), checked to have `shape` (the full, unsharded
    /// shape, outermost first), optionally cut to one rank's `shard`.
    /// - Throws: `.missingTensor`, `.shapeMismatch` (naming the tensor, its shape and the
    ///   expected one), `.badShard`, or `.unsupported` for a type Energon cannot compute with.
    public func tensor(_ name: String, shape: [Int], shard: ShardSpec? = nil) throws -> Tensor {
        guard let tensor = try tensorIfPresent(name, shape: shape, shard: shard) else {
            throw CheckpointError.missingTensor(path: store.path, name: prefix + name)
        }
        return tensor
    }

    /// Like `tensor(_:shape:shard:)`, but `nil` when the checkpoint does not have `name`
    /// (optional tensors: biases, a separate output projection).
    public func tensorIfPresent(_ name: String, shape: [Int], shard: ShardSpec? = nil) throws -> Tensor? {
        guard let resolved = try resolve(name) else { return nil }
        let label = resolved.stored.name == resolved.requested ? "`\(resolved.requested)`" : "`\(resolved.requested)` (`\(resolved.stored.name)`)"
        var storedShape = resolved.stored.shape
        if resolved.conversion == .transpose {
            guard storedShape.count == 2 else {
                throw CheckpointError.badTensorShape(path: store.path, tensor: resolved.stored.name, shape: storedShape, reason: "a Conv1D weight must be 2-D")
            }
            storedShape.reverse()
        }
        guard storedShape == shape else {
            throw CheckpointError.shapeMismatch(path: store.path, tensor: label, actual: storedShape, expected: shape)
        }
        guard resolved.stored.dtype != nil else {
            throw CheckpointError.unsupported(path: store.path, message: "tensor \(label) has type \(resolved.stored.typeName), which Energon cannot compute with")
        }
        let releaseDue = ledger.sinceRelease.withLock { bytes in
            bytes += resolved.stored.byteCount
            if bytes < WeightSource.releaseInterval { return false }
            bytes = 0
            return true
        }
        // Before this tensor is read, so its own pages stay.
        if releaseDue { store.releaseResidentPages() }
        let source = try store.tensor(named: resolved.stored.name)
        ledger.used.withLock { _ = $0.insert(resolved.stored.name) }
        let converted = try WeightConversion.apply(resolved.conversion, to: source, name: label, path: store.path, shard: shard)
        guard let shard else { return converted.tensor }
        if converted.isSharded { return converted.tensor }
        return try WeightConversion.slice(converted.tensor, shard: shard, name: label, path: store.path)
    }

    /// Marks `name` (relative to the prefix) as deliberately unused; names not in the checkpoint
    /// are accepted (a model may ignore tensors some exports omit).
    public func markIgnored(_ name: String) {
        guard let resolved = try? resolve(name) else { return }
        ledger.used.withLock { _ = $0.insert(resolved.stored.name) }
    }

    /// Marks every checkpoint tensor whose full name satisfies `predicate` as deliberately unused.
    public func markIgnored(where predicate: (String) -> Bool) {
        let names = store.storedTensors.map(\.name).filter(predicate)
        ledger.used.withLock { used in for name in names { used.insert(name) } }
    }

    /// Checkpoint tensors not yet used nor ignored, in checkpoint order.
    public var unusedTensorNames: [String] {
        let used = ledger.used.withLock { $0 }
        return store.storedTensors.map(\.name).filter { !used.contains($0) }
    }

    /// Ends loading: every checkpoint tensor must have been used or ignored.
    /// - Throws: `CheckpointError.unusedTensors` listing the rest.
    public func finish() throws {
        let unused = unusedTensorNames
        guard unused.isEmpty else { throw CheckpointError.unusedTensors(path: store.path, names: unused) }
    }
}
