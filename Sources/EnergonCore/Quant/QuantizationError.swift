/// Why a row could not be encoded or a tensor could not be built from floats.
public enum QuantizationError: Error, CustomStringConvertible, Equatable {
    /// `dtype` has no encoder (Q8_1 and the integer and F64 types).
    case unsupported(DType)
    /// `count` elements are not a whole number of `dtype`'s blocks.
    case misalignedCount(dtype: DType, count: Int)
    /// `valueCount` floats were given for a tensor of shape `shape`.
    case shapeMismatch(shape: [Int], valueCount: Int)

    /// A message naming the format and the sizes involved.
    public var description: String {
        switch self {
        case .unsupported(let dtype):
            "cannot quantize to \(dtype): no encoder for this format (encoders exist for "
                + DType.allCases.filter(Quantization.canQuantize).map(\.name).joined(separator: ", ") + ")"
        case .misalignedCount(let dtype, let count):
            "cannot quantize \(count) elements to \(dtype): the count must be a multiple of its block size \(dtype.blockSize)"
        case .shapeMismatch(let shape, let valueCount):
            "\(valueCount) values given for a tensor of shape \(shape) (\(shape.reduce(1, *)) elements)"
        }
    }
}
