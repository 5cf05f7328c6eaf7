import CEnergonKernels

/// The instruction-set level kernels run at. Chosen once at start-up from the CPU; tests (and
/// `ENERGON_ISA=portable|avx2|avx512`) may force a lower level to check every path.
public enum ISA: Int, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    case portable = 0
    case avx2 = 1
    case avx512 = 2

    /// The best level this CPU supports.
    public static let best: ISA = ISA(rawValue: Int(energon_cpu_best_isa().rawValue)) ?? .portable

    /// Every level this CPU can run, lowest first.
    public static var available: [ISA] { allCases.filter { $0 <= best } }

    public static func < (lhs: ISA, rhs: ISA) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .portable: "portable"
        case .avx2: "avx2"
        case .avx512: "avx512"
        }
    }

    /// Parses `portable`, `avx2` or `avx512`.
    public init?(name: String) {
        guard let match = ISA.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = match
    }

    /// The C enum value of this level.
    public var cValue: energon_isa { energon_isa(rawValue: UInt32(rawValue)) }
}
