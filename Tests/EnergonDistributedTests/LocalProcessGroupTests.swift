import EnergonDistributed
import Foundation
import Testing

/// Runs `body(group)` on `size` threads, one per rank, and returns each rank's result.
func runRanks<T: Sendable>(_ size: Int, timeout: Double = 10,
                           _ body: @escaping @Sendable (LocalProcessGroup) throws -> T) -> [Result<T, any Error>] {
    let communicator = LocalCommunicator(size: size, timeout: timeout)
    let results = ResultBox<T>(count: size)
    let threads = (0..<size).map { rank in
        Thread {
            let group = communicator.group(rank: rank)
            do {
                results.set(rank, .success(try body(group)))
            } catch {
                communicator.fail(rank: rank, reason: "\(error)")
                results.set(rank, .failure(error))
            }
        }
    }
    for thread in threads { thread.start() }
    results.wait()
    return results.values
}

final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var storage: [Result<T, any Error>?]
    init(count: Int) { storage = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: Result<T, any Error>) {
        condition.lock()
        storage[index] = value
        condition.broadcast()
        condition.unlock()
    }
    func wait() {
        condition.lock()
        while storage.contains(where: { $0 == nil }) { condition.wait() }
        condition.unlock()
    }
    var values: [Result<T, any Error>] { storage.map { $0! } }  // invariant: wait() returned
}

@Suite struct LocalProcessGroupTests {
    @Test(arguments: [1, 2, 3, 4], [1, 7, 31, 33, 4097, 100_003])
    func allReduceSumsArangeTimesRank(size: Int, count: Int) throws {
        let results = runRanks(size) { group -> Bool in
            // Rank r sends arange(n) * (r + 1); the sum is arange(n) * size(size+1)/2.
            var ok = true
            for repetition in 0..<3 {
                var buffer = (0..<count).map { Float($0 % 1000) * Float(group.rank + 1) + Float(repetition) }
                try buffer.withUnsafeMutableBufferPointer { try group.allReduceSum($0.baseAddress!, count: count) }
                let factor = Float(size * (size + 1) / 2)
                for i in 0..<count where buffer[i] != Float(i % 1000) * factor + Float(repetition * size) { ok = false }
            }
            return ok
        }
        for result in results { #expect(try result.get()) }
    }

    @Test(arguments: [2, 3, 4])
    func allGatherAndBroadcast(size: Int) throws {
        let count = 37
        let results = runRanks(size) { group -> Bool in
            let mine = (0..<count).map { Float($0 + 1000 * group.rank) }
            var gathered = [Float](repeating: -1, count: count * size)
            try mine.withUnsafeBufferPointer { input in
                try gathered.withUnsafeMutableBufferPointer { try group.allGather(input.baseAddress!, count: count, output: $0.baseAddress!) }
            }
            var ok = gathered == (0..<size).flatMap { rank in (0..<count).map { Float($0 + 1000 * rank) } }
            var broadcast = group.rank == 1 ? mine : [Float](repeating: 0, count: count)
            try broadcast.withUnsafeMutableBufferPointer { try group.broadcast($0.baseAddress!, count: count, root: 1) }
            ok = ok && broadcast == (0..<count).map { Float($0 + 1000) }
            try group.barrier()
            return ok
        }
        for result in results { #expect(try result.get()) }
    }

    @Test func aRankThatStopsAnsweringTimesOutEveryRank() {
        let start = Date()
        let results = runRanks(3, timeout: 0.5) { group -> Bool in
            if group.rank == 2 { return true }  // leaves without joining the collective
            var buffer: [Float] = [1, 2, 3]
            try buffer.withUnsafeMutableBufferPointer { try group.allReduceSum($0.baseAddress!, count: 3) }
            return true
        }
        #expect(Date().timeIntervalSince(start) < 5)
        for rank in 0..<2 {
            #expect(throws: CommunicationError.self) { try results[rank].get() }
        }
    }

    @Test func aFailedRankFailsThePeersWaitingForIt() {
        struct Boom: Error {}
        let results = runRanks(3, timeout: 30) { group -> Bool in
            if group.rank == 0 { throw Boom() }
            try group.barrier()
            return true
        }
        for rank in 1..<3 {
            #expect(throws: CommunicationError.self) { try results[rank].get() }
        }
    }
}
