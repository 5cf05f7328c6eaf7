#if canImport(Glibc)
import Glibc
#endif
import EnergonCore
import Synchronization
import Testing

@Suite struct ThreadPoolTests {
    @Test(arguments: [1, 2, 3, 5])
    func everyThreadRunsEachJobOnce(threads: Int) {
        let pool = ThreadPool(threadCount: threads)
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: threads)
        counts.initialize(repeating: 0)
        defer { counts.deallocate() }
        for _ in 0..<1000 {
            pool.run { index, count in
                #expect(count == threads)
                counts[index] += 1
            }
        }
        #expect(Array(counts) == Array(repeating: 1000, count: threads))
    }

    @Test(arguments: [(0, 1), (1, 1), (7, 3), (33, 4), (4097, 32)])
    func parallelForCoversTheRangeOnce(count: Int, grain: Int) {
        let pool = ThreadPool(threadCount: 3)
        let seen = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
        seen.initialize(repeating: 0)
        defer { seen.deallocate() }
        pool.parallelFor(count, grain: grain) { range in
            #expect(range.lowerBound % grain == 0)
            for i in range { seen[i] += 1 }
        }
        #expect(seen.prefix(count).allSatisfy { $0 == 1 })
    }

    @Test func splitIsContiguousAndBalanced() {
        for units in [0, 1, 5, 64, 1001] {
            for parts in 1...7 {
                var next = 0
                for part in 0..<parts {
                    let range = ThreadPool.split(units: units, part: part, of: parts)
                    #expect(range.lowerBound == next)
                    #expect(range.count == units / parts || range.count == units / parts + 1)
                    next = range.upperBound
                }
                #expect(next == units)
            }
        }
    }

    @Test func workersParkAndWakeAfterIdling() throws {
        let pool = ThreadPool(threadCount: 2, spinLimit: 10)
        let total = Atomic<Int>(0)
        for _ in 0..<5 {
            usleep(2_000)  // long enough for the worker to park
            pool.run { _, _ in total.add(1, ordering: .relaxed) }
        }
        #expect(total.load(ordering: .relaxed) == 10)
    }
}
