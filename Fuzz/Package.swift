// swift-tools-version:6.0
// libFuzzer targets for mml's file readers. A separate package so that the root package's `swift build` and
// `swift test` never build with the fuzzer runtime. Build and run with scripts/fuzz.sh, or:
//   swift build --package-path Fuzz -c debug -Xswiftc -sanitize=fuzzer,address --product mml-fuzz-npy
import PackageDescription

let package = Package(
    name: "mml-fuzz",
    dependencies: [.package(name: "mml", path: "..")],
    targets: [
        // The driver every target shares: their @main hands the command line to libFuzzer's driver
        // (LLVMFuzzerRunDriver), and a reader may only accept an input or throw an MMLError.
        .target(name: "FuzzSupport", dependencies: [.product(name: "MMLCore", package: "mml")]),
        .executableTarget(name: "mml-fuzz-npy", dependencies: ["FuzzSupport", .product(name: "MMLCore", package: "mml")]),
        .executableTarget(name: "mml-fuzz-safetensors",
                          dependencies: ["FuzzSupport", .product(name: "MMLCore", package: "mml")]),
        .executableTarget(name: "mml-fuzz-png", dependencies: ["FuzzSupport", .product(name: "MMLCore", package: "mml")]),
        .executableTarget(name: "mml-fuzz-jpeg", dependencies: ["FuzzSupport", .product(name: "MMLCore", package: "mml")]),
        .executableTarget(name: "mml-fuzz-csv", dependencies: ["FuzzSupport", .product(name: "MMLCore", package: "mml")]),
        .executableTarget(name: "mml-fuzz-episodes",
                          dependencies: ["FuzzSupport", .product(name: "MMLCore", package: "mml")]),
        .executableTarget(name: "mml-fuzz-checkpoint",
                          dependencies: ["FuzzSupport", .product(name: "MMLCore", package: "mml")]),
        // Writes the seed corpora of the image, CSV, episode-list and checkpoint targets with MMLCore's own writers.
        .executableTarget(name: "mml-fuzz-seeds", dependencies: [.product(name: "MMLCore", package: "mml")]),
    ],
    swiftLanguageModes: [.v5]
)
