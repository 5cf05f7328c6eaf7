import EnergonCore

/// A tensor's place in a checkpoint, whatever the format.
public struct StoredTensorInfo: Sendable, Equatable {
    /// The tensor's name in the checkpoint, verbatim.
    public let name: String
    /// The Energon element type, or `nil` for a stored type Energon has no `DType` for (safetensors
    /// `U8`, `BOOL`, ...); `typeName` always names it.
    public let dtype: DType?
    /// The type as the file names it (`F32`, `Q4_K`, `BF16`, `BOOL`...).
    public let typeName: String
    /// Dimensions, outermost first.
    public let shape: [Int]
    /// Bytes of data.
    public let byteCount: Int
    /// The file holding the data.
    public let file: String

    /// Memberwise initializer.
    public init(name: String, dtype: DType?, typeName: String, shape: [Int], byteCount: Int, file: String) {
        self.name = name
        self.dtype = dtype
        self.typeName = typeName
        self.shape = shape
        self.byteCount = byteCount
        self.file = file
    }
}

/// A set of named tensors on storage: a GGUF file, a safetensors file, or a sharded folder.
public protocol TensorStore: AnyObject, Sendable {
    /// The file or folder, for messages.
    var path: String { get }
    /// Every tensor, in a stable order (file order; shard then file order for folders).
    var storedTensors: [StoredTensorInfo] { get }
    /// The description of `name`, if stored.
    func storedTensor(named name: String) -> StoredTensorInfo?
    /// A zero-copy view of `name`'s data.
    /// - Throws: `CheckpointError.missingTensor`, or `.unsupported` for a type with no `DType`.
    func tensor(named name: String) throws -> Tensor
    /// Drops the store's file pages from the resident set (`FileMapping.releaseResidentPages`).
    func releaseResidentPages()
}

extension GGUFFile: TensorStore {
    /// Drops the file's pages from the resident set.
    public func releaseResidentPages() { mapping.releaseResidentPages() }

    /// Every tensor, in file order.
    public var storedTensors: [StoredTensorInfo] {
        tensors.map { StoredTensorInfo(name: $0.name, dtype: $0.dtype, typeName: $0.dtype.name, shape: $0.shape, byteCount: $0.byteCount, file: path) }
    }

    /// The description of `name`, if stored.
    public func storedTensor(named name: String) -> StoredTensorInfo? {
        tensorInfo(named: name).map {
            StoredTensorInfo(name: $0.name, dtype: $0.dtype, typeName: $0.dtype.name, shape: $0.shape, byteCount: $0.byteCount, file: path)
        }
    }
}
