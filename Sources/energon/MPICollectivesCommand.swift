import ArgumentParser
import EnergonCore
import EnergonDistributed
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `energon mpi-collectives`: checks MPIProcessGroup against closed forms and times its
/// all-reduce against a plain MPI_Allreduce loop. Run under `mpirun -np N`.
struct MPICollectivesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mpi-collectives",
        abstract: "MPI collectives: check them against closed forms (--verify) or time the all-reduce.",
        discussion: """
        Run under `mpirun -np N` with a binary built `--traits MPI`. --verify: every collective of \
        MPIProcessGroup (all-reduce f32 and f16, all-gather, broadcast, barrier, tagged send/receive) \
        over the world and over sub-groups, at odd sizes, against closed forms (rank r contributes \
        arange(n) * (r + 1)); exits 1 naming the first mismatch. Otherwise prints the median \
        all-reduce latency of MPIProcessGroup and of a plain MPI_Allreduce loop for each --floats.
        """,
        shouldDisplay: false)

    @Flag(name: .long, help: "Check results instead of timing.")
    var verify = false

    @Option(name: .long, parsing: .upToNextOption, help: "Floats per all-reduce (timing).")
    var floats: [Int] = [576, 576 * 64]

    @Option(name: .long, help: "Timed repetitions per size.")
    var iterations: Int = 2000

    @Option(name: .long, help: "Seconds a rank waits for another before failing.")
    var timeout: Double = 20

    func validate() throws {
        guard floats.allSatisfy({ $0 >= 1 }), iterations >= 10, timeout > 0 else {
            throw ValidationError("--floats ≥ 1, --iterations ≥ 10 and --timeout > 0")
        }
    }

    func run() throws {
        #if MPI
        let world = try MPIWorld.shared()
        let group = try world.worldGroup(timeout: timeout)
        if verify {
            let halves = try world.split(color: world.rank % 2, key: world.rank, timeout: timeout)
            var failures: [String] = []
            for (name, candidate) in [("world", group as any ProcessGroup), ("half \(world.rank % 2)", halves)] {
                failures += try CollectiveCheck.run(candidate).map { "rank \(world.rank), \(name) group: \($0)" }
            }
            for failure in failures { printError("mismatch: " + failure) }
            let worst = try CollectiveCheck.agreeOnFailure(!failures.isEmpty, group: group)
            world.finalize()
            if worst { throw ExitCode(1) }
            if world.rank == 0 { print("mpi-collectives: \(world.size) ranks, every check passed") }
            return
        }
        for count in floats {
            var buffer = [Float](repeating: Float(world.rank), count: count)
            var samples: [Double] = []
            for iteration in 0..<(iterations + 100) {
                let start = monotonicClock()
                try buffer.withUnsafeMutableBufferPointer { try group.allReduceSum($0.baseAddress!, count: count) }  // invariant: count ≥ 1
                if iteration >= 100 { samples.append(monotonicClock() - start) }
            }
            let plain = try world.plainAllReduceSeconds(count: count, iterations: iterations)
            if world.rank == 0 {
                print(String(format: "%d ranks, %d floats: MPIProcessGroup median %.2f µs (p90 %.2f) | MPI_Allreduce median %.2f µs (p90 %.2f)",
                             world.size, count, median(samples) * 1e6, percentile(samples, 0.9) * 1e6,
                             median(plain) * 1e6, percentile(plain, 0.9) * 1e6))
            }
        }
        world.finalize()
        #else
        printError("error: this energon was built without MPI; rebuild with `swift build -c release --traits MPI`")
        throw ExitCode(3)
        #endif
    }

    private func median(_ values: [Double]) -> Double { percentile(values, 0.5) }
    private func percentile(_ values: [Double], _ fraction: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
    }
}

/// Closed-form checks of one group's collectives; returns what went wrong.
enum CollectiveCheck {
    static func run(_ group: any ProcessGroup) throws -> [String] {
        var failures: [String] = []
        let size = group.size, rank = group.rank
        let factor = Float(size * (size + 1) / 2)
        for count in [1, 7, 33, 576, 4097, 100_003] {
            // f32: rank r contributes arange(n) * (r + 1) (mod 1000 keeps every sum exact).
            var buffer = (0..<count).map { Float($0 % 1000) * Float(rank + 1) }
            try buffer.withUnsafeMutableBufferPointer { try group.allReduceSum($0.baseAddress!, count: count) }  // invariant: count ≥ 1
            if let bad = (0..<count).first(where: { buffer[$0] != Float($0 % 1000) * factor }) {
                failures.append("f32 all-reduce of \(count): [\(bad)] = \(buffer[bad]), expected \(Float(bad % 1000) * factor)")
            }
            // f16: values small enough that every partial sum is an exact half.
            let halfValues = (0..<count).map { Float($0 % 64) * Float(rank + 1) }
            var halves = Quantization.halfBitsFromFloats(halfValues)
            try halves.withUnsafeMutableBufferPointer { try group.allReduceSum(halves: $0.baseAddress!, count: count) }  // invariant: count ≥ 1
            let summed = Quantization.floatsFromHalf(bits: halves)
            if let bad = (0..<count).first(where: { summed[$0] != Float($0 % 64) * factor }) {
                failures.append("f16 all-reduce of \(count): [\(bad)] = \(summed[bad]), expected \(Float(bad % 64) * factor)")
            }
            // all-gather: rank r's row is arange(n) + 1000 r.
            let mine = (0..<count).map { Float($0 % 1000 + 1000 * rank) }
            var gathered = [Float](repeating: -1, count: count * size)
            try mine.withUnsafeBufferPointer { input in
                try gathered.withUnsafeMutableBufferPointer { try group.allGather(input.baseAddress!, count: count, output: $0.baseAddress!) }  // invariant: non-empty
            }
            if gathered != (0..<size).flatMap({ r in (0..<count).map { Float($0 % 1000 + 1000 * r) } }) {
                failures.append("all-gather of \(count)")
            }
            // broadcast from the last rank.
            let root = size - 1
            var broadcast = rank == root ? mine : [Float](repeating: 0, count: count)
            try broadcast.withUnsafeMutableBufferPointer { try group.broadcast($0.baseAddress!, count: count, root: root) }  // invariant: non-empty
            if broadcast != (0..<count).map({ Float($0 % 1000 + 1000 * root) }) { failures.append("broadcast of \(count) from \(root)") }
            try group.barrier()
        }
        // Tagged send/receive around a ring, two tags in flight, received in the opposite order.
        if size > 1 {
            let next = (rank + 1) % size, previous = (rank + size - 1) % size
            for (tag, length) in [(7, 5), (8, 3001)] {
                let message = (0..<length).map { Int32($0 * tag + rank) }
                try message.withUnsafeBytes { try group.send($0, to: next, tag: tag) }
            }
            for (tag, length) in [(8, 3001), (7, 5)] {
                var received = [Int32](repeating: -1, count: length + 10)
                let bytes = try received.withUnsafeMutableBytes { try group.receive(into: $0, from: previous, tag: tag) }
                if bytes != length * 4 || Array(received.prefix(length)) != (0..<length).map({ Int32($0 * tag + previous) }) {
                    failures.append("receive (tag \(tag)) from \(previous): \(bytes) bytes")
                }
            }
            // A message longer than the buffer is reported, not truncated.
            try [Int32](repeating: 1, count: 16).withUnsafeBytes { try group.send($0, to: next, tag: 9) }
            var small = [Int32](repeating: 0, count: 4)
            do {
                _ = try small.withUnsafeMutableBytes { try group.receive(into: $0, from: previous, tag: 9) }
                failures.append("a 64-byte message into a 16-byte buffer was accepted")
            } catch CommunicationError.messageTooLarge(_, _, let bytes, _) where bytes == 64 {
            }
            try group.barrier()
        }
        return failures
    }

    /// Whether any rank of `group` failed (every rank learns it, so all exit alike).
    static func agreeOnFailure(_ failed: Bool, group: any ProcessGroup) throws -> Bool {
        var flag: [Float] = [failed ? 1 : 0]
        try flag.withUnsafeMutableBufferPointer { try group.allReduceSum($0.baseAddress!, count: 1) }  // invariant: non-empty
        return flag[0] > 0
    }
}
