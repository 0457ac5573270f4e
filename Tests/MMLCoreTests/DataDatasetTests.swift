import Foundation
import MMLCore
import MMLTestSupport
import XCTest

final class DataDatasetTests: XCTestCase {
    func testFolderLayoutWithPNGAndJPEG() throws {
        let dir = try makeTempDir(self)
        let paths = try writeFolderTree(dir, counts: [3, 4], jpeg: true)
        try Data("notes".utf8).write(to: URL(fileURLWithPath: dir + "/c0/readme.txt"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/stray.csv"))
        let ds = try Datasets.open(path: dir)
        XCTAssertEqual(ds.classNames, ["c0", "c1"])
        XCTAssertEqual(ds.itemCounts, [3, 4])
        XCTAssertEqual(ds.skippedFiles.count, 2)
        XCTAssertTrue(ds.warnings.joined().contains("skipped 2 file(s)"))
        XCTAssertEqual(ds.itemPath(ofClass: 1, item: 2), paths[1][2])
        // PNG items decode exactly; JPEG items closely.
        let png = try ds.loadImage(ofClass: 1, item: 2, channels: 3)
        XCTAssertEqual(png, testImage(cls: 1, index: 2))
        let jpg = try ds.loadImage(ofClass: 1, item: 1, channels: 3)
        let ref = testImage(cls: 1, index: 1)
        let mad = zip(jpg.pixels, ref.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +) / ref.pixels.count
        // Loose: the test image has sharp colour steps that 4:2:0 chroma subsampling blurs.
        XCTAssertLessThan(mad, 40)
        XCTAssertEqual(jpg.width, ref.width)
        XCTAssertEqual(try ds.loadImage(ofClass: 0, item: 0, channels: 1).channels, 1)
    }

    func testCSVLayout() throws {
        let dir = try makeTempDir(self)
        var rows = ["filename,label"]
        for c in 0..<3 { for i in 0..<4 {
            let name = "n\(c)_\(i).png"
            try ImageCodec.write(testImage(cls: c, index: i), to: "\(dir)/images/\(name)")
            rows.append("\(name),label\(c)")
        } }
        try rows.joined(separator: "\n").write(toFile: dir + "/train.csv", atomically: true, encoding: .utf8)
        try "filename,label\nmissing.jpg,label9\n".write(toFile: dir + "/val.csv", atomically: true, encoding: .utf8)
        XCTAssertEqual(DatasetLayout.detect(path: dir, split: "train"), .csv)
        let ds = try Datasets.open(path: dir, split: "train")
        XCTAssertEqual(ds.classNames, ["label0", "label1", "label2"])
        XCTAssertEqual(ds.itemCounts, [4, 4, 4])
        XCTAssertEqual(try ds.loadImage(ofClass: 2, item: 3, channels: 3), testImage(cls: 2, index: 3))
        assertThrowsMessage(try Datasets.open(path: dir, layout: .csv, split: "val"),
                            contains: ["val.csv line 2", "'missing.jpg'", "/images/missing.jpg does not exist"])
        assertThrowsMessage(try Datasets.open(path: dir, layout: .csv, split: "test"), contains: ["test.csv does not exist"])
    }

    func testMissingRoot() {
        assertThrowsMessage(try Datasets.open(path: "/no/such/dataset/root", layout: .folder),
                            contains: ["dataset root /no/such/dataset/root does not exist"])
    }

    func testCorruptImageNamesFileInLoader() throws {
        let dir = try makeTempDir(self)
        try writeFolderTree(dir, counts: [3, 3])
        let bytes = try ImageCodec.encodePNG(testImage(cls: 0, index: 1))
        try Data(bytes[0..<(bytes.count / 2)]).write(to: URL(fileURLWithPath: dir + "/c0/img1.png"))
        let ds = try Datasets.open(path: dir)
        let loader = try EpisodeLoader(dataset: ds, config: ImageConfig(size: 8, channels: 3))
        assertThrowsMessage(try loader.tensor(for: [ItemRef(classIndex: 0, item: 0), ItemRef(classIndex: 0, item: 1)]),
                            contains: ["c0/img1.png", "corrupt or truncated"])
    }

    func testLoaderTensorsAndCacheDecodesOnce() throws {
        let dir = try makeTempDir(self)
        try writeFolderTree(dir, counts: [5, 5, 5, 5])
        let ds = try Datasets.open(path: dir)
        let cfg = ImageConfig(size: 6, channels: 1, mean: [0.5], std: [0.25])
        let loader = try EpisodeLoader(dataset: ds, config: cfg)
        let sampler = try EpisodeSampler(dataset: ds, way: 3, shot: 2, query: 2, seed: 11)
        for i in 0..<30 {
            let e = sampler.episode(i)
            let b = try loader.batch(for: e)
            XCTAssertEqual(b.support.shape, [6, 1, 6, 6])
            XCTAssertEqual(b.query.shape, [6, 1, 6, 6])
            XCTAssertEqual(b.supportLabels, [0, 0, 1, 1, 2, 2])
            if i == 0 {
                // Row 3 is label 1's second shot: the reference pipeline, grey -> resize -> normalise.
                let img = ImageTransform.resized(testImage(cls: e.classes[1], index: e.support[1][1]).converted(toChannels: 1),
                                                 width: 6, height: 6)
                for k in 0..<36 {
                    XCTAssertEqual(b.support.data[3 * 36 + k], (Float(img.pixels[k]) / 255 - 0.5) / 0.25, accuracy: 1e-5)
                }
            }
        }
        XCTAssertLessThanOrEqual(loader.cache.decodes, 20)
        let before = loader.cache.decodes
        _ = try loader.batch(for: sampler.episode(3))
        XCTAssertEqual(loader.cache.decodes, before)
    }

    func testGreyToThreeChannelsAndPrefetch() throws {
        let dir = try makeTempDir(self)
        for c in 0..<3 { for i in 0..<4 {
            try ImageCodec.write(testImage(cls: c, index: i, channels: 1), to: "\(dir)/g\(c)/\(i).png")
        } }
        let ds = try Datasets.open(path: dir, layout: .folder)
        let loader = try EpisodeLoader(dataset: ds, config: ImageConfig(size: 10, channels: 3))
        let s = try EpisodeSampler(dataset: ds, way: 3, shot: 1, query: 3, seed: 0)
        try loader.prefetch(s.episodes(10))
        XCTAssertEqual(loader.cache.decodes, 12)
        let b = try loader.batch(for: s.episode(0))
        let plane = 100
        for n in 0..<3 { for k in 0..<plane {
            XCTAssertEqual(b.support.data[n * 300 + k], b.support.data[n * 300 + plane + k])
            XCTAssertEqual(b.support.data[n * 300 + k], b.support.data[n * 300 + 2 * plane + k])
        } }
        XCTAssertEqual(loader.cache.decodes, 12)
        XCTAssertEqual(ImageCache.defaultFile(root: "/d", tag: "csv:test", side: 84, channels: 3), "/d/.mml-cache/csv_test-84x84x3.bin")
    }

    func testCacheFileMappedAndInvalidated() throws {
        let dir = try makeTempDir(self)
        try writeFolderTree(dir, counts: [3, 3])
        let file = dir + "/.mml-cache/c.bin"
        let ds = try Datasets.open(path: dir)
        let cache = try ImageCache(dataset: ds, side: 5, channels: 3, file: file)
        XCTAssertFalse(cache.isMapped)
        try cache.write(file: file)
        let mapped = try ImageCache(dataset: ds, side: 5, channels: 3, file: file)
        XCTAssertTrue(mapped.isMapped)
        XCTAssertEqual(try mapped.image(ItemRef(classIndex: 1, item: 2)), try cache.image(ItemRef(classIndex: 1, item: 2)))
        XCTAssertEqual(mapped.decodes, 0)
        // Another configuration, or a changed source file, does not reuse the file.
        XCTAssertFalse(try ImageCache(dataset: ds, side: 6, channels: 3, file: file).isMapped)
        Thread.sleep(forTimeInterval: 0.01)
        try ImageCodec.write(testImage(cls: 1, index: 0, width: 9), to: dir + "/c1/img0.png")
        let changed = try ImageCache(dataset: try Datasets.open(path: dir), side: 5, channels: 3, file: file)
        XCTAssertFalse(changed.isMapped)
    }

    func testAugmentedBatchesDeterministic() throws {
        let ds = try SyntheticDataset(options: .init(seed: 1, trainClasses: 6, imagesPerClass: 10, size: 40), split: "train")
        let cfg = ImageConfig(size: 32, channels: 3, resize: 40, augmentation: .mml)
        let l1 = try EpisodeLoader(dataset: ds, config: cfg), l2 = try EpisodeLoader(dataset: ds, config: cfg)
        let s = try EpisodeSampler(dataset: ds, way: 3, shot: 1, query: 2, seed: 2)
        let a = try l1.batch(for: s.episode(4), augmentationSeed: 9), b = try l2.batch(for: s.episode(4), augmentationSeed: 9)
        XCTAssertEqual(a.support, b.support)
        XCTAssertEqual(a.query, b.query)
        XCTAssertNotEqual(try l1.batch(for: s.episode(4), augmentationSeed: 10).query, a.query)
    }
}

final class DataCacheConcurrencyTests: XCTestCase {
    func testConcurrentPrefetchDecodesEachItemOnce() throws {
        let ds = try SyntheticDataset(options: .init(seed: 2, trainClasses: 8, imagesPerClass: 25, size: 20), split: "train")
        let cache = try ImageCache(dataset: ds, side: 16, channels: 3)
        let refs = (0..<8).flatMap { c in (0..<25).map { ItemRef(classIndex: c, item: $0) } }
        DispatchQueue.concurrentPerform(iterations: 6) { k in
            try? cache.prefetch(Array(refs[(k * 20)..<(k * 20 + 80)]))
        }
        XCTAssertEqual(cache.decodes, 180)
        let img = try cache.image(ItemRef(classIndex: 3, item: 7))
        XCTAssertEqual(img, ImageTransform.resized(try ds.loadImage(ofClass: 3, item: 7, channels: 3), width: 16, height: 16))
    }
}

final class DataRotationCacheTests: XCTestCase {
    func testRotatedClassesShareOneDecode() throws {
        let dir = try makeTempDir(self)
        let paths = try writeFolderTree(dir, counts: [2])[0]
        let ds = FileImageDataset(name: "rot", classes: (0..<4).map { FileClass(name: "c/rot\($0 * 90)", files: paths, quarterTurns: $0) })
        let cache = try ImageCache(dataset: ds, side: 10, channels: 1)
        try cache.prefetch((0..<4).flatMap { c in (0..<2).map { ItemRef(classIndex: c, item: $0) } })
        XCTAssertEqual(cache.decodes, 2)
        for c in 0..<4 {
            let expect = ImageTransform.resized(testImage(cls: 0, index: 1).converted(toChannels: 1).rotated(quarterTurns: c),
                                                width: 10, height: 10)
            XCTAssertEqual(try cache.image(ItemRef(classIndex: c, item: 1)), expect, "rotation \(c)")
        }
    }
}
