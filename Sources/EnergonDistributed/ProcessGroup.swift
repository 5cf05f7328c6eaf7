import EnergonCore

/// Errors of collective communication.
public enum CommunicationError: Error, CustomStringConvertible {
    /// A peer did not answer within the timeout.
    case timedOut(operation: String, rank: Int, seconds: Double)
    /// A peer left the group (its process died or it shut down).
    case peerFailed(rank: Int, reason: String)

    public var description: String {
        switch self {
        case let .timedOut(operation, rank, seconds):
            "\(operation) timed out after \(seconds) s waiting for rank \(rank)"
        case let .peerFailed(rank, reason):
            "rank \(rank) failed: \(reason)"
        }
    }
}

/// A group of ranks that run collectives together (a tensor-parallel group, or the pipeline).
///
/// Every rank of the group must call each collective in the same order with the same sizes.
/// Every wait has a timeout and fails with `CommunicationError` instead of hanging.
public protocol ProcessGroup: AnyObject, Sendable {
    /// This rank's index in the group.
    var rank: Int { get }
    /// Number of ranks in the group.
    var size: Int { get }
    /// Sums `count` floats element-wise across all ranks, in place; every rank gets the sum.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws
    /// Gathers `count` floats from every rank into `output` ([size, count], rank-major).
    func allGather(_ input: UnsafePointer<Float>, count: Int, output: UnsafeMutablePointer<Float>) throws
    /// Copies `count` floats from `root`'s buffer into every rank's buffer.
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws
    /// Returns once every rank has reached the barrier.
    func barrier() throws
}

/// The group of one rank: every collective is the identity. This is what a serial run uses, so
/// parallel layers collapse to plain layers with no communication.
public final class SingleRankGroup: ProcessGroup {
    /// The group of a serial run.
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {}
    public func allGather(_ input: UnsafePointer<Float>, count: Int, output: UnsafeMutablePointer<Float>) throws {
        if UnsafePointer(output) != input { output.update(from: input, count: count) }
    }
    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws {}
    public func barrier() throws {}
}
