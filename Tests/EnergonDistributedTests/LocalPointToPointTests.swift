import EnergonCore
import EnergonDistributed
import Foundation
import Testing

/// The operations added for pipelines and half-precision activations: f16 all-reduce, tagged
/// send/receive, and their timeouts, on thread ranks.
@Suite struct LocalPointToPointTests {
    @Test(arguments: [2, 3, 4], [1, 7, 33, 577, 4097])
    func halfAllReduceSumsArangeTimesRank(size: Int, count: Int) throws {
        let results = runRanks(size) { group -> [[Float]] in
            // Rank r contributes arange(n) * (r + 1), in values that stay exact in half; three
            // rounds, because the shared buffers alternate.
            try (0..<3).map { round in
                var halves = Quantization.halfBitsFromFloats((0..<count).map { Float(($0 + round) % 64) * Float(group.rank + 1) })
                try halves.withUnsafeMutableBufferPointer { try group.allReduceSum(halves: $0.baseAddress!, count: count) }
                return Quantization.floatsFromHalf(bits: halves)
            }
        }
        let factor = Float(size * (size + 1) / 2)
        for result in results {
            let rounds = try result.get()
            for round in 0..<3 { #expect(rounds[round] == (0..<count).map { Float(($0 + round) % 64) * factor }) }
        }
    }

    @Test func halfAllReduceRoundsTheF32SumOnce() throws {
        // 2048 + 1 + 1: summed in half one at a time this stays 2048 (ulp 2 at 2048); summed in
        // f32 and rounded once it is 2050.
        let results = runRanks(3) { group -> Float in
            var halves = Quantization.halfBitsFromFloats([group.rank == 0 ? 2048 : 1])
            try halves.withUnsafeMutableBufferPointer { try group.allReduceSum(halves: $0.baseAddress!, count: 1) }
            return Quantization.floatsFromHalf(bits: halves)[0]
        }
        for result in results { #expect(try result.get() == 2050) }
    }

    @Test func sendAndReceiveKeepOrderPerTagAndReportLength() throws {
        let results = runRanks(3) { group -> Bool in
            let next = (group.rank + 1) % 3, previous = (group.rank + 2) % 3
            for (tag, length) in [(1, 4), (2, 1000), (1, 9)] {
                let message = (0..<length).map { Int32($0 * tag + 100 * group.rank + length) }
                try message.withUnsafeBytes { try group.send($0, to: next, tag: tag) }
            }
            var ok = true
            for (tag, length) in [(2, 1000), (1, 4), (1, 9)] {  // another order than sent; per tag in order
                var buffer = [Int32](repeating: -1, count: 2000)
                let bytes = try buffer.withUnsafeMutableBytes { try group.receive(into: $0, from: previous, tag: tag) }
                ok = ok && bytes == length * 4
                    && Array(buffer.prefix(length)) == (0..<length).map { Int32($0 * tag + 100 * previous + length) }
            }
            return ok
        }
        for result in results { #expect(try result.get()) }
    }

    @Test func aMessageLongerThanTheBufferIsReported() throws {
        let results = runRanks(2) { group -> Bool in
            if group.rank == 0 {
                try [UInt8](repeating: 7, count: 100).withUnsafeBytes { try group.send($0, to: 1, tag: 3) }
                return true
            }
            var small = [UInt8](repeating: 0, count: 10)
            do {
                _ = try small.withUnsafeMutableBytes { try group.receive(into: $0, from: 0, tag: 3) }
                return false
            } catch CommunicationError.messageTooLarge(rank: 0, tag: 3, bytes: 100, capacity: 10) {
                var large = [UInt8](repeating: 0, count: 100)  // it stays queued for a larger buffer
                let bytes = try large.withUnsafeMutableBytes { try group.receive(into: $0, from: 0, tag: 3) }
                return bytes == 100 && large.allSatisfy { $0 == 7 }
            }
        }
        for result in results { #expect(try result.get()) }
    }

    @Test func aReceiveFromASilentRankTimesOutNamingIt() {
        let start = Date()
        let results = runRanks(2, timeout: 30) { group -> Bool in
            if group.rank == 1 { return true }  // never sends
            var buffer = [Float](repeating: 0, count: 4)
            _ = try buffer.withUnsafeMutableBytes { try group.receive(into: $0, from: 1, tag: 5, timeout: 0.3) }
            return true
        }
        #expect(Date().timeIntervalSince(start) < 5)
        #expect {
            try results[0].get()
        } throws: { error in
            guard case let CommunicationError.timedOut(_, rank, seconds) = error else { return false }
            return rank == 1 && seconds == 0.3
        }
    }

    @Test func aFailedRankFailsAPeerWaitingToReceive() {
        struct Boom: Error {}
        let results = runRanks(2, timeout: 30) { group -> Bool in
            if group.rank == 0 { throw Boom() }
            var buffer = [Float](repeating: 0, count: 4)
            _ = try buffer.withUnsafeMutableBytes { try group.receive(into: $0, from: 0, tag: 1, timeout: .infinity) }
            return true
        }
        #expect {
            try results[1].get()
        } throws: { error in
            guard case let CommunicationError.peerFailed(rank, _) = error else { return false }
            return rank == 0
        }
    }

    @Test func invalidPeersAndTagsAreRefused() throws {
        let results = runRanks(2) { group -> Int in
            var refused = 0
            let message: [UInt8] = [1]
            for (peer, tag) in [(group.rank, 1), (2, 1), (-1, 1), (1 - group.rank, -1), (1 - group.rank, ProcessGroupTag.userLimit)] {
                do {
                    try message.withUnsafeBytes { try group.send($0, to: peer, tag: tag) }
                } catch CommunicationError.invalidArgument {
                    refused += 1
                }
            }
            return refused
        }
        for result in results { #expect(try result.get() == 5) }
    }

    @Test func aSingleRankGroupIsTheIdentityAndHasNoPeers() throws {
        let group = SingleRankGroup()
        var values: [Float] = [1, 2, 3]
        try values.withUnsafeMutableBufferPointer { try group.allReduceSum($0.baseAddress!, count: 3) }
        var halves = Quantization.halfBitsFromFloats([1, 2, 3])
        try halves.withUnsafeMutableBufferPointer { try group.allReduceSum(halves: $0.baseAddress!, count: 3) }
        #expect(values == [1, 2, 3])
        #expect(Quantization.floatsFromHalf(bits: halves) == [1, 2, 3])
        #expect(throws: CommunicationError.self) { try [UInt8](repeating: 0, count: 1).withUnsafeBytes { try group.send($0, to: 0, tag: 0) } }
    }
}
