import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// The preprocessing options: the area resize filter against exact area averaging in double, the ink inversion and
/// mean/std, their configuration and its errors, and the protonet protocol against brute force.
final class PreprocessingTests: XCTestCase {
    /// Exact area averaging of an HWC u8 image over the box, in double: output pixel (i, j) is the mean of the
    /// piecewise-constant source over [x0 + j s_x, x0 + (j + 1) s_x] x [y0 + i s_y, ...] clipped to the image.
    static func areaReference(_ img: PixelImage, box: (Double, Double, Double, Double), dw: Int, dh: Int) -> [Double] {
        let sx = (box.2 - box.0) / Double(dw), sy = (box.3 - box.1) / Double(dh)
        func overlap(_ a: Double, _ b: Double, _ j: Int) -> Double { max(0, min(b, Double(j + 1)) - max(a, Double(j))) }
        var out = [Double](repeating: 0, count: dw * dh * img.channels)
        for i in 0..<dh {
            let ya = max(0, box.1 + Double(i) * sy), yb = min(Double(img.height), box.1 + Double(i + 1) * sy)
            for j in 0..<dw {
                let xa = max(0, box.0 + Double(j) * sx), xb = min(Double(img.width), box.0 + Double(j + 1) * sx)
                for c in 0..<img.channels {
                    var sum = 0.0, area = 0.0
                    for y in 0..<img.height {
                        let wy = overlap(ya, yb, y)
                        if wy == 0 { continue }
                        for x in 0..<img.width {
                            let w = wy * overlap(xa, xb, x)
                            if w == 0 { continue }
                            sum += w * Double(img.pixels[(y * img.width + x) * img.channels + c])
                            area += w
                        }
                    }
                    out[(i * dw + j) * img.channels + c] = sum / area
                }
            }
        }
        return out
    }

    static func randomImage(width: Int, height: Int, channels: Int, seed: UInt64) -> PixelImage {
        var rng = TestRNG(seed: seed)
        return PixelImage(width: width, height: height, channels: channels,
                          pixels: (0..<(width * height * channels)).map { _ in UInt8(rng.int(256)) })
    }

    /// The float path (ImageTransform.apply: CHW, / 255) resizing `img` to size x size with `filter` equals `ref`
    /// (HWC, 0...255) within 1e-5.
    static func assertTransform(_ img: PixelImage, size: Int, filter: ResizeFilter, equals ref: [Double],
                                file: StaticString = #filePath, line: UInt = #line) {
        let ch = img.channels
        let config = ImageConfig(size: size, channels: ch, resizeFilter: filter)
        var out = [Float](repeating: 0, count: ch * size * size)
        var rng = SeededRNG(seed: 0)
        out.withUnsafeMutableBufferPointer { ImageTransform.apply(img, config: config, rng: &rng, into: $0) }
        var chw = [Double](repeating: 0, count: out.count)
        for c in 0..<ch { for p in 0..<(size * size) { chw[c * size * size + p] = ref[p * ch + c] / 255 } }
        assertClose(out, chw, atol: 1e-5, rtol: 1e-5,
                    "\(filter) \(img.width)x\(img.height) -> \(size)x\(size) (f32)", file: file, line: line)
    }

    func testAreaFilterMatchesExactAreaAveraging() {
        // integer and non-integer factors, shrinking and enlarging, 1 and 3 channels (Omniglot: 105 -> 28)
        for (sw, sh, dw, dh, ch) in [(12, 12, 4, 4, 1), (105, 105, 28, 28, 1), (17, 11, 5, 7, 3), (7, 5, 10, 9, 3), (9, 9, 9, 9, 1)] {
            let img = Self.randomImage(width: sw, height: sh, channels: ch, seed: UInt64(sw * 100 + dw))
            let ref = Self.areaReference(img, box: (0, 0, Double(sw), Double(sh)), dw: dw, dh: dh)
            let u8 = ImageTransform.resized(img, width: dw, height: dh, filter: .area)
            // u8 output: rounded
            assertClose(u8.pixels.map(Float.init), ref, atol: 0.5 + 1e-3, rtol: 0, "area \(sw)x\(sh) -> \(dw)x\(dh) (u8)")
            // float output through the transform (CHW, / 255)
            if dw == dh { Self.assertTransform(img, size: dw, filter: .area, equals: ref) }
        }
        // at an integer factor the area filter is the block mean; the triangle filter is not
        let img = Self.randomImage(width: 8, height: 8, channels: 1, seed: 3)
        let tri = ImageTransform.resized(img, width: 2, height: 2, filter: .triangle)
        let area = ImageTransform.resized(img, width: 2, height: 2, filter: .area)
        var block = 0.0
        for y in 0..<4 { for x in 0..<4 { block += Double(img.pixels[y * 8 + x]) } }
        XCTAssertEqual(Double(area.pixels[0]), (block / 16).rounded(), accuracy: 0.5)
        XCTAssertNotEqual(tri.pixels, area.pixels)
    }

    /// PIL's BOX resampling (Pillow's separable coefficients, from its definition), in double, no 8-bit rounding:
    /// per axis, output i has centre c = (i + 1/2) s, filter scale f = max(s, 1), candidates x in
    /// [trunc(c - f/2 + 1/2), trunc(c + f/2 + 1/2)) clipped to the image, weight box((x - c + 1/2) / f) with
    /// box(t) = 1 for -1/2 < t <= 1/2, normalised.
    static func pilBoxReference(_ img: PixelImage, dw: Int, dh: Int) -> [Double] {
        func coefficients(_ n: Int, _ m: Int) -> [[(Int, Double)]] {
            let s = Double(n) / Double(m), f = max(s, 1)
            return (0..<m).map { i in
                let c = (Double(i) + 0.5) * s
                let lo = max(Int(c - f / 2 + 0.5), 0), hi = min(Int(c + f / 2 + 0.5), n)
                var taps: [(Int, Double)] = []
                for x in lo..<max(hi, lo) {
                    let t = (Double(x) - c + 0.5) / f
                    if t > -0.5 && t <= 0.5 { taps.append((x, 1)) }
                }
                let total = taps.reduce(0) { $0 + $1.1 }
                return taps.map { ($0.0, $0.1 / total) }
            }
        }
        let cx = coefficients(img.width, dw), cy = coefficients(img.height, dh)
        var out = [Double](repeating: 0, count: dw * dh * img.channels)
        for i in 0..<dh { for j in 0..<dw { for c in 0..<img.channels {
            var v = 0.0
            for (y, wy) in cy[i] { for (x, wx) in cx[j] {
                v += wy * wx * Double(img.pixels[(y * img.width + x) * img.channels + c])
            } }
            out[(i * dw + j) * img.channels + c] = v
        } } }
        return out
    }

    func testBoxFilterMatchesPILBox() {
        // Omniglot's 105 -> 28 (where box and area differ), other non-integer factors, enlarging, 1 and 3 channels
        for (sw, sh, dw, dh, ch) in [(105, 105, 28, 28, 1), (84, 84, 21, 21, 3), (17, 11, 5, 7, 3), (7, 5, 10, 9, 1),
                                     (30, 30, 7, 7, 1)] {
            let img = Self.randomImage(width: sw, height: sh, channels: ch, seed: UInt64(sw * 31 + dw))
            let ref = Self.pilBoxReference(img, dw: dw, dh: dh)
            let u8 = ImageTransform.resized(img, width: dw, height: dh, filter: .box)
            assertClose(u8.pixels.map(Float.init), ref, atol: 0.5 + 1e-3, rtol: 0, "box \(sw)x\(sh) -> \(dw)x\(dh) (u8)")
            if dw == dh { Self.assertTransform(img, size: dw, filter: .box, equals: ref) }
        }
        // integer factor: box is area (the block mean); 105 -> 28: they differ
        let img = Self.randomImage(width: 12, height: 12, channels: 1, seed: 9)
        XCTAssertEqual(ImageTransform.resized(img, width: 4, height: 4, filter: .box).pixels,
                       ImageTransform.resized(img, width: 4, height: 4, filter: .area).pixels)
        let omni = Self.randomImage(width: 105, height: 105, channels: 1, seed: 10)
        XCTAssertNotEqual(ImageTransform.resized(omni, width: 28, height: 28, filter: .box).pixels,
                          ImageTransform.resized(omni, width: 28, height: 28, filter: .area).pixels)
    }

    func testInkInversionAndNormalisation() {
        let img = Self.randomImage(width: 6, height: 6, channels: 3, seed: 5)
        var rng = SeededRNG(seed: 0)
        let mean: [Float] = [0.5, 0.4, 0.3], std: [Float] = [0.2, 0.25, 0.5]
        let config = ImageConfig(size: 6, channels: 3, mean: mean, std: std, ink: .inkOne)
        var out = [Float](repeating: 0, count: 3 * 36)
        out.withUnsafeMutableBufferPointer { ImageTransform.apply(img, config: config, rng: &rng, into: $0) }
        var ref = [Double](repeating: 0, count: out.count)
        for c in 0..<3 {
            for p in 0..<36 {
                let x = 1 - Double(img.pixels[p * 3 + c]) / 255
                ref[c * 36 + p] = (x - Double(mean[c])) / Double(std[c])
            }
        }
        assertClose(out, ref, atol: 1e-5, rtol: 1e-5, "ink-one with per-channel mean / std")
    }

    func testConfigurationRoundTripsAndOldJSONDecodes() throws {
        let old = #"{"augmentation":{"brightness":0,"contrast":0,"horizontalFlip":false,"randomCrop":false,"randomResizedCropRatio":[0.75,1.3333334],"saturation":0},"channels":1,"mean":[0],"size":28,"std":[1]}"#
        let decoded = try JSONDecoder().decode(ImageConfig.self, from: Data(old.utf8))
        XCTAssertEqual(decoded.ink, .paperWhite)
        XCTAssertEqual(decoded.resizeFilter, .triangle)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        // defaults are not written: older configurations stay byte-identical
        XCTAssertFalse(String(decoding: try enc.encode(decoded), as: UTF8.self).contains("ink"))
        var c = decoded
        c.ink = .inkOne
        c.resizeFilter = .area
        let text = String(decoding: try enc.encode(c), as: UTF8.self)
        XCTAssertTrue(text.contains("\"ink\":\"ink-one\"") && text.contains("\"resizeFilter\":\"area\""), text)
        XCTAssertEqual(try JSONDecoder().decode(ImageConfig.self, from: Data(text.utf8)), c)
    }

    func testSettingsApplyPreprocessingAndNameBadValues() throws {
        let omniglotLike = DatasetSource(path: "synthetic", syntheticSize: 28, syntheticChannels: 1)
        let plain = try ImageSettings().configurations(for: omniglotLike).eval
        XCTAssertEqual(plain.ink, .paperWhite)
        let s = ImageSettings(preprocessing: Preprocessing(ink: .inkOne, resizeFilter: .area, mean: [0.9], std: [0.1]))
        let (train, eval) = try s.configurations(for: omniglotLike)
        for cfg in [train, eval] {
            XCTAssertEqual(cfg.ink, .inkOne)
            XCTAssertEqual(cfg.resizeFilter, .area)
            XCTAssertEqual(cfg.mean, [0.9])
            XCTAssertEqual(cfg.std, [0.1])
        }
        func fails(_ p: Preprocessing, _ message: String, line: UInt = #line) {
            XCTAssertThrowsError(try ImageSettings(preprocessing: p).configurations(for: omniglotLike), line: line) { e in
                XCTAssertTrue((e as! MMLError).message.contains(message), "\((e as! MMLError).message)", line: line)
            }
        }
        fails(Preprocessing(mean: [0.1, 0.2, 0.3]), "mean has 3 values [0.1, 0.2, 0.3]; the images have 1 channel")
        fails(Preprocessing(std: [0]), "std values must be positive")
        XCTAssertEqual(try Preprocessing.parseValues("0.485, 0.456,0.406", field: "mean"), [0.485, 0.456, 0.406])
        for bad in ["", "a", "1,2,3,4", "1,,2"] {
            XCTAssertThrowsError(try Preprocessing.parseValues(bad, field: "std")) { e in
                XCTAssertTrue((e as! MMLError).message.contains("give 1 or 3 comma-separated numbers"))
            }
        }
        XCTAssertThrowsError(try ResizeFilter.parse("bicubic")) { e in
            XCTAssertTrue((e as! MMLError).message.contains("resizeFilter bicubic: use triangle, area or box"))
        }
        XCTAssertThrowsError(try InkConvention.parse("black")) { e in
            XCTAssertTrue((e as! MMLError).message.contains("ink black: use paper-white or ink-one"))
        }
    }

    func testProtoNetProtocolMatchesBruteForce() throws {
        var rng = TestRNG(seed: 12)
        let way = 3, d = 7
        let labels = [0, 1, 2, 0, 1, 2, 2]
        let support = rng.tensor([labels.count, d]), query = rng.tensor([5, d])
        let scores = try frozenFeatureScores(support: support, supportLabels: labels, query: query, way: way,
                                             protocol: .protonet)
        var ref = [Double](repeating: 0, count: 5 * way)
        for i in 0..<5 {
            for c in 0..<way {
                let members = labels.indices.filter { labels[$0] == c }
                var dist = 0.0
                for k in 0..<d {
                    let p = members.map { Double(support.data[$0 * d + k]) }.reduce(0, +) / Double(members.count)
                    dist += pow(Double(query.data[i * d + k]) - p, 2)
                }
                ref[i * way + c] = -dist
            }
        }
        assertClose(scores.data, ref, atol: 1e-5, rtol: 1e-5, "protonet scores")
        XCTAssertEqual(try EvaluationProtocol.parse("protonet").frozen, .protonet)
    }
}
