import Foundation

/// The built-in procedurally generated dataset (METHOD.md section 7, docs/SYNTHETIC.md): no files, at most 125
/// classes, every image a pure function of (seed, class, index), built so that an ablation of the metric levels
/// teaches something.
///
/// Each class is a distinct triple of cues, one per metric level, each from a pool of 5 (`SyntheticClassCues`:
/// entry `class` of a seeded permutation of the 125 triples):
/// - pixel cue, a glyph shape (ring, plus, triangle, Z, L), drawn three times anywhere in the image: what the DN4
///   image-to-class k-NN over local descriptors matches wherever it is;
/// - part cue, how six coloured spots (one of each colour in every image) are paired: each pair sits in its own
///   quadrant, and the five pairings share no pair (the round-robin 1-factorisation of K6). Every image holds the
///   same spots, so no local descriptor and no global statistic tells the pairings apart; a pooled region that holds
///   a pair does;
/// - distribution cue, the share of light tiles (10, 30, 50, 70 or 90%) in a mosaic of light and dark grey tiles:
///   every local pattern occurs in every class, only their frequencies differ, which a Gaussian of all descriptors
///   sees and a nearest-neighbour match does not.
/// Each cue alone is ambiguous: in a 5-way episode two classes often share one cue (so a single level confuses
/// them), rarely two, never all three. `Options.removedCue` makes one cue constant across classes (glyph 0, pairing
/// 0, share 50%) so that the level reading it loses it.
/// Nuisance, from `SeededRNG(seed, [class, index])`: glyph positions, rotations (+-0.25 rad) and sizes, one
/// distractor glyph from the pool, the tile layout and offset, grey levels and tint, which quadrants the pairs take
/// and their orientation, spot colour jitter, pixel noise (std 0.03).
/// Difficulty: raw-pixel nearest-prototype (no network) scores about 35% on 5-way 1-shot at 28x28x3 (chance 20%;
/// DataSyntheticTests keeps it between 25% and 60%), leaving the task to a trained backbone.
public struct SyntheticDataset: FewShotDataset {
    /// Generation options.
    public struct Options: Sendable, Equatable, Codable {
        public var seed: UInt64
        /// Classes in the train, val and test splits (disjoint class ids, in that order).
        public var trainClasses: Int
        public var valClasses: Int
        public var testClasses: Int
        /// Images per class (any number; the images are generated on demand).
        public var imagesPerClass: Int
        /// Side in pixels of the generated images.
        public var size: Int
        /// 1 (grey) or 3 (RGB) channels.
        public var channels: Int
        /// The cue made constant across classes (nil: none), so the level that reads it loses it.
        public var removedCue: SyntheticCue?

        public init(seed: UInt64 = 0, trainClasses: Int = 64, valClasses: Int = 16, testClasses: Int = 20,
                    imagesPerClass: Int = 100, size: Int = 84, channels: Int = 3, removedCue: SyntheticCue? = nil) {
            self.seed = seed; self.trainClasses = trainClasses; self.valClasses = valClasses
            self.testClasses = testClasses; self.imagesPerClass = imagesPerClass; self.size = size
            self.channels = channels; self.removedCue = removedCue
        }
    }

    public let options: Options
    public let split: String
    /// The global class ids of this split.
    public let classIDs: [Int]
    public var skippedFiles: [String] { [] }
    public var warnings: [String] { [] }

    /// The dataset for `split` (train, val, test or all).
    /// Throws `MMLError(.invalidArgument)` for an unknown split or a bad option.
    public init(options: Options = .init(), split: String = "train") throws {
        let o = options
        guard o.size >= 8 && o.size <= 1024 else {
            throw MMLError(.invalidArgument, "synthetic image size \(o.size) is out of range 8...1024")
        }
        guard o.channels == 1 || o.channels == 3 else {
            throw MMLError(.invalidArgument, "synthetic channels must be 1 or 3, got \(o.channels)")
        }
        guard o.imagesPerClass > 0, o.trainClasses >= 0, o.valClasses >= 0, o.testClasses >= 0 else {
            throw MMLError(.invalidArgument, "synthetic class and image counts must be positive")
        }
        let t = o.trainClasses, v = o.valClasses, s = o.testClasses
        guard t + v + s <= SyntheticClassCues.maxClasses else {
            throw MMLError(.invalidArgument, "synthetic data has at most \(SyntheticClassCues.maxClasses) classes (each a "
                           + "distinct triple of \(SyntheticClassCues.poolSize) glyphs, spot pairings and tile shares); "
                           + "\(t) + \(v) + \(s) were asked for: ask for fewer")
        }
        switch split {
        case "train": classIDs = Array(0..<t)
        case "val": classIDs = Array(t..<(t + v))
        case "test": classIDs = Array((t + v)..<(t + v + s))
        case "all": classIDs = Array(0..<(t + v + s))
        default: throw MMLError(.invalidArgument, "unknown synthetic split '\(split)'; use train, val, test or all")
        }
        self.options = o
        self.split = split
    }

    public var name: String {
        "synthetic:\(split) (seed \(options.seed), \(options.size)x\(options.size)x\(options.channels)"
            + (options.removedCue.map { ", \($0.rawValue) cue removed" } ?? "") + ")"
    }
    public var classNames: [String] { classIDs.map { "class\($0)" } }
    public func itemCount(ofClass c: Int) -> Int { options.imagesPerClass }
    public func itemPath(ofClass c: Int, item i: Int) -> String { "synthetic/class\(classIDs[c])/\(i)" }

    public func loadImage(ofClass c: Int, item i: Int, channels: Int) throws -> PixelImage {
        let img = SyntheticDataset.render(seed: options.seed, classID: classIDs[c], index: i, size: options.size,
                                          channels: options.channels, removedCue: options.removedCue)
        return channels == img.channels ? img : img.converted(toChannels: channels)
    }

    /// Renders image `index` of class `classID`: a pure function of its arguments.
    /// - Parameter removedCue: the cue made constant across classes (nil: every cue as the class draws it).
    public static func render(seed: UInt64, classID: Int, index: Int, size: Int, channels: Int,
                              removedCue: SyntheticCue? = nil) -> PixelImage {
        let cue = SyntheticClassCues(seed: seed, classID: classID, removing: removedCue)
        var rng = SeededRNG(seed: seed, path: [2, UInt64(classID), UInt64(index)])
        let s = Float(size)
        let n = size * size
        var canvas = [Float](repeating: 0, count: n * 3)
        // Distribution cue: a mosaic of light and dark tiles, exactly round(p * tiles) of them light.
        let tile = s / Float(SyntheticClassCues.tilesAcross)
        let ox = rng.uniform(0, tile), oy = rng.uniform(0, tile)
        let across = SyntheticClassCues.tilesAcross + 1
        let tiles = across * across
        let lightCount = Int((SyntheticClassCues.proportions[cue.proportion] * Float(tiles)).rounded())
        var isLight = [Bool](repeating: false, count: tiles)
        for t in rng.sample(lightCount, from: tiles) { isLight[t] = true }
        let lv = 0.80 + rng.uniform(-0.04, 0.04), dv = 0.50 + rng.uniform(-0.04, 0.04)
        let tint = [rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03)]
        canvas.withUnsafeMutableBufferPointer { p in
            for y in 0..<size {
                let ty = min(across - 1, max(0, Int((Float(y) + 0.5 + oy) / tile)))
                for x in 0..<size {
                    let tx = min(across - 1, max(0, Int((Float(x) + 0.5 + ox) / tile)))
                    let v = isLight[ty * across + tx] ? lv : dv
                    let i = (y * size + x) * 3
                    p[i] = v + tint[0]; p[i + 1] = v + tint[1]; p[i + 2] = v + tint[2]
                }
            }
        }
        // Part cue: six coloured spots in three pairs (the pairing is the cue), each pair in its own quadrant.
        let quadrants = rng.sample(3, from: 4)
        let spotRadius = max(1.2, 0.072 * s)
        let pairs = SyntheticClassCues.pairs(cue.pairing)
        canvas.withUnsafeMutableBufferPointer { p in
            for (k, pair) in pairs.enumerated() {
                let q = quadrants[k]
                let cx = 0.25 + 0.5 * Float(q % 2) + rng.uniform(-0.03, 0.03)
                let cy = 0.25 + 0.5 * Float(q / 2) + rng.uniform(-0.03, 0.03)
                let a = rng.uniform(0, 2 * Float.pi), h = Float(0.14)
                let ends = [(cx - h * cos(a), cy - h * sin(a)), (cx + h * cos(a), cy + h * sin(a))]
                let order = rng.nextInt(below: 2)
                for e in 0..<2 {
                    var color = SyntheticClassCues.spotColors[e == order ? pair.0 : pair.1]
                    for c in 0..<3 { color[c] = min(max(color[c] + rng.uniform(-0.06, 0.06), 0), 1) }
                    drawDisc(p, size: size, x: ends[e].0 * s, y: ends[e].1 * s, radius: spotRadius, color: color)
                }
            }
        }
        // Pixel cue: three copies of the class glyph and one distractor glyph, anywhere, in dark ink.
        let width = max(1.0, 0.04 * s)
        let glyphs = [cue.glyph, cue.glyph, cue.glyph, rng.nextInt(below: SyntheticClassCues.poolSize)]
        canvas.withUnsafeMutableBufferPointer { p in
            for g in glyphs {
                let gx = rng.uniform(0.12, 0.88), gy = rng.uniform(0.12, 0.88)
                let a = rng.uniform(-0.25, 0.25), r = 0.11 * rng.uniform(0.9, 1.1)
                let v = rng.uniform(0.02, 0.14)
                for seg in SyntheticClassCues.glyphSegments[g] {
                    func place(_ pt: (Float, Float)) -> (Float, Float) {
                        ((gx + r * (cos(a) * pt.0 - sin(a) * pt.1)) * s, (gy + r * (sin(a) * pt.0 + cos(a) * pt.1)) * s)
                    }
                    let (p0, p1) = (place(seg.0), place(seg.1))
                    drawSegment(p, size: size, (p0.0, p0.1, p1.0, p1.1), width: width, color: [v, v, v])
                }
            }
        }
        // Pixel noise (sum of two uniforms: triangular, std = sigma) and quantisation.
        let sigma = Float(0.03) * 2.449
        var out = [UInt8](repeating: 0, count: n * channels)
        canvas.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                for i in 0..<n {
                    let r = rng.next()
                    let u = (Float(r & 0xFFFF) + Float((r >> 16) & 0xFFFF)) * (1.0 / 65536.0) - 1.0
                    let e = u * sigma
                    if channels == 3 {
                        for c in 0..<3 { o[3 * i + c] = quantize(p[3 * i + c] + e) }
                    } else {
                        o[i] = quantize(0.299 * p[3 * i] + 0.587 * p[3 * i + 1] + 0.114 * p[3 * i + 2] + e)
                    }
                }
            }
        }
        return PixelImage(width: size, height: size, channels: channels, pixels: out)
    }

    /// Anti-aliased filled disc: coverage = clamp(radius + 1/2 - distance, 0, 1), blended over the canvas.
    static func drawDisc(_ p: UnsafeMutableBufferPointer<Float>, size: Int, x: Float, y: Float, radius: Float,
                         color: [Float]) {
        let minX = max(0, Int(x - radius - 1)), maxX = min(size - 1, Int(x + radius + 1))
        let minY = max(0, Int(y - radius - 1)), maxY = min(size - 1, Int(y + radius + 1))
        if minX > maxX || minY > maxY { return }
        for py in minY...maxY {
            for px in minX...maxX {
                let dx = Float(px) + 0.5 - x, dy = Float(py) + 0.5 - y
                let cov = min(max(radius + 0.5 - (dx * dx + dy * dy).squareRoot(), 0), 1)
                if cov > 0 {
                    let i = (py * size + px) * 3
                    for c in 0..<3 { p[i + c] += cov * (color[c] - p[i + c]) }
                }
            }
        }
    }

    @inline(__always) static func quantize(_ v: Float) -> UInt8 {
        UInt8(min(max(v, 0), 1) * 255 + 0.5)
    }

    /// Anti-aliased thick segment: coverage = clamp(width/2 + 1/2 - distance, 0, 1), blended over the canvas.
    static func drawSegment(_ p: UnsafeMutableBufferPointer<Float>, size: Int, _ seg: (Float, Float, Float, Float),
                            width: Float, color: [Float]) {
        let (x0, y0, x1, y1) = seg
        let h = width / 2
        let minX = max(0, Int(min(x0, x1) - h - 1)), maxX = min(size - 1, Int(max(x0, x1) + h + 1))
        let minY = max(0, Int(min(y0, y1) - h - 1)), maxY = min(size - 1, Int(max(y0, y1) + h + 1))
        if minX > maxX || minY > maxY { return }
        let vx = x1 - x0, vy = y1 - y0
        let len2 = max(vx * vx + vy * vy, 1e-6)
        let (c0, c1, c2) = (color[0], color[1], color[2])
        for y in minY...maxY {
            let py = Float(y) + 0.5 - y0
            for x in minX...maxX {
                let px = Float(x) + 0.5 - x0
                let t = min(max((px * vx + py * vy) / len2, 0), 1)
                let ex = px - t * vx, ey = py - t * vy
                let cov = min(max(h + 0.5 - (ex * ex + ey * ey).squareRoot(), 0), 1)
                if cov > 0 {
                    let i = (y * size + x) * 3
                    p[i] += cov * (c0 - p[i])
                    p[i + 1] += cov * (c1 - p[i + 1])
                    p[i + 2] += cov * (c2 - p[i + 2])
                }
            }
        }
    }
}

/// The cue of one metric level in the built-in synthetic data (`SyntheticDataset`, METHOD.md section 7):
/// `pixel` the glyph shape, `part` the pairing of the coloured spots, `distribution` the share of light tiles.
public enum SyntheticCue: String, Codable, Sendable, CaseIterable, NamedChoice {
    case pixel, part, distribution
    public static var field: String { "syntheticRemoveCue" }
}

/// A class's three cues, each an index into a pool of `poolSize` values; the classes' triples are distinct.
public struct SyntheticClassCues: Equatable, Sendable {
    /// Values per cue; the dataset has at most poolSize^3 classes.
    public static let poolSize = 5
    public static var maxClasses: Int { poolSize * poolSize * poolSize }
    /// Mosaic tiles across the image (the mosaic has one more, for its random offset).
    static let tilesAcross = 5
    /// Shares of light tiles, one per distribution cue.
    public static let proportions: [Float] = [0.1, 0.3, 0.5, 0.7, 0.9]
    /// The six spot colours (red, green, blue, yellow, magenta, cyan; distinct in grey too).
    public static let spotColors: [[Float]] = [[0.9, 0.1, 0.1], [0.1, 0.75, 0.1], [0.15, 0.2, 0.95], [0.95, 0.9, 0.1],
                                        [0.85, 0.15, 0.85], [0.1, 0.85, 0.9]]
    /// Total stroke length of every glyph (in units of the glyph's radius): each glyph is scaled to it, so the
    /// ink an image holds does not depend on its glyph (a global statistic must not tell the glyphs apart).
    static let glyphStrokeLength: Float = 5
    /// The glyphs as segments, each scaled about its centre to a total length of `glyphStrokeLength` (before
    /// scaling, in [-1, 1]^2): ring (octagon), plus, triangle, Z, L.
    static let glyphSegments: [[((Float, Float), (Float, Float))]] = unitGlyphs.map { segs in
        let length = segs.map { s in
            ((s.1.0 - s.0.0) * (s.1.0 - s.0.0) + (s.1.1 - s.0.1) * (s.1.1 - s.0.1)).squareRoot()
        }.reduce(0, +)
        let f = glyphStrokeLength / length
        return segs.map { ((f * $0.0.0, f * $0.0.1), (f * $0.1.0, f * $0.1.1)) }
    }
    static let unitGlyphs: [[((Float, Float), (Float, Float))]] = {
        let ring: [(Float, Float)] = (0..<8).map { k in
            (cos(Float(k) * Float.pi / 4), sin(Float(k) * Float.pi / 4))
        }
        func path(_ pts: [(Float, Float)]) -> [((Float, Float), (Float, Float))] {
            (0..<(pts.count - 1)).map { (pts[$0], pts[$0 + 1]) }
        }
        return [path(ring + [ring[0]]),
                [((-1, 0), (1, 0)), ((0, -1), (0, 1))],
                path([(-1, 0.8), (1, 0.8), (0, -0.9), (-1, 0.8)]),
                path([(-1, -1), (1, -1), (-1, 1), (1, 1)]),
                path([(-0.8, -1), (-0.8, 1), (1, 1)])]
    }()

    /// Which of the `poolSize` glyphs (pixel cue), spot pairings (part cue) and light shares (distribution cue).
    public var glyph: Int
    public var pairing: Int
    public var proportion: Int

    /// The cues of global class `classID`: entry `classID` of a seeded permutation of all poolSize^3 triples
    /// (`classID` < `maxClasses`), with `removing` set to its first value.
    public init(seed: UInt64, classID: Int, removing: SyntheticCue? = nil) {
        var rng = SeededRNG(seed: seed, path: [1])
        var order = Array(0..<Self.maxClasses)
        rng.shuffle(&order)
        let t = order[classID % Self.maxClasses], p = Self.poolSize
        glyph = t % p; pairing = (t / p) % p; proportion = t / (p * p)
        switch removing {
        case .pixel: glyph = 0
        case .part: pairing = 0
        case .distribution: proportion = Self.poolSize / 2
        case nil: break
        }
    }

    /// Spot pairing `k` (0..<5) of the colours 0...5: the k-th perfect matching of the round-robin
    /// 1-factorisation of K6, so two pairings share no pair.
    public static func pairs(_ k: Int) -> [(Int, Int)] {
        [(5, k), ((k + 1) % 5, (k + 4) % 5), ((k + 2) % 5, (k + 3) % 5)]
    }
}
