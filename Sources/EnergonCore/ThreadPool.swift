import CEnergonKernels
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A fixed set of persistent compute threads that run one parallel job at a time.
///
/// The calling thread takes part as thread 0, so a pool of `threadCount` threads starts
/// `threadCount - 1` workers. Between jobs, workers spin for a short while (a decode step issues
/// hundreds of jobs back to back, and waking a parked thread costs tens of microseconds), then
/// park on a condition variable so an idle pool costs no CPU.
///
/// Compute never runs on Swift's cooperative thread pool: callers hand jobs to a pool from a
/// thread they own (a worker's dedicated thread, or the main thread of a command).
///
/// A pool is not reentrant: `run` must not be called from inside a job, nor from two threads at
/// once (each worker of the runtime owns its own pool).
public final class ThreadPool: @unchecked Sendable {
    /// Number of threads a job runs on, the caller included.
    public let threadCount: Int

    /// Spin iterations (each a `pause`) before a waiting worker parks; about 50-100 µs.
    private let spinLimit: Int

    private let generation = Atomic<UInt64>(0)
    private let pending = Atomic<Int>(0)
    private let shutdown = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var threads: [pthread_t] = []

    /// The job of the current generation. Written by the dispatcher before the generation is
    /// published (release) and read by workers after they observe it (acquire).
    private nonisolated(unsafe) var job: ((Int, Int) -> Void)?
    private nonisolated(unsafe) var jobThreadCount = 1

    /// Creates a pool.
    /// - Parameters:
    ///   - threadCount: threads per job, the caller included; values below 1 mean 1.
    ///   - spinLimit: how many `pause` iterations an idle worker spins before parking.
    public init(threadCount: Int, spinLimit: Int = 200_000) {
        self.threadCount = max(1, threadCount)
        self.spinLimit = spinLimit
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
        for index in 1..<self.threadCount {
            let box = Unmanaged.passRetained(WorkerStart(pool: self, index: index))
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.pool.workerLoop(index: start.index)
                return nil
            }, box.toOpaque())
            if status != 0 {
                box.release()
                continue
            }
            threads.append(thread)
        }
    }

    deinit {
        shutdown.store(true, ordering: .releasing)
        generation.add(1, ordering: .releasing)
        pthread_mutex_lock(&mutex)
        pthread_cond_broadcast(&condition)
        pthread_mutex_unlock(&mutex)
        for thread in threads { pthread_join(thread, nil) }
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    /// Number of threads actually running jobs (the caller plus the workers that started).
    public var activeThreadCount: Int { threads.count + 1 }

    /// Runs `body(threadIndex, threadCount)` once on every thread of the pool and returns when
    /// all have finished. `threadIndex` 0 is the calling thread.
    public func run(_ body: (_ threadIndex: Int, _ threadCount: Int) -> Void) {
        let count = activeThreadCount
        if count == 1 {
            body(0, 1)
            return
        }
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            jobThreadCount = count
            pending.store(count - 1, ordering: .relaxed)
            generation.add(1, ordering: .releasing)
            // Taking the lock orders this wake-up against a worker that is about to park.
            pthread_mutex_lock(&mutex)
            if sleepers.load(ordering: .relaxed) > 0 { pthread_cond_broadcast(&condition) }
            pthread_mutex_unlock(&mutex)
            escapable(0, count)
            var spins = 0
            while pending.load(ordering: .acquiring) != 0 {
                spins += 1
                if spins < 20_000 { energon_cpu_relax() } else { sched_yield() }
            }
            job = nil
        }
    }

    /// Splits `0..<count` into contiguous ranges, one per thread, and runs `body` on each
    /// non-empty range in parallel.
    /// - Parameters:
    ///   - count: the number of items.
    ///   - grain: ranges start on multiples of `grain` (for example, rows per tile), except the end.
    public func parallelFor(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let grain = max(1, grain)
        let units = (count + grain - 1) / grain
        if activeThreadCount == 1 || units == 1 {
            body(0..<count)
            return
        }
        run { index, threads in
            let range = ThreadPool.split(units: units, part: index, of: threads)
            let lower = min(count, range.lowerBound * grain)
            let upper = min(count, range.upperBound * grain)
            if lower < upper { body(lower..<upper) }
        }
    }

    /// The `part`-th of `of` nearly equal contiguous pieces of `0..<units`.
    public static func split(units: Int, part: Int, of parts: Int) -> Range<Int> {
        let base = units / parts
        let extra = units % parts
        let lower = part * base + min(part, extra)
        return lower..<(lower + base + (part < extra ? 1 : 0))
    }

    private func workerLoop(index: Int) {
        var seen: UInt64 = 0
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                if spins < spinLimit {
                    spins += 1
                    energon_cpu_relax()
                } else {
                    pthread_mutex_lock(&mutex)
                    sleepers.add(1, ordering: .relaxed)
                    while generation.load(ordering: .acquiring) == seen {
                        pthread_cond_wait(&condition, &mutex)
                    }
                    sleepers.subtract(1, ordering: .relaxed)
                    pthread_mutex_unlock(&mutex)
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if shutdown.load(ordering: .acquiring) { return }
            if let job { job(index, jobThreadCount) }
            pending.subtract(1, ordering: .releasing)
        }
    }
}

private final class WorkerStart {
    let pool: ThreadPool
    let index: Int
    init(pool: ThreadPool, index: Int) {
        self.pool = pool
        self.index = index
    }
}
