import Foundation
import MMLCore
import MMLTestSupport
import XCTest

final class DataSamplerTests: XCTestCase {
    func synthetic(_ classes: Int = 12, images: Int = 30) throws -> SyntheticDataset {
        try SyntheticDataset(options: .init(seed: 3, trainClasses: classes, imagesPerClass: images, size: 16), split: "train")
    }

    func testRNGStreamsAndBounds() {
        var a = SeededRNG(seed: 1, stream: 5), b = SeededRNG(seed: 1, stream: 5), c = SeededRNG(seed: 1, stream: 6)
        let xa = (0..<8).map { _ in a.next() }, xb = (0..<8).map { _ in b.next() }, xc = (0..<8).map { _ in c.next() }
        XCTAssertEqual(xa, xb)
        XCTAssertNotEqual(xa, xc)
        var r = SeededRNG(seed: 2)
        var hist = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { hist[r.nextInt(below: 7)] += 1 }
        for h in hist { XCTAssertLessThan(abs(h - 10_000), 500) } // ~5 sigma
        for (k, n) in [(0, 5), (3, 3), (5, 100), (60, 64), (1, 1)] {
            let s = r.sample(k, from: n)
            XCTAssertEqual(s.count, k)
            XCTAssertEqual(Set(s).count, k)
            XCTAssertTrue(s.allSatisfy { $0 >= 0 && $0 < n })
        }
        let f = (0..<1000).map { _ in r.nextFloat() }
        XCTAssertTrue(f.allSatisfy { $0 >= 0 && $0 < 1 })
    }

    func testEpisodePurityAndNoReplacement() throws {
        let ds = try synthetic()
        let s = try EpisodeSampler(dataset: ds, way: 5, shot: 3, query: 4, seed: 77)
        let forward = (0..<50).map { s.episode($0) }
        let backward = (0..<50).reversed().map { s.episode($0) }.reversed()
        XCTAssertEqual(forward, Array(backward))
        // A fresh sampler (another harness) gives the same episodes; another seed different ones.
        let again = try EpisodeSampler(dataset: ds, way: 5, shot: 3, query: 4, seed: 77)
        XCTAssertEqual(again.episode(31), forward[31])
        let other = try EpisodeSampler(dataset: ds, way: 5, shot: 3, query: 4, seed: 78)
        XCTAssertNotEqual(other.episodes(10), Array(forward[0..<10]))
        for e in forward {
            XCTAssertEqual(e.classes.count, 5)
            XCTAssertEqual(Set(e.classes).count, 5)
            for j in 0..<5 {
                XCTAssertEqual(e.support[j].count, 3)
                XCTAssertEqual(e.query[j].count, 4)
                XCTAssertEqual(Set(e.support[j] + e.query[j]).count, 7)
                XCTAssertTrue((e.support[j] + e.query[j]).allSatisfy { $0 >= 0 && $0 < 30 })
            }
            XCTAssertEqual(e.supportLabels, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])
        }
        // Over many episodes every class is used (the draw covers the dataset).
        XCTAssertEqual(Set(forward.flatMap(\.classes)).count, 12)
    }

    func testEpisodeJSONRoundTrip() throws {
        let dir = try makeTempDir(self)
        let ds = try synthetic()
        let s = try EpisodeSampler(dataset: ds, way: 4, shot: 2, query: 3, seed: 5)
        let eps = s.episodes(7)
        let list = EpisodeList(episodes: eps, sampler: s, split: "train")
        try list.write(to: dir + "/eps.json")
        let back = try EpisodeList.read(from: dir + "/eps.json")
        XCTAssertEqual(back, list)
        XCTAssertEqual(try back.resolve(in: ds), eps)
        XCTAssertEqual(back.episodes[2].classes.count, 4)
        XCTAssertEqual(back.episodes[2].support[0][0], ds.itemPath(ofClass: eps[2].classes[0], item: eps[2].support[0][0]))
        // A list from another dataset names classes this one lacks.
        let small = try SyntheticDataset(options: .init(seed: 3, trainClasses: 2, imagesPerClass: 30, size: 16), split: "train")
        assertThrowsMessage(try back.resolve(in: small), contains: ["names class", "does not have"])
        try Data("not json".utf8).write(to: URL(fileURLWithPath: dir + "/bad.json"))
        assertThrowsMessage(try EpisodeList.read(from: dir + "/bad.json"), contains: ["bad.json", "not valid"])
    }

    func testSamplerErrors() throws {
        let ds = try synthetic(4, images: 10)
        assertThrowsMessage(try EpisodeSampler(dataset: ds, way: 5, shot: 1, query: 1, seed: 0),
                            contains: ["4 class(es)", "5-way"])
        assertThrowsMessage(try EpisodeSampler(dataset: ds, way: 2, shot: 5, query: 15, seed: 0),
                            contains: ["'class0' (10 images)", "5-shot + 15 queries = 20", "dropSmallClasses"])
        assertThrowsMessage(try EpisodeSampler(dataset: ds, way: 0, shot: 1, query: 1, seed: 0), contains: ["way 0"])
        // The sampler's own parameters by default; a caller's fields when given (without the option it lacks).
        func fields(_ f: EpisodeFields, way: Int, query: Int) -> MMLError? {
            do { _ = try EpisodeSampler(dataset: ds, way: way, shot: 1, query: query, seed: 0, fields: f) } catch {
                return error as? MMLError
            }
            return nil
        }
        XCTAssertEqual(fields(.sampler, way: 2, query: 15)?.fields, ["shot", "query", "dropSmallClasses"])
        XCTAssertEqual(fields(.run, way: 2, query: 15)?.fields, ["shot", "query"])
        XCTAssertEqual(fields(.run, way: 2, query: 15)?.message.hasSuffix("lower shot/query or add images"), true)
        XCTAssertEqual(fields(.run, way: 5, query: 1)?.fields, ["way"])
        let v = fields(.validation(split: "val"), way: 5, query: 1)
        XCTAssertEqual(v?.fields, ["validationWay", "validationSplit", "validationSplit"])
        XCTAssertEqual(v?.message.hasPrefix("validation split 'val': synthetic"), true, "\(String(describing: v))")
        XCTAssertEqual(fields(.validation(split: "val"), way: 2, query: 15)?.fields, ["validationShot", "validationQuery"])
    }

    func testDropSmallClassesWarns() throws {
        let dir = try makeTempDir(self)
        try writeFolderTree(dir, counts: [6, 2, 6, 6, 1])
        let ds = try Datasets.open(path: dir, layout: .folder)
        let s = try EpisodeSampler(dataset: ds, way: 3, shot: 2, query: 2, seed: 1, dropSmallClasses: true)
        XCTAssertEqual(s.dataset.classNames, ["c0", "c2", "c3"])
        XCTAssertTrue(s.warnings.joined().contains("dropped 2 class(es) with fewer than 4 images: 'c1' (2 images), 'c4' (1 images)"),
                      s.warnings.joined())
        for e in s.episodes(20) { XCTAssertEqual(Set(e.classes), [0, 1, 2]) }
        assertThrowsMessage(try EpisodeSampler(dataset: ds, way: 4, shot: 2, query: 2, seed: 1, dropSmallClasses: true),
                            contains: ["3 class(es) with at least 4 images", "4-way"])
    }

    func testBatchSamplerEpochs() throws {
        let counts = [5, 3, 7, 1]
        let b = try BatchSampler(itemCounts: counts, batchSize: 4, seed: 9, dropLast: false)
        let e0 = b.epoch(0)
        XCTAssertEqual(e0.count, 4)
        let all = e0.flatMap { $0 }
        XCTAssertEqual(all.count, 16)
        XCTAssertEqual(Set(all).count, 16)
        XCTAssertEqual(b.epoch(0), e0)
        XCTAssertNotEqual(b.epoch(1), e0)
        let d = try BatchSampler(itemCounts: counts, batchSize: 5, seed: 9)
        XCTAssertEqual(d.epoch(2).count, 3)
        XCTAssertTrue(d.epoch(2).allSatisfy { $0.count == 5 })
        assertThrowsMessage(try BatchSampler(itemCounts: [2], batchSize: 4, seed: 0), contains: ["2 images", "batch of 4"])
    }

    func testPKSampler() throws {
        let dir = try makeTempDir(self)
        try writeFolderTree(dir, counts: [4, 4, 2, 5])
        let ds = try Datasets.open(path: dir, layout: .folder)
        let p = try PKSampler(dataset: ds, classesPerBatch: 2, imagesPerClass: 3, seed: 4)
        XCTAssertTrue(p.warnings.joined().contains("'c2' (2)"))
        for i in 0..<20 {
            let b = p.batch(i)
            XCTAssertEqual(b, p.batch(i))
            XCTAssertEqual(b.count, 6)
            XCTAssertEqual(Set(b).count, 6)
            XCTAssertEqual(Set(b.map(\.classIndex)).count, 2)
            XCTAssertFalse(b.contains { $0.classIndex == 2 })
        }
        assertThrowsMessage(try PKSampler(dataset: ds, classesPerBatch: 4, imagesPerClass: 3, seed: 4),
                            contains: ["3 class(es) with at least 3 images", "need 4"])
    }
}
