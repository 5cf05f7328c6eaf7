/// What a worker computes with: its thread pool, the instruction-set level its kernels use,
/// and grow-only scratch buffers so the hot path never allocates.
///
/// One context belongs to one worker (one rank) and is used from one thread at a time.
public final class ComputeContext: @unchecked Sendable {
    /// The worker's compute threads.
    public let pool: ThreadPool
    /// The kernel level; defaults to the best the CPU supports.
    public let isa: ISA

    private var scratchBuffers: [UnsafeMutableRawPointer?]
    private var scratchSizes: [Int]

    /// Creates a context with `threads` compute threads.
    public init(threads: Int, isa: ISA = .best) {
        self.pool = ThreadPool(threadCount: threads)
        self.isa = min(isa, ISA.best)
        self.scratchBuffers = Array(repeating: nil, count: 8)
        self.scratchSizes = Array(repeating: 0, count: 8)
    }

    deinit {
        for buffer in scratchBuffers { buffer?.deallocate() }
    }

    /// Scratch slots; each kernel family uses its own so nested calls never share memory.
    public enum ScratchSlot: Int, CaseIterable, Sendable {
        case activationQuant = 0, dequantized, attention, ops, model0, model1, model2, model3
    }

    /// A 64-byte aligned buffer of at least `bytes` bytes, reused across calls (contents undefined).
    public func scratch(_ slot: ScratchSlot, bytes: Int) -> UnsafeMutableRawPointer {
        let index = slot.rawValue
        if scratchSizes[index] < bytes || scratchBuffers[index] == nil {
            scratchBuffers[index]?.deallocate()
            let size = max(bytes, 64)
            scratchBuffers[index] = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
            scratchSizes[index] = size
        }
        return scratchBuffers[index]!  // invariant: allocated just above
    }
}
