import ArgumentParser
import EnergonCore
import Foundation

/// `energon bench-kernels`: speed of the matrix-product kernels per weight format, next to the
/// machine's read bandwidth measured in the same run.
struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-kernels",
        abstract: "Measure matvec bandwidth and prefill GEMM speed of every weight format."
    )

    @Option(name: .long, help: "Compute threads.")
    var threads: Int = 1

    @Option(name: .long, parsing: .upToNextOption, help: "Weight formats (e.g. q8_0 q4_0 f16); default: all.")
    var formats: [String] = []

    @Option(name: .long, help: "Seconds each measurement runs for (best repetition is kept).")
    var seconds: Double = 1.0

    @Option(name: .long, help: "Tokens of the prefill GEMM.")
    var tokens: Int = 512

    @Option(name: .long, help: "Instruction-set level (portable, avx2, avx512); default: best.")
    var isa: String?

    @Flag(name: .long, help: "Measure the weights as stored (row-major), without MatMul.prepare's load-time packing.")
    var rowMajor = false

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    @Flag(name: .long, help: "Time with the thread's CPU clock instead of the wall clock (one thread only): on a shared machine this leaves out the time other processes hold the core.")
    var cpuTime = false

    static let defaultFormats: [DType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard tokens >= 1 else { throw ValidationError("--tokens must be at least 1, got \(tokens)") }
        guard seconds > 0 else { throw ValidationError("--seconds must be positive, got \(seconds)") }
        for name in formats where DType(name: name).map(MatMul.supports) != true {
            throw ValidationError("--formats: `\(name)` is not a supported weight format")
        }
        if let isa, ISA(name: isa) == nil { throw ValidationError("--isa: `\(isa)` is not portable, avx2 or avx512") }
        if cpuTime && threads != 1 { throw ValidationError("--cpu-time measures one thread: use it with --threads 1") }
    }

    func run() throws {
        // Weights are prepared for the level measured, as a model loaded at that level is.
        try MatMul.$preparationISA.withValue(isa.flatMap(ISA.init(name:)) ?? .best) { try measure() }
    }

    private func measure() throws {
        Self.useCPUClock = cpuTime
        Self.prepareWeights = !rowMajor
        let level = isa.flatMap(ISA.init(name:)) ?? .best
        let context = ComputeContext(threads: threads, isa: level)
        let selected = formats.isEmpty ? Self.defaultFormats : formats.compactMap(DType.init(name:))
        let bandwidth = Self.readBandwidth(context: context, seconds: seconds)
        var results: [[String: Any]] = []
        if !json {
            print("energon bench-kernels: \(context.pool.activeThreadCount) thread(s), isa \(context.isa), \(cpuTime ? "thread CPU time" : "wall time"), cpu: \(EnergonInfo.cpuFeatures)")
            print(String(format: "read bandwidth (1 GiB, AVX read-sum): %.1f GB/s", bandwidth))
            print(rowMajor ? "weights: row-major, as stored" : "weights: after MatMul.prepare (at AVX-512: Q4_0/Q4_1/Q5_0/Q8_0/Q4_K packed), as models load them")
            print("format  matvec GB/s  ratio  matvec GFLOP/s | GEMM \(tokens) tok GFLOP/s: 1536x576*  4096x4096   (*640x2048 for K-quants)")
        }
        for dtype in selected {
            let matvec = Self.matvec(dtype: dtype, context: context, seconds: seconds)
            // K-quant rows must be whole 256-blocks: their model-sized shape is Gemma 3's FFN down.
            let (smallOut, smallInputs) = dtype.blockSize == 256 ? (640, 2048) : (1536, 576)
            let small = Self.gemm(dtype: dtype, out: smallOut, inputs: smallInputs, tokens: tokens, context: context, seconds: seconds)
            let large = Self.gemm(dtype: dtype, out: 4096, inputs: 4096, tokens: tokens, context: context, seconds: seconds)
            results.append([
                "format": dtype.name, "matvecGBps": matvec.gigabytes, "matvecGFLOPs": matvec.gigaflops,
                "matvecRatio": matvec.gigabytes / bandwidth, "gemmModelShape": "\(smallOut)x\(smallInputs)", "gemmModelShapeGFLOPs": small, "gemm4096x4096GFLOPs": large,
            ])
            if !json {
                print(String(format: "%-6@  %11.1f  %5.2f  %14.1f | %34.1f  %9.1f", dtype.name as NSString,
                             matvec.gigabytes, matvec.gigabytes / bandwidth, matvec.gigaflops, small, large))
            }
        }
        // The linear layers of SmolLM2-135M (30 layers, hidden 576, kv 192, ffn 1536) in one
        // format, with q/k/v and gate/up as single computeMany calls as a model runs them.
        var steps: [[String: Any]] = []
        if !json { print("SmolLM2-135M linear layers (30 x q,k,v | o | gate,up | down; + Q8_0 LM head 49152x576 for decode):") }
        for dtype in selected where [.q8_0, .q4_0, .q4_1, .f16, .f32].contains(dtype) {
            let step = Self.smolStep(dtype: dtype, tokens: tokens, context: context, seconds: seconds)
            steps.append(["format": dtype.name, "decodeStepMs": step.decode * 1e3, "prefillMs": step.prefill * 1e3,
                          "decodeTokensPerSecond": 1 / step.decode, "prefillTokensPerSecond": Double(tokens) / step.prefill])
            if !json {
                print(String(format: "  %-5@ decode step %.3f ms (%.0f tok/s bound)   prefill %d tokens %.1f ms (%.0f tok/s bound)",
                             dtype.name as NSString, step.decode * 1e3, 1 / step.decode, tokens, step.prefill * 1e3,
                             Double(tokens) / step.prefill))
            }
        }
        if json {
            let document: [String: Any] = [
                "smollm2LinearLayers": steps,
                "threads": context.pool.activeThreadCount, "isa": context.isa.description, "clock": cpuTime ? "thread-cpu" : "wall",
                "cpuFeatures": EnergonInfo.cpuFeatures, "readBandwidthGBps": bandwidth, "gemmTokens": tokens,
                "kernels": results,
            ]
            let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    // MARK: - Measurements

    /// Whether weights go through `MatMul.prepare` as a model loader does (cleared by `--row-major`).
    nonisolated(unsafe) static var prepareWeights = true

    /// Whether `bestTime` reads the calling thread's CPU clock (set once from `--cpu-time`).
    nonisolated(unsafe) static var useCPUClock = false

    /// Seconds on the clock `bestTime` measures with.
    static func clock() -> Double {
        var time = timespec()
        clock_gettime(useCPUClock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Runs `body` repeatedly for about `seconds` (wall time) and returns the fastest repetition.
    static func bestTime(seconds: Double, _ body: () -> Void) -> Double {
        body()  // warm up: page faults, scratch growth
        var best = Double.infinity
        let start = DispatchTime.now().uptimeNanoseconds
        var repetitions = 0
        while repetitions < 3 || Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < seconds {
            let begin = clock()
            body()
            best = min(best, clock() - begin)
            repetitions += 1
        }
        return best
    }

    /// Read bandwidth over 1 GiB, split across the pool's threads. The buffer lives where
    /// weights do (an owned tensor: transparent huge pages), so the ratio compares like with like.
    static func readBandwidth(context: ComputeContext, seconds: Double) -> Double {
        let bytes = 1 << 30
        let probe = Tensor(dtype: .f32, shape: [bytes / 4]) { raw, count in
            raw.initializeMemory(as: UInt8.self, repeating: 1, count: count)
        }
        let buffer = probe.data
        let isa = context.isa
        let checksum = UnsafeMutablePointer<Double>.allocate(capacity: 64)
        defer { checksum.deallocate() }
        let time = bestTime(seconds: seconds) {
            context.pool.run { thread, threadCount in
                let chunk = (bytes / threadCount) & ~4095
                checksum[thread] = MatMul.readPass(isa: isa, data: buffer + thread * chunk, bytes: chunk)
            }
        }
        return Double(bytes) / time / 1e9
    }

    /// A random weight whose quantized blocks have sane f16 scales.
    static func randomWeight(_ dtype: DType, out: Int, inputs: Int) -> Tensor {
        let weight = storedWeight(dtype, out: out, inputs: inputs)
        return prepareWeights ? MatMul.prepare(weight) : weight
    }

    /// A random weight in the checkpoint's row-major layout.
    static func storedWeight(_ dtype: DType, out: Int, inputs: Int) -> Tensor {
        Tensor(dtype: dtype, shape: [out, inputs]) { raw, bytes in
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15
            let words = raw.assumingMemoryBound(to: UInt64.self)
            for index in 0..<(bytes / 8) {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                words[index] = state
            }
            // 0x2000 is a small positive half (~0.0078); for F16/BF16 weights every element
            // gets a sane value, for block formats the scale fields do.
            let halves = raw.assumingMemoryBound(to: UInt16.self)
            switch dtype {
            case .f32:
                let floats = raw.assumingMemoryBound(to: Float.self)
                for index in 0..<(bytes / 4) { floats[index] = Float(Int(words[index / 2] & 0xFFFF) - 32768) / 32768 }
            case .f16, .bf16:
                for index in 0..<(bytes / 2) { halves[index] = (halves[index] & 0x83FF) | (dtype == .f16 ? 0x2000 : 0x3C00) }
            default:
                let fields: [Int]
                switch dtype {
                case .q4_1, .q5_1, .q4_K, .q5_K: fields = [0, 2]
                case .q6_K: fields = [208]
                case .q2_K: fields = [80, 82]
                case .q3_K: fields = [108]
                default: fields = [0]
                }
                for block in 0..<(bytes / dtype.blockBytes) {
                    for field in fields {
                        raw.storeBytes(of: UInt16(0x2000), toByteOffset: block * dtype.blockBytes + field, as: UInt16.self)
                    }
                }
            }
        }
    }

    /// Matvec on a weight about 4x the L3 size: GB/s of weight bytes and GFLOP/s.
    static func matvec(dtype: DType, context: ComputeContext, seconds: Double) -> (gigabytes: Double, gigaflops: Double) {
        let inputs = 8192
        let rowBytes = dtype.rowBytes(inputs) ?? 1
        let out = max(256, (128 << 20) / rowBytes)
        let weight = randomWeight(dtype, out: out, inputs: inputs)
        let input = (0..<inputs).map { Float(($0 * 7919) % 2001 - 1000) / 1000 }
        var output = [Float](repeating: 0, count: out)
        let time = input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                bestTime(seconds: seconds) {
                    MatMul.compute(weight: weight, input: x.baseAddress!, tokens: 1, output: y.baseAddress!, context: context)
                }
            }
        }
        return (Double(weight.byteCount) / time / 1e9, 2 * Double(out * inputs) / time / 1e9)
    }

    /// Seconds of one decode step (1 token, with the LM head) and of one `tokens`-token prefill
    /// (without it) through SmolLM2-135M's linear layers stored as `dtype`.
    static func smolStep(dtype: DType, tokens: Int, context: ComputeContext, seconds: Double) -> (decode: Double, prefill: Double) {
        let hidden = 576, kv = 192, ffn = 1536, layers = 30, vocabulary = 49152
        struct Layer { let qkv: [Tensor]; let o: Tensor; let gateUp: [Tensor]; let down: Tensor }
        let model = (0..<layers).map { _ in
            Layer(qkv: [randomWeight(dtype, out: hidden, inputs: hidden), randomWeight(dtype, out: kv, inputs: hidden),
                        randomWeight(dtype, out: kv, inputs: hidden)],
                  o: randomWeight(dtype, out: hidden, inputs: hidden),
                  gateUp: [randomWeight(dtype, out: ffn, inputs: hidden), randomWeight(dtype, out: ffn, inputs: hidden)],
                  down: randomWeight(dtype, out: hidden, inputs: ffn))
        }
        let head = storedWeight(.q8_0, out: vocabulary, inputs: hidden)
        let input = UnsafeMutablePointer<Float>.allocate(capacity: tokens * ffn)
        let outputs = (0..<4).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: tokens * max(ffn, hidden)) }
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: vocabulary)
        defer {
            input.deallocate()
            outputs.forEach { $0.deallocate() }
            logits.deallocate()
        }
        for index in 0..<(tokens * ffn) { input[index] = Float((index * 7919) % 2001 - 1000) / 1000 }
        func step(_ count: Int) {
            for layer in model {
                MatMul.computeMany(weights: layer.qkv, input: input, tokens: count, outputs: Array(outputs[0..<3]), context: context)
                MatMul.compute(weight: layer.o, input: input, tokens: count, output: outputs[3], context: context)
                MatMul.computeMany(weights: layer.gateUp, input: input, tokens: count, outputs: Array(outputs[0..<2]), context: context)
                MatMul.compute(weight: layer.down, input: input, tokens: count, output: outputs[3], context: context)
            }
        }
        let decode = bestTime(seconds: seconds) {
            step(1)
            MatMul.compute(weight: head, input: input, tokens: 1, output: logits, context: context)
        }
        let prefill = bestTime(seconds: seconds) { step(tokens) }
        return (decode, prefill)
    }

    /// Prefill GEMM GFLOP/s of `tokens` tokens on an `[out, inputs]` weight.
    static func gemm(dtype: DType, out: Int, inputs: Int, tokens: Int, context: ComputeContext, seconds: Double) -> Double {
        let weight = randomWeight(dtype, out: out, inputs: inputs)
        let input = (0..<(tokens * inputs)).map { Float(($0 * 7919) % 2001 - 1000) / 1000 }
        var output = [Float](repeating: 0, count: tokens * out)
        let time = input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                bestTime(seconds: seconds) {
                    MatMul.compute(weight: weight, input: x.baseAddress!, tokens: tokens, output: y.baseAddress!,
                                   context: context)
                }
            }
        }
        return 2 * Double(out * inputs * tokens) / time / 1e9
    }
}
