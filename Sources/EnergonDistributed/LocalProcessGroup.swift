import CEnergonKernels
import EnergonCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The shared state of ranks that run as threads of one process. Create one per group and
/// hand `group(rank:)` to each rank's thread. Collectives work directly on the ranks' own
/// buffers through shared memory: each rank reduces one slice of every rank's buffer, then
/// copies the reduced vector back; no message copies beyond that.
public final class LocalCommunicator: @unchecked Sendable {
    /// Number of ranks.
    public let size: Int
    /// Longest wait for the other ranks at any synchronisation point, in seconds.
    public let timeout: Double

    private let arrived = Atomic<Int>(0)
    private let generation = Atomic<Int>(0)
    private let failed = Atomic<Int>(-1)  // rank that failed, or -1
    private nonisolated(unsafe) var failureReason = ""
    /// Per-rank published pointers for the current collective.
    private let slots: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// Two reduction buffers, used alternately so consecutive all-reduces need no extra barrier.
    private nonisolated(unsafe) var scratch: [UnsafeMutablePointer<Float>] = []
    private nonisolated(unsafe) var scratchCapacity = 0
    private let scratchLock = Mutex<Void>(())
    private let reasonLock = Mutex<Void>(())
    /// Point-to-point messages not yet received, by (sender, receiver, tag), oldest first.
    private let mailboxes = Mutex<[MailboxKey: [[UInt8]]]>([:])

    /// Creates the shared state of `size` ranks.
    public init(size: Int, timeout: Double = 60) {
        self.size = max(1, size)
        self.timeout = timeout
        slots = .allocate(capacity: self.size)
        slots.initialize(repeating: nil, count: self.size)
    }

    deinit {
        slots.deallocate()
        for buffer in scratch { buffer.deallocate() }
    }

    /// The group handle of `rank`.
    public func group(rank: Int) -> LocalProcessGroup { LocalProcessGroup(communicator: self, rank: rank) }

    /// Marks the group failed so every rank waiting in (or later entering) a collective throws
    /// instead of waiting for a peer that will not come.
    public func fail(rank: Int, reason: String) {
        reasonLock.withLock { _ in
            if failed.load(ordering: .relaxed) < 0 {
                failureReason = reason
                failed.store(rank, ordering: .releasing)
            }
        }
    }

    /// Waits until all ranks have arrived (sense-reversing barrier: spin, then yield, with a timeout).
    func barrier(rank: Int, operation: String) throws {
        try checkFailed()
        let current = generation.load(ordering: .acquiring)
        if arrived.add(1, ordering: .acquiringAndReleasing).newValue == size {
            arrived.store(0, ordering: .relaxed)
            generation.store(current + 1, ordering: .releasing)
            return
        }
        var spins = 0
        var deadline = 0.0
        while generation.load(ordering: .acquiring) == current {
            spins += 1
            if spins < 4_000 {
                energon_cpu_relax()
                continue
            }
            sched_yield()
            if spins % 256 == 0 {
                try checkFailed()
                let now = Self.now()
                if deadline == 0 { deadline = now + timeout }
                if now > deadline {
                    fail(rank: rank, reason: "\(operation) timed out")
                    throw CommunicationError.timedOut(operation: operation, rank: rank, seconds: timeout)
                }
            }
        }
    }

    /// Queues a copy of `message` for `receiver` (sends never wait: the copy is the buffer).
    func post(_ message: UnsafeRawBufferPointer, from sender: Int, to receiver: Int, tag: Int) throws {
        try checkFailed()
        let copy = [UInt8](message)
        mailboxes.withLock { $0[MailboxKey(sender: sender, receiver: receiver, tag: tag), default: []].append(copy) }
    }

    /// Takes the oldest message from `sender` to `receiver` with `tag`, waiting at most `timeout`.
    func take(into buffer: UnsafeMutableRawBufferPointer, from sender: Int, to receiver: Int, tag: Int,
              timeout: Double) throws -> Int {
        let key = MailboxKey(sender: sender, receiver: receiver, tag: tag)
        var spins = 0
        var deadline = 0.0
        var pause = 1_000  // nanoseconds, doubled up to 1 ms while idle
        while true {
            let message: [UInt8]? = mailboxes.withLock { boxes in
                guard var queue = boxes[key], !queue.isEmpty else { return nil }
                if queue[0].count > buffer.count { return queue[0] }  // left in place; reported below
                let first = queue.removeFirst()
                boxes[key] = queue.isEmpty ? nil : queue
                return first
            }
            if let message {
                guard message.count <= buffer.count else {
                    throw CommunicationError.messageTooLarge(rank: sender, tag: tag, bytes: message.count, capacity: buffer.count)
                }
                message.withUnsafeBytes { source in
                    if let base = buffer.baseAddress, let from = source.baseAddress { base.copyMemory(from: from, byteCount: source.count) }
                }
                return message.count
            }
            spins += 1
            if spins < 2_000 {
                energon_cpu_relax()
                continue
            }
            try checkFailed()
            let now = Self.now()
            if deadline == 0 { deadline = now + timeout }
            if now > deadline {
                fail(rank: receiver, reason: "receive from rank \(sender) timed out")
                throw CommunicationError.timedOut(operation: "receive (tag \(tag))", rank: sender, seconds: timeout)
            }
            var request = timespec(tv_sec: 0, tv_nsec: pause)
            nanosleep(&request, nil)
            pause = min(pause * 2, 1_000_000)
        }
    }

    private func checkFailed() throws {
        let rank = failed.load(ordering: .acquiring)
        if rank >= 0 {
            let reason = reasonLock.withLock { _ in failureReason }
            throw CommunicationError.peerFailed(rank: rank, reason: reason)
        }
    }

    func publish(_ pointer: UnsafeMutableRawPointer, rank: Int) { slots[rank] = pointer }
    func published(_ rank: Int) -> UnsafeMutableRawPointer { slots[rank]! }  // invariant: set before the barrier

    /// The reduction buffer for collective number `sequence` (alternating), at least `count` floats.
    /// Rank 0 grows it before the first barrier of a collective; see `allReduceSum`.
    func reductionBuffer(sequence: Int, count: Int) -> UnsafeMutablePointer<Float> {
        scratch[sequence & 1]
    }

    func ensureScratch(_ count: Int) {
        scratchLock.withLock { _ in
            guard count > scratchCapacity else { return }
            for buffer in scratch { buffer.deallocate() }
            scratch = [.allocate(capacity: count), .allocate(capacity: count)]
            scratchCapacity = count
        }
    }


    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}

/// Who sent a point-to-point message to whom, under which tag.
struct MailboxKey: Hashable {
    let sender: Int
    let receiver: Int
    let tag: Int
}

/// One rank's handle on a `LocalCommunicator`: ranks are threads of one process and collectives
/// run in shared memory. Every rank must call the same collectives in the same order.
public final class LocalProcessGroup: ProcessGroup, @unchecked Sendable {
    public let rank: Int
    public var size: Int { communicator.size }
    let communicator: LocalCommunicator
    private var sequence = 0
    /// The reduction buffer size every rank believes the communicator has. All ranks see the
    /// same sequence of collectives, so they agree on when it must grow without asking.
    private var agreedCapacity = 0
    /// This rank's f32 staging for half-precision reductions (its slice only): accumulator and operand.
    private var halfStaging: UnsafeMutablePointer<Float>?
    private var halfStagingCapacity = 0

    deinit { halfStaging?.deallocate() }

    /// The communicator's timeout.
    public var timeout: Double { communicator.timeout }

    init(communicator: LocalCommunicator, rank: Int) {
        self.communicator = communicator
        self.rank = rank
    }

    /// Sum across ranks, in place. Two barriers: after publishing the buffers, each rank sums
    /// its slice of all buffers into the shared reduction buffer; after the second, every rank
    /// copies the whole reduced vector into its own buffer. The reduction buffers alternate, so a
    /// fast rank starting the next collective never overwrites what a slow rank still copies.
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        guard size > 1, count > 0 else { return }
        if agreedCapacity < count {
            // Every rank reaches this point in the same collective; after the barrier nobody
            // still reads the old buffers, so rank 0 may replace them.
            agreedCapacity = max(count, 1 << 16)
            try communicator.barrier(rank: rank, operation: "all-reduce")
            if rank == 0 { communicator.ensureScratch(agreedCapacity) }
        }
        communicator.publish(UnsafeMutableRawPointer(buffer), rank: rank)
        try communicator.barrier(rank: rank, operation: "all-reduce")
        let reduced = communicator.reductionBuffer(sequence: sequence, count: count)
        let slice = Self.slice(count, part: rank, of: size)
        if !slice.isEmpty {
            let first = communicator.published(0).assumingMemoryBound(to: Float.self)
            (reduced + slice.lowerBound).update(from: first + slice.lowerBound, count: slice.count)
            for other in 1..<size {
                let source = communicator.published(other).assumingMemoryBound(to: Float.self)
                Ops.add(reduced + slice.lowerBound, source + slice.lowerBound, output: reduced + slice.lowerBound,
                        count: slice.count)
            }
        }
        try communicator.barrier(rank: rank, operation: "all-reduce")
        buffer.update(from: reduced, count: count)
        sequence += 1
    }

    /// Half-precision sum across ranks, in place, through the same shared reduction buffers as
    /// the f32 path: each rank widens its slice of every rank's buffer to f32, sums in rank
    /// order, rounds once into the shared buffer; every rank then copies the halves back.
    public func allReduceSum(halves buffer: UnsafeMutablePointer<UInt16>, count: Int) throws {
        guard size > 1, count > 0 else { return }
        let floatsNeeded = (count + 1) / 2  // the shared buffers hold floats; halves take half the room
        if agreedCapacity < floatsNeeded {
            agreedCapacity = max(floatsNeeded, 1 << 16)
            try communicator.barrier(rank: rank, operation: "all-reduce (f16)")
            if rank == 0 { communicator.ensureScratch(agreedCapacity) }
        }
        communicator.publish(UnsafeMutableRawPointer(buffer), rank: rank)
        try communicator.barrier(rank: rank, operation: "all-reduce (f16)")
        let reduced = UnsafeMutableRawPointer(communicator.reductionBuffer(sequence: sequence, count: floatsNeeded))
            .assumingMemoryBound(to: UInt16.self)
        let slice = Self.slice(count, part: rank, of: size)
        if !slice.isEmpty {
            if halfStagingCapacity < 2 * slice.count {
                halfStaging?.deallocate()
                halfStagingCapacity = 2 * slice.count
                halfStaging = .allocate(capacity: halfStagingCapacity)
            }
            let accumulator = halfStaging!, operand = halfStaging! + slice.count  // invariant: allocated just above
            for other in 0..<size {
                let source = communicator.published(other).assumingMemoryBound(to: UInt16.self) + slice.lowerBound
                Quantization.floatsFromHalf(UnsafeRawPointer(source), destination: other == 0 ? accumulator : operand,
                                            count: slice.count)
                if other > 0 { Ops.add(accumulator, operand, output: accumulator, count: slice.count) }
            }
            Quantization.halfFromFloats(accumulator, destination: UnsafeMutableRawPointer(reduced + slice.lowerBound),
                                        count: slice.count)
        }
        try communicator.barrier(rank: rank, operation: "all-reduce (f16)")
        buffer.update(from: reduced, count: count)
        sequence += 1
    }

    /// Queues a copy of `message` for `peer`; never waits (the queue is the send buffer).
    public func send(_ message: UnsafeRawBufferPointer, to peer: Int, tag: Int) throws {
        try validatePeer(peer, tag: tag, operation: "send")
        try communicator.post(message, from: rank, to: peer, tag: tag)
    }

    /// Takes the oldest message `peer` sent this rank with `tag`.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, from peer: Int, tag: Int, timeout: Double?) throws -> Int {
        try validatePeer(peer, tag: tag, operation: "receive")
        return try communicator.take(into: buffer, from: peer, to: rank, tag: tag, timeout: timeout ?? communicator.timeout)
    }

    public func allGather(_ input: UnsafePointer<Float>, count: Int, output: UnsafeMutablePointer<Float>) throws {
        guard size > 1 else {
            if UnsafePointer(output) != input { output.update(from: input, count: count) }
            return
        }
        communicator.publish(UnsafeMutableRawPointer(mutating: input), rank: rank)
        try communicator.barrier(rank: rank, operation: "all-gather")
        for other in 0..<size {
            let source = communicator.published(other).assumingMemoryBound(to: Float.self)
            (output + other * count).update(from: source, count: count)
        }
        try communicator.barrier(rank: rank, operation: "all-gather")
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws {
        guard size > 1 else { return }
        if rank == root { communicator.publish(UnsafeMutableRawPointer(buffer), rank: rank) }
        try communicator.barrier(rank: rank, operation: "broadcast")
        if rank != root {
            buffer.update(from: communicator.published(root).assumingMemoryBound(to: Float.self), count: count)
        }
        try communicator.barrier(rank: rank, operation: "broadcast")
    }

    public func barrier() throws {
        try communicator.barrier(rank: rank, operation: "barrier")
    }

    /// The `part`-th of `parts` nearly equal contiguous pieces of `0..<count`, 16-float aligned.
    static func slice(_ count: Int, part: Int, of parts: Int) -> Range<Int> {
        let units = (count + 15) / 16
        let base = units / parts, extra = units % parts
        let lower = (part * base + min(part, extra)) * 16
        let upper = ((part + 1) * base + min(part + 1, extra)) * 16
        return min(lower, count)..<min(upper, count)
    }
}
