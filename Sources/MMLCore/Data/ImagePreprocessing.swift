import Foundation
import MMLImageIO

/// How images are resampled to the network's size (and cached at their base size).
public enum ResizeFilter: String, Codable, Sendable, CaseIterable, NamedChoice, DefaultWhenAbsentValue {
    /// Triangle (bilinear) filter widened by the shrink factor (antialias); mml's default.
    case triangle
    /// Area averaging: each output pixel is the mean of the source over its footprint (fractional edge pixels
    /// weighted by their covered part); at integer factors PIL's `Image.BOX` and OpenCV's `INTER_AREA`.
    case area
    /// PIL's `Image.BOX` at every factor: the mean of the source pixels whose centres fall inside the output pixel's
    /// footprint, each with weight 1 (equal to `area` at integer factors; PIL rounds to 8 bits, mml keeps floats).
    case box

    /// The configuration field named in parse errors.
    public static let field = "resizeFilter"

    /// Files written before the field existed resized with the triangle filter.
    public static var defaultWhenAbsent: ResizeFilter { .triangle }

    /// The C library's filter code.
    var code: Int32 {
        switch self {
        case .triangle: return Int32(MML_RESAMPLE_TRIANGLE)
        case .area: return Int32(MML_RESAMPLE_AREA)
        case .box: return Int32(MML_RESAMPLE_BOX)
        }
    }
}

/// Which pixel value is ink. Omniglot's PNGs are black strokes on white paper; Snell et al.'s ProtoNet (and most
/// PyTorch Omniglot loaders after it) feed `1 - pixel`, so ink is 1 and paper 0.
public enum InkConvention: String, Codable, Sendable, CaseIterable, NamedChoice, DefaultWhenAbsentValue {
    /// Pixels as stored, scaled to [0, 1] (Omniglot paper is 1); mml's default.
    case paperWhite = "paper-white"
    /// `1 - pixel` after scaling to [0, 1] (Omniglot ink is 1), before mean/std normalisation.
    case inkOne = "ink-one"

    /// The configuration field named in parse errors.
    public static let field = "ink"

    /// Files written before the field existed used pixels as stored.
    public static var defaultWhenAbsent: InkConvention { .paperWhite }
}

/// Pixel preprocessing choices a run may set or override (nil: the model's or the dataset's default): ink
/// convention, resize filter and the per-channel normalisation `(x - mean) / std` applied last.
public struct Preprocessing: Codable, Sendable, Equatable, DefaultWhenAbsentValue {
    /// Ink convention (default paper-white).
    public var ink: InkConvention?
    /// Resize filter (default triangle).
    public var resizeFilter: ResizeFilter?
    /// Per-channel mean subtracted after scaling to [0, 1] (and inverting); 1 value or one per channel.
    public var mean: [Float]?
    /// Per-channel standard deviation divided by; 1 value or one per channel.
    public var std: [Float]?

    public init(ink: InkConvention? = nil, resizeFilter: ResizeFilter? = nil, mean: [Float]? = nil,
                std: [Float]? = nil) {
        self.ink = ink; self.resizeFilter = resizeFilter; self.mean = mean; self.std = std
    }

    /// Files written before the field existed kept the checkpoint's own preprocessing.
    public static var defaultWhenAbsent: Preprocessing { Preprocessing() }

    /// True when nothing is set.
    public var isEmpty: Bool { ink == nil && resizeFilter == nil && mean == nil && std == nil }

    /// `image` with every set choice applied. - Throws: `MMLError(.config)` when the result is invalid (e.g. a
    /// mean with 2 values for 3 channels), naming `mean` / `std`.
    public func applied(to image: ImageConfig) throws -> ImageConfig {
        var c = image
        if let ink { c.ink = ink }
        if let resizeFilter { c.resizeFilter = resizeFilter }
        if let mean { c.mean = mean }
        if let std { c.std = std }
        for (field, v) in [("mean", c.mean), ("std", c.std)] where v.count != 1 && v.count != c.channels {
            throw MMLError(.config, "`\(field)` has \(v.count) values \(v); "
                           + (c.channels == 1 ? "the images have 1 channel, give 1 value"
                                              : "give 1 or \(c.channels) (one per channel)"))
        }
        if c.std.contains(where: { !($0 > 0) }) || c.mean.contains(where: { !$0.isFinite }) {
            throw MMLError(.config, "`std` values must be positive and `mean` values finite, got mean \(c.mean), "
                           + "std \(c.std)")
        }
        return c
    }

    /// Parses a comma-separated list of numbers (`0.485,0.456,0.406`) for `field`.
    /// - Throws: `MMLError(.config)` naming the field.
    public static func parseValues(_ text: String, field: String) throws -> [Float] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.count <= 3, parts.allSatisfy({ $0?.isFinite ?? false }) else {
            throw MMLError(.config, "`\(field)` '\(text)': give 1 or 3 comma-separated numbers, e.g. 0.5 or "
                           + "0.485,0.456,0.406")
        }
        return parts.map { $0! }
    }
}
