import CEnergonKernels
import Synchronization

/// Where tensors that own their bytes (weight copies, packed weights, converted checkpoints)
/// keep them: on transparent huge pages.
///
/// A decode step streams every weight once, and on 4 KiB pages every page of the stream costs a
/// TLB miss and a page walk; one core of this machine reads about 41 GB/s from huge pages against
/// 35 GB/s from small anonymous pages and 31 GB/s from the page cache. Huge pages are 2 MiB, so
/// the many small weights of a model (SmolLM2's attention matrices are 0.4–1.3 MiB) are packed
/// one after another into shared 32 MiB chunks; large ones get their own mapping. A chunk is
/// freed when the last tensor in it goes (and it is no longer the one being filled).
enum WeightMemory {
    /// Allocations at least this large get their own mapping.
    static let ownMappingBytes = 8 << 20
    /// Size of a shared chunk.
    static let chunkBytes = 32 << 20

    /// Memory from `energon_alloc_weights`, unmapped when the last holder lets go.
    final class Region: @unchecked Sendable {
        let base: UnsafeMutableRawPointer
        let capacity: Int
        /// Bytes handed out so far (chunks only; guarded by `WeightMemory.current`'s mutex).
        var used = 0

        init(capacity: Int) {
            guard let base = energon_alloc_weights(capacity) else {
                preconditionFailure("out of memory allocating \(capacity) bytes for tensors")  // invariant: like any allocation
            }
            self.base = base
            self.capacity = capacity
        }

        deinit { energon_free_weights(base, capacity) }
    }

    /// The chunk small allocations are cut from.
    private static let current = Mutex<Region?>(nil)

    /// `bytes` zeroed bytes, 64-byte aligned, and the object whose lifetime keeps them mapped.
    static func allocate(_ bytes: Int) -> (UnsafeMutableRawPointer, AnyObject) {
        let size = max(bytes, 1)
        if size >= ownMappingBytes {
            let region = Region(capacity: size)
            return (region.base, region)
        }
        let rounded = (size + 63) & ~63
        return current.withLock { chunk in
            if chunk == nil || chunk!.used + rounded > chunk!.capacity {  // invariant: checked non-nil first
                chunk = Region(capacity: chunkBytes)
            }
            let region = chunk!  // invariant: set just above
            let start = region.base + region.used
            region.used += rounded
            // Memory is never reused within a chunk, so it is still the zeroes the mapping came with.
            return (start, region)
        }
    }
}
