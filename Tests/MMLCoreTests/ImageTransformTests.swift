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

    /// `--augment shift`: the input moved by a whole number of pixels (each direction uniform in -m...m), edges
    /// replicated, against a naive translation of the unaugmented input; deterministic per seed; every move drawn.
    func testShiftTranslatesWithReplicatedEdges() throws {
        let img = randomImage(28, 28, 1, seed: 6)
        XCTAssertEqual(Augmentation.shift(side: 28).maxShift, 2)
        XCTAssertEqual(Augmentation.shift(side: 84).maxShift, 6)
        XCTAssertEqual(Augmentation.shift(side: 7).maxShift, 1)
        let plain = ImageConfig(size: 28, channels: 1, ink: .inkOne, resizeFilter: .area)
        var shifted = plain
        shifted.augmentation = .shift(side: 28)
        try shifted.validate()
        func run(_ cfg: ImageConfig, _ seed: UInt64) -> [Float] {
            var r = SeededRNG(seed: seed, stream: 3)
            var o = [Float](repeating: 0, count: 28 * 28)
            o.withUnsafeMutableBufferPointer { ImageTransform.apply(img, config: cfg, rng: &r, into: $0) }
            return o
        }
        let base = run(plain, 0)
        var moves = Set<[Int]>()
        for seed in UInt64(0)..<200 {
            let o = run(shifted, seed)
            XCTAssertEqual(o, run(shifted, seed), "seed \(seed) is not deterministic")
            // exactly one move (dx, dy) in -2...2 explains the output
            var found: [[Int]] = []
            for dy in -2...2 { for dx in -2...2 {
                var same = true
                for y in 0..<28 where same { for x in 0..<28 {
                    let sy = min(max(y - dy, 0), 27), sx = min(max(x - dx, 0), 27)
                    if o[y * 28 + x] != base[sy * 28 + sx] { same = false; break }
                } }
                if same { found.append([dx, dy]) }
            } }
            XCTAssertEqual(found.count, 1, "seed \(seed): \(found)")
            if let f = found.first { moves.insert(f) }
        }
        XCTAssertEqual(moves.count, 25, "not every move in -2...2 x -2...2 was drawn: \(moves.sorted { $0.lexicographicallyPrecedes($1) })")
        // three channels move together
        let rgb = randomImage(28, 28, 3, seed: 7)
        var cfg3 = ImageConfig(size: 28, channels: 3)
        let ref3 = { () -> [Float] in
            var r = SeededRNG(seed: 0); var o = [Float](repeating: 0, count: 3 * 784)
            o.withUnsafeMutableBufferPointer { ImageTransform.apply(rgb, config: cfg3, rng: &r, into: $0) }; return o }()
        cfg3.augmentation = Augmentation(shift: 1)
        var r = SeededRNG(seed: 11)
        var o3 = [Float](repeating: 0, count: 3 * 784)
        o3.withUnsafeMutableBufferPointer { ImageTransform.apply(rgb, config: cfg3, rng: &r, into: $0) }
        var r2 = SeededRNG(seed: 11)
        let dx = r2.nextInt(below: 3) - 1, dy = r2.nextInt(below: 3) - 1
        for c in 0..<3 { for y in 0..<28 { for x in 0..<28 {
            let sy = min(max(y - dy, 0), 27), sx = min(max(x - dx, 0), 27)
            XCTAssertEqual(o3[c * 784 + y * 28 + x], ref3[c * 784 + sy * 28 + sx])
        } } }
    }

    func testShiftSettingsAndErrors() throws {
        let omniglot = DatasetSource(path: "x", layout: .omniglotVinyals)
        let (train, eval) = try ImageSettings(augmentation: .shift).configurations(for: omniglot)
        XCTAssertEqual(train.augmentation, .shift(side: 28))
        XCTAssertNil(train.resize)
        XCTAssertEqual(eval.augmentation, .none)
        XCTAssertEqual(train.forEvaluation, eval)
        XCTAssertEqual(AugmentationKind(of: train.augmentation, side: 28), .shift)
        XCTAssertEqual(AugmentationKind(of: .mml, side: 28), .mml)
        XCTAssertEqual(AugmentationKind(of: .none, side: 28), .none)
        XCTAssertEqual(try AugmentationKind.parse("shift"), .shift)
        // configurations without a shift are written without the field (byte-identical to older files)
        let old = String(decoding: try JSONEncoder().encode(Augmentation.mml), as: UTF8.self)
        XCTAssertFalse(old.contains("shift"), old)
        let back = try JSONDecoder().decode(Augmentation.self, from: try JSONEncoder().encode(train.augmentation))
        XCTAssertEqual(back, train.augmentation)
        for bad in [-1, 28] {
            XCTAssertThrowsError(try ImageConfig(size: 28, channels: 1, augmentation: Augmentation(shift: bad)).validate()) {
                XCTAssertTrue(($0 as? MMLError)?.message.contains("augmentation shift \(bad) is out of range 0..<28") ?? false,
                              "\($0)")
            }
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
