#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only, contiguous, row-major tensor of any `DType`: a weight from a memory-mapped
/// checkpoint, a shard copied out of one, or a buffer the process owns.
///
/// Shapes are written outermost first; a linear layer's weight is `[out, in]`, so row `o` is the
/// `in` inputs of output `o`, stored as `rowBytes` bytes (whole blocks for block formats).
public final class Tensor: @unchecked Sendable {
    /// How a tensor's bytes are arranged.
    public enum Layout: Sendable, Equatable {
        /// Row after row, each row `rowBytes` bytes of its `dtype` (every tensor from a checkpoint).
        case rowMajor
        /// The interleaved layout `MatMul.prepare` makes for fast matrix products (groups of 16
        /// rows interleaved block by block); only `MatMul` reads it, so row access traps.
        case matMulPacked
    }

    /// Element type or block format.
    public let dtype: DType
    /// Arrangement of the bytes: `.rowMajor` unless made by `MatMul.prepare`.
    public let layout: Layout
    /// Dimensions, outermost first.
    public let shape: [Int]
    /// First byte of the data (64-byte aligned when the tensor owns its storage).
    public let data: UnsafeRawPointer
    /// Total bytes of data.
    public let byteCount: Int
    /// Keeps the storage (a file mapping, another tensor, or a `WeightMemory` region) alive.
    private let owner: AnyObject?
    /// Whether this tensor made its storage (not a view into a mapping or another tensor).
    let ownsAllocation: Bool

    /// Wraps memory owned by `owner` (for example a file mapping) without copying it.
    /// - Precondition: `byteCount` equals the size implied by `shape` and `dtype`.
    public init(dtype: DType, shape: [Int], data: UnsafeRawPointer, byteCount: Int, owner: AnyObject?) {
        self.dtype = dtype
        self.shape = shape
        self.data = data
        self.byteCount = byteCount
        self.owner = owner
        self.ownsAllocation = false
        self.layout = .rowMajor
    }

    /// Allocates zeroed, 64-byte aligned storage and lets `fill` write it.
    public convenience init(dtype: DType, shape: [Int], fill: (UnsafeMutableRawPointer, Int) throws -> Void) rethrows {
        try self.init(dtype: dtype, shape: shape, layout: .rowMajor, byteCount: Tensor.byteCount(dtype: dtype, shape: shape) ?? 0,
                      fill: fill)
    }

    /// Allocates `bytes` zeroed, 64-byte aligned bytes in `layout` and lets `fill` write them.
    /// The bytes live on transparent huge pages (`WeightMemory`), which one core streams about
    /// 15–30% faster than small pages.
    init(dtype: DType, shape: [Int], layout: Layout, byteCount bytes: Int,
         fill: (UnsafeMutableRawPointer, Int) throws -> Void) rethrows {
        let (raw, region) = WeightMemory.allocate(bytes)
        try fill(raw, bytes)
        self.dtype = dtype
        self.shape = shape
        self.data = UnsafeRawPointer(raw)
        self.byteCount = bytes
        self.owner = region
        self.ownsAllocation = true
        self.layout = layout
    }

    /// An owned F32 tensor holding `values`.
    public convenience init(shape: [Int], floats values: [Float]) {
        self.init(dtype: .f32, shape: shape) { raw, bytes in
            values.withUnsafeBytes { source in
                raw.copyMemory(from: source.baseAddress!, byteCount: min(bytes, source.count))  // invariant: arrays have storage
            }
        }
    }

    /// Number of elements.
    public var elementCount: Int { shape.reduce(1, *) }

    /// Rows (all dimensions but the innermost) and the innermost length.
    public var rows: Int { shape.count <= 1 ? 1 : shape.dropLast().reduce(1, *) }
    /// The innermost dimension.
    public var columns: Int { shape.last ?? 1 }
    /// Bytes of one innermost row.
    public var rowBytes: Int { dtype.rowBytes(columns) ?? 0 }

    /// Start of row `index` (over the flattened outer dimensions).
    public func row(_ index: Int) -> UnsafeRawPointer {
        precondition(layout == .rowMajor, "row access to a MatMul-packed tensor")  // invariant: packed weights only feed MatMul
        return data + index * rowBytes
    }

    /// Bytes a tensor of this shape and type occupies, or `nil` if the innermost dimension is
    /// not a whole number of blocks or the size overflows.
    public static func byteCount(dtype: DType, shape: [Int]) -> Int? {
        guard shape.allSatisfy({ $0 >= 0 }) else { return nil }
        guard let row = dtype.rowBytes(shape.last ?? 1) else { return nil }
        var total = row
        for dimension in shape.dropLast() {
            let (product, overflow) = total.multipliedReportingOverflow(by: dimension)
            if overflow { return nil }
            total = product
        }
        return total
    }

    /// A view of rows `range` of the outermost dimension, sharing storage (no copy).
    public func slicingRows(_ range: Range<Int>) -> Tensor {
        precondition(!shape.isEmpty && range.lowerBound >= 0 && range.upperBound <= shape[0])  // invariant: callers pass validated ranges
        precondition(layout == .rowMajor, "slicing a MatMul-packed tensor: slice before MatMul.prepare")  // invariant
        let stride = shape[0] == 0 ? 0 : byteCount / shape[0]
        var newShape = shape
        newShape[0] = range.count
        return Tensor(dtype: dtype, shape: newShape, data: data + range.lowerBound * stride,
                      byteCount: range.count * stride, owner: self)
    }
}
