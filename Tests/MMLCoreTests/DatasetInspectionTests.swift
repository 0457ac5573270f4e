import Foundation
import MMLCore
import XCTest

/// `DatasetInspection`: the report `mml data inspect` renders, computed by the core.
final class DatasetInspectionTests: XCTestCase {
    func testFolderDatasetReportCountsKindsAndProblems() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("mml-inspect-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let img = PixelImage(width: 6, height: 4, channels: 3, pixels: [UInt8](repeating: 128, count: 6 * 4 * 3))
        for (cls, n) in [("a", 3), ("b", 2)] {
            for i in 0..<n { try ImageCodec.write(img, to: "\(root)/\(cls)/\(i).png") }
        }
        try Data("not a png".utf8).write(to: URL(fileURLWithPath: "\(root)/b/broken.png"))
        let config = DatasetInspectionConfiguration(dataset: DatasetSource(path: root, layout: .folder))
        var progress: [Int] = []
        let r = try DatasetInspection(config).run { if case .progress(_, let done, _) = $0 { progress.append(done) } }
        XCTAssertEqual(r.classNames, ["a", "b"])
        XCTAssertEqual(r.imagesPerClass, [3, 3])
        XCTAssertEqual(r.imageCount, 6)
        XCTAssertEqual(r.imageKinds.map(\.count), [5])
        XCTAssertTrue(r.imageKinds[0].description.hasPrefix("6x4 png 3ch 8-bit"), r.imageKinds[0].description)
        XCTAssertEqual(r.problems.count, 1)
        XCTAssertTrue(r.problems[0].contains("broken.png"), r.problems[0])
        XCTAssertEqual(progress, [1, 2])
        let back = try JSONDecoder().decode(DatasetInspectionReport.self, from: try JSONEncoder().encode(r))
        XCTAssertEqual(back, r)
    }

    func testSyntheticDataIsSampledAndWritesSamples() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mml-samples-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = DatasetSource(path: "synthetic", split: "val", syntheticSize: 16, syntheticImages: 5)
        let r = try DatasetInspection(.init(dataset: source, samplesDirectory: dir)).run()
        XCTAssertTrue(r.sampled)
        XCTAssertEqual(r.imageKinds.map(\.description), ["16x16"])
        XCTAssertEqual(r.imageKinds[0].count, 2 * r.classCount)
        XCTAssertEqual(r.imagesPerClass, [Int](repeating: 5, count: r.classCount))
        let written = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".png") }
        XCTAssertEqual(written.count, min(10, r.classCount))
    }
}
