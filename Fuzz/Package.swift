// swift-tools-version:6.0
// libFuzzer targets for mml's file readers. A separate package so that the root package's `swift build` and
// `swift test` never build with the fuzzer runtime. Build and run with scripts/fuzz.sh, or:
//   swift build --package-path Fuzz -c debug -Xswiftc -sanitize=fuzzer,address --product mml-fuzz-npy
import PackageDescription

let package = Package(
    name: "mml-fuzz",
    dependencies: [.package(name: "mml", path: "..")],
    targets: [
        // Each target's @main hands the command line to libFuzzer's driver (LLVMFuzzerRunDriver).
        .executableTarget(name: "mml-fuzz-npy", dependencies: [.product(name: "MMLCore", package: "mml")]),
        .executableTarget(name: "mml-fuzz-safetensors", dependencies: [.product(name: "MMLCore", package: "mml")]),
    ],
    swiftLanguageModes: [.v5]
)
