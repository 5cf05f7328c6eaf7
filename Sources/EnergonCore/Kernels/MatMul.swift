import CEnergonKernels

/// Matrix products of activations with linear-layer weights, the operation that decides
/// inference speed: a decode step is a series of matrix-vector products (one token) and a
/// prefill is a series of matrix-matrix products (many tokens).
///
/// Weights may be F32, F16, BF16 or any of ggml's block formats listed by `supports(_:)`.
/// For quantized weights the activation rows are quantized once per call to int8 (one scale
/// per 32 inputs) and the kernels use integer dot products; for float weights they run
/// f32 FMAs. One call is one parallel job on `context.pool`: output rows are split across the
/// threads, so the threads never synchronise inside a product.
public enum MatMul {
    /// `output[t, o] = Σ_i input[t, i] * weight[o, i]`; weight is `[out, in]` (any supported
    /// dtype), input `[tokens, in]` f32 row-major, output `[tokens, out]` f32 row-major.
    public static func compute(weight: Tensor, input: UnsafePointer<Float>, tokens: Int,
                               output: UnsafeMutablePointer<Float>, context: ComputeContext) {
        withUnsafeTemporaryAllocation(of: energon_matmul_job.self, capacity: 1) { jobs in
            jobs[0] = job(weight: weight, input: input, tokens: tokens, output: output, isa: context.isa)
            run(jobs: UnsafeBufferPointer(jobs), input: input, tokens: tokens, context: context)
        }
    }

    /// Several weights sharing the same input (e.g. q/k/v, or gate/up): the input is quantized
    /// once and all rows run in ONE parallel job (one barrier). `outputs[k]` is
    /// `[tokens, weights[k].out]`.
    public static func computeMany(weights: [Tensor], input: UnsafePointer<Float>, tokens: Int,
                                   outputs: [UnsafeMutablePointer<Float>], context: ComputeContext) {
        precondition(weights.count == outputs.count, "one output per weight")  // invariant: caller pairs them
        guard !weights.isEmpty else { return }
        withUnsafeTemporaryAllocation(of: energon_matmul_job.self, capacity: weights.count) { jobs in
            for index in weights.indices {
                jobs[index] = job(weight: weights[index], input: input, tokens: tokens, output: outputs[index],
                                  isa: context.isa)
            }
            run(jobs: UnsafeBufferPointer(jobs), input: input, tokens: tokens, context: context)
        }
    }

    /// The form of a linear-layer weight `[out, in]` that this machine's kernels read fastest,
    /// made once at load time:
    /// - at AVX-512, Q4_0, Q4_1, Q5_0, Q8_0 and Q4_K weights come back in a packed layout (16 rows
    ///   interleaved block by block, `Tensor.Layout.matMulPacked`; same dtype, shape and about the
    ///   same bytes) that only `compute`/`computeMany` read;
    /// - any other weight that lies in someone else's memory (a file mapping) comes back as a
    ///   row-major copy on transparent huge pages (`WeightMemory`): a decode step streams every
    ///   weight once, and one core reads huge pages about 15–30% faster than the page cache's
    ///   4 KiB pages (fewer TLB misses on the stream);
    /// - everything else comes back as is.
    ///
    /// The copy replaces the original in memory: when the original lies in a file mapping, its
    /// pages are dropped from the resident set chunk by chunk as they are copied (they would be
    /// re-read from the file if something else touched them, e.g. the row lookups of a tied
    /// embedding), so preparing neither doubles the weights' footprint nor raises the peak by
    /// more than a chunk. Slice a weight (tensor-parallel shards) before preparing it: a packed
    /// tensor has no rows.
    ///
    /// - Parameter requested: the level the products will run at (default `preparationISA`);
    ///   only AVX-512 has packed kernels (the
    ///   other levels read a packed weight by unpacking it a few rows at a time, which is slower
    ///   than the stored layout), so below it quantized weights are only copied.
    /// The level `prepare` lays weights out for when it is given none: `ISA.best`, or the level
    /// of the runner being built (`RunnerFactory` and the MPI shards set it around the build), so
    /// a model forced to a lower level (`--isa avx2`) is not packed for kernels it will not run.
    @TaskLocal public static var preparationISA: ISA = .best

    public static func prepare(_ weight: Tensor, isa requested: ISA? = nil) -> Tensor {
        let isa = requested ?? preparationISA
        guard weight.layout == .rowMajor, weight.shape.count == 2, weight.rowBytes > 0,
              weight.byteCount >= weight.shape[0] * weight.rowBytes else { return weight }
        let rows = weight.shape[0], inputs = weight.shape[1], rowBytes = weight.rowBytes
        let packs = isa >= .avx512 && energon_matmul_packable(weight.dtype.rawValue) != 0
            && inputs % weight.dtype.blockSize == 0 && energon_matmul_packed_bytes(weight.dtype.rawValue, rows, inputs) > 0
        let bytes = packs ? Int(energon_matmul_packed_bytes(weight.dtype.rawValue, rows, inputs)) : rows * rowBytes
        guard packs || !weight.ownsAllocation else { return weight }
        let source = weight.data.assumingMemoryBound(to: UInt8.self)
        // About 2 MiB of source rows per chunk, in whole packing groups.
        let group = Int(ENERGON_MATMUL_PACK_ROWS)
        let chunkRows = max(group, (2 << 20) / rowBytes / group * group)
        return Tensor(dtype: weight.dtype, shape: weight.shape, layout: packs ? .matMulPacked : .rowMajor, byteCount: bytes) { raw, _ in
            let destination = raw.assumingMemoryBound(to: UInt8.self)
            var releasing = true
            for first in stride(from: 0, to: rows, by: chunkRows) {
                let count = min(chunkRows, rows - first)
                let from = source + first * rowBytes
                if packs {
                    // Groups are stored one after another, so a chunk of whole groups packs on its own.
                    let offset = Int(energon_matmul_packed_bytes(weight.dtype.rawValue, first, inputs))
                    energon_matmul_pack(weight.dtype.rawValue, from, count, inputs, destination + offset)
                } else {
                    (destination + first * rowBytes).update(from: from, count: count * rowBytes)
                }
                // Only file-backed memory is released; once a chunk says "not file-backed", stop asking.
                // Each chunk's range starts at the page holding its first byte, so the page two
                // chunks share goes too (dropping a page of a neighbouring tensor only means a refault).
                if releasing {
                    let start = UnsafeRawPointer(bitPattern: UInt(bitPattern: from) & ~UInt(4095))!  // invariant: from is not near 0
                    let length = from + count * rowBytes - start.assumingMemoryBound(to: UInt8.self)
                    releasing = energon_release_mapped_pages(start, length) > 0 || length < 8192
                }
            }
        }
    }

    /// Writes row `index` of a `prepare`d (packed) weight in its stored block format (`rowBytes`
    /// bytes) to `destination`: the row lookups of a packed tied embedding go through it.
    static func unpackRow(_ weight: Tensor, _ index: Int, into destination: UnsafeMutablePointer<UInt8>) {
        precondition(weight.layout == .matMulPacked && index >= 0 && index < weight.shape[0])  // invariant: callers check the row
        energon_matmul_unpack_rows(weight.dtype.rawValue, weight.data.assumingMemoryBound(to: UInt8.self), weight.shape[0],
                                   weight.shape[1], index, 1, destination)
    }

    /// Whether `dtype` is supported as a weight format.
    public static func supports(_ dtype: DType) -> Bool {
        energon_matmul_supports(dtype.rawValue) != 0
    }

    /// Whether a `[out, inputs]` weight of `dtype` can be used: a supported format whose rows are
    /// whole blocks (K-quants need `inputs` to be a multiple of 256, the other block formats of
    /// 32). Loaders should check this (and throw) before calling `compute`, which traps instead.
    public static func supports(_ dtype: DType, inputs: Int) -> Bool {
        supports(dtype) && inputs >= 0 && inputs % dtype.blockSize == 0
    }

    /// Bytes of the int8 form of one activation row of `inputs` values, as the quantized
    /// kernels read it (exposed for sizing and benchmarks).
    public static func quantizedRowBytes(inputs: Int) -> Int {
        Int(energon_matmul_quantized_row_bytes(inputs))
    }

    // MARK: - Implementation

    private static func job(weight: Tensor, input: UnsafePointer<Float>, tokens: Int,
                            output: UnsafeMutablePointer<Float>, isa: ISA) -> energon_matmul_job {
        // invariant: the model layer validates checkpoint shapes and formats before calling.
        precondition(weight.shape.count == 2, "MatMul weight must be [out, in], got \(weight.shape)")
        precondition(supports(weight.dtype), "MatMul does not support \(weight.dtype)")
        precondition(tokens >= 0, "negative token count")
        let inputs = weight.shape[1]
        // invariant: rows are whole blocks (quantized activations are built per 32 inputs, and
        // every block size is a multiple of 32), and the storage holds every row.
        precondition(inputs % weight.dtype.blockSize == 0,
                     "MatMul: \(weight.dtype) rows of \(inputs) inputs are not whole \(weight.dtype.blockSize)-blocks")
        precondition(weight.rowBytes > 0 || inputs == 0, "MatMul: weight rows have no bytes")
        let packed = weight.layout == .matMulPacked
        precondition(weight.byteCount >= (packed ? Int(energon_matmul_packed_bytes(weight.dtype.rawValue, weight.shape[0], inputs))
                                                 : weight.shape[0] * weight.rowBytes),
                     "MatMul: weight storage is shorter than its shape")
        return energon_matmul_job(
            isa: Int32(isa.rawValue), dtype: weight.dtype.rawValue | (packed ? ENERGON_MATMUL_PACKED : 0),
            weight: weight.data.assumingMemoryBound(to: UInt8.self), row_bytes: weight.rowBytes, rows: weight.shape[0], in: inputs,
            input: input, quantized: nil, tokens: tokens, output: output, output_stride: weight.shape[0])
    }

    private static func run(jobs: UnsafeBufferPointer<energon_matmul_job>, input: UnsafePointer<Float>, tokens: Int,
                            context: ComputeContext) {
        guard tokens > 0 else { return }
        let inputs = jobs[0].in
        var needsQuantized = false
        for job in jobs {
            precondition(job.in == inputs, "weights sharing an input must have the same input size")  // invariant
            if energon_matmul_needs_quantized_input(job.dtype) != 0 { needsQuantized = true }
        }
        let pool = context.pool
        let jobs = UnsafeMutableBufferPointer(mutating: jobs)
        if needsQuantized {
            // Quantize the activations once, shared by every weight of this call.
            let rowBytes = Int(energon_matmul_quantized_row_bytes(inputs))
            let buffer = context.scratch(.activationQuant, bytes: rowBytes * tokens)
            let isa = Int32(context.isa.rawValue)
            // A second parallel job costs a barrier (a few µs); below ~16K inputs quantizing on
            // the calling thread is cheaper.
            if tokens * inputs < 16_384 || pool.activeThreadCount == 1 {
                energon_matmul_quantize_rows(isa, input, inputs, tokens, buffer)
            } else {
                pool.parallelFor(tokens) { range in
                    energon_matmul_quantize_rows(isa, input + range.lowerBound * inputs, inputs, range.count,
                                                 buffer + range.lowerBound * rowBytes)
                }
            }
            let quantized = UnsafePointer(buffer.assumingMemoryBound(to: UInt8.self))
            for index in jobs.indices { jobs[index].quantized = quantized }
        }
        // Each thread takes a contiguous share of the rows of all weights, balanced by weight bytes.
        var scratchPerThread = 0
        var totalCost = 0
        for index in jobs.indices {
            scratchPerThread = max(scratchPerThread, Int(energon_matmul_scratch_bytes(jobs.baseAddress! + index)))
            totalCost += jobs[index].output_stride * jobs[index].row_bytes
        }
        guard totalCost > 0 else { return }
        let threads = pool.activeThreadCount
        let scratch = context.scratch(.dequantized, bytes: scratchPerThread * threads)
        let jobsBase = UnsafePointer(jobs.baseAddress!)  // invariant: at least one job
        let jobCount = jobs.count
        pool.run { thread, threadCount in
            let start = totalCost * thread / threadCount
            let end = totalCost * (thread + 1) / threadCount
            let threadScratch = scratch + thread * scratchPerThread
            var jobStart = 0
            for index in 0..<jobCount {
                let job = jobsBase + index
                let rows = job.pointee.output_stride
                let rowCost = job.pointee.row_bytes
                let cost = rows * rowCost
                defer { jobStart += cost }
                if cost == 0 || end <= jobStart || start >= jobStart + cost { continue }
                let grain = Int(energon_matmul_row_grain(job))
                let unitCost = grain * rowCost
                let units = (rows + grain - 1) / grain
                // The same rounding on both sides of a boundary makes the pieces tile the rows.
                func unit(at position: Int) -> Int {
                    if position <= jobStart { return 0 }
                    if position >= jobStart + cost { return units }
                    return min(units, (position - jobStart + unitCost / 2) / unitCost)
                }
                let lower = min(rows, unit(at: start) * grain)
                let upper = min(rows, unit(at: end) * grain)
                if lower < upper { energon_matmul_rows(job, lower, upper, threadScratch) }
            }
        }
    }
}
