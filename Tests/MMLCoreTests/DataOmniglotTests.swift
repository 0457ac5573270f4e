import Foundation
import MMLCore
import XCTest

/// Integration over the shared real Omniglot (../shared/datasets/omniglot), skipped when absent.
final class DataOmniglotTests: XCTestCase {
    func root() throws -> String {
        guard let d = sharedDatasets() else {
            throw XCTSkip("../shared/datasets/omniglot not found beside the package; skipping the Omniglot integration test")
        }
        return d + "/omniglot"
    }

    func testLakeSplit() throws {
        let r = try root()
        let bg = try Datasets.open(path: r, layout: .omniglot, split: "background")
        let ev = try Datasets.open(path: r, layout: .omniglot, split: "evaluation")
        XCTAssertEqual(bg.classCount, 964)
        XCTAssertEqual(ev.classCount, 659)
        XCTAssertTrue(bg.itemCounts.allSatisfy { $0 == 20 })
        XCTAssertTrue(ev.itemCounts.allSatisfy { $0 == 20 })
        XCTAssertTrue(bg.skippedFiles.isEmpty)
        let img = try bg.loadImage(ofClass: 0, item: 0, channels: 1)
        XCTAssertEqual(img.width, 105)
        XCTAssertTrue(img.pixels.allSatisfy { $0 == 0 || $0 == 255 }, "1-bit PNG expands to 0/255")
        XCTAssertGreaterThan(img.pixels.filter { $0 == 255 }.count, img.pixels.count / 2, "white paper dominates")
    }

    func testVinyalsSplit() throws {
        let r = try root()
        let sizes = try ["train", "val", "test"].map { try Datasets.open(path: r, layout: .omniglotVinyals, split: $0) }
        XCTAssertEqual(sizes.map(\.classCount), [4112, 688, 1692])
        XCTAssertTrue(sizes.allSatisfy { $0.itemCounts.allSatisfy { $0 == 20 } })
        XCTAssertEqual(DatasetLayout.detect(path: r, split: "val"), .omniglotVinyals)
        // rot090 is the rot000 image turned a quarter counter-clockwise.
        let train = sizes[0]
        let i0 = train.classNames.firstIndex(of: "Angelic/character01/rot000")!
        let i90 = train.classNames.firstIndex(of: "Angelic/character01/rot090")!
        let a = try train.loadImage(ofClass: i0, item: 3, channels: 1), b = try train.loadImage(ofClass: i90, item: 3, channels: 1)
        XCTAssertEqual(a.rotated(quarterTurns: 1), b)
        XCTAssertNotEqual(a, b)
        // 28x28 episodes load.
        let loader = try EpisodeLoader(dataset: sizes[2], config: ImageConfig(size: 28, channels: 1))
        let s = try EpisodeSampler(dataset: sizes[2], way: 20, shot: 5, query: 5, seed: 0)
        let batch = try loader.batch(for: s.episode(0))
        XCTAssertEqual(batch.support.shape, [100, 1, 28, 28])
    }
}
