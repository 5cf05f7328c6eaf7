/// An immutable hash table from byte strings to token ids, looked up by pointer and length so
/// the encoders' inner loops never build a `String` or an `Array` to ask "is this a token?".
///
/// Keys live back to back in one byte arena; the table uses open addressing with linear probing
/// at a load factor of at most 1/2. When a key is inserted twice the later id wins, as in
/// llama.cpp's `token_to_id` map and in a JSON object read in order.
struct ByteStringTable: Sendable {
    private var arena: [UInt8] = []
    private var keyStart: [Int32] = []
    private var keyLength: [Int32] = []
    private var values: [Int32] = []
    /// Slot -> entry index + 1 (0 is empty).
    private var slots: [Int32]
    private var mask: Int

    /// Makes an empty table sized for `capacity` keys.
    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: 0, count: size)
        mask = size - 1
        arena.reserveCapacity(capacity * 8)
        keyStart.reserveCapacity(capacity)
        keyLength.reserveCapacity(capacity)
        values.reserveCapacity(capacity)
    }

    /// Number of distinct keys.
    var count: Int { values.count }

    @inline(__always)
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        // FNV-1a, then a final avalanche: short keys (1-8 bytes) dominate.
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        value ^= value >> 29
        value = value &* 0xbf58_476d_1ce4_e5b9
        value ^= value >> 32
        return Int(truncatingIfNeeded: value)
    }

    /// Inserts or replaces a key.
    mutating func insert(_ key: some Collection<UInt8>, value: Int32) {
        let bytes = Array(key)
        bytes.withUnsafeBufferPointer { insert($0, value: value) }
    }

    /// Inserts or replaces a key given as a buffer.
    mutating func insert(_ key: UnsafeBufferPointer<UInt8>, value: Int32) {
        if (values.count + 1) * 2 > slots.count { grow() }
        var slot = Self.hash(key) & mask
        while true {
            let entry = Int(slots[slot])
            if entry == 0 {
                keyStart.append(Int32(arena.count))
                keyLength.append(Int32(key.count))
                arena.append(contentsOf: key)
                values.append(value)
                slots[slot] = Int32(values.count)
                return
            }
            if equals(entry - 1, key) {
                values[entry - 1] = value
                return
            }
            slot = (slot + 1) & mask
        }
    }

    private mutating func grow() {
        let newSize = slots.count * 2
        slots = [Int32](repeating: 0, count: newSize)
        mask = newSize - 1
        for entry in 0..<values.count {
            let start = Int(keyStart[entry])
            let length = Int(keyLength[entry])
            let hashValue = arena.withUnsafeBufferPointer {
                Self.hash(UnsafeBufferPointer(rebasing: $0[start..<start + length]))
            }
            var slot = hashValue & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(entry + 1)
        }
    }

    @inline(__always)
    private func equals(_ entry: Int, _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        let length = Int(keyLength[entry])
        guard length == key.count else { return false }
        let start = Int(keyStart[entry])
        return arena.withUnsafeBufferPointer { arenaBytes in
            var index = 0
            while index < length {
                if arenaBytes[start + index] != key[index] { return false }
                index += 1
            }
            return true
        }
    }

    /// The id of a key, or nil.
    @inline(__always)
    func lookup(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        var slot = Self.hash(key) & mask
        while true {
            let entry = Int(slots[slot])
            if entry == 0 { return nil }
            if equals(entry - 1, key) { return values[entry - 1] }
            slot = (slot + 1) & mask
        }
    }

    /// The id of a key given as any byte collection (convenience for cold paths).
    func lookup(_ key: some Collection<UInt8>) -> Int32? {
        let bytes = Array(key)
        return bytes.withUnsafeBufferPointer { lookup($0) }
    }
}
