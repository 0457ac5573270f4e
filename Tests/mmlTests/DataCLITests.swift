import Foundation
import MMLCore
import MMLTestSupport
import XCTest

final class DataCLITests: XCTestCase {
    func writeTree(_ root: String, counts: [Int]) throws {
        for (c, n) in counts.enumerated() {
            for i in 0..<n {
                let img = PixelImage(width: 10 + c, height: 8, channels: 3, value: UInt8(20 * i))
                try ImageCodec.write(img, to: "\(root)/class\(c)/\(i).\(i % 2 == 0 ? "png" : "jpg")")
            }
        }
    }

    func testInspectFolder() throws {
        let dir = try makeTempDir(self)
        try writeTree(dir, counts: [3, 4])
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/class0/notes.txt"))
        let bytes = try ImageCodec.encodePNG(PixelImage(width: 10, height: 8, channels: 3))
        try Data(bytes[0..<30]).write(to: URL(fileURLWithPath: dir + "/class1/broken.png"))
        let (code, out, err) = try runMML(["data", "inspect", dir, "--layout", "folder", "--decode", "--classes"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("classes     2"), out)
        XCTAssertTrue(out.contains("images      8"), out)
        XCTAssertTrue(out.contains("10x8: 3"), out)
        XCTAssertTrue(out.contains("class1: 5"), out)
        XCTAssertTrue(out.contains("skipped     1 file(s)"), out)
        XCTAssertTrue(out.contains("class1/broken.png"), out)
        XCTAssertTrue(out.contains("problems    2"), out)
    }

    func testInspectMissingRootFails() throws {
        let (code, _, err) = try runMML(["data", "inspect", "/no/such/root", "--layout", "folder"])
        XCTAssertNotEqual(code, 0)
        XCTAssertTrue(err.contains("dataset root /no/such/root does not exist"), err)
    }

    func testEpisodesWritesJSONAndReportsSmallClasses() throws {
        let dir = try makeTempDir(self)
        try writeTree(dir + "/data", counts: [4, 4, 4, 2])
        let out = dir + "/eps.json"
        var (code, _, err) = try runMML(["data", "episodes", dir + "/data", "--way", "3", "--shot", "1", "--query", "2",
                                         "--episodes", "5", "--seed", "3", "-o", out])
        XCTAssertNotEqual(code, 0)
        XCTAssertTrue(err.contains("'class3' (2 images)") && err.contains("--drop-small-classes"), err)
        (code, _, err) = try runMML(["data", "episodes", dir + "/data", "--way", "3", "--shot", "1", "--query", "2",
                                     "--episodes", "5", "--seed", "3", "-o", out, "--drop-small-classes"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(err.contains("dropped 1 class(es)"), err)
        let list = try EpisodeList.read(from: out)
        XCTAssertEqual(list.episodes.count, 5)
        XCTAssertEqual(list.way, 3)
        XCTAssertTrue(list.episodes.allSatisfy { $0.classes.count == 3 && !$0.classes.contains("class3") })
        XCTAssertTrue(FileManager.default.fileExists(atPath: list.episodes[0].support[0][0]))
        // The same command again gives byte-identical output.
        let first = try Data(contentsOf: URL(fileURLWithPath: out))
        (code, _, err) = try runMML(["data", "episodes", dir + "/data", "--way", "3", "--shot", "1", "--query", "2",
                                     "--episodes", "5", "--seed", "3", "-o", out, "--drop-small-classes"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), first)
    }

    func testEpisodesSynthetic() throws {
        let dir = try makeTempDir(self)
        let (code, out, err) = try runMML(["data", "episodes", "synthetic", "--split", "test", "--way", "5",
                                           "--episodes", "10", "-o", dir + "/s.json"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("wrote 10 episodes"), out)
        let list = try EpisodeList.read(from: dir + "/s.json")
        XCTAssertEqual(list.episodes[0].query[0].count, 15)
    }

    func testCacheWritesThenReuses() throws {
        let dir = try makeTempDir(self)
        try writeTree(dir + "/data", counts: [3, 3])
        var (code, out, err) = try runMML(["data", "cache", dir + "/data", "--layout", "folder", "--size", "8"])
        XCTAssertEqual(code, 0, err)
        let file = dir + "/data/.mml-cache/folder-default-8x8x3.bin"
        XCTAssertTrue(out.contains("wrote \(file): 6 images at 8x8x3"), out)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int, 32 + 6 * 8 * 8 * 3)
        (code, out, err) = try runMML(["data", "cache", dir + "/data", "--layout", "folder", "--size", "8"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("is up to date"), out)
    }
}
