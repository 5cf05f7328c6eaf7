/// GPT-2's byte-to-character table: byte-level BPE vocabularies spell every raw byte as one
/// printable character (`Ġ` for a space, `Ċ` for a newline), so that merges operate on text.
enum ByteLevelAlphabet {
    /// `character[byte]`: the code point that stands for a byte.
    static let character: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var printable = [Bool](repeating: false, count: 256)
        for byte in 0x21...0x7E { printable[byte] = true }
        for byte in 0xA1...0xAC { printable[byte] = true }
        for byte in 0xAE...0xFF { printable[byte] = true }
        var next: UInt32 = 256
        for byte in 0..<256 {
            if printable[byte] {
                table[byte] = UInt32(byte)
            } else {
                table[byte] = next
                next += 1
            }
        }
        return table
    }()

    /// The UTF-8 encoding of `character[byte]`.
    static let characterUTF8: [[UInt8]] = character.map { codePoint in
        var bytes: [UInt8] = []
        appendUTF8(codePoint, to: &bytes)
        return bytes
    }

    /// The byte a code point stands for, or nil if it is not in the alphabet.
    static func byte(for codePoint: UInt32) -> UInt8? {
        if codePoint < 0x144, let value = reverse[Int(codePoint)] { return value }
        return nil
    }

    private static let reverse: [UInt8?] = {
        var table = [UInt8?](repeating: nil, count: 0x144)
        for byte in 0..<256 { table[Int(character[byte])] = UInt8(byte) }
        return table
    }()

    /// Decodes a vocabulary string of alphabet characters into raw bytes; nil if any character
    /// is outside the alphabet.
    static func decode(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            guard let byte = byte(for: scalar.value) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// Encodes raw bytes as alphabet characters.
    static func encode(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var output: [UInt8] = []
        for byte in bytes { output.append(contentsOf: characterUTF8[Int(byte)]) }
        return output
    }
}

extension String {
    /// Replaces every occurrence of `target` by `replacement`, matching UTF-8 bytes (not
    /// `Character`s: `"▁\u{200D}"` is one grapheme but holds a `▁` that must be replaced).
    func replacingBytes(_ target: String, with replacement: String) -> String {
        let source = Array(utf8), pattern = Array(target.utf8), substitute = Array(replacement.utf8)
        guard !pattern.isEmpty, source.count >= pattern.count else { return self }
        var output: [UInt8] = []
        output.reserveCapacity(source.count)
        var index = 0
        while index < source.count {
            if source[index] == pattern[0], index + pattern.count <= source.count,
               source[index..<index + pattern.count].elementsEqual(pattern) {
                output += substitute
                index += pattern.count
            } else {
                output.append(source[index])
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
