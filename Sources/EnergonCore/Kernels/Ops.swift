import CEnergonKernels

/// Element-wise and per-row kernels of a transformer block: normalisation, residual adds,
/// activations, gated MLP products and softmax.
///
/// All work on packed f32 activations (`[tokens, dimension]`, row-major). The exp/tanh/erf-based
/// ones run in C at the context's ISA level (see `energon_ops.h` for their accuracy: exp within
/// about 2 ulp, erf within about 1.2e-7 relative); the memory-bound rest is plain Swift.
/// Functions without a required `context` take an optional one: when given, its ISA level is
/// used and large inputs are split over its pool; when `nil`, they run on the calling thread at
/// `ISA.best`.
public enum Ops {
    /// Elements below which splitting a kernel over the pool costs more than it saves.
    static let parallelThreshold = 1 << 16

    /// RMSNorm of each token: `y[t] = x[t] / sqrt(mean(x[t]^2) + epsilon) * (weight + weightOffset)`.
    ///
    /// Gemma checkpoints store `weight - 1` (pass `weightOffset: 1`), but GGUF conversions already
    /// add the 1, so the offset defaults to 0.
    /// - Parameters:
    ///   - input: `[tokens, dimension]`.
    ///   - weight: `[dimension]`.
    ///   - output: `[tokens, dimension]`; may be the same memory as `input`.
    ///   - tokens: rows.
    ///   - dimension: row length.
    ///   - epsilon: added to the mean square.
    ///   - context: ISA level and threads.
    ///   - weightOffset: added to every weight.
    public static func rmsNorm(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                               tokens: Int, dimension: Int, epsilon: Float, context: ComputeContext,
                               weightOffset: Float = 0) {
        let isa = context.isa.cValue
        forEachRow(tokens: tokens, dimension: dimension, context: context) { row in
            energon_rmsnorm_f32(input + row * dimension, weight, output + row * dimension, dimension, epsilon,
                                weightOffset, isa)
        }
    }

    /// LayerNorm of each token: `y = (x - mean) / sqrt(variance + epsilon) * weight + bias` (biased
    /// variance, two-pass).
    /// - Parameters:
    ///   - input: `[tokens, dimension]`.
    ///   - weight: `[dimension]`.
    ///   - bias: `[dimension]`, or `nil` for none.
    ///   - output: `[tokens, dimension]`; may be the same memory as `input`.
    ///   - tokens: rows.
    ///   - dimension: row length.
    ///   - epsilon: added to the variance.
    ///   - context: ISA level and threads.
    public static func layerNorm(input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                 output: UnsafeMutablePointer<Float>, tokens: Int, dimension: Int, epsilon: Float,
                                 context: ComputeContext) {
        let isa = context.isa.cValue
        forEachRow(tokens: tokens, dimension: dimension, context: context) { row in
            energon_layernorm_f32(input + row * dimension, weight, bias, output + row * dimension, dimension,
                                  epsilon, isa)
        }
    }

    /// `output[i] = a[i] + b[i]` (the residual add); `output` may be the same memory as `a` or `b`.
    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                           count: Int) {
        for index in 0..<count { output[index] = a[index] + b[index] }
    }

    /// Adds `bias` (`[dimension]`) to every row of `x` (`[tokens, dimension]`).
    public static func addBias(_ bias: UnsafePointer<Float>, to x: UnsafeMutablePointer<Float>, tokens: Int,
                               dimension: Int) {
        for token in 0..<tokens {
            let row = x + token * dimension
            for index in 0..<dimension { row[index] += bias[index] }
        }
    }

    /// `x[i] *= factor`.
    public static func scale(_ x: UnsafeMutablePointer<Float>, by factor: Float, count: Int) {
        for index in 0..<count { x[index] *= factor }
    }

    /// `x[i] = x[i] * sigmoid(x[i])` in place.
    /// - Parameter context: optional ISA level and threads (see the type's note).
    public static func silu(_ x: UnsafeMutablePointer<Float>, count: Int, context: ComputeContext? = nil) {
        let isa = (context?.isa ?? .best).cValue
        forEachChunk(count: count, context: context) { start, length in
            energon_silu_f32(x + start, length, isa)
        }
    }

    /// The two GELU forms checkpoints use.
    public enum GELUApproximation: Sendable {
        /// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (GPT-2, Gemma's `gelu_pytorch_tanh`).
        case tanh
        /// `0.5 x (1 + erf(x / sqrt(2)))` (BERT, PyTorch's default `gelu`).
        case erf

        var cFlag: Int32 { self == .erf ? 1 : 0 }
    }

    /// GELU in place.
    /// - Parameter context: optional ISA level and threads (see the type's note).
    public static func gelu(_ x: UnsafeMutablePointer<Float>, count: Int, approximation: GELUApproximation,
                            context: ComputeContext? = nil) {
        let isa = (context?.isa ?? .best).cValue
        let flag = approximation.cFlag
        forEachChunk(count: count, context: context) { start, length in
            energon_gelu_f32(x + start, length, flag, isa)
        }
    }

    /// SwiGLU: `output = silu(gate) * up`; `output` may be the same memory as `gate` or `up`.
    /// - Parameter context: optional ISA level and threads (see the type's note).
    public static func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                              count: Int, context: ComputeContext? = nil) {
        let isa = (context?.isa ?? .best).cValue
        forEachChunk(count: count, context: context) { start, length in
            energon_swiglu_f32(gate + start, up + start, output + start, length, isa)
        }
    }

    /// GeGLU: `output = gelu(gate) * up`; `output` may be the same memory as `gate` or `up`.
    /// - Parameter context: optional ISA level and threads (see the type's note).
    public static func geglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                             count: Int, approximation: GELUApproximation, context: ComputeContext? = nil) {
        let isa = (context?.isa ?? .best).cValue
        let flag = approximation.cFlag
        forEachChunk(count: count, context: context) { start, length in
            energon_geglu_f32(gate + start, up + start, output + start, length, flag, isa)
        }
    }

    /// In-place softmax over each row of `rows` x `columns`.
    /// - Parameter context: optional ISA level and threads (see the type's note).
    public static func softmax(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, context: ComputeContext? = nil) {
        let isa = (context?.isa ?? .best).cValue
        let body = { (row: Int) in energon_softmax_f32(x + row * columns, columns, isa) }
        if let context, rows > 1, rows * columns >= parallelThreshold {
            context.pool.parallelFor(rows) { range in range.forEach(body) }
        } else {
            for row in 0..<rows { body(row) }
        }
    }

    /// `exp(x[i])` with the kernels' vector exp (exposed so tests can measure its error).
    public static func exp(_ x: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int,
                           context: ComputeContext? = nil) {
        let isa = (context?.isa ?? .best).cValue
        forEachChunk(count: count, context: context) { start, length in
            energon_exp_f32(x + start, output + start, length, isa)
        }
    }

    /// Runs `body(row)` for every row, split over the pool when the rows are large enough.
    private static func forEachRow(tokens: Int, dimension: Int, context: ComputeContext, _ body: (Int) -> Void) {
        if tokens > 1, tokens * dimension >= parallelThreshold {
            context.pool.parallelFor(tokens) { range in range.forEach(body) }
        } else {
            for row in 0..<tokens { body(row) }
        }
    }

    /// Runs `body(start, length)` over `0..<count`, in 64-byte aligned pieces over the pool when
    /// large, else in one call.
    private static func forEachChunk(count: Int, context: ComputeContext?, _ body: (Int, Int) -> Void) {
        guard count > 0 else { return }
        if let context, count >= parallelThreshold, context.pool.activeThreadCount > 1 {
            context.pool.parallelFor(count, grain: 4096) { range in body(range.lowerBound, range.count) }
        } else {
            body(0, count)
        }
    }
}
