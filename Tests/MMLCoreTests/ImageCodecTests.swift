import Foundation
import MMLCore
import XCTest

final class ImageCodecTests: XCTestCase {
    /// Random samples below 2^depth for `n` values.
    func samples(_ n: Int, depth: Int, seed: UInt64) -> [UInt16] {
        var rng = SeededRNG(seed: seed)
        return (0..<n).map { _ in UInt16(rng.nextInt(below: 1 << depth)) }
    }

    /// The expected 8-bit value of a `depth`-bit sample: v * 255 / (2^depth - 1), rounded.
    func to8(_ v: UInt16, _ depth: Int) -> Int {
        Int((Double(v) * 255 / Double((1 << depth) - 1)).rounded())
    }

    func testGreyAllBitDepths() throws {
        for depth in [1, 2, 4, 8, 16] {
            for interlaced in [false, true] {
                let (w, h) = (13, 7)
                let s = samples(w * h, depth: depth, seed: UInt64(depth))
                let png = try ImageCodec.encodePNG(samples: s, width: w, height: h, colorType: 0, bitDepth: depth,
                                                   interlaced: interlaced)
                let img = try ImageCodec.decode(png)
                XCTAssertEqual(img.channels, 1)
                XCTAssertEqual(img.width, w)
                XCTAssertEqual(img.height, h)
                for i in 0..<(w * h) {
                    XCTAssertLessThanOrEqual(abs(Int(img.pixels[i]) - to8(s[i], depth)), depth == 16 ? 1 : 0,
                                             "depth \(depth) pixel \(i)")
                }
                XCTAssertEqual(try ImageCodec.probe(png).bitDepth, depth)
            }
        }
    }

    func testRGBAndAlphaTypes() throws {
        for (type, spp) in [(2, 3), (4, 2), (6, 4)] {
            for depth in [8, 16] {
                let (w, h) = (5, 11)
                let s = samples(w * h * spp, depth: depth, seed: UInt64(type * 100 + depth))
                let png = try ImageCodec.encodePNG(samples: s, width: w, height: h, colorType: type, bitDepth: depth)
                let native = try ImageCodec.decode(png)
                XCTAssertEqual(native.channels, spp)
                for i in 0..<s.count {
                    XCTAssertLessThanOrEqual(abs(Int(native.pixels[i]) - to8(s[i], depth)), depth == 16 ? 1 : 0)
                }
                // Conversions: RGB keeps colour channels (drops alpha); grey is the BT.601 luma.
                let rgb = try ImageCodec.decode(png, channels: 3), grey = try ImageCodec.decode(png, channels: 1)
                for p in 0..<(w * h) {
                    let v = (0..<spp).map { Double(native.pixels[p * spp + $0]) }
                    let col = spp >= 3 ? [v[0], v[1], v[2]] : [v[0], v[0], v[0]]
                    for c in 0..<3 { XCTAssertEqual(Double(rgb.pixels[p * 3 + c]), col[c]) }
                    let luma = spp >= 3 ? 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2] : v[0]
                    XCTAssertLessThanOrEqual(abs(Double(grey.pixels[p]) - luma), 0.5 + 1e-9)
                }
            }
        }
    }

    func testPaletteWithTransparency() throws {
        for depth in [1, 2, 4, 8] {
            let entries = min(1 << depth, 7)
            var rng = SeededRNG(seed: 9)
            let palette = (0..<(entries * 3)).map { _ in UInt8(rng.nextInt(below: 256)) }
            let (w, h) = (9, 4)
            let idx = (0..<(w * h)).map { _ in UInt16(rng.nextInt(below: entries)) }
            let plain = try ImageCodec.decode(try ImageCodec.encodePNG(samples: idx, width: w, height: h, colorType: 3,
                                                                        bitDepth: depth, palette: palette))
            XCTAssertEqual(plain.channels, 3)
            let alpha: [UInt8] = [0, 128]
            let withA = try ImageCodec.decode(try ImageCodec.encodePNG(samples: idx, width: w, height: h, colorType: 3,
                                                                        bitDepth: depth, palette: palette,
                                                                        transparency: alpha))
            XCTAssertEqual(withA.channels, 4)
            for p in 0..<(w * h) {
                let e = Int(idx[p])
                for c in 0..<3 {
                    XCTAssertEqual(plain.pixels[p * 3 + c], palette[e * 3 + c])
                    XCTAssertEqual(withA.pixels[p * 4 + c], palette[e * 3 + c])
                }
                XCTAssertEqual(withA.pixels[p * 4 + 3], e < alpha.count ? alpha[e] : 255)
            }
        }
    }

    func testJPEGRoundTripIsClose() throws {
        // A smooth image survives JPEG at quality 95 within a few levels.
        let (w, h) = (40, 24)
        var px = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w {
            px[(y * w + x) * 3] = UInt8(x * 6); px[(y * w + x) * 3 + 1] = UInt8(y * 10); px[(y * w + x) * 3 + 2] = 128
        } }
        let img = PixelImage(width: w, height: h, channels: 3, pixels: px)
        let back = try ImageCodec.decode(try ImageCodec.encodeJPEG(img, quality: 95))
        XCTAssertEqual(back.channels, 3)
        XCTAssertEqual(back.width, w)
        let err = zip(back.pixels, px).map { abs(Int($0) - Int($1)) }
        XCTAssertLessThan(Double(err.reduce(0, +)) / Double(err.count), 3.0)
        let grey = try ImageCodec.decode(try ImageCodec.encodeJPEG(img.converted(toChannels: 1), quality: 95))
        XCTAssertEqual(grey.channels, 1)
        XCTAssertEqual(try ImageCodec.decode(try ImageCodec.encodeJPEG(img)).width, w)
    }

    func testTruncatedAndCorruptFilesThrowWithName() throws {
        let img = PixelImage(width: 32, height: 32, channels: 3, pixels: (0..<(32 * 32 * 3)).map { UInt8($0 % 251) })
        for (kind, bytes) in [("png", try ImageCodec.encodePNG(img)), ("jpg", try ImageCodec.encodeJPEG(img))] {
            for cut in [bytes.count / 2, 20, bytes.count - 3] {
                XCTAssertThrowsError(try ImageCodec.decode(Array(bytes[0..<cut]), source: "cut.\(kind)")) { e in
                    let m = (e as? MMLError)?.message ?? ""
                    XCTAssertEqual((e as? MMLError)?.kind, .corruptFile, m)
                    XCTAssertTrue(m.contains("cut.\(kind)"), m)
                }
            }
            var bad = bytes
            for i in stride(from: bytes.count / 3, to: bytes.count / 3 + 40, by: 1) { bad[i] ^= 0x5a }
            if kind == "png" {
                XCTAssertThrowsError(try ImageCodec.decode(bad, source: "bad.png")) {
                    XCTAssertTrue(($0 as? MMLError)?.message.contains("bad.png") ?? false)
                }
            } else {
                // libjpeg may or may not detect scrambled entropy data; it must not crash either way.
                _ = try? ImageCodec.decode(bad, source: "bad.jpg")
            }
        }
        XCTAssertThrowsError(try ImageCodec.decode(Array("GIF89a....".utf8), source: "x.gif")) {
            XCTAssertEqual(($0 as? MMLError)?.kind, .unsupportedFormat)
            XCTAssertTrue(($0 as? MMLError)?.message.contains("x.gif") ?? false)
        }
        XCTAssertThrowsError(try ImageCodec.decodeFile("/nonexistent/dir/a.png")) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("/nonexistent/dir/a.png") ?? false)
        }
    }

    func testRotationMatchesDefinition() {
        let img = PixelImage(width: 3, height: 2, channels: 1, pixels: [1, 2, 3, 4, 5, 6])
        // Counter-clockwise quarter turn: the right column becomes the top row.
        XCTAssertEqual(img.rotated(quarterTurns: 1).pixels, [3, 6, 2, 5, 1, 4])
        XCTAssertEqual(img.rotated(quarterTurns: 2).pixels, [6, 5, 4, 3, 2, 1])
        XCTAssertEqual(img.rotated(quarterTurns: 3).pixels, [4, 1, 5, 2, 6, 3])
        XCTAssertEqual(img.rotated(quarterTurns: 4), img)
        XCTAssertEqual(img.rotated(quarterTurns: 1).rotated(quarterTurns: 3), img)
    }
}
