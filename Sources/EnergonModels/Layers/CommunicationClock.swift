import EnergonDistributed
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Time the tensor-parallel ranks spend inside collectives (waiting for peers included), for
/// the compute/communication split of `energon bench-parallel`. The parallel layers are the
/// only callers of collectives in model code; each reads the monotonic clock before and after
/// its call (two vDSO reads, tens of nanoseconds, against microseconds for the collective) and
/// adds the difference to its rank's counter. Serial layers never touch it.
public final class CommunicationClock: Sendable {
    /// The process's clock: every rank of every runner adds to it.
    public static let shared = CommunicationClock()

    /// One rank's totals.
    public struct Totals: Sendable, Equatable {
        /// Pipeline stage of the rank.
        public let stage: Int
        /// Tensor-parallel rank.
        public let rank: Int
        /// Seconds spent inside collectives.
        public let seconds: Double
        /// Collectives called.
        public let calls: Int
    }

    /// One rank's counter, written by that rank's thread only.
    final class Counter: Sendable {
        let nanoseconds = Atomic<UInt64>(0)
        let calls = Atomic<Int>(0)
    }

    private let counters = Mutex<[Int: Counter]>([:])

    private init() {}

    /// The counter of tensor rank `rank` in pipeline stage `stage`.
    func counter(_ parallel: ParallelContext) -> Counter {
        let key = parallel.pipelineStage << 20 | parallel.tensorRank
        return counters.withLock { table in
            if let counter = table[key] { return counter }
            let counter = Counter()
            table[key] = counter
            return counter
        }
    }

    /// Every rank's totals since the last `reset`, by stage then rank.
    public func totals() -> [Totals] {
        counters.withLock { table in
            table.map { key, counter in
                Totals(stage: key >> 20, rank: key & ((1 << 20) - 1),
                       seconds: Double(counter.nanoseconds.load(ordering: .relaxed)) / 1e9,
                       calls: counter.calls.load(ordering: .relaxed))
            }
        }.sorted { ($0.stage, $0.rank) < ($1.stage, $1.rank) }
    }

    /// Zeroes every counter (call between forward passes, not during one).
    public func reset() {
        counters.withLock { table in
            for counter in table.values {
                counter.nanoseconds.store(0, ordering: .relaxed)
                counter.calls.store(0, ordering: .relaxed)
            }
        }
    }

    /// Monotonic nanoseconds.
    @inline(__always) static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}

extension CommunicationClock.Counter {
    /// Runs `collective`, adding its duration to this counter.
    @inline(__always) func time(_ collective: () throws -> Void) rethrows {
        let start = CommunicationClock.now()
        defer {
            nanoseconds.add(CommunicationClock.now() &- start, ordering: .relaxed)
            calls.add(1, ordering: .relaxed)
        }
        try collective()
    }
}
