import CEnergonKernels

// Bulk Float16 / bfloat16 <-> Float conversion. Swift's own `Float(Float16)` is a library call per
// element unless the module is built for F16C, which this package does not demand, so bulk work
// goes through the C kernels (vcvtph2ps / vcvtps2ph, AVX-512 shifts) chosen at run time.
extension Quantization {
    /// Widens `count` IEEE halves (bit patterns, any alignment) at `source` to floats. Exact.
    public static func floatsFromHalf(_ source: UnsafeRawPointer, destination: UnsafeMutablePointer<Float>,
                                      count: Int, isa: ISA = .best) {
        dequantizeRow(.f16, source: source, destination: destination, count: count, isa: isa)
    }

    /// Widens IEEE half bit patterns to floats. Exact.
    public static func floatsFromHalf(bits: [UInt16], isa: ISA = .best) -> [Float] {
        convert(bits) { source, destination, count in
            floatsFromHalf(source, destination: destination, count: count, isa: isa)
        }
    }

    /// Narrows `count` floats to IEEE halves (bit patterns), rounding to nearest even; values
    /// of magnitude 65520 or more become infinity.
    public static func halfFromFloats(_ source: UnsafePointer<Float>, destination: UnsafeMutableRawPointer,
                                      count: Int, isa: ISA = .best) {
        let status = energon_quantize_row(DType.f16.rawValue, source, destination, Int64(count), isa.cValue)
        precondition(status == 0, "halfFromFloats: negative count \(count)")  // invariant: counts are sizes
    }

    /// Narrows floats to IEEE half bit patterns, rounding to nearest even.
    public static func halfBitsFromFloats(_ values: [Float], isa: ISA = .best) -> [UInt16] {
        convert(values) { source, destination, count in
            halfFromFloats(source, destination: destination, count: count, isa: isa)
        }
    }

    /// Widens `count` bfloat16 values (bit patterns, any alignment) at `source` to floats. Exact.
    public static func floatsFromBFloat16(_ source: UnsafeRawPointer, destination: UnsafeMutablePointer<Float>,
                                          count: Int, isa: ISA = .best) {
        dequantizeRow(.bf16, source: source, destination: destination, count: count, isa: isa)
    }

    /// Widens bfloat16 bit patterns to floats. Exact.
    public static func floatsFromBFloat16(bits: [UInt16], isa: ISA = .best) -> [Float] {
        convert(bits) { source, destination, count in
            floatsFromBFloat16(source, destination: destination, count: count, isa: isa)
        }
    }

    /// Narrows `count` floats to bfloat16 bit patterns, rounding to nearest even (subnormals
    /// kept, NaNs made quiet), as ggml and PyTorch do.
    public static func bfloat16FromFloats(_ source: UnsafePointer<Float>, destination: UnsafeMutableRawPointer,
                                          count: Int, isa: ISA = .best) {
        let status = energon_quantize_row(DType.bf16.rawValue, source, destination, Int64(count), isa.cValue)
        precondition(status == 0, "bfloat16FromFloats: negative count \(count)")  // invariant: counts are sizes
    }

    /// Narrows floats to bfloat16 bit patterns, rounding to nearest even.
    public static func bfloat16FromFloats(_ values: [Float], isa: ISA = .best) -> [UInt16] {
        convert(values) { source, destination, count in
            bfloat16FromFloats(source, destination: destination, count: count, isa: isa)
        }
    }

    #if !(os(macOS) && arch(x86_64))
    /// Widens `Float16` values to floats. Exact.
    public static func floatsFromHalf(_ values: [Float16], isa: ISA = .best) -> [Float] {
        convert(values) { source, destination, count in
            floatsFromHalf(source, destination: destination, count: count, isa: isa)
        }
    }

    /// Narrows floats to `Float16`, rounding to nearest even.
    public static func halfFromFloats(_ values: [Float], isa: ISA = .best) -> [Float16] {
        convert(values) { source, destination, count in
            halfFromFloats(source, destination: destination, count: count, isa: isa)
        }
    }
    #endif

    /// Runs `body` over the storage of `input` and a fresh output array of the same length.
    private static func convert<Input, Output>(
        _ input: [Input],
        _ body: (UnsafePointer<Input>, UnsafeMutablePointer<Output>, Int) -> Void
    ) -> [Output] {
        guard !input.isEmpty else { return [] }
        return [Output](unsafeUninitializedCapacity: input.count) { output, initialized in
            input.withUnsafeBufferPointer { source in
                body(source.baseAddress!, output.baseAddress!, input.count)  // invariant: non-empty arrays have storage
            }
            initialized = input.count
        }
    }
}
