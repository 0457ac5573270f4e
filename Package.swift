// swift-tools-version:6.0
// mml: few-shot image recognition by multi-level metric learning.
// This file is the table of contents: system libraries, the two C targets, the Swift engine, its MPI
// process group, the command-line tool, the C ABI (libmmlc), the benchmark executable and one test target per
// source target.
import PackageDescription

let package = Package(
    name: "mml",
    products: [
        .library(name: "MMLCore", targets: ["MMLCore"]),
        .library(name: "MMLKernels", targets: ["MMLKernels"]),
        .executable(name: "mml", targets: ["mml"]),
        .executable(name: "mml-bench", targets: ["mml-bench"]),
        // The C ABI: libmmlc.so with the one header Sources/MMLCAPI/include/mml.h (the Python package loads it).
        .library(name: "mmlc", type: .dynamic, targets: ["MMLCAPI"]),
    ],
    dependencies: [
        // Only the command-line tool uses it; MMLCore and MMLKernels have no package dependencies.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Debian system libraries, found through pkg-config.
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        .systemLibrary(name: "CLibJPEG", path: "Sources/CLibJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CLibPNG", path: "Sources/CLibPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        // Open MPI (Debian's), for data-parallel training under mpirun; only MMLDistributed imports it.
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),

        // C kernels over OpenBLAS + LAPACKE, one folder per family (common, topk, gauss, nn, conv) with one public
        // header each under include/ (MMLKernels.h is the umbrella). Every family reaches common/'s parallel-for,
        // and conv/ the layer internals of nn/, through the two header search paths.
        .target(name: "MMLKernels", dependencies: ["COpenBLAS"],
                cSettings: [.headerSearchPath("common"), .headerSearchPath("nn")],
                linkerSettings: [.linkedLibrary("openblas"), .linkedLibrary("lapacke"), .linkedLibrary("m"),
                                 .linkedLibrary("pthread")]),
        // C image decoding over libjpeg-turbo and libpng, with setjmp-based error recovery.
        .target(name: "MMLImageIO", dependencies: ["CLibJPEG", "CLibPNG"],
                linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]),

        // The Swift engine: tensors, layers, backbones, metrics, data, training, evaluation, IO.
        .target(name: "MMLCore", dependencies: ["MMLKernels", "MMLImageIO", "COpenBLAS"]),

        // MMLCore's ProcessGroup over MPI (the core itself knows nothing of MPI).
        .target(name: "MMLDistributed", dependencies: ["MMLCore", "CMPI"]),

        // The command-line tool.
        .executableTarget(name: "mml", dependencies: [
            "MMLCore", "MMLDistributed", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The C ABI, a thin front end over MMLCore (`@_cdecl` functions declared in include/mml.h).
        .target(name: "MMLCAPI", dependencies: ["MMLCore"], exclude: ["include"]),
        // Benchmarks: `swift run -c release mml-bench <section> [--json]`.
        .executableTarget(name: "mml-bench", dependencies: ["MMLCore", "MMLKernels", "COpenBLAS"],
                          path: "Benchmarks/mml-bench"),

        // What every test target shares (seeded generator, tolerances, temporary directories, finite differences);
        // a plain library target of the tests, not a product.
        .target(name: "MMLTestSupport", dependencies: ["MMLCore", "MMLKernels"], path: "Tests/MMLTestSupport"),
        .testTarget(name: "MMLKernelsTests", dependencies: ["MMLKernels", "MMLTestSupport"]),
        .testTarget(name: "MMLCoreTests", dependencies: ["MMLCore", "MMLKernels", "MMLTestSupport"]),
        .testTarget(name: "mmlTests", dependencies: ["mml", "MMLCore", "MMLTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
