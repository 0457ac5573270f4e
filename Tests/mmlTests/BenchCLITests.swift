import Foundation
import XCTest

/// `mml-bench`'s argument checking: help, unknown sections and options, a missing value. Runs the binary built
/// beside the test bundle (`swift build` builds it; `make test` does so first).
final class BenchCLITests: XCTestCase {
    private func runBench(_ arguments: [String]) throws -> (Int32, String, String) {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let binary = exe.deletingLastPathComponent().appendingPathComponent("mml-bench")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary.path),
                          "mml-bench is not built beside the tests (run swift build first)")
        let p = Process()
        p.executableURL = binary
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func testHelpListsEverySectionAndItsOptions() throws {
        let (code, out, _) = try runBench(["--help"])
        XCTAssertEqual(code, 0)
        for word in ["kernels [--quick]", "backbone [--kinds V --threads V --quick --forward-only --breakdown --size V --batch V --in-channels V]",
                     "data [--images V --repeats V --quick]", "episode [--episodes V --quick --breakdown]",
                     "peak [--threads V --quick]",
                     "conv [--threads V --batch V --first-layer]"] {
            XCTAssertTrue(out.contains(word), "'\(word)' missing from: \(out)")
        }
        let (code2, out2, _) = try runBench(["backbone", "-h"])
        XCTAssertEqual(code2, 0)
        XCTAssertEqual(out2, out)
    }

    func testBadArgumentsAreRefusedBeforeAnyMeasuring() throws {
        let cases: [([String], String)] = [
            ([], "the first argument must be a section"),
            (["speed"], "the first argument must be a section"),
            (["--json", "kernels"], "the first argument must be a section"),
            (["backbone", "--bogus"], "mml-bench backbone: unknown argument '--bogus'"),
            (["conv", "--kinds", "conv4"], "mml-bench conv: unknown argument '--kinds'"),
            (["conv", "--batch"], "mml-bench conv: --batch needs a value"),
            (["conv", "--quick"], "mml-bench conv: unknown argument '--quick'"),
            (["kernels", "--quick", "--repeats", "2"], "mml-bench kernels: unknown argument '--repeats'"),
            (["episode", "--episodes", "5", "extra"], "mml-bench episode: unknown argument 'extra'"),
            (["backbone", "--breakdown", "--size", "30"], "--size takes a multiple of 4 of at least 8"),
            (["backbone", "--breakdown", "--batch", "0"], "mml-bench backbone: --batch takes a positive integer, got '0'"),
            (["backbone", "--breakdown", "--in-channels", "x"], "mml-bench backbone: --in-channels takes a positive integer, got 'x'"),
            (["backbone", "--size", "28"], "--size, --batch and --in-channels go with --breakdown"),
            (["peak", "--threads", "x"], "mml-bench peak: --threads takes a non-negative integer (0: all cores), got 'x'"),
            (["peak", "--breakdown"], "mml-bench peak: unknown argument '--breakdown'"),
            // every value is checked before any measuring: none is ignored
            (["peak", "--threads", "-1"], "mml-bench peak: --threads takes a non-negative integer (0: all cores), got '-1'"),
            (["backbone", "--threads", "two"], "mml-bench backbone: --threads takes a non-negative integer (0: all cores), got 'two'"),
            (["conv", "--threads", "1.5"], "mml-bench conv: --threads takes a non-negative integer (0: all cores), got '1.5'"),
            (["conv", "--batch", "0"], "mml-bench conv: --batch takes a positive integer, got '0'"),
            (["conv", "--first-layer", "--batch", "8"], "mml-bench conv: --batch sets the inference blocks' batch, and --first-layer does not run them"),
            (["backbone", "--kinds", "conv64f,resnet18"], "mml-bench backbone: --kinds takes a comma-separated list of conv64f, conv4, resnet12, got 'conv64f,resnet18'"),
            (["backbone", "--kinds", ""], "--kinds takes a comma-separated list"),
            (["episode", "--episodes", "ten"], "mml-bench episode: --episodes takes a positive integer, got 'ten'"),
            (["data", "--images", "-5"], "mml-bench data: --images takes a positive integer, got '-5'"),
            (["data", "--repeats", "99999999999"], "mml-bench data: --repeats takes a positive integer, got '99999999999'"),
            (["api", "--calls", "0"], "mml-bench api: --calls takes a positive integer, got '0'"),
            (["api", "--rounds", "x"], "mml-bench api: --rounds takes a positive integer, got 'x'"),
            (["episode", "--episodes", "2", "--episodes", "3"], "mml-bench episode: --episodes is given twice; give it once"),
        ]
        for (args, message) in cases {
            let (code, out, err) = try runBench(args)
            XCTAssertEqual(code, 2, "\(args): \(err)")
            XCTAssertTrue(err.contains(message), "\(args): expected '\(message)' in: \(err)")
            XCTAssertEqual(out, "", "\(args) must not print results")
        }
    }
}
