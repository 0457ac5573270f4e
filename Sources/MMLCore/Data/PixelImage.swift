/// An 8-bit image: `height x width x channels` bytes, interleaved (HWC), row-major.
///
/// What decoders produce and what the image cache stores (a quarter of the memory of float pixels).
/// Channels: 1 grey, 3 RGB (decoders can also give 2 grey + alpha and 4 RGBA when asked for native channels).
public struct PixelImage: Sendable, Equatable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// Samples per pixel.
    public let channels: Int
    /// `height * width * channels` bytes, HWC.
    public var pixels: [UInt8]

    /// An image over existing bytes; `pixels.count` must be `width * height * channels`.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && channels > 0, "[image] bad size \(width)x\(height)x\(channels)")
        precondition(pixels.count == width * height * channels,
                     "[image] \(width)x\(height)x\(channels) needs \(width * height * channels) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// A constant image.
    public init(width: Int, height: Int, channels: Int, value: UInt8 = 0) {
        self.init(width: width, height: height, channels: channels,
                  pixels: [UInt8](repeating: value, count: width * height * channels))
    }

    /// The sample at row `y`, column `x`, channel `c`.
    @inlinable public subscript(y: Int, x: Int, c: Int) -> UInt8 {
        pixels[(y * width + x) * channels + c]
    }

    /// The image rotated counter-clockwise by `quarterTurns * 90` degrees (as numpy's rot90 and PIL's rotate do;
    /// the Vinyals Omniglot classes rot090, rot180, rot270).
    public func rotated(quarterTurns: Int) -> PixelImage {
        let t = ((quarterTurns % 4) + 4) % 4
        if t == 0 { return self }
        let w = width, h = height, c = channels
        let ow = t == 2 ? w : h, oh = t == 2 ? h : w
        var out = [UInt8](repeating: 0, count: pixels.count)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        // Source coordinates of output (oy, ox) for a counter-clockwise turn.
                        let sy: Int, sx: Int
                        switch t {
                        case 1: sy = ox; sx = w - 1 - oy
                        case 2: sy = h - 1 - oy; sx = w - 1 - ox
                        default: sy = h - 1 - ox; sx = oy
                        }
                        let si = (sy * w + sx) * c, di = (oy * ow + ox) * c
                        for k in 0..<c { dst[di + k] = src[si + k] }
                    }
                }
            }
        }
        return PixelImage(width: ow, height: oh, channels: c, pixels: out)
    }

    /// The image with `count` channels (1 or 3): grey is the BT.601 luma 0.299 R + 0.587 G + 0.114 B (rounded),
    /// grey becomes RGB by replication, alpha is dropped.
    public func converted(toChannels count: Int) -> PixelImage {
        precondition(count == 1 || count == 3, "[image] can convert to 1 or 3 channels, not \(count)")
        if count == channels { return self }
        let n = width * height, c = channels
        var out = [UInt8](repeating: 0, count: n * count)
        for i in 0..<n {
            let p = i * c
            var g = pixels[p]
            if c > 2 {
                let r = UInt32(pixels[p]) * 299, gr = UInt32(pixels[p + 1]) * 587, b = UInt32(pixels[p + 2]) * 114
                g = UInt8((r + gr + b + 500) / 1000)
            }
            if count == 1 { out[i] = g } else if c >= 3 {
                out[3 * i] = pixels[p]; out[3 * i + 1] = pixels[p + 1]; out[3 * i + 2] = pixels[p + 2]
            } else { out[3 * i] = g; out[3 * i + 1] = g; out[3 * i + 2] = g }
        }
        return PixelImage(width: width, height: height, channels: count, pixels: out)
    }
}
