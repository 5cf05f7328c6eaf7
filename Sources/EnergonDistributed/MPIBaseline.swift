#if MPI
import CMPI

extension MPIWorld {
    /// The baseline `MPIProcessGroup` is measured against: `iterations` blocking, in-place
    /// `MPI_Allreduce` calls of `count` floats over the whole world, each timed on its own.
    /// Collective: every rank calls it. Returns the per-call seconds (warm-up excluded).
    public func plainAllReduceSeconds(count: Int, iterations: Int, warmup: Int = 100) throws -> [Double] {
        var buffer = [Float](repeating: Float(rank), count: max(1, count))
        var samples: [Double] = []
        samples.reserveCapacity(iterations)
        for iteration in 0..<(warmup + iterations) {
            let start = Poller.now()
            let status = buffer.withUnsafeMutableBufferPointer {
                MPI_Allreduce(cmpi_in_place(), $0.baseAddress, Int32(count), cmpi_float(), cmpi_op_sum(), cmpi_comm_world())
            }
            try MPIWorld.check(status, "MPI_Allreduce")
            if iteration >= warmup { samples.append(Poller.now() - start) }
        }
        return samples
    }
}
#endif
