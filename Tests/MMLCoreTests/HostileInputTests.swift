import Foundation
import MMLCore
import MMLTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Hostile and malformed files (issue 16, items 5, 6 and 10): each is refused with a message naming the file, what
/// is wrong and what to do, before anything large is allocated.
final class HostileInputTests: XCTestCase {
    /// This process's peak resident set in MB (Linux ru_maxrss is in KB).
    func peakMB() -> Int {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return u.ru_maxrss / 1024
    }

    // MARK: images refused from the header

    func testOversizedPNGHeaderRefusedBeforeAllocating() throws {
        let png = HostileFiles.oversizedPNG()
        XCTAssertLessThan(png.count, 2200)
        let info = try ImageCodec.probe(png, source: "big.png")
        XCTAssertEqual([info.width, info.height], [30000, 30000], "the header is valid and declares 30000 x 30000")
        let before = peakMB()
        assertThrowsMessage(try ImageCodec.decode(png, channels: 3, source: "big.png"), contains: [
            "big.png: the header declares 30000 x 30000 = 900000000 pixels, more than the limit of 67108864 "
                + "(maxImagePixels); decoding it would need 2700 MB. Raise maxImagePixels if the image is genuine, "
                + "else remove or replace the file"])
        // Unfixed, the decoder allocates (and on the truncated data zero-fills) 2.7 GB.
        XCTAssertLessThan(peakMB() - before, 100, "peak memory grew while refusing a header")
        XCTAssertEqual(try? ImageCodec.probe(png, source: "big.png", maxPixels: 1000).width, nil)
    }

    func testOversizedJPEGHeaderRefusedBeforeAllocating() throws {
        let jpg = try HostileFiles.oversizedJPEG()
        let info = try ImageCodec.probe(jpg, source: "big.jpg")
        XCTAssertEqual([info.width, info.height], [30000, 30000])
        let before = peakMB()
        assertThrowsMessage(try ImageCodec.decode(jpg, channels: 1, source: "big.jpg"), contains: [
            "big.jpg: the header declares 30000 x 30000 = 900000000 pixels, more than the limit of 67108864"])
        XCTAssertLessThan(peakMB() - before, 100)
    }

    func testPixelLimitIsInclusiveAndRaisable() throws {
        let png = try ImageCodec.encodePNG(PixelImage(width: 40, height: 30, channels: 3, value: 7))
        XCTAssertEqual(try ImageCodec.decode(png, maxPixels: 1200).width, 40, "exactly at the limit is accepted")
        assertThrowsMessage(try ImageCodec.decode(png, source: "a.png", maxPixels: 1199),
                            contains: ["a.png: the header declares 40 x 30 = 1200 pixels, more than the limit of 1199"])
        let jpg = try ImageCodec.encodeJPEG(PixelImage(width: 40, height: 30, channels: 3, value: 7))
        assertThrowsMessage(try ImageCodec.decode(jpg, source: "a.jpg", maxPixels: 1199), contains: ["40 x 30 = 1200"])
    }

    func testDatasetSourceCarriesThePixelLimit() throws {
        let dir = try makeTempDir(self)
        try writeFolderTree(dir, counts: [2, 2])  // 12 x 10 images
        let small = try DatasetSource(path: dir, layout: .folder, maxImagePixels: 100).open()
        assertThrowsMessage(try small.loadImage(ofClass: 0, item: 0, channels: 3),
                            contains: ["\(dir)/c0/img0.png: the header declares 12 x 10 = 120 pixels, more than the "
                                       + "limit of 100 (maxImagePixels)"])
        XCTAssertEqual(try DatasetSource(path: dir, layout: .folder, maxImagePixels: 120).open()
                        .loadImage(ofClass: 0, item: 0, channels: 3).width, 12)
        XCTAssertEqual(try DatasetSource(path: dir, layout: .folder).open().loadImage(ofClass: 0, item: 0, channels: 3),
                       testImage(cls: 0, index: 0), "the default limit leaves ordinary images as they were")
        assertThrowsMessage(try DatasetSource(path: dir, maxImagePixels: 0).open(),
                            contains: ["maxImagePixels must be at least 1, got 0"])
        // The limit reaches header-only inspection too, and round-trips through JSON only when set.
        try Data(HostileFiles.oversizedPNG()).write(to: URL(fileURLWithPath: dir + "/c1/huge.png"))
        let report = try DatasetInspection(.init(dataset: DatasetSource(path: dir, layout: .folder))).run()
        XCTAssertTrue(report.problems.contains { $0.contains("huge.png: the header declares 30000 x 30000") },
                      "\(report.problems)")
        XCTAssertTrue(report.problems.contains { $0.contains("(`maxImagePixels`)") }, "fields stay marked for front ends")
        let plain = String(decoding: try JSONEncoder().encode(DatasetSource(path: dir)), as: UTF8.self)
        XCTAssertFalse(plain.contains("maxImagePixels") || plain.contains("allowDuplicates"), plain)
        let set = DatasetSource(path: dir, maxImagePixels: 5, allowDuplicates: true)
        XCTAssertEqual(try JSONDecoder().decode(DatasetSource.self, from: JSONEncoder().encode(set)), set)
        XCTAssertEqual(try JSONDecoder().decode(DatasetSource.self, from: Data(plain.utf8)), DatasetSource(path: dir))
    }

    // MARK: JSON nesting, episode lists, checkpoint metadata

    func testDeepNestingRefusedBeforeDecoding() throws {
        let deep = Data(String(repeating: "[", count: 100_000).utf8)
        XCTAssertEqual(JSONInput.nestingDepth(of: Array(#"{"a": "[[[[", "b": [[1], {"c": []}]}"#.utf8)), 4,
                       "brackets inside strings do not count")
        assertThrowsMessage(try EpisodeList.decode(deep, source: "deep.json"), contains: [
            "episode list deep.json: JSON nested more than 64 levels deep (arrays or objects inside each other); no mml "
                + "file nests that deep, so the file is corrupt or hostile; regenerate it"])
        // In checkpoint metadata (the model configuration is a JSON string inside the safetensors header).
        let dir = try makeTempDir(self)
        let path = dir + "/deep.safetensors"
        try Safetensors.write([("w", Tensor(shape: [1], data: [1]))],
                              metadata: ["mml.model": String(repeating: "[", count: 100_000)], to: path)
        assertThrowsMessage(try Checkpoint.configuration(at: path), contains: [
            "\(path): the model configuration (metadata 'mml.model'): JSON nested more than 64 levels deep"])
        // And a --config file.
        let cfg = try makeTempDir(self) + "/deep.json"  // no checkpoint beside it
        try Data(String(repeating: "{\"a\":", count: 50_000).utf8).write(to: URL(fileURLWithPath: cfg))
        assertThrowsMessage(try SavedEpisodicSettings(contentsOf: cfg), contains: ["JSON nested more than 64 levels"])
    }

    func episodeListJSON(way: Int = 2, shot: Int = 1, query: Int = 1, episodes: String) -> Data {
        Data(#"{"dataset": "d", "way": \#(way), "shot": \#(shot), "query": \#(query), "seed": 0, "episodes": [\#(episodes)]}"#.utf8)
    }

    func testMalformedEpisodeListsNamed() throws {
        let ok = #"{"index": 0, "classes": ["a", "b"], "support": [["a1"], ["b1"]], "query": [["a2"], ["b2"]]}"#
        XCTAssertEqual(try EpisodeList.decode(episodeListJSON(episodes: ok), source: "l.json").episodes.count, 1)
        assertThrowsMessage(try EpisodeList.decode(Data("not json".utf8), source: "l.json"),
                            contains: ["episode list l.json is not valid episode JSON: "])
        assertThrowsMessage(try EpisodeList.decode(Data(#"{"way": 2}"#.utf8), source: "l.json"),
                            contains: ["episode list l.json is not valid episode JSON: ", "dataset", "is missing"])
        assertThrowsMessage(try EpisodeList.decode(episodeListJSON(way: 3, episodes: ok), source: "l.json"), contains: [
            "episode list l.json: episode 0 has 2 classes, but the list is 3-way 1-shot with 1 queries per class; the "
                + "file was edited or truncated, regenerate it with `mml data episodes`"])
        let short = #"{"index": 0, "classes": ["a", "b"], "support": [["a1"], []], "query": [["a2"], ["b2"]]}"#
        assertThrowsMessage(try EpisodeList.decode(episodeListJSON(episodes: short), source: "l.json"),
                            contains: ["episode 0 has 0 support image(s) for class 'b'"])
        let ragged = #"{"index": 0, "classes": ["a", "b"], "support": [["a1"]], "query": [["a2"], ["b2"]]}"#
        assertThrowsMessage(try EpisodeList.decode(episodeListJSON(episodes: ragged), source: "l.json"),
                            contains: ["episode 0 has support for 1 and queries for 2 classes"])
        let sameClass = #"{"index": 0, "classes": ["a", "a"], "support": [["a1"], ["a3"]], "query": [["a2"], ["a4"]]}"#
        assertThrowsMessage(try EpisodeList.decode(episodeListJSON(episodes: sameClass), source: "l.json"),
                            contains: ["episode 0 names a class twice (a, a)"])
        assertThrowsMessage(try EpisodeList.decode(episodeListJSON(episodes: ok + "," + ok), source: "l.json"),
                            contains: ["episode list l.json: episode index 0 is listed twice"])
        assertThrowsMessage(try EpisodeList.decode(episodeListJSON(way: 0, episodes: ""), source: "l.json"),
                            contains: ["declares way 0, shot 1, query 1; episodes need way >= 1"])
        assertThrowsMessage(try EpisodeList.read(from: "/no/such/list.json"),
                            contains: ["episode list /no/such/list.json does not exist or is not readable"])
    }

    // MARK: safetensors, npy, CSV

    func testSafetensorsOverlappingRangesRefused() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        var bytes: [UInt8] = (0..<8).map { UInt8((header.utf8.count >> (8 * $0)) & 0xFF) }
        bytes += Array(header.utf8) + [UInt8](repeating: 0, count: 12)
        assertThrowsMessage(try Safetensors.parse(bytes, source: "o.safetensors"), contains: [
            "o.safetensors: the data of 'a' (bytes 0..<8) and 'b' (bytes 4..<12) overlap; the file is not a valid "
                + "safetensors file (re-save it)"])
        // Listed out of order but disjoint, and an empty tensor at a shared offset: fine.
        let fine = #"{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#
        var ok: [UInt8] = (0..<8).map { UInt8((fine.utf8.count >> (8 * $0)) & 0xFF) }
        ok += Array(fine.utf8) + [UInt8](repeating: 0, count: 8)
        XCTAssertEqual(try Safetensors.parse(ok, source: "ok").entries.count, 3)
    }

    func testMalformedNPYNamed() throws {
        func npy(_ header: String, data: Int, major: UInt8 = 1) -> [UInt8] {
            let h = Array(header.utf8)
            return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, 0, UInt8(h.count & 0xFF), UInt8(h.count >> 8)] + h
                + [UInt8](repeating: 0, count: data)
        }
        assertThrowsMessage(try NPY.decode(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", data: 0), source: "o.npy"),
                            contains: ["o.npy: shape [4611686018427387904, 4] is too large"])
        assertThrowsMessage(try NPY.decode(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000), }", data: 16), source: "t.npy"),
                            contains: ["t.npy: truncated: shape [1000000, 1000] of <f4 needs 4000000000 data bytes, the file has 16"])
        assertThrowsMessage(try NPY.decode(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data: 12), source: "x.npy"),
                            contains: ["x.npy: 4 unexpected bytes after the data of shape [2]"])
        var long = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data: 8, major: 2)
        long.insert(contentsOf: [0, 0], at: 10)
        long[8] = 0xFF; long[9] = 0xFF; long[10] = 0xFF; long[11] = 0x7F
        assertThrowsMessage(try NPY.decode(long, source: "h.npy"),
                            contains: ["h.npy: header length 2147483647 bytes exceeds the limit of 65536"])
    }

    func testMalformedCSVSplitsNamed() throws {
        XCTAssertEqual(try CSVSplit.parse(Array("filename,label\r\na.png, x,y \n\nb.jpg,z".utf8), source: "s.csv"),
                       [.init(line: 2, filename: "a.png", label: "x,y"), .init(line: 4, filename: "b.jpg", label: "z")])
        assertThrowsMessage(try CSVSplit.parse(Array("a.png,x\nb.png\u{0},y\n".utf8), source: "s.csv"), contains: [
            "s.csv line 2: a NUL byte; a CSV split is text (`filename,label` rows), this looks like a binary file"])
        assertThrowsMessage(try CSVSplit.parse([0x61, 0x2C, 0xFF, 0xFE], source: "s.csv"),
                            contains: ["s.csv is not UTF-8 text; save it as UTF-8 with `filename,label` rows"])
        let longName = String(repeating: "n", count: 5000)
        assertThrowsMessage(try CSVSplit.parse(Array("\(longName).png,x".utf8), source: "s.csv"), contains: [
            "s.csv line 1: the filename is 5004 bytes, longer than 4096"])
        assertThrowsMessage(try CSVSplit.parse(Array("a.png,x\n\(longName)".utf8), source: "s.csv"), contains: [
            "s.csv line 2: expected `filename,label`, got '\(String(repeating: "n", count: 200))...'"])
        assertThrowsMessage(try CSVSplit.parse([UInt8](repeating: 0x20, count: CSVSplit.maxFileBytes + 1), source: "s.csv"),
                            contains: ["s.csv is 268435457 bytes, more than the 268435456-byte limit"])
    }

    // MARK: duplicates

    /// root/images/ with n images per label and a train.csv of `rows`.
    func csvDataset(_ rows: [String]) throws -> String {
        let dir = try makeTempDir(self)
        for c in 0..<3 { for i in 0..<4 {
            try ImageCodec.write(testImage(cls: c, index: i), to: "\(dir)/images/n\(c)_\(i).png")
        } }
        try (["filename,label"] + rows).joined(separator: "\n").write(toFile: dir + "/train.csv", atomically: true,
                                                                     encoding: .utf8)
        return dir
    }

    func testFileListedTwiceInASplitRefused() throws {
        let dir = try csvDataset(["n0_0.png,a", "n0_1.png,a", "n0_2.png,a", "./n0_1.png,a", "n1_0.png,b", "n1_1.png,b"])
        assertThrowsMessage(try DatasetSource(path: dir, layout: .csv, split: "train").open(), contains: [
            "1 image(s) of csv:train at \(dir) are named more than once: \(dir)/images/./n0_1.png (class 'a' image 2, "
                + "class 'a' image 4). A repeated file would be support and query of one episode or in two classes at "
                + "once; remove the repeated rows (or split files), or pass allowDuplicates to use the data as it is"])
        // Allowed: the data is used as listed, with a warning through the run's events.
        var warnings: [String] = []
        let ds = try DatasetSource(path: dir, layout: .csv, split: "train", allowDuplicates: true).open {
            if case .warning(let w) = $0 { warnings.append(w) }
        }
        XCTAssertEqual(ds.itemCounts, [4, 2])
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].hasPrefix("duplicate images allowed (`allowDuplicates`): 1 image(s) of csv:train"),
                      warnings[0])
        XCTAssertTrue(warnings[0].hasSuffix("; an episode may use one image as both support and query"), warnings[0])
    }

    func testImageSharedByTwoClassesRefused() throws {
        let dir = try csvDataset(["n0_0.png,a", "n0_1.png,a", "n1_0.png,b", "n0_0.png,b"])
        assertThrowsMessage(try Datasets.open(path: dir, layout: .csv, split: "train"), contains: [
            "are named more than once: \(dir)/images/n0_0.png (class 'a' image 1, class 'b' image 2)"])
        // Through a symbolic link in the folder layout: the same file after resolving.
        let tree = try makeTempDir(self)
        try writeFolderTree(tree, counts: [2, 2])
        try FileManager.default.createSymbolicLink(atPath: tree + "/c1/alias.png", withDestinationPath: tree + "/c0/img0.png")
        assertThrowsMessage(try Datasets.open(path: tree, layout: .folder), contains: [
            "\(tree)/c1/alias.png (class 'c0' image 1, class 'c1' image 1)"])
        // Identical contents under two names are two images (the real Omniglot has such a pair).
        try FileManager.default.removeItem(atPath: tree + "/c1/alias.png")
        try FileManager.default.copyItem(atPath: tree + "/c0/img0.png", toPath: tree + "/c1/copy.png")
        XCTAssertEqual(try Datasets.open(path: tree, layout: .folder).itemCounts, [2, 3])
    }

    func testSupportAlsoQueryInAnEpisodeListRefused() throws {
        let dir = try csvDataset(["n0_0.png,a", "n0_1.png,a", "n1_0.png,b", "n1_1.png,b"])
        let ds = try Datasets.open(path: dir, layout: .csv, split: "train")
        let p = { (n: String) in "\(dir)/images/\(n).png" }
        let bad = #"{"index": 7, "classes": ["a", "b"], "support": [["\#(p("n0_0"))"], ["\#(p("n1_0"))"]], "query": [["\#(p("n0_0"))"], ["\#(p("n1_1"))"]]}"#
        let list = try EpisodeList.decode(episodeListJSON(episodes: bad), source: "l.json")
        assertThrowsMessage(try list.resolve(in: ds), contains: [
            "episode 7 of the list names an image twice: \(p("n0_0")) (support of class 'a' and query of class 'a'); "
                + "an image that is both support and query makes the episode a lookup. Regenerate the list (`mml data "
                + "episodes`) or pass allowDuplicates to use it as it is"])
        var warnings: [String] = []
        let episodes = try list.resolve(in: ds, allowDuplicates: true, warnings: &warnings)
        XCTAssertEqual(episodes[0].support, [[0], [0]])
        XCTAssertEqual(episodes[0].query, [[0], [1]])
        XCTAssertEqual(warnings, ["duplicate images allowed (`allowDuplicates`): 1 episode(s) of the list name an image "
                                  + "twice: episode 7: \(p("n0_0")) (support of class 'a' and query of class 'a')"])
        // Sampled episodes of a clean dataset never repeat an image (items are drawn without replacement).
        let s = try EpisodeSampler(dataset: ds, way: 2, shot: 1, query: 1, seed: 3)
        for e in s.episodes(50) {
            let paths = zip(e.classes, e.support).flatMap { c, i in i.map { ds.itemPath(ofClass: c, item: $0) } }
                + zip(e.classes, e.query).flatMap { c, i in i.map { ds.itemPath(ofClass: c, item: $0) } }
            XCTAssertEqual(Set(paths).count, paths.count)
        }
    }

    func testRealOmniglotStillLoadsWithItsByteIdenticalPair() throws {
        guard let shared = sharedDatasets() else { throw XCTSkip("../shared/datasets/omniglot not found") }
        let root = shared + "/omniglot"
        let a = root + "/images_background/Braille/character01/0192_03.png"
        let b = root + "/images_background/Braille/character01/0192_19.png"
        XCTAssertEqual(FileManager.default.contents(atPath: a), FileManager.default.contents(atPath: b),
                       "the pair the duplicate rule documents")
        var warnings: [String] = []
        let ds = try DatasetSource(path: root, layout: .omniglotVinyals, split: "train").open {
            if case .warning(let w) = $0 { warnings.append(w) }
        }
        XCTAssertEqual(ds.classCount, 4112)
        XCTAssertEqual(warnings, [])
    }
}
