import CEnergonKernels

/// Facts about the running build and CPU that every layer may print.
public enum EnergonInfo {
    /// The Energon version string.
    public static let version = "0.1.0"

    /// CPU features detected at start-up, e.g. "avx2 fma f16c avx512f avx512vnni".
    public static var cpuFeatures: String { String(cString: energon_cpu_feature_string()) }
}
