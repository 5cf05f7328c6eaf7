/// One GGUF metadata value, with the thirteen value types of the GGUF specification.
///
/// Arrays hold elements of a single type (the file stores one element type per array) and may
/// nest. The typed accessors convert between compatible representations so model code can ask
/// for "an integer" without caring whether the converter wrote `uint32` or `int64`.
public enum GGUFValue: Sendable, Equatable {
    /// GGUF type 0, `u8`.
    case uint8(UInt8)
    /// GGUF type 1, `i8`.
    case int8(Int8)
    /// GGUF type 2, `u16`.
    case uint16(UInt16)
    /// GGUF type 3, `i16`.
    case int16(Int16)
    /// GGUF type 4, `u32`.
    case uint32(UInt32)
    /// GGUF type 5, `i32`.
    case int32(Int32)
    /// GGUF type 6, `f32`.
    case float32(Float)
    /// GGUF type 7, one byte holding 0 or 1.
    case bool(Bool)
    /// GGUF type 8, length-prefixed UTF-8.
    case string(String)
    /// GGUF type 9, elements of one type (arrays may nest).
    case array([GGUFValue])
    /// GGUF type 10, `u64`.
    case uint64(UInt64)
    /// GGUF type 11, `i64`.
    case int64(Int64)
    /// GGUF type 12, `f64`.
    case float64(Double)

    /// The GGUF type id of this value (`GGUF_TYPE_*`).
    public var typeID: UInt32 {
        switch self {
        case .uint8: 0
        case .int8: 1
        case .uint16: 2
        case .int16: 3
        case .uint32: 4
        case .int32: 5
        case .float32: 6
        case .bool: 7
        case .string: 8
        case .array: 9
        case .uint64: 10
        case .int64: 11
        case .float64: 12
        }
    }

    /// The GGUF name of a value type id (`u32`, `str`, `arr`, ...), or `nil` for an unknown id.
    public static func typeName(_ typeID: UInt32) -> String? {
        switch typeID {
        case 0: "u8"
        case 1: "i8"
        case 2: "u16"
        case 3: "i16"
        case 4: "u32"
        case 5: "i32"
        case 6: "f32"
        case 7: "bool"
        case 8: "str"
        case 9: "arr"
        case 10: "u64"
        case 11: "i64"
        case 12: "f64"
        default: nil
        }
    }

    /// The value as an `Int` if it is an integer that fits (booleans are not integers).
    public var int: Int? {
        switch self {
        case let .uint8(value): Int(value)
        case let .int8(value): Int(value)
        case let .uint16(value): Int(value)
        case let .int16(value): Int(value)
        case let .uint32(value): Int(value)
        case let .int32(value): Int(value)
        case let .uint64(value): Int(exactly: value)
        case let .int64(value): Int(exactly: value)
        default: nil
        }
    }

    /// The value as a `Float` if it is a float, or an integer (converters disagree on which they write).
    public var float: Float? {
        switch self {
        case let .float32(value): value
        case let .float64(value): Float(value)
        default: int.map { Float($0) }
        }
    }

    /// The value as a `Double` if it is a float or an integer.
    public var double: Double? {
        switch self {
        case let .float32(value): Double(value)
        case let .float64(value): value
        default: int.map { Double($0) }
        }
    }

    /// The value if it is a string.
    public var string: String? {
        if case let .string(value) = self { return value }
        return nil
    }

    /// The value if it is a boolean.
    public var bool: Bool? {
        if case let .bool(value) = self { return value }
        return nil
    }

    /// The elements if the value is an array.
    public var array: [GGUFValue]? {
        if case let .array(value) = self { return value }
        return nil
    }

    /// The elements if the value is an array of strings.
    public var strings: [String]? {
        guard case let .array(elements) = self else { return nil }
        var result: [String] = []
        result.reserveCapacity(elements.count)
        for element in elements {
            guard case let .string(value) = element else { return nil }
            result.append(value)
        }
        return result
    }

    /// The elements as `Float`s if the value is an array of numbers.
    public var floats: [Float]? {
        guard case let .array(elements) = self else { return nil }
        var result: [Float] = []
        result.reserveCapacity(elements.count)
        for element in elements {
            guard let value = element.float else { return nil }
            result.append(value)
        }
        return result
    }

    /// The elements as `Int`s if the value is an array of integers that fit.
    public var ints: [Int]? {
        guard case let .array(elements) = self else { return nil }
        var result: [Int] = []
        result.reserveCapacity(elements.count)
        for element in elements {
            guard let value = element.int else { return nil }
            result.append(value)
        }
        return result
    }

    /// A short human-readable rendering; arrays longer than `limit` show their first elements and a count.
    public func summary(limit: Int = 8) -> String {
        switch self {
        case let .uint8(value): return String(value)
        case let .int8(value): return String(value)
        case let .uint16(value): return String(value)
        case let .int16(value): return String(value)
        case let .uint32(value): return String(value)
        case let .int32(value): return String(value)
        case let .uint64(value): return String(value)
        case let .int64(value): return String(value)
        case let .float32(value): return String(value)
        case let .float64(value): return String(value)
        case let .bool(value): return String(value)
        case let .string(value): return GGUFValue.quote(value, limit: 120)
        case let .array(elements):
            let shown = elements.prefix(limit).map { $0.summary(limit: limit) }.joined(separator: ", ")
            if elements.count > limit {
                return "[\(shown), ... (\(elements.count) elements)]"
            }
            return "[\(shown)]"
        }
    }

    /// Quotes a string for display, escaping control characters and shortening long text.
    static func quote(_ text: String, limit: Int) -> String {
        var result = "\""
        var shown = 0
        for scalar in text.unicodeScalars {
            if shown >= limit {
                result += "...(\(text.unicodeScalars.count) characters)"
                break
            }
            switch scalar {
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            default:
                if scalar.value < 0x20 {
                    result += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
            shown += 1
        }
        return result + "\""
    }
}
