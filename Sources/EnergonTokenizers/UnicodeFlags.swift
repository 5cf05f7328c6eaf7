/// Per-code-point character classes that pre-tokenizer regexes test (`\p{L}`, `\p{N}`, `\s`, ...).
///
/// The classes come from `Unicode.Scalar.Properties` (general category and White_Space), looked up
/// once per Basic Multilingual Plane code point into a 64 KiB table so the hot splitting loops do
/// one array load per character; astral code points (emoji, rare CJK) are classified on the fly.
struct UnicodeFlags: OptionSet, Sendable {
    let rawValue: UInt8

    /// `\p{L}`: Lu, Ll, Lt, Lm, Lo.
    static let letter = UnicodeFlags(rawValue: 1 << 0)
    /// `\p{N}`: Nd, Nl, No.
    static let number = UnicodeFlags(rawValue: 1 << 1)
    /// `\p{P}`: Pc, Pd, Ps, Pe, Pi, Pf, Po.
    static let punctuation = UnicodeFlags(rawValue: 1 << 2)
    /// `\p{S}`: Sm, Sc, Sk, So.
    static let symbol = UnicodeFlags(rawValue: 1 << 3)
    /// `\p{M}`: Mn, Mc, Me.
    static let mark = UnicodeFlags(rawValue: 1 << 4)
    /// `\s`: the White_Space property (the set llama.cpp and Rust's regex use).
    static let whitespace = UnicodeFlags(rawValue: 1 << 5)
    /// `\p{C}` (Cc, Cf, Cs, Co) and `\p{Z}` separators: assigned, but none of the above.
    static let other = UnicodeFlags(rawValue: 1 << 6)
    /// Cn: unassigned code points.
    static let unassigned = UnicodeFlags(rawValue: 1 << 7)

    /// The flags of one code point; code points above U+10FFFF (never produced by decoding) get none.
    @inline(__always)
    static func of(_ codePoint: UInt32) -> UnicodeFlags {
        if codePoint < 0x1_0000 {
            return UnicodeFlags(rawValue: basicPlaneTable[Int(codePoint)])
        }
        return compute(codePoint)
    }

    /// Flags of the Basic Multilingual Plane, built on first use.
    private static let basicPlaneTable: [UInt8] = (0..<0x1_0000).map { compute(UInt32($0)).rawValue }

    private static func compute(_ codePoint: UInt32) -> UnicodeFlags {
        guard let scalar = Unicode.Scalar(codePoint) else {
            // Surrogate code points never come out of UTF-8 decoding; classify them as Cs.
            return (0xD800...0xDFFF).contains(codePoint) ? .other : []
        }
        let properties = scalar.properties
        var flags: UnicodeFlags = properties.isWhitespace ? .whitespace : []
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            flags.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber:
            flags.insert(.number)
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            flags.insert(.punctuation)
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            flags.insert(.symbol)
        case .nonspacingMark, .spacingMark, .enclosingMark:
            flags.insert(.mark)
        case .unassigned:
            flags.insert(.unassigned)
        default:
            flags.insert(.other)
        }
        return flags
    }
}

/// UTF-8 decoding into code points with the byte offset of each, replacing malformed bytes with
/// U+FFFD one byte at a time (as llama.cpp's `unicode_cpts_from_utf8` does).
struct CodePoints {
    /// The code points.
    var values: [UInt32] = []
    /// `offsets[i]` is the byte offset of `values[i]`; `offsets[count]` is the byte count.
    var offsets: [Int32] = []

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        values.reserveCapacity(bytes.count)
        offsets.reserveCapacity(bytes.count + 1)
        var index = 0
        let count = bytes.count
        while index < count {
            offsets.append(Int32(index))
            let lead = bytes[index]
            if lead < 0x80 {
                values.append(UInt32(lead))
                index += 1
                continue
            }
            let (value, length) = Self.decodeMultibyte(bytes, at: index)
            values.append(value)
            index += length
        }
        offsets.append(Int32(count))
    }

    var count: Int { values.count }

    /// Decodes a multi-byte sequence at `index`; a malformed one yields (U+FFFD, 1), following
    /// llama.cpp's lenient decoder (it does not reject overlong forms or surrogates).
    @inline(__always)
    static func decodeMultibyte(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> (UInt32, Int) {
        let lead = UInt32(bytes[index])
        let count = bytes.count
        @inline(__always) func continuation(_ offset: Int) -> UInt32? {
            guard index + offset < count else { return nil }
            let byte = bytes[index + offset]
            return byte & 0xC0 == 0x80 ? UInt32(byte & 0x3F) : nil
        }
        if lead & 0x40 == 0 { return (0xFFFD, 1) }
        if lead & 0x20 == 0 {
            guard let c1 = continuation(1) else { return (0xFFFD, 1) }
            return (((lead & 0x1F) << 6) | c1, 2)
        }
        if lead & 0x10 == 0 {
            guard let c1 = continuation(1), let c2 = continuation(2) else { return (0xFFFD, 1) }
            return (((lead & 0x0F) << 12) | (c1 << 6) | c2, 3)
        }
        if lead & 0x08 == 0 {
            guard let c1 = continuation(1), let c2 = continuation(2), let c3 = continuation(3) else {
                return (0xFFFD, 1)
            }
            return (((lead & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3, 4)
        }
        return (0xFFFD, 1)
    }
}

/// Appends the UTF-8 encoding of a code point (any value up to U+10FFFF, surrogates included, as
/// llama.cpp's `unicode_cpt_to_utf8` does).
@inline(__always)
func appendUTF8(_ codePoint: UInt32, to bytes: inout [UInt8]) {
    switch codePoint {
    case 0..<0x80:
        bytes.append(UInt8(codePoint))
    case 0x80..<0x800:
        bytes.append(UInt8(0xC0 | (codePoint >> 6)))
        bytes.append(UInt8(0x80 | (codePoint & 0x3F)))
    case 0x800..<0x1_0000:
        bytes.append(UInt8(0xE0 | (codePoint >> 12)))
        bytes.append(UInt8(0x80 | ((codePoint >> 6) & 0x3F)))
        bytes.append(UInt8(0x80 | (codePoint & 0x3F)))
    default:
        bytes.append(UInt8(0xF0 | ((codePoint >> 18) & 0x07)))
        bytes.append(UInt8(0x80 | ((codePoint >> 12) & 0x3F)))
        bytes.append(UInt8(0x80 | ((codePoint >> 6) & 0x3F)))
        bytes.append(UInt8(0x80 | (codePoint & 0x3F)))
    }
}
