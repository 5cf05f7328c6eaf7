import CEnergonKernels

extension MatMul {
    /// Reads `bytes` bytes at `data` (a multiple of 256, 64-byte aligned) with the widest loads
    /// `isa` has and returns a checksum of them; a memory-bandwidth probe for benchmarks, so
    /// matvec speed can be reported as a fraction of what the machine can read.
    public static func readPass(isa: ISA, data: UnsafeRawPointer, bytes: Int) -> Double {
        energon_read_bandwidth_pass(Int32(isa.rawValue), data, bytes)
    }
}
