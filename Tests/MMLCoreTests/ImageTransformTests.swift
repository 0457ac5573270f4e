import Foundation
import MMLCore
import XCTest

final class ImageTransformTests: XCTestCase {
    func randomImage(_ w: Int, _ h: Int, _ c: Int, seed: UInt64) -> PixelImage {
        var rng = SeededRNG(seed: seed)
        return PixelImage(width: w, height: h, channels: c, pixels: (0..<(w * h * c)).map { _ in UInt8(rng.nextInt(below: 256)) })
    }

    func testIdentityResizeIsExact() {
        let img = randomImage(17, 11, 3, seed: 1)
        var rng = SeededRNG(seed: 0)
        var out = [Float](repeating: 0, count: 3 * 17 * 17)
        // Same size: a copy (the triangle filter at exact pixel centres has a single tap).
        let sq = randomImage(17, 17, 3, seed: 2)
        out.withUnsafeMutableBufferPointer {
            ImageTransform.apply(sq, config: ImageConfig(size: 17, channels: 3), rng: &rng, into: $0)
        }
        for c in 0..<3 { for y in 0..<17 { for x in 0..<17 {
            XCTAssertEqual(out[c * 289 + y * 17 + x], Float(sq[y, x, c]) / 255, accuracy: 1e-6)
        } } }
        XCTAssertEqual(ImageTransform.resized(img, width: 17, height: 11), img)
    }

    func testIntegerShrinkIsAreaLikeAverage() {
        // Shrinking by 3: a triangle of half-width 3 over pixel centres, compared with a double-precision reference.
        let img = randomImage(12, 9, 1, seed: 3)
        let out = ImageTransform.resized(img, width: 4, height: 3)
        func taps(_ i: Int, _ n: Int) -> [(Int, Double)] {
            let c = (Double(i) + 0.5) * 3
            var t: [(Int, Double)] = []
            for j in 0..<n { let w = max(0, 1 - abs(Double(j) + 0.5 - c) / 3); if w > 0 { t.append((j, w)) } }
            let s = t.map(\.1).reduce(0, +)
            return t.map { ($0.0, $0.1 / s) }
        }
        for y in 0..<3 { for x in 0..<4 {
            var ref = 0.0
            for (sy, wy) in taps(y, 9) { for (sx, wx) in taps(x, 12) { ref += wy * wx * Double(img[sy, sx, 0]) } }
            XCTAssertLessThanOrEqual(abs(Double(out[y, x, 0]) - ref), 0.5 + 1e-3, "(\(y), \(x))")
        } }
        // A constant image stays constant at any size (weights are normalised).
        let flat = PixelImage(width: 105, height: 105, channels: 1, value: 200)
        for s in [1, 28, 84, 211] { XCTAssertTrue(ImageTransform.resized(flat, width: s, height: s).pixels.allSatisfy { $0 == 200 }) }
    }

    func testNormalisationAndFlip() {
        let img = randomImage(6, 6, 3, seed: 4)
        let mean: [Float] = [0.5, 0.4, 0.3], std: [Float] = [0.2, 0.25, 0.5]
        var cfg = ImageConfig(size: 6, channels: 3, mean: mean, std: std)
        var rng = SeededRNG(seed: 0)
        var out = [Float](repeating: 0, count: 108)
        out.withUnsafeMutableBufferPointer { ImageTransform.apply(img, config: cfg, rng: &rng, into: $0) }
        for c in 0..<3 { for y in 0..<6 { for x in 0..<6 {
            XCTAssertEqual(out[c * 36 + y * 6 + x], (Float(img[y, x, c]) / 255 - mean[c]) / std[c], accuracy: 1e-5)
        } } }
        cfg.augmentation = Augmentation(horizontalFlip: true)
        var flipped = 0
        for seed in 0..<20 {
            var r = SeededRNG(seed: UInt64(seed))
            var o = [Float](repeating: 0, count: 108)
            o.withUnsafeMutableBufferPointer { ImageTransform.apply(img, config: cfg, rng: &r, into: $0) }
            let isFlip = abs(o[5] - out[0]) < 1e-5 && abs(o[0] - out[5]) < 1e-5
            let isSame = zip(o, out).allSatisfy { abs($0 - $1) < 1e-5 }
            XCTAssertTrue(isFlip || isSame)
            if isFlip && !isSame { flipped += 1 }
        }
        XCTAssertTrue(flipped > 2 && flipped < 18, "flipped \(flipped) of 20")
    }

    func testAugmentationIsDeterministicAndVaries() throws {
        let img = randomImage(100, 100, 3, seed: 5)
        for aug in [Augmentation.mml, Augmentation(randomResizedCropScale: 0.3...1, horizontalFlip: true, brightness: 0.4)] {
            let cfg = ImageConfig(size: 84, channels: 3, resize: 100, augmentation: aug)
            try cfg.validate()
            func run(_ seed: UInt64) -> [Float] {
                var r = SeededRNG(seed: seed, stream: 7)
                var o = [Float](repeating: 0, count: 3 * 84 * 84)
                o.withUnsafeMutableBufferPointer { ImageTransform.apply(img, config: cfg, rng: &r, into: $0) }
                return o
            }
            XCTAssertEqual(run(1), run(1))
            XCTAssertNotEqual(run(1), run(2))
            XCTAssertTrue(run(3).allSatisfy { $0 >= 0 && $0 <= 1 })
        }
    }

    func testConfigErrors() {
        XCTAssertThrowsError(try ImageConfig(size: 84, channels: 2).validate()) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("channels must be 1 or 3, got 2") ?? false)
        }
        XCTAssertThrowsError(try ImageConfig(size: 84, channels: 3, mean: [0, 0]).validate()) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("mean has 2 values") ?? false)
        }
        XCTAssertThrowsError(try ImageConfig(size: 84, channels: 3, resize: 80, augmentation: .mml).validate()) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("resize >= 84") ?? false)
        }
    }
}
