import Foundation
import MMLCore
import XCTest

/// The path of a committed `.npy` fixture in Tests/MMLCoreTests/Fixtures/npy.
func npyFixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/npy/" + name).path
}

/// Asserts that `body` throws an `MMLError` whose message contains `text` (any other error fails).
func assertThrows(_ body: @autoclosure () throws -> Any, contains text: String, file: StaticString = #filePath,
                  line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error containing '\(text)'", file: file, line: line)
    } catch let e as MMLError {
        XCTAssertTrue(e.message.contains(text), "message: \(e.message)", file: file, line: line)
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
}

/// Runs `script` with python3 and NumPy (as `python3 -c PREAMBLE+script arguments...`, the preamble imports NumPy as
/// `np` and `sys`) and asserts that it succeeds. - Throws: `XCTSkip` when python3 or NumPy is not installed.
func runNumpyScript(_ script: String, arguments: [String] = [], file: StaticString = #filePath,
                    line: UInt = #line) throws {
    let candidates = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/python3" }
        + ["/usr/bin/python3", "/usr/local/bin/python3"]
    guard let python = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) })
    else { throw XCTSkip("python3 not found") }
    let preamble = """
    import sys
    try:
        import numpy as np
    except ImportError:
        sys.exit(3)

    """
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = ["-c", preamble + script] + arguments
    try p.run()
    p.waitUntilExit()
    if p.terminationStatus == 3 { throw XCTSkip("numpy is not installed for \(python)") }
    XCTAssertEqual(p.terminationStatus, 0, "the NumPy script failed", file: file, line: line)
}

/// The evaluator tests' small episode set-up: the synthetic test split at 28 x 28 x 3 with `imagesPerClass` images
/// per class, its loader, a `way`-way 1-shot sampler (seed 4), a Conv-64F backbone (seed 1) and a pixel (K = 3) +
/// distribution (W2) metric.
func smallEvaluationSetup(imagesPerClass: Int, way: Int, query: Int) throws
    -> (loader: EpisodeLoader, sampler: EpisodeSampler, backbone: any Backbone, metric: MultiLevelMetric) {
    let opts = SyntheticDataset.Options(seed: 0, imagesPerClass: imagesPerClass, size: 28, channels: 3)
    let test = try SyntheticDataset(options: opts, split: "test")
    let loader = try EpisodeLoader(dataset: test, config: ImageConfig(size: 28, channels: 3))
    let sampler = try EpisodeSampler(dataset: test, way: way, shot: 1, query: query, seed: 4)
    let backbone = try makeBackbone(BackboneConfiguration(kind: .conv64F, inputChannels: 3, seed: 1))
    let metric = try MultiLevelMetric(levels: [.pixel, .distribution], pixel: PixelLevel(neighbours: 3),
                                      distribution: DistributionLevel(distance: .wasserstein2))
    return (loader, sampler, backbone, metric)
}
