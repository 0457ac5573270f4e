import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// Hostile files through the command line: what the user sees (message, exit code), with the flags the core's
/// fields are rendered as (`--max-image-pixels`, `--allow-duplicates`).
final class HostileInputCLITests: XCTestCase {
    /// A folder dataset of two classes of small PNGs, plus `extra` files written into class 1.
    func folder(extra: [String: [UInt8]] = [:]) throws -> String {
        let dir = try makeTempDir(self)
        for c in 0..<2 { for i in 0..<3 {
            try ImageCodec.write(PixelImage(width: 10, height: 8, channels: 3, value: UInt8(40 * i + c)),
                                 to: "\(dir)/class\(c)/\(i).png")
        } }
        for (name, bytes) in extra { try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/class1/\(name)")) }
        return dir
    }

    func testOversizedImagesRefusedFromTheHeaderWithSmallPeakMemory() throws {
        let dir = try folder(extra: ["huge.png": HostileFiles.oversizedPNG(), "huge.jpg": try HostileFiles.oversizedJPEG()])
        // Under a 1.5 GB address-space limit: decoding 30000 x 30000 RGB needs 2.7 GB and would fail (a trap).
        let (code, out, err) = try runProcess("/bin/sh", ["-c", "ulimit -v 1500000 && exec \"$0\" \"$@\"", mmlBinaryPath,
                                                          "data", "inspect", dir, "--layout", "folder", "--decode"])
        XCTAssertEqual(code, 0, "stdout: \(out) stderr: \(err)")
        XCTAssertTrue(out.contains("problems    2"), out)
        XCTAssertTrue(out.contains("\(dir)/class1/huge.png: the header declares 30000 x 30000 = 900000000 pixels, more "
                                   + "than the limit of 67108864 (--max-image-pixels); decoding it would need 2700 MB. "
                                   + "Raise --max-image-pixels if the image is genuine, else remove or replace the file"), out)
        XCTAssertTrue(out.contains("\(dir)/class1/huge.jpg: the header declares 30000 x 30000"), out)
        XCTAssertTrue(out.contains("10x8: 6"), out)
    }

    func testMaxImagePixelsRaisesAndLowersTheLimit() throws {
        let dir = try folder(extra: ["huge.png": HostileFiles.oversizedPNG()])
        // Raised: the header of the big file is accepted (inspection without --decode reads headers only).
        let (code, out, err) = try runMML(["data", "inspect", dir, "--layout", "folder", "--max-image-pixels", "900000000"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("problems    0"), out)
        XCTAssertTrue(out.contains("30000x30000 png 3ch 8-bit: 1"), out)
        // Lowered: even the 10 x 8 images are refused.
        let (_, low, _) = try runMML(["data", "inspect", dir, "--layout", "folder", "--max-image-pixels", "79"])
        XCTAssertTrue(low.contains("problems    7"), low)
        XCTAssertTrue(low.contains("0.png: the header declares 10 x 8 = 80 pixels, more than the limit of 79"), low)
        try assertMMLFails(["data", "inspect", dir, "--max-image-pixels", "0"],
                           "error: --max-image-pixels must be at least 1, got 0", reported: true)
    }

    func testDuplicateRowsRefusedUnlessAllowedWithAWarning() throws {
        let dir = try makeTempDir(self)
        for c in 0..<2 { for i in 0..<3 {
            try ImageCodec.write(PixelImage(width: 10, height: 8, channels: 3, value: UInt8(40 * i + c)),
                                 to: "\(dir)/images/n\(c)_\(i).png")
        } }
        let rows = ["filename,label", "n0_0.png,a", "n0_1.png,a", "n0_2.png,a", "n0_2.png,a", "n1_0.png,b",
                    "n1_1.png,b", "n1_2.png,b"]
        try rows.joined(separator: "\n").write(toFile: dir + "/train.csv", atomically: true, encoding: .utf8)
        let args = ["data", "episodes", dir, "--layout", "csv", "--split", "train", "--way", "2", "--shot", "1",
                    "--query", "2", "--episodes", "3", "-o", dir + "/list.json"]
        try assertMMLFails(args, "error: 1 image(s) of csv:train at \(dir) are named more than once: "
                           + "\(dir)/images/n0_2.png (class 'a' image 3, class 'a' image 4). A repeated file would be "
                           + "support and query of one episode or in two classes at once; remove the repeated rows (or "
                           + "split files), or pass --allow-duplicates to use the data as it is", reported: true)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/list.json"))
        let (code, _, err) = try runMML(args + ["--allow-duplicates"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(err.contains("warning: duplicate images allowed (--allow-duplicates): 1 image(s) of csv:train"), err)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/list.json"))
    }

    func testBinaryCSVSplitRefused() throws {
        let dir = try folder()
        try Data([0x66, 0x2C, 0x00]).write(to: URL(fileURLWithPath: dir + "/train.csv"))
        try assertMMLFails(["data", "inspect", dir, "--layout", "csv", "--split", "train"],
                           "error: \(dir)/train.csv line 1: a NUL byte", reported: true)
    }
}
