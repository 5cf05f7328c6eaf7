#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An immutable hash table from byte strings to token ids, looked up by pointer and length so
/// the encoders' inner loops never build a `String` or an `Array` to ask "is this a token?".
///
/// Keys live back to back in one byte arena; the table uses open addressing with linear probing
/// at a load factor of at most 1/2. Each slot keeps 32 bits of the key's hash next to the entry
/// number, so a probe that meets another key almost never touches the arena. When a key is
/// inserted twice the later id wins, as in llama.cpp's `token_to_id` map and in a JSON object
/// read in order.
struct ByteStringTable: Sendable {
    private var arena: [UInt8] = []
    private var keyStart: [Int32] = []
    private var keyLength: [Int32] = []
    private var values: [Int32] = []
    /// Slot -> (hash high 32 bits << 32) | (entry index + 1); 0 is empty.
    private var slots: [UInt64]
    private var mask: Int

    /// Makes an empty table sized for `capacity` keys.
    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [UInt64](repeating: 0, count: size)
        mask = size - 1
        arena.reserveCapacity(capacity * 8)
        keyStart.reserveCapacity(capacity)
        keyLength.reserveCapacity(capacity)
        values.reserveCapacity(capacity)
    }

    /// Number of distinct keys.
    var count: Int { values.count }

    /// A 64-bit hash, eight bytes per multiply (token strings are short, so speed matters more
    /// than the last bit of distribution quality).
    @inline(__always)
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        let count = bytes.count
        var value: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: count)
        guard let base = bytes.baseAddress else { return value }
        let raw = UnsafeRawPointer(base)
        var index = 0
        while index + 8 <= count {
            let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            value = (value ^ word) &* 0xBF58_476D_1CE4_E5B9
            value ^= value >> 31
            index += 8
        }
        if index < count {
            var word: UInt64 = 0
            var shift: UInt64 = 0
            while index < count {
                word |= UInt64(base[index]) << shift
                shift += 8
                index += 1
            }
            value = (value ^ word) &* 0x94D0_49BB_1331_11EB
        }
        value ^= value >> 29
        value = value &* 0xBF58_476D_1CE4_E5B9
        value ^= value >> 32
        return value
    }

    /// Inserts or replaces a key.
    mutating func insert(_ key: some Collection<UInt8>, value: Int32) {
        let bytes = Array(key)
        bytes.withUnsafeBufferPointer { insert($0, value: value) }
    }

    /// Inserts or replaces a key given as a buffer.
    mutating func insert(_ key: UnsafeBufferPointer<UInt8>, value: Int32) {
        if (values.count + 1) * 2 > slots.count { grow() }
        let hashValue = Self.hash(key)
        let tag = hashValue & 0xFFFF_FFFF_0000_0000
        var slot = Int(truncatingIfNeeded: hashValue) & mask
        while true {
            let packed = slots[slot]
            if packed == 0 {
                keyStart.append(Int32(arena.count))
                keyLength.append(Int32(key.count))
                arena.append(contentsOf: key)
                values.append(value)
                slots[slot] = tag | UInt64(values.count)
                return
            }
            let entry = Int(packed & 0xFFFF_FFFF) - 1
            if packed & 0xFFFF_FFFF_0000_0000 == tag && equals(entry, key) {
                values[entry] = value
                return
            }
            slot = (slot + 1) & mask
        }
    }

    private mutating func grow() {
        let newSize = slots.count * 2
        slots = [UInt64](repeating: 0, count: newSize)
        mask = newSize - 1
        for entry in 0..<values.count {
            let start = Int(keyStart[entry])
            let length = Int(keyLength[entry])
            let hashValue = arena.withUnsafeBufferPointer {
                Self.hash(UnsafeBufferPointer(rebasing: $0[start..<start + length]))
            }
            var slot = Int(truncatingIfNeeded: hashValue) & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = (hashValue & 0xFFFF_FFFF_0000_0000) | UInt64(entry + 1)
        }
    }

    @inline(__always)
    private func equals(_ entry: Int, _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        let length = Int(keyLength[entry])
        guard length == key.count else { return false }
        if length == 0 { return true }
        let start = Int(keyStart[entry])
        return arena.withUnsafeBufferPointer { arenaBytes in
            memcmp(arenaBytes.baseAddress! + start, key.baseAddress!, length) == 0  // invariant: length > 0
        }
    }

    /// The id of a key, or nil.
    @inline(__always)
    func lookup(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        let hashValue = Self.hash(key)
        let tag = hashValue & 0xFFFF_FFFF_0000_0000
        var slot = Int(truncatingIfNeeded: hashValue) & mask
        return slots.withUnsafeBufferPointer { slots in
            while true {
                let packed = slots[slot]
                if packed == 0 { return nil }
                if packed & 0xFFFF_FFFF_0000_0000 == tag {
                    let entry = Int(packed & 0xFFFF_FFFF) - 1
                    if equals(entry, key) { return values[entry] }
                }
                slot = (slot + 1) & mask
            }
        }
    }

    /// The id of a key given as any byte collection (convenience for cold paths).
    func lookup(_ key: some Collection<UInt8>) -> Int32? {
        let bytes = Array(key)
        return bytes.withUnsafeBufferPointer { lookup($0) }
    }
}
