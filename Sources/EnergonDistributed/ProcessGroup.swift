import EnergonCore

/// Errors of collective and point-to-point communication.
public enum CommunicationError: Error, CustomStringConvertible {
    /// A peer did not answer within the timeout.
    case timedOut(operation: String, rank: Int, seconds: Double)
    /// A peer left the group (its process died or it shut down).
    case peerFailed(rank: Int, reason: String)
    /// A message from `rank` was longer than the buffer posted for it.
    case messageTooLarge(rank: Int, tag: Int, bytes: Int, capacity: Int)
    /// The group cannot run this operation (a shard selector that never communicates).
    case unsupported(operation: String)
    /// An argument no rank could serve: a peer or root outside the group, a reserved tag.
    case invalidArgument(String)
    /// The transport itself reported an error (an MPI error code and its text).
    case transport(operation: String, message: String)

    public var description: String {
        switch self {
        case let .timedOut(operation, rank, seconds):
            "\(operation) timed out after \(seconds) s waiting for rank \(rank)"
        case let .peerFailed(rank, reason):
            "rank \(rank) failed: \(reason)"
        case let .messageTooLarge(rank, tag, bytes, capacity):
            "a message from rank \(rank) (tag \(tag)) has \(bytes) bytes, more than the \(capacity) posted for it"
        case let .unsupported(operation):
            "\(operation) is not supported by this group"
        case let .invalidArgument(message):
            message
        case let .transport(operation, message):
            "\(operation) failed: \(message)"
        }
    }
}

/// A group of ranks that run collectives together (a tensor-parallel group, or the pipeline),
/// and exchange tagged point-to-point messages (pipeline activations, batch descriptions).
///
/// Every rank of the group must call each collective in the same order with the same sizes.
/// Every wait has a timeout (`timeout`, or the one passed to `receive`) and fails with
/// `CommunicationError` instead of hanging. Ranks in errors are this group's ranks unless the
/// implementation says otherwise (`MPIProcessGroup` names world ranks).
public protocol ProcessGroup: AnyObject, Sendable {
    /// This rank's index in the group.
    var rank: Int { get }
    /// Number of ranks in the group.
    var size: Int { get }
    /// Longest wait for a peer in any operation without its own timeout, in seconds.
    var timeout: Double { get }
    /// Sums `count` floats element-wise across all ranks, in place; every rank gets the sum.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws
    /// Sums `count` IEEE halves (bit patterns) element-wise across all ranks, in place. The sum
    /// is accumulated in f32 in rank order and rounded to half once, so every rank gets the
    /// same bits.
    func allReduceSum(halves buffer: UnsafeMutablePointer<UInt16>, count: Int) throws
    /// Gathers `count` floats from every rank into `output` ([size, count], rank-major).
    func allGather(_ input: UnsafePointer<Float>, count: Int, output: UnsafeMutablePointer<Float>) throws
    /// Copies `count` floats from `root`'s buffer into every rank's buffer.
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws
    /// Returns once every rank has reached the barrier.
    func barrier() throws
    /// Sends `message` to rank `peer` with `tag` (0 ..< `ProcessGroupTag.userLimit`). Messages from
    /// one rank to another with the same tag arrive in the order they were sent. Never waits
    /// for the receiver (the message is copied, so two ranks may send to each other before
    /// receiving); a message not taken within `timeout` is reported by a later call.
    func send(_ message: UnsafeRawBufferPointer, to peer: Int, tag: Int) throws
    /// Receives the next message from rank `peer` with `tag` into `buffer` and returns its
    /// length in bytes. Waits at most `timeout` seconds (`nil`: the group's; `.infinity`: until
    /// the message comes or the peer fails).
    /// - Throws: `CommunicationError.messageTooLarge` when the message does not fit.
    func receive(into buffer: UnsafeMutableRawBufferPointer, from peer: Int, tag: Int, timeout: Double?) throws -> Int
}

/// Tag ranges of point-to-point messages.
public enum ProcessGroupTag {
    /// User tags are `0 ..< userLimit`; implementations may use tags above for their collectives.
    public static let userLimit = 30_000
}

extension ProcessGroup {
    /// No timeout of its own: groups that never wait (a single rank, a shard selector).
    public var timeout: Double { 60 }

    /// The generic half-precision all-reduce: widen to f32, sum with `allReduceSum`, round once.
    /// Implementations with shared buffers or a transport override it.
    public func allReduceSum(halves buffer: UnsafeMutablePointer<UInt16>, count: Int) throws {
        guard size > 1, count > 0 else { return }
        let staging = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { staging.deallocate() }
        Quantization.floatsFromHalf(UnsafeRawPointer(buffer), destination: staging, count: count)
        try allReduceSum(staging, count: count)
        Quantization.halfFromFloats(staging, destination: UnsafeMutableRawPointer(buffer), count: count)
    }

    /// Groups that only select shards never exchange messages.
    public func send(_ message: UnsafeRawBufferPointer, to peer: Int, tag: Int) throws {
        throw CommunicationError.unsupported(operation: "send")
    }

    /// Groups that only select shards never exchange messages.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, from peer: Int, tag: Int, timeout: Double?) throws -> Int {
        throw CommunicationError.unsupported(operation: "receive")
    }

    /// Receives with the group's timeout.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, from peer: Int, tag: Int) throws -> Int {
        try receive(into: buffer, from: peer, tag: tag, timeout: nil)
    }

    /// Checks a point-to-point peer and tag.
    func validatePeer(_ peer: Int, tag: Int, operation: String) throws {
        guard (0..<size).contains(peer), peer != rank else {
            throw CommunicationError.invalidArgument("\(operation): peer \(peer) is not another rank of this group of \(size)")
        }
        guard (0..<ProcessGroupTag.userLimit).contains(tag) else {
            throw CommunicationError.invalidArgument("\(operation): tag \(tag) is outside 0..<\(ProcessGroupTag.userLimit)")
        }
    }
}

/// The group of one rank: every collective is the identity. This is what a serial run uses, so
/// parallel layers collapse to plain layers with no communication. It has no peer to send to.
public final class SingleRankGroup: ProcessGroup {
    /// The group of a serial run.
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {}
    public func allReduceSum(halves buffer: UnsafeMutablePointer<UInt16>, count: Int) throws {}
    public func allGather(_ input: UnsafePointer<Float>, count: Int, output: UnsafeMutablePointer<Float>) throws {
        if UnsafePointer(output) != input { output.update(from: input, count: count) }
    }
    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws {}
    public func barrier() throws {}
    /// There is no other rank: always throws `invalidArgument`.
    public func send(_ message: UnsafeRawBufferPointer, to peer: Int, tag: Int) throws {
        try validatePeer(peer, tag: tag, operation: "send")
    }
    /// There is no other rank: always throws `invalidArgument`.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, from peer: Int, tag: Int, timeout: Double?) throws -> Int {
        try validatePeer(peer, tag: tag, operation: "receive")
        return 0  // invariant: unreachable, validatePeer throws for every peer of a one-rank group
    }
}
