// swift-tools-version:6.0
// cpiscope: mechanistic analysis of instruction-finetuning trajectories.
// Targets are grouped: C shims, library modules (dependencies run one way, ops -> command), tests.
import PackageDescription

let package = Package(
    name: "cpiscope",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "cpiscope", targets: ["cpiscope"]),
        .library(name: "CPIScope", targets: ["StrictJSON", "TensorCore", "Checkpoints", "Tokenization", "Models",
                                             "Instrumentation", "ProbeKit", "TrajectoryJob", "ProbeRun", "Analysis", "HDF5Store", "Reports", "Criticality",
                                             "ChatTemplate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: C shims (not public API; see each README)
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // oneDNN (bf16 matrix products): Debian's libdnnl-dev ships no pkg-config file; the module map links it.
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"])]),
        // bf16 products for few rows (decoding steps) with AVX512-BF16, behind a runtime CPU check.
        .target(name: "CBF16Kernel", path: "Sources/CBF16Kernel"),
        .target(name: "HDF5Shim", dependencies: ["CHDF5"], path: "Sources/HDF5Shim",
                linkerSettings: [.linkedLibrary("hdf5_hl")]),  // pkg-config hdf5 gives only -lhdf5

        // MARK: library modules
        .target(name: "StrictJSON"),  // the one JSON reader (and string escaper) for untrusted files; a leaf
        .target(name: "TensorCore", dependencies: ["CBLAS", "CDNNL", "CBF16Kernel"]),
        .target(name: "SHA256Kernel", path: "Sources/SHA256Kernel"),  // SHA extensions, with a runtime check
        .target(name: "Checkpoints", dependencies: ["StrictJSON", "TensorCore", "SHA256Kernel"]),
        .target(name: "Tokenization", dependencies: ["StrictJSON"]),
        .target(name: "Instrumentation", dependencies: ["TensorCore"]),
        .target(name: "Models", dependencies: ["TensorCore", "Checkpoints", "Instrumentation"]),
        .target(name: "ProbeKit", dependencies: ["StrictJSON"]),
        .target(name: "ChatTemplate", dependencies: ["StrictJSON"]),  // Jinja chat templates, as transformers renders them
        .target(name: "HDF5Store", dependencies: ["HDF5Shim"]),
        .target(name: "Analysis", dependencies: ["HDF5Store"]),
        .target(name: "Reports", dependencies: ["Analysis"]),
        // The job layer under every trajectory job: settings, checks, shards, common attributes, the checkpoint loop.
        .target(name: "TrajectoryJob", dependencies: ["Checkpoints", "Models", "Tokenization", "HDF5Store", "TensorCore"]),
        .target(name: "ProbeRun", dependencies: ["TrajectoryJob", "Checkpoints", "Models", "Instrumentation", "ProbeKit", "ChatTemplate",
                                                 "Tokenization", "HDF5Store", "TensorCore"]),
        .target(name: "Criticality", dependencies: ["StrictJSON", "ChatTemplate", "Checkpoints", "Models", "Tokenization", "HDF5Store", "Analysis", "TrajectoryJob", "TensorCore"]),
        .executableTarget(name: "cpiscope", dependencies: [
            "StrictJSON", "TensorCore", "Checkpoints", "Tokenization", "Models", "Instrumentation",
            "ProbeKit", "ChatTemplate", "HDF5Store", "Analysis", "Reports", "TrajectoryJob", "ProbeRun", "Criticality",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Fuzz harness over the parsers of untrusted files (.ci/fuzz.sh builds it with libFuzzer).
        .executableTarget(name: "cpiscope-fuzz", dependencies: ["Checkpoints", "Models", "TensorCore", "Tokenization", "ProbeKit", "Criticality",
                                                               "ChatTemplate"],
                          path: "Sources/FuzzHarness"),

        // MARK: tests (one target per module; fixtures live beside them)
        .testTarget(name: "StrictJSONTests", dependencies: ["StrictJSON"]),
        .target(name: "NumericTolerance", path: "Tests/NumericTolerance"),  // test support: tolerances from the arithmetic
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "NumericTolerance"]),
        .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "StrictJSON", "TensorCore", "SHA256Kernel"]),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization", "StrictJSON"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Checkpoints", "TensorCore", "Instrumentation"]),
        .testTarget(name: "HDF5StoreTests", dependencies: ["HDF5Store"]),
        .testTarget(name: "ProbeKitTests", dependencies: ["ProbeKit", "Tokenization", "StrictJSON"]),
        .testTarget(name: "ChatTemplateTests", dependencies: ["ChatTemplate", "StrictJSON"]),
        .testTarget(name: "TrajectoryJobTests", dependencies: ["TrajectoryJob", "Checkpoints", "HDF5Store"]),
        .testTarget(name: "ProbeRunTests", dependencies: ["ProbeRun", "TrajectoryJob", "Models", "Checkpoints", "ProbeKit", "ChatTemplate",
                                                          "Tokenization", "Instrumentation", "HDF5Store", "TensorCore"]),
        .target(name: "SyntheticRuns", dependencies: ["Analysis", "HDF5Store"], path: "Tests/SyntheticRuns"),  // test support
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis", "HDF5Store", "SyntheticRuns"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Analysis", "HDF5Store", "SyntheticRuns"]),
        .testTarget(name: "CriticalityTests", dependencies: ["Criticality", "TrajectoryJob", "ChatTemplate", "Analysis", "ProbeRun", "Models", "Checkpoints", "Tokenization", "HDF5Store", "StrictJSON"]),
        .testTarget(name: "CLITests", dependencies: ["ProbeRun"]),  // ProbeRun only for ProbeSettings (ResumeIntegrityTests)
    ],
    swiftLanguageModes: [.v6]
)
