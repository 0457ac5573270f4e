/// The bounds of every number a user types, checked by the configurations' `validate()` so that the CLI, the C ABI
/// and the Python package refuse the same values with the same message (fields in backquotes, rendered by each
/// front end). The upper bounds are far above any sensible run; they exist so that no product of counts overflows
/// and no size reaches an allocation unchecked (docs/LIMITS.md lists them).
public enum Limits {
    /// Kernel threads (0: all cores; the kernels use at most 64).
    public static let threads = 0...1024
    /// Classes per episode.
    public static let way = 1...100_000
    /// Support and query images per class.
    public static let shot = 1...100_000
    public static let query = 1...100_000
    /// Episodes of one evaluation setting, an episode list, a refit or a validation.
    public static let episodes = 1...100_000_000
    /// Training episodes per epoch, and training iterations / batches.
    public static let episodesPerEpoch = 1...1_000_000_000
    /// Epochs.
    public static let epochs = 1...1_000_000
    /// Images per class and per batch (synthetic data, pre-training batches, P x K).
    public static let images = 1...10_000_000
    /// Training episodes or steps of a whole run (a product of two counts).
    public static let totalEpisodes = 1...1_000_000_000_000
    /// Images of one episode: way x (shot + query).
    public static let imagesPerEpisode = 1...10_000_000
    /// Image side in pixels (`ImageConfig.validate` holds the same bound).
    public static let imageSide = 1...4096
    /// Neighbours K of the pixel and part levels.
    public static let neighbours = 1...100_000
    /// Embedding dimension (0: no linear layer).
    public static let dimension = 0...65_536
    /// Backbone channel widths.
    public static let width = 1...65_536
    /// Log and checkpoint intervals (in episodes, batches or iterations).
    public static let interval = 1...1_000_000_000_000

    /// Checks that `value` of `field` lies in `range`.
    /// - Parameter meaning: what the number counts, for the message ("episodes per setting").
    /// - Throws: `MMLError(.invalidArgument)` naming the field, the value and the range.
    public static func check(_ value: Int, _ field: String, in range: ClosedRange<Int>, _ meaning: String) throws {
        guard range.contains(value) else {
            throw MMLError(.invalidArgument, "`\(field)` \(value) is out of range: \(meaning) must be in "
                           + "\(range.lowerBound)...\(range.upperBound)")
        }
    }

    /// Checks an optional count (nil: not given, the default).
    public static func check(_ value: Int?, _ field: String, in range: ClosedRange<Int>, _ meaning: String) throws {
        if let value { try check(value, field, in: range, meaning) }
    }

    /// Checks that a real number of `field` is finite and satisfies `ok`.
    /// - Parameter allowed: the allowed values in words ("> 0", "in [0, 1)").
    /// - Throws: `MMLError(.invalidArgument)` naming the field, the value and what is allowed.
    public static func check(_ value: Float, _ field: String, _ allowed: String, _ ok: (Float) -> Bool) throws {
        guard value.isFinite, ok(value) else {
            throw MMLError(.invalidArgument, "`\(field)` \(value) is not allowed: it must be a finite number \(allowed)")
        }
    }

    /// Checks an optional real number (nil: not given).
    public static func check(_ value: Float?, _ field: String, _ allowed: String, _ ok: (Float) -> Bool) throws {
        if let value { try check(value, field, allowed, ok) }
    }

    /// The product of counts, refused when it overflows or leaves `range`.
    /// - Parameters:
    ///   - factors: the counts with the fields that set them (named in the message: the ones to lower).
    ///   - what: what the product counts ("images per episode").
    /// - Throws: `MMLError(.invalidArgument)` naming the factors and the limit.
    public static func product(_ factors: [(field: String, value: Int)], in range: ClosedRange<Int>,
                               _ what: String) throws -> Int {
        var p = 1, overflow = false
        for f in factors {
            let (r, o) = p.multipliedReportingOverflow(by: f.value)
            (p, overflow) = (r, overflow || o)
        }
        if overflow || !range.contains(p) {
            let names = factors.map { "`\($0.field)` \($0.value)" }.joined(separator: " x ")
            throw MMLError(.invalidArgument, "\(names) makes \(overflow ? "more than \(Int.max)" : "\(p)") \(what), "
                           + "out of range \(range.lowerBound)...\(range.upperBound); lower "
                           + factors.map { "`\($0.field)`" }.joined(separator: " or "))
        }
        return p
    }

    /// The images of an episode, way x (shot + query), checked. - Throws: `MMLError` naming the fields.
    @discardableResult
    public static func imagesPerEpisode(way: Int, wayField: String, shot: Int, shotField: String, query: Int,
                                        queryField: String) throws -> Int {
        let (perClass, o) = shot.addingReportingOverflow(query)
        if o {
            throw MMLError(.invalidArgument, "`\(shotField)` \(shot) + `\(queryField)` \(query) images per class is too "
                           + "many; lower them")
        }
        return try product([(wayField, way), ("\(shotField)` + `\(queryField)", perClass)], in: imagesPerEpisode,
                           "images per episode")
    }
}
