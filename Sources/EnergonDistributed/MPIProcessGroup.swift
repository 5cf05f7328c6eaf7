#if MPI
import CEnergonKernels
import CMPI
import EnergonCore

#if canImport(Glibc)
import Glibc
#endif

/// This process's place in an MPI job (OpenMPI, through the `MPI` package trait).
///
/// MPI is initialised once per process with `MPI_THREAD_SERIALIZED`: Energon calls MPI from
/// one thread at a time, but not always the main thread (the engine may run forward passes on
/// its own thread); compute threads never call MPI. Every communicator Energon creates returns
/// errors instead of aborting (`MPI_ERRORS_RETURN`), so they surface as `CommunicationError`.
public final class MPIWorld: @unchecked Sendable {
    /// This process's rank in `MPI_COMM_WORLD`.
    public let rank: Int
    /// Number of processes in the job.
    public let size: Int
    /// The thread level MPI granted.
    public let threadLevel: Int32
    private var finalized = false

    private nonisolated(unsafe) static var current: MPIWorld?

    /// Whether this process was started by OpenMPI's `mpirun` (its environment names the job).
    public static var isLaunchedByMPIRun: Bool {
        getenv("OMPI_COMM_WORLD_SIZE") != nil || getenv("PMIX_RANK") != nil
    }

    /// Initialises MPI on first use and returns the world; later calls return the same world.
    /// - Throws: `CommunicationError.transport` if MPI cannot start or cannot serialise calls.
    public static func shared() throws -> MPIWorld {
        if let current { return current }
        var provided: Int32 = 0
        let status = MPI_Init_thread(nil, nil, cmpi_thread_serialized(), &provided)
        guard status == cmpi_success() else {
            throw CommunicationError.transport(operation: "MPI_Init_thread", message: MPIWorld.errorText(status))
        }
        guard provided >= cmpi_thread_serialized() else {
            throw CommunicationError.transport(operation: "MPI_Init_thread",
                                               message: "this MPI grants thread level \(provided); Energon needs MPI_THREAD_SERIALIZED")
        }
        MPI_Comm_set_errhandler(cmpi_comm_world(), cmpi_errors_return())
        var rank: Int32 = 0, size: Int32 = 0
        MPI_Comm_rank(cmpi_comm_world(), &rank)
        MPI_Comm_size(cmpi_comm_world(), &size)
        let world = MPIWorld(rank: Int(rank), size: Int(size), threadLevel: provided)
        current = world
        return world
    }

    private init(rank: Int, size: Int, threadLevel: Int32) {
        self.rank = rank
        self.size = size
        self.threadLevel = threadLevel
    }

    /// A group of every process of the job (a duplicate of `MPI_COMM_WORLD`, so its traffic never
    /// mixes with another group's). Collective over the world: every rank must call it.
    public func worldGroup(timeout: Double) throws -> MPIProcessGroup {
        var duplicate: MPI_Comm? = cmpi_comm_null()
        try MPIWorld.check(MPI_Comm_dup(cmpi_comm_world(), &duplicate), "MPI_Comm_dup")
        guard let duplicate else { throw CommunicationError.transport(operation: "MPI_Comm_dup", message: "no communicator") }
        return try MPIProcessGroup(communicator: duplicate, timeout: timeout)
    }

    /// Splits the world into groups: ranks passing the same `color` form one group, ordered by
    /// `key`. Collective over the world: every rank must call it (`MPI_Comm_split`).
    public func split(color: Int, key: Int, timeout: Double) throws -> MPIProcessGroup {
        var communicator: MPI_Comm? = cmpi_comm_null()
        try MPIWorld.check(MPI_Comm_split(cmpi_comm_world(), Int32(color), Int32(key), &communicator), "MPI_Comm_split")
        guard let communicator else { throw CommunicationError.transport(operation: "MPI_Comm_split", message: "no communicator") }
        return try MPIProcessGroup(communicator: communicator, timeout: timeout)
    }

    /// Ends the whole job at once: `MPI_Abort`, which makes `mpirun` kill every rank.
    public func abort(code: Int32) -> Never {
        MPI_Abort(cmpi_comm_world(), code)
        exit(code)  // invariant: MPI_Abort does not return; this only satisfies the type checker
    }

    /// Shuts MPI down (after every rank has finished communicating). Safe to call twice.
    public func finalize() {
        guard !finalized else { return }
        finalized = true
        MPI_Finalize()
    }

    /// MPI's text for an error code.
    static func errorText(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self) + " (code \(code))"
    }

    static func check(_ code: Int32, _ operation: @autoclosure () -> String) throws {
        guard code == cmpi_success() else {
            throw CommunicationError.transport(operation: operation(), message: errorText(code))
        }
    }
}

/// A `ProcessGroup` whose ranks are MPI processes (one communicator).
///
/// Every operation is nonblocking underneath (`MPI_Isend`/`MPI_Irecv`/`MPI_Improbe`) and polled
/// with `MPI_Test` until a deadline: it spins for a few microseconds (latency), then yields, then
/// sleeps with a growing pause (an idle rank leaves its core to others). A peer that does not
/// answer in time makes the operation throw `CommunicationError.timedOut` naming that peer's
/// **world** rank. Collectives are direct exchanges between every pair of ranks (each rank
/// sends its buffer to every other and sums what it receives, in rank order): at the small tp
/// of a CPU node this costs what a tree costs, every rank gets bit-identical sums, and the one
/// peer that is missing is known (a collective like `MPI_Iallreduce` would not say who).
public final class MPIProcessGroup: ProcessGroup, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public let timeout: Double
    /// The world rank of each rank of this group (what errors name).
    public let worldRanks: [Int]
    /// Seconds this rank has spent inside this group's waits (collectives and receives): the
    /// transfers themselves plus waiting for slower peers.
    public private(set) var waitingSeconds = 0.0
    let communicator: MPI_Comm
    /// Receive staging: `size` slots of the largest collective so far.
    private var staging: UnsafeMutableRawPointer?
    private var stagingBytes = 0
    private var requests: [MPI_Request?]
    private var requestPeers: [Int]
    /// Messages posted by `send` and not yet taken, oldest first.
    private var pendingSends: [PendingSend] = []

    /// A posted send and the copy it reads from.
    private struct PendingSend {
        var request: MPI_Request?
        let buffer: UnsafeMutableRawPointer
        let peer: Int
        let tag: Int
        let posted: Double
    }

    /// Tags of the collectives (above every user tag).
    private enum CollectiveTag: Int32 {
        case allReduce = 30_001, allReduceHalf, allGather, broadcast, barrier
    }

    init(communicator: MPI_Comm, timeout: Double) throws {
        self.communicator = communicator
        self.timeout = timeout
        try MPIWorld.check(MPI_Comm_set_errhandler(communicator, cmpi_errors_return()), "MPI_Comm_set_errhandler")
        var rank: Int32 = 0, size: Int32 = 0
        try MPIWorld.check(MPI_Comm_rank(communicator, &rank), "MPI_Comm_rank")
        try MPIWorld.check(MPI_Comm_size(communicator, &size), "MPI_Comm_size")
        self.rank = Int(rank)
        self.size = Int(size)
        // Translate this group's ranks to world ranks, so errors name processes the user sees.
        var group = MPI_Group(bitPattern: 0), worldGroup = MPI_Group(bitPattern: 0)
        try MPIWorld.check(MPI_Comm_group(communicator, &group), "MPI_Comm_group")
        try MPIWorld.check(MPI_Comm_group(cmpi_comm_world(), &worldGroup), "MPI_Comm_group")
        var local = (0..<size).map { Int32($0) }
        var translated = [Int32](repeating: 0, count: Int(size))
        try MPIWorld.check(MPI_Group_translate_ranks(group, size, &local, worldGroup, &translated), "MPI_Group_translate_ranks")
        MPI_Group_free(&group)
        MPI_Group_free(&worldGroup)
        worldRanks = translated.map(Int.init)
        requests = []
        requestPeers = []
    }

    deinit {
        staging?.deallocate()
        // The communicator is left to MPI_Finalize: freeing it here could run after finalize.
    }

    // MARK: collectives

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        guard size > 1, count > 0 else { return }
        let slots = try exchange(UnsafeRawPointer(buffer), bytes: count * 4, tag: .allReduce, operation: "all-reduce")
        sumInRankOrder(buffer, count: count) { slots + $0 * count * 4 }
    }

    public func allReduceSum(halves buffer: UnsafeMutablePointer<UInt16>, count: Int) throws {
        guard size > 1, count > 0 else { return }
        // The halves arrive in slots of count * 2 bytes; widen each after the exchange into the
        // float area that follows them, then sum in rank order and round once.
        let halfBytes = count * 2
        let floatOffset = (size * halfBytes + 63) / 64 * 64  // the float area starts aligned
        let slots = try exchange(UnsafeRawPointer(buffer), bytes: halfBytes, tag: .allReduceHalf,
                                 operation: "all-reduce (f16)", extraBytes: floatOffset - size * halfBytes + (size + 1) * count * 4)
        let floats = (slots + floatOffset).assumingMemoryBound(to: Float.self)
        for other in 0..<size {
            let source = other == rank ? UnsafeRawPointer(buffer) : UnsafeRawPointer(slots + other * halfBytes)
            Quantization.floatsFromHalf(source, destination: floats + other * count, count: count)
        }
        let sum = floats + size * count
        sum.update(from: floats, count: count)
        for other in 1..<size { Ops.add(sum, floats + other * count, output: sum, count: count) }
        Quantization.halfFromFloats(sum, destination: UnsafeMutableRawPointer(buffer), count: count)
    }

    public func allGather(_ input: UnsafePointer<Float>, count: Int, output: UnsafeMutablePointer<Float>) throws {
        if UnsafePointer(output + rank * count) != input { (output + rank * count).update(from: input, count: count) }
        guard size > 1, count > 0 else { return }
        let slots = try exchange(UnsafeRawPointer(input), bytes: count * 4, tag: .allGather, operation: "all-gather")
        for other in 0..<size where other != rank {
            (output + other * count).update(from: (slots + other * count * 4).assumingMemoryBound(to: Float.self), count: count)
        }
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws {
        guard size > 1, count > 0 else { return }
        guard (0..<size).contains(root) else {
            throw CommunicationError.invalidArgument("broadcast: root \(root) is not a rank of this group of \(size)")
        }
        beginRequests()
        if rank == root {
            for other in 0..<size where other != rank {
                try postSend(UnsafeRawPointer(buffer), bytes: count * 4, to: other, tag: CollectiveTag.broadcast.rawValue)
            }
        } else {
            try postReceive(UnsafeMutableRawPointer(buffer), bytes: count * 4, from: root, tag: CollectiveTag.broadcast.rawValue)
        }
        try waitForRequests(operation: "broadcast", timeout: timeout)
    }

    public func barrier() throws {
        guard size > 1 else { return }
        _ = try exchange(UnsafeRawPointer(bitPattern: 16)!, bytes: 0, tag: .barrier, operation: "barrier")  // invariant: 0 bytes are never read
    }

    // MARK: point to point

    /// Copies `message` and posts it (`MPI_Isend`); never waits for the receiver, so two ranks
    /// may send to each other before receiving. A message still not taken after `timeout`
    /// makes a later `send`, `receive` or `flushSends` throw `timedOut` naming the receiver.
    public func send(_ message: UnsafeRawBufferPointer, to peer: Int, tag: Int) throws {
        try validatePeer(peer, tag: tag, operation: "send")
        try progressSends(operation: "send (tag \(tag))")
        let copy = UnsafeMutableRawPointer.allocate(byteCount: max(1, message.count), alignment: 64)
        if let base = message.baseAddress { copy.copyMemory(from: base, byteCount: message.count) }
        var request: MPI_Request? = cmpi_request_null()
        let status = MPI_Isend(copy, Int32(message.count), cmpi_byte(), Int32(peer), Int32(tag), communicator, &request)
        guard status == cmpi_success() else {
            copy.deallocate()
            throw CommunicationError.transport(operation: "MPI_Isend", message: MPIWorld.errorText(status))
        }
        pendingSends.append(PendingSend(request: request, buffer: copy, peer: peer, tag: tag, posted: Poller.now()))
    }

    /// Waits (at most `timeout`) until every message this rank sent has been taken.
    public func flushSends() throws {
        var poller = Poller(timeout: timeout)
        while true {
            try progressSends(operation: "flush")
            if pendingSends.isEmpty { return }
            if poller.expired() {
                let oldest = pendingSends[0]
                throw CommunicationError.timedOut(operation: "send (tag \(oldest.tag))", rank: worldRanks[oldest.peer],
                                                  seconds: timeout)
            }
        }
    }

    /// Frees the copies of messages that were taken; throws for one older than the timeout.
    private func progressSends(operation: String) throws {
        guard !pendingSends.isEmpty else { return }
        let now = Poller.now()
        var index = 0
        while index < pendingSends.count {
            var done: Int32 = 0
            try MPIWorld.check(MPI_Test(&pendingSends[index].request, &done, cmpi_status_ignore()), "\(operation): MPI_Test")
            if done != 0 {
                pendingSends[index].buffer.deallocate()
                pendingSends.remove(at: index)
                continue
            }
            if now - pendingSends[index].posted > timeout {
                let stale = pendingSends[index]
                throw CommunicationError.timedOut(operation: "send (tag \(stale.tag))", rank: worldRanks[stale.peer],
                                                  seconds: timeout)
            }
            index += 1
        }
    }

    public func receive(into buffer: UnsafeMutableRawBufferPointer, from peer: Int, tag: Int, timeout: Double?) throws -> Int {
        try validatePeer(peer, tag: tag, operation: "receive")
        try progressSends(operation: "receive (tag \(tag))")
        let start = Poller.now()
        defer { waitingSeconds += Poller.now() - start }
        let limit = timeout ?? self.timeout
        // Probe first so a message longer than the buffer is reported, not truncated.
        var message = MPI_Message(bitPattern: 0)
        var status = MPI_Status()
        var found: Int32 = 0
        var poller = Poller(timeout: limit)
        while true {
            try MPIWorld.check(MPI_Improbe(Int32(peer), Int32(tag), communicator, &found, &message, &status), "MPI_Improbe")
            if found != 0 { break }
            if poller.expired() {
                throw CommunicationError.timedOut(operation: "receive (tag \(tag))", rank: worldRanks[peer], seconds: limit)
            }
        }
        var bytes: Int32 = 0
        MPI_Get_count(&status, cmpi_byte(), &bytes)
        guard Int(bytes) <= buffer.count else {
            // Take it off the queue (into scratch) so the error leaves the channel consistent.
            let sink = UnsafeMutableRawPointer.allocate(byteCount: Int(bytes), alignment: 16)
            defer { sink.deallocate() }
            MPI_Mrecv(sink, bytes, cmpi_byte(), &message, cmpi_status_ignore())
            throw CommunicationError.messageTooLarge(rank: worldRanks[peer], tag: tag, bytes: Int(bytes), capacity: buffer.count)
        }
        try MPIWorld.check(MPI_Mrecv(buffer.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 16)!, bytes, cmpi_byte(),  // invariant: 0 bytes are never written
                                     &message, cmpi_status_ignore()), "MPI_Mrecv")
        return Int(bytes)
    }

    // MARK: machinery

    /// Sends `bytes` at `data` to every other rank and receives theirs; returns the staging
    /// area whose slot `r` (at `r * bytes`) holds rank r's bytes (this rank's slot is unused).
    private func exchange(_ data: UnsafeRawPointer, bytes: Int, tag: CollectiveTag, operation: String,
                          extraBytes: Int = 0) throws -> UnsafeMutableRawPointer {
        let needed = size * bytes + extraBytes
        if stagingBytes < needed || staging == nil {
            staging?.deallocate()
            stagingBytes = max(needed, 64)
            staging = .allocate(byteCount: stagingBytes, alignment: 64)
        }
        let slots = staging!  // invariant: allocated just above
        beginRequests()
        for other in 0..<size where other != rank {
            try postReceive(slots + other * bytes, bytes: bytes, from: other, tag: tag.rawValue)
        }
        for other in 0..<size where other != rank {
            try postSend(data, bytes: bytes, to: other, tag: tag.rawValue)
        }
        try waitForRequests(operation: operation, timeout: timeout)
        return slots
    }

    /// `buffer = Σ_r contribution(r)` in rank order, where this rank's contribution is `buffer`.
    private func sumInRankOrder(_ buffer: UnsafeMutablePointer<Float>, count: Int,
                                slot: (Int) -> UnsafeMutableRawPointer) {
        func contribution(_ other: Int) -> UnsafeMutablePointer<Float> {
            other == rank ? buffer : slot(other).assumingMemoryBound(to: Float.self)
        }
        if rank <= 1 {
            // Ranks 0 and 1 sum straight into their buffer: c0 + c1 with the operands in the
            // order every rank uses, then the others in rank order.
            Ops.add(contribution(0), contribution(1), output: buffer, count: count)
            for other in 2..<max(2, size) { Ops.add(buffer, contribution(other), output: buffer, count: count) }
            return
        }
        let sum = contribution(0)  // this rank's own buffer is needed unchanged until its turn
        for other in 1..<size { Ops.add(sum, contribution(other), output: sum, count: count) }
        buffer.update(from: sum, count: count)
    }

    private func beginRequests() {
        requests.removeAll(keepingCapacity: true)
        requestPeers.removeAll(keepingCapacity: true)
    }

    private func postSend(_ data: UnsafeRawPointer, bytes: Int, to peer: Int, tag: Int32) throws {
        var request: MPI_Request? = cmpi_request_null()
        try MPIWorld.check(MPI_Isend(data, Int32(bytes), cmpi_byte(), Int32(peer), tag, communicator, &request), "MPI_Isend")
        requests.append(request)
        requestPeers.append(peer)
    }

    private func postReceive(_ data: UnsafeMutableRawPointer, bytes: Int, from peer: Int, tag: Int32) throws {
        var request: MPI_Request? = cmpi_request_null()
        try MPIWorld.check(MPI_Irecv(data, Int32(bytes), cmpi_byte(), Int32(peer), tag, communicator, &request), "MPI_Irecv")
        requests.append(request)
        requestPeers.append(peer)
    }

    /// Polls the posted requests until all complete or the deadline passes; on timeout names
    /// the first peer still pending.
    private func waitForRequests(operation: String, timeout: Double) throws {
        let start = Poller.now()
        defer { waitingSeconds += Poller.now() - start }
        var poller = Poller(timeout: timeout)
        var pending = requests.count
        while pending > 0 {
            pending = 0
            for index in requests.indices where requests[index] != cmpi_request_null() {
                var done: Int32 = 0
                try MPIWorld.check(MPI_Test(&requests[index], &done, cmpi_status_ignore()), "\(operation): MPI_Test")
                if done == 0 { pending += 1 }
            }
            if pending > 0 && poller.expired() {
                let peer = requests.indices.first { requests[$0] != cmpi_request_null() }.map { requestPeers[$0] } ?? 0
                throw CommunicationError.timedOut(operation: operation, rank: worldRanks[peer], seconds: timeout)
            }
        }
    }
}

/// Spin, then yield, then sleep with a growing pause, until a deadline.
///
/// Spinning answers a peer's all-reduce half within a microsecond; yielding (for the first
/// 20 ms of a wait) keeps that latency when the core is free but gives it away when it is not;
/// after that the rank is idle (waiting for the next batch, or for a slow stage) and sleeps,
/// 50 µs at first, up to 1 ms.
struct Poller {
    private let timeout: Double
    private var start = 0.0
    private var polls = 0
    private var pause = 50_000  // nanoseconds

    init(timeout: Double) { self.timeout = timeout }

    /// Waits a little (how long depends on how long it has been waiting) and says whether the
    /// deadline has passed.
    mutating func expired() -> Bool {
        polls += 1
        if polls < 2_000 {  // ≈ 20–50 µs
            energon_cpu_relax()
            return false
        }
        let now = Self.now()
        if start == 0 { start = now }
        let waited = now - start
        if waited > timeout { return true }
        if waited < 0.02 {
            sched_yield()
        } else {
            var request = timespec(tv_sec: 0, tv_nsec: pause)
            nanosleep(&request, nil)
            pause = min(pause * 2, 1_000_000)
        }
        return false
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
#endif
