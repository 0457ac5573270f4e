import Foundation
import MMLCore
import XCTest

final class DataSyntheticTests: XCTestCase {
    func testDeterministicAndOrderFree() throws {
        for (size, ch) in [(28, 1), (84, 3), (13, 3)] {
            let a = SyntheticDataset.render(seed: 5, classID: 7, index: 3, size: size, channels: ch)
            XCTAssertEqual(a.width, size)
            XCTAssertEqual(a.channels, ch)
            _ = SyntheticDataset.render(seed: 5, classID: 8, index: 0, size: size, channels: ch)
            XCTAssertEqual(SyntheticDataset.render(seed: 5, classID: 7, index: 3, size: size, channels: ch), a)
            XCTAssertNotEqual(SyntheticDataset.render(seed: 6, classID: 7, index: 3, size: size, channels: ch), a)
            XCTAssertNotEqual(SyntheticDataset.render(seed: 5, classID: 7, index: 4, size: size, channels: ch), a)
        }
        let train = try SyntheticDataset(options: .init(trainClasses: 5, valClasses: 2, testClasses: 3), split: "train")
        let test = try SyntheticDataset(options: .init(trainClasses: 5, valClasses: 2, testClasses: 3), split: "test")
        XCTAssertEqual(train.classNames, ["class0", "class1", "class2", "class3", "class4"])
        XCTAssertEqual(test.classNames, ["class7", "class8", "class9"])
        assertThrowsMessage(try SyntheticDataset(split: "holdout"), contains: ["unknown synthetic split 'holdout'"])
    }

    /// Raw-pixel nearest-prototype accuracy (an "untrained" baseline) must be above chance but far from
    /// perfect: the classes are learnable yet not trivially separable in pixel space.
    func testNeitherTrivialNorImpossible() throws {
        let ds = try SyntheticDataset(options: .init(seed: 0, trainClasses: 0, valClasses: 0, testClasses: 20,
                                                     imagesPerClass: 40, size: 28, channels: 3), split: "test")
        let loader = try EpisodeLoader(dataset: ds, config: ImageConfig(size: 28, channels: 3))
        let sampler = try EpisodeSampler(dataset: ds, way: 5, shot: 1, query: 5, seed: 1)
        var correct = 0, total = 0
        for i in 0..<60 {
            let b = try loader.batch(for: sampler.episode(i))
            let d = 3 * 28 * 28
            for q in 0..<b.queryLabels.count {
                var best = -1, bestD = Float.infinity
                for s in 0..<5 {
                    var dist: Float = 0
                    for k in 0..<d { let t = b.query.data[q * d + k] - b.support.data[s * d + k]; dist += t * t }
                    if dist < bestD { bestD = dist; best = s }
                }
                correct += best == b.queryLabels[q] ? 1 : 0
                total += 1
            }
        }
        let acc = Double(correct) / Double(total)
        XCTAssertGreaterThan(acc, 0.3, "raw-pixel accuracy \(acc)")
        XCTAssertLessThan(acc, 0.9, "raw-pixel accuracy \(acc)")
        print("synthetic 5-way 1-shot raw-pixel nearest-prototype accuracy: \(acc)")
    }
}
