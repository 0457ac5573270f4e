import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// A small image whose pixels encode (class, index) so that loads can be checked: the top-left pixel is
/// 10 * class + index, the rest a gradient.
func testImage(cls: Int, index: Int, width: Int = 12, height: Int = 10, channels: Int = 3) -> PixelImage {
    var px = [UInt8](repeating: 0, count: width * height * channels)
    for y in 0..<height { for x in 0..<width { for c in 0..<channels {
        px[(y * width + x) * channels + c] = UInt8((x * 20 + y * 7 + c * 30 + cls * 13) % 256)
    } } }
    for c in 0..<channels { px[c] = UInt8(10 * cls + index) }
    return PixelImage(width: width, height: height, channels: channels, pixels: px)
}

/// Writes root/<class>/<i>.png|jpg for `counts[c]` images of class "c<c>".
@discardableResult
func writeFolderTree(_ root: String, counts: [Int], jpeg: Bool = false) throws -> [[String]] {
    try counts.enumerated().map { c, n in
        try (0..<n).map { i in
            let path = "\(root)/c\(c)/img\(i).\(jpeg && i % 2 == 1 ? "jpg" : "png")"
            try ImageCodec.write(testImage(cls: c, index: i), to: path)
            return path
        }
    }
}

/// ../shared/datasets relative to the package root, or nil when absent.
func sharedDatasets() -> String? {
    let p = packageRoot().appendingPathComponent("../shared/datasets").standardizedFileURL.path
    return FileManager.default.fileExists(atPath: p + "/omniglot") ? p : nil
}

func assertThrowsMessage(_ expr: @autoclosure () throws -> Any, contains parts: [String], file: StaticString = #filePath,
                         line: UInt = #line) {
    XCTAssertThrowsError(try expr(), file: file, line: line) { e in
        let m = (e as? MMLError)?.message ?? "\(e)"
        for p in parts { XCTAssertTrue(m.contains(p), "message '\(m)' lacks '\(p)'", file: file, line: line) }
    }
}
