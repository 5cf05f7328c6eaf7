/// Grow-only float buffers a model reuses across forward passes, so the hot path never
/// allocates. One set belongs to one worker.
public final class ActivationBuffers: @unchecked Sendable {
    /// The named buffers a decoder forward pass uses.
    public enum Name: Int, CaseIterable, Sendable {
        case hidden, normed, query, key, value, attention, projected, gate, up, mlp, logits, staging
    }

    private var pointers: [UnsafeMutablePointer<Float>?]
    private var capacities: [Int]

    public init() {
        pointers = Array(repeating: nil, count: Name.allCases.count)
        capacities = Array(repeating: 0, count: Name.allCases.count)
    }

    deinit {
        for pointer in pointers { pointer?.deallocate() }
    }

    /// A buffer of at least `count` floats; contents are kept when it does not grow.
    public func buffer(_ name: Name, count: Int) -> UnsafeMutablePointer<Float> {
        let index = name.rawValue
        if capacities[index] < count || pointers[index] == nil {
            let capacity = max(count, 16)
            let fresh = UnsafeMutablePointer<Float>.allocate(capacity: capacity)
            fresh.initialize(repeating: 0, count: capacity)
            if let old = pointers[index] {
                fresh.update(from: old, count: capacities[index])
                old.deallocate()
            }
            pointers[index] = fresh
            capacities[index] = capacity
        }
        return pointers[index]!  // invariant: allocated above
    }
}
