// swift-tools-version: 6.1
// Energon: a Swift inference system for large transformer language models on CPUs
// (after EnergonAI, 2022). See ../shared/ARCHITECTURE.md (design) and README.md (usage).
import PackageDescription

let package = Package(
    name: "Energon",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "EnergonCore", targets: ["EnergonCore"]),
        .library(name: "EnergonCheckpoint", targets: ["EnergonCheckpoint"]),
        .library(name: "EnergonTokenizers", targets: ["EnergonTokenizers"]),
        .library(name: "EnergonDistributed", targets: ["EnergonDistributed"]),
        .library(name: "EnergonModels", targets: ["EnergonModels"]),
        .library(name: "EnergonEngine", targets: ["EnergonEngine"]),
        .library(name: "Energon", targets: ["Energon"]),
        .executable(name: "energon", targets: ["energon"]),
    ],
    traits: [
        .trait(name: "MPI", description: "Multi-process tensor/pipeline parallelism over the system's OpenMPI"),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Hot SIMD micro-kernels. Each ISA-specific function carries its own
        // __attribute__((target(...))) and is picked at runtime, so no compiler flags are needed
        // and the package stays usable as a dependency.
        .target(name: "CEnergonKernels"),
        .target(name: "EnergonCore", dependencies: ["CEnergonKernels"]),
        .target(name: "EnergonCheckpoint", dependencies: ["EnergonCore"]),
        .target(name: "EnergonTokenizers", dependencies: ["EnergonCheckpoint"]),
        // OpenMPI, only with the `MPI` trait (`swift build --traits MPI`); the default build needs no MPI.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "EnergonDistributed", dependencies: [
            "EnergonCore", "CEnergonKernels", .target(name: "CMPI", condition: .when(traits: ["MPI"])),
        ]),
        .target(name: "EnergonModels", dependencies: ["EnergonCore", "EnergonCheckpoint", "EnergonTokenizers", "EnergonDistributed"]),
        .target(name: "EnergonEngine", dependencies: ["EnergonCore", "EnergonModels", "EnergonTokenizers"]),
        .target(name: "Energon", dependencies: ["EnergonCore", "EnergonCheckpoint", "EnergonTokenizers",
                                                "EnergonDistributed", "EnergonModels", "EnergonEngine"]),
        .executableTarget(
            name: "energon",
            dependencies: [
                "EnergonCore", "EnergonCheckpoint", "EnergonTokenizers", "EnergonModels", "EnergonEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "EnergonTestSupport", dependencies: ["EnergonCore", "EnergonCheckpoint"]),
        .testTarget(name: "EnergonCoreTests", dependencies: ["EnergonCore", "EnergonTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "EnergonCheckpointTests", dependencies: ["EnergonCheckpoint", "EnergonTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "EnergonTokenizersTests", dependencies: ["EnergonTokenizers", "EnergonCheckpoint", "EnergonTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "EnergonDistributedTests", dependencies: ["EnergonDistributed", "EnergonCore"]),
        .testTarget(name: "EnergonEngineTests", dependencies: ["Energon", "EnergonEngine", "EnergonModels", "EnergonCheckpoint", "EnergonTokenizers"]),
        .testTarget(name: "EnergonModelsTests", dependencies: ["EnergonModels", "EnergonEngine", "EnergonTestSupport"],
                    resources: [.copy("Fixtures")]),
    ]
)
