import Foundation
import MMLImageIO

/// Training-time augmentation, applied after the resize to `ImageConfig.resize`; every random choice comes
/// from a `SeededRNG`, so an augmented image is a pure function of (seed, position).
public struct Augmentation: Sendable, Codable, Equatable {
    /// Take a random `size x size` window of the resized image (MML: resize 100, random crop 84).
    public var randomCrop: Bool
    /// Random resized crop (Szegedy et al.; torchvision's RandomResizedCrop): a box covering a uniform fraction
    /// `scale` of the area with log-uniform aspect `ratio`, resampled to `size`. Takes precedence over randomCrop.
    public var randomResizedCropScale: ClosedRange<Float>?
    /// Aspect-ratio range of the random resized crop.
    public var randomResizedCropRatio: ClosedRange<Float>
    /// Mirror left-right with probability 1/2.
    public var horizontalFlip: Bool
    /// Colour jitter strengths: each factor is uniform in [max(0, 1 - s), 1 + s]; 0 switches it off.
    public var brightness: Float
    public var contrast: Float
    public var saturation: Float
    /// Random translation of the network input by a whole number of pixels, uniform in `-shift...shift` in each
    /// direction (independently), the uncovered pixels taking the nearest edge pixel's value (for Omniglot the
    /// paper); nil (or 0) for none. Applied after the crop / resample and before the ink inversion. Optional so
    /// that configurations written before it existed read as no shift and are written byte-identical.
    public var shift: Int?

    /// Augmentation with every part switched off unless given.
    public init(randomCrop: Bool = false, randomResizedCropScale: ClosedRange<Float>? = nil,
                randomResizedCropRatio: ClosedRange<Float> = 0.75...(4.0 / 3.0), horizontalFlip: Bool = false,
                brightness: Float = 0, contrast: Float = 0, saturation: Float = 0, shift: Int? = nil) {
        self.randomCrop = randomCrop; self.randomResizedCropScale = randomResizedCropScale
        self.randomResizedCropRatio = randomResizedCropRatio; self.horizontalFlip = horizontalFlip
        self.brightness = brightness; self.contrast = contrast; self.saturation = saturation; self.shift = shift
    }

    /// No augmentation (evaluation).
    public static let none = Augmentation()
    /// The MML v1 training recipe (METHOD.md 2.5): random crop (after a larger resize), flip, jitter 0.4.
    public static let mml = Augmentation(randomCrop: true, horizontalFlip: true, brightness: 0.4, contrast: 0.4,
                                         saturation: 0.4)
    /// Small translations only, for Omniglot-like data whose scale and handedness carry meaning: a random shift of up
    /// to `side / 14` pixels (2 at 28 x 28, 6 at 84 x 84) in each direction, no resize, flip or jitter.
    public static func shift(side: Int) -> Augmentation {
        Augmentation(shift: max(1, Int((Double(side) / 14).rounded())))
    }

    /// The largest translation in pixels (0: none).
    public var maxShift: Int { max(shift ?? 0, 0) }

    /// True when nothing random happens.
    public var isIdentity: Bool {
        !randomCrop && randomResizedCropScale == nil && !horizontalFlip && brightness == 0 && contrast == 0
            && saturation == 0 && maxShift == 0
    }
}

/// How images become network input: size, channels, normalisation and augmentation.
public struct ImageConfig: Sendable, Codable, Equatable {
    /// Output height = width in pixels (e.g. 28 for Omniglot, 84 for mini-ImageNet).
    public var size: Int
    /// Output channels: 1 or 3 (grey is replicated when the backbone wants 3).
    public var channels: Int
    /// The side every image is resized to (and cached at) before cropping; `size` when nil. Larger than `size`
    /// for random-crop training (e.g. 100 for an 84 crop).
    public var resize: Int?
    /// Per-channel mean and standard deviation subtracted/divided after scaling pixels to [0, 1]
    /// (one value, or one per channel).
    public var mean: [Float]
    public var std: [Float]
    /// Training augmentation (`.none` for evaluation).
    public var augmentation: Augmentation
    /// Which value is ink: pixels as stored (default) or `1 - pixel` (applied before mean/std). Like
    /// `resizeFilter`, written only when not the default (and read as the default when absent), so configurations
    /// that do not use them stay byte-identical to older ones.
    @OmittedWhenDefault public var ink: InkConvention
    /// The resampling filter of the resize (and of crops): triangle (default) or area.
    @OmittedWhenDefault public var resizeFilter: ResizeFilter

    /// A configuration; mean 0 / std 1 (pixels in [0, 1]), pixels as stored and the triangle filter unless given.
    public init(size: Int, channels: Int, resize: Int? = nil, mean: [Float] = [0], std: [Float] = [1],
                augmentation: Augmentation = .none, ink: InkConvention = .paperWhite,
                resizeFilter: ResizeFilter = .triangle) {
        self.size = size; self.channels = channels; self.resize = resize; self.mean = mean; self.std = std
        self.augmentation = augmentation; self.ink = ink; self.resizeFilter = resizeFilter
    }

    /// ImageNet's channel statistics (the usual normalisation for mini-ImageNet).
    public static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imagenetStd: [Float] = [0.229, 0.224, 0.225]

    /// The side images are cached at.
    public var baseSize: Int { resize ?? size }

    /// Checks sizes, channels and statistics; throws `MMLError(.config)` saying which value is wrong.
    public func validate() throws {
        if size < 1 || size > 4096 { throw MMLError(.config, "image size \(size) is out of range 1...4096") }
        if channels != 1 && channels != 3 { throw MMLError(.config, "image channels must be 1 or 3, got \(channels)") }
        if baseSize < size && (augmentation.randomCrop && augmentation.randomResizedCropScale == nil) {
            throw MMLError(.config, "random crop of \(size) needs resize >= \(size), got resize \(baseSize)")
        }
        for (name, v) in [("mean", mean), ("std", std)] where v.count != 1 && v.count != channels {
            throw MMLError(.config, "\(name) has \(v.count) values; give 1 or \(channels) (one per channel)")
        }
        if std.contains(where: { !($0 > 0) }) { throw MMLError(.config, "std values must be positive, got \(std)") }
        if let shift = augmentation.shift, shift < 0 || shift >= size {
            throw MMLError(.config, "augmentation shift \(shift) is out of range 0..<\(size) (the image side)")
        }
    }
}

/// Resizing and the per-image transform pipeline (resampling in C: triangle filter with antialias, or area).
public enum ImageTransform {
    /// `image` resized to `width x height` (8-bit; the triangle filter is antialiased when shrinking).
    public static func resized(_ image: PixelImage, width: Int, height: Int,
                               filter: ResizeFilter = .triangle) -> PixelImage {
        if image.width == width && image.height == height { return image }
        var out = [UInt8](repeating: 0, count: width * height * image.channels)
        let rc = image.pixels.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                mml_image_resample_filtered_u8(s.baseAddress, Int32(image.width), Int32(image.height),
                                               Int32(image.channels), 0, 0, Float(image.width), Float(image.height), 0,
                                               d.baseAddress, Int32(width), Int32(height), filter.code)
            }
        }
        precondition(rc == MML_IMG_OK, "[resize] failed with code \(rc)")
        return PixelImage(width: width, height: height, channels: image.channels, pixels: out)
    }

    /// The box `(x0, y0, x1, y1)` in pixel coordinates of `image` that `augmentation` crops (the whole image when
    /// no crop is asked for), and whether to flip. Draws from `rng` in a fixed order.
    public static func cropBox(width w: Int, height h: Int, size: Int, augmentation a: Augmentation,
                               rng: inout SeededRNG) -> (box: (Float, Float, Float, Float), flip: Bool) {
        var box = (Float(0), Float(0), Float(w), Float(h))
        if let scale = a.randomResizedCropScale {
            // torchvision's recipe: up to 10 draws of (area fraction, log-uniform aspect); else the whole image.
            let area = Float(w * h)
            let lr0 = log(a.randomResizedCropRatio.lowerBound), lr1 = log(a.randomResizedCropRatio.upperBound)
            for _ in 0..<10 {
                let target = area * rng.uniform(scale.lowerBound, scale.upperBound)
                let ratio = exp(rng.uniform(lr0, lr1))
                let cw = (target * ratio).squareRoot(), ch = (target / ratio).squareRoot()
                if cw <= Float(w) && ch <= Float(h) && cw >= 1 && ch >= 1 {
                    let x0 = rng.uniform(0, Float(w) - cw), y0 = rng.uniform(0, Float(h) - ch)
                    box = (x0, y0, x0 + cw, y0 + ch)
                    break
                }
            }
        } else if a.randomCrop && (w > size || h > size) {
            let x0 = Float(rng.nextInt(below: max(w - size, 0) + 1)), y0 = Float(rng.nextInt(below: max(h - size, 0) + 1))
            box = (x0, y0, x0 + Float(min(size, w)), y0 + Float(min(size, h)))
        }
        let flip = a.horizontalFlip && rng.nextInt(below: 2) == 1
        return (box, flip)
    }

    /// Writes the network input for one image into `out` (CHW, `channels x size x size` floats): crop/resample
    /// per `config.augmentation` with `config.resizeFilter`, `x = 1 - x` for `config.ink == .inkOne`, colour
    /// jitter, then `(x / 255 - mean) / std`.
    /// `image` must already have `config.channels` channels. `rng` is used only when augmentation is on.
    public static func apply(_ image: PixelImage, config: ImageConfig, rng: inout SeededRNG,
                             into out: UnsafeMutableBufferPointer<Float>) {
        let s = config.size, c = config.channels
        precondition(image.channels == c, "[transform] image has \(image.channels) channels, config wants \(c)")
        precondition(out.count == c * s * s, "[transform] output holds \(out.count) floats, needs \(c * s * s)")
        let a = config.augmentation
        let (box, flip) = a.isIdentity
            ? ((Float(0), Float(0), Float(image.width), Float(image.height)), false)
            : cropBox(width: image.width, height: image.height, size: s, augmentation: a, rng: &rng)
        let rc = image.pixels.withUnsafeBufferPointer { src in
            mml_image_resample_filtered_f32(src.baseAddress, Int32(image.width), Int32(image.height), Int32(c), box.0,
                                            box.1, box.2, box.3, flip ? 1 : 0, out.baseAddress, Int32(s), Int32(s),
                                            config.resizeFilter.code)
        }
        precondition(rc == MML_IMG_OK, "[transform] resample failed with code \(rc)")
        if a.maxShift > 0 {
            let m = a.maxShift
            let dx = rng.nextInt(below: 2 * m + 1) - m, dy = rng.nextInt(below: 2 * m + 1) - m
            translate(out, channels: c, side: s, dx: dx, dy: dy)
        }
        if config.ink == .inkOne { for i in 0..<out.count { out[i] = 1 - out[i] } }
        if a.brightness > 0 || a.contrast > 0 || a.saturation > 0 {
            ColorJitter.apply(out, channels: c, plane: s * s, brightness: a.brightness, contrast: a.contrast,
                              saturation: a.saturation, rng: &rng)
        }
        let plane = s * s
        for ch in 0..<c {
            let m = config.mean.count == 1 ? config.mean[0] : config.mean[ch]
            let inv = 1 / (config.std.count == 1 ? config.std[0] : config.std[ch])
            let base = out.baseAddress! + ch * plane
            for i in 0..<plane { base[i] = (base[i] - m) * inv }
        }
    }
}

extension ImageTransform {
    /// Moves a CHW `side x side` image by (`dx`, `dy`) pixels in place: `out[y][x] = in[clamp(y - dy)][clamp(x - dx)]`,
    /// each coordinate clamped to the image (the nearest edge pixel fills what the move uncovers). Rows, then the
    /// pixels of each row, are copied in the order that reads every source before it is overwritten (away from the
    /// direction of the move), so no scratch buffer is needed on the data path.
    static func translate(_ x: UnsafeMutableBufferPointer<Float>, channels: Int, side n: Int, dx: Int, dy: Int) {
        if dx == 0 && dy == 0 { return }
        // away from the move: descending for a positive move, ascending otherwise
        func order(_ d: Int) -> StrideThrough<Int> {
            d > 0 ? stride(from: n - 1, through: 0, by: -1) : stride(from: 0, through: n - 1, by: 1)
        }
        let rows = order(dy), cols = order(dx)
        for ch in 0..<channels {
            let p = x.baseAddress! + ch * n * n
            if dy != 0 {
                for y in rows {
                    let sy = min(max(y - dy, 0), n - 1)
                    if sy != y { (p + y * n).update(from: p + sy * n, count: n) }
                }
            }
            if dx != 0 {
                for y in 0..<n {
                    let r = p + y * n
                    for xx in cols { r[xx] = r[min(max(xx - dx, 0), n - 1)] }
                }
            }
        }
    }
}

/// Brightness, contrast and saturation jitter on a CHW float image in [0, 1], in a random order (as torchvision's
/// ColorJitter), clamping to [0, 1] after each step:
///   brightness: x <- b x;  contrast: x <- c (x - m) + m, m = the mean grey level;
///   saturation: x <- s (x - g) + g, g = the pixel's grey (BT.601 luma; 3 channels only).
enum ColorJitter {
    static func apply(_ x: UnsafeMutableBufferPointer<Float>, channels c: Int, plane: Int, brightness: Float,
                      contrast: Float, saturation: Float, rng: inout SeededRNG) {
        func factor(_ s: Float) -> Float { s > 0 ? rng.uniform(max(0, 1 - s), 1 + s) : 1 }
        let fb = factor(brightness), fc = factor(contrast), fs = factor(saturation)
        var order = [0, 1, 2]
        rng.shuffle(&order)
        let p = x.baseAddress!
        let n = c * plane
        func clamp() { for i in 0..<n { p[i] = min(max(p[i], 0), 1) } }
        func grey(_ i: Int) -> Float {
            c == 3 ? 0.299 * p[i] + 0.587 * p[plane + i] + 0.114 * p[2 * plane + i] : p[i]
        }
        for op in order {
            switch op {
            case 0 where fb != 1:
                for i in 0..<n { p[i] *= fb }
                clamp()
            case 1 where fc != 1:
                var m: Float = 0
                for i in 0..<plane { m += grey(i) }
                m /= Float(plane)
                for i in 0..<n { p[i] = fc * (p[i] - m) + m }
                clamp()
            case 2 where fs != 1 && c == 3:
                for i in 0..<plane {
                    let g = grey(i)
                    for ch in 0..<3 { p[ch * plane + i] = fs * (p[ch * plane + i] - g) + g }
                }
                clamp()
            default: break
            }
        }
    }
}
