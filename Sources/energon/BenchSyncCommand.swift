import ArgumentParser
import EnergonCore
import EnergonDistributed
import Foundation

struct BenchSyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-sync",
        abstract: "Synchronisation costs: a ThreadPool job and a shared-memory all-reduce.",
        discussion: """
        A decode step of a small model issues a few hundred parallel jobs (4-5 per layer) and, with \
        tensor parallelism, two all-reduces per layer, so these latencies bound how fast small models \
        can go. Prints the median over --iterations of: an empty ThreadPool.run, and a \
        LocalProcessGroup all-reduce of --floats floats across --ranks thread ranks.
        """)

    @Option(name: .long, help: "Threads of the pool (and ranks of the group).")
    var threads: Int = 2

    @Option(name: .long, help: "Floats per all-reduce (SmolLM2's hidden size is 576).")
    var floats: Int = 576

    @Option(name: .long, help: "Timed repetitions.")
    var iterations: Int = 20_000

    func validate() throws {
        guard threads >= 1, threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
        guard floats >= 1, iterations >= 10 else { throw ValidationError("--floats ≥ 1 and --iterations ≥ 10") }
    }

    func run() throws {
        let pool = ThreadPool(threadCount: threads)
        var samples: [Double] = []
        samples.reserveCapacity(iterations)
        for _ in 0..<1000 { pool.run { _, _ in } }
        for _ in 0..<iterations {
            let start = monotonicClock()
            pool.run { _, _ in }
            samples.append(monotonicClock() - start)
        }
        samples.sort()
        print(String(format: "ThreadPool.run, %d threads, empty job: median %.2f µs, p90 %.2f µs",
                     threads, samples[samples.count / 2] * 1e6, samples[samples.count * 9 / 10] * 1e6))

        guard threads > 1 else { return }
        let communicator = LocalCommunicator(size: threads, timeout: 30)
        let count = floats, iterations = self.iterations
        let times = SampleBuffer(count: iterations)
        let done = DispatchGroup()
        for rank in 0..<threads {
            done.enter()
            Thread {
                defer { done.leave() }
                let group = communicator.group(rank: rank)
                var buffer = [Float](repeating: Float(rank), count: count)
                buffer.withUnsafeMutableBufferPointer { pointer in
                    for i in 0..<(iterations + 1000) {
                        let start = monotonicClock()
                        do { try group.allReduceSum(pointer.baseAddress!, count: count) } catch { return }  // invariant: non-empty
                        if rank == 0 && i >= 1000 { times.values[i - 1000] = monotonicClock() - start }
                    }
                }
            }.start()
        }
        done.wait()
        let sorted = times.values.sorted()
        print(String(format: "LocalProcessGroup all-reduce, %d ranks, %d floats: median %.2f µs, p90 %.2f µs",
                     threads, count, sorted[sorted.count / 2] * 1e6, sorted[sorted.count * 9 / 10] * 1e6))
    }
}

/// Latency samples written by one rank's thread and read after it has finished.
private final class SampleBuffer: @unchecked Sendable {
    var values: [Double]
    init(count: Int) { values = Array(repeating: 0, count: count) }
}
