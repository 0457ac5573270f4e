import Foundation

/// The distribution level's distance between Gaussians, as a configuration names it. Parsing accepts the aliases
/// `kl-qc` (= `kl`) and `wasserstein` (= `w2`) and any letter case; encoding writes the canonical name, decoding
/// accepts every spelling `parse(_:)` does (checkpoints store what the user typed).
public enum DistributionDistance: String, Codable, Sendable, CaseIterable {
    /// KL(query || class) (ADM).
    case kl
    /// KL(class || query) (the MML v1 code).
    case klClassQuery = "kl-cq"
    /// Symmetric KL.
    case klSymmetric = "kl-sym"
    /// Squared 2-Wasserstein.
    case w2
    /// The MML v1 code's distance.
    case mmlV1 = "mml-v1"

    /// Parses a name or alias. - Throws: `MMLError(.config)` naming `distance` for an unknown name.
    public static func parse(_ text: String) throws -> DistributionDistance {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        switch t {
        case "kl-qc": return .kl
        case "wasserstein": return .w2
        default:
            guard let d = DistributionDistance(rawValue: t) else {
                throw MMLError(.config, "unknown distribution distance '\(text)' (`distance`); use kl, kl-cq, kl-sym, "
                               + "w2 or mml-v1")
            }
            return d
        }
    }

    /// The kernels' distance.
    public var kernelDistance: GaussianKernels.Distance {
        switch self {
        case .kl: return .kl(.queryClass)
        case .klClassQuery: return .kl(.classQuery)
        case .klSymmetric: return .kl(.symmetric)
        case .w2: return .wasserstein2
        case .mmlV1: return .mmlv1
        }
    }

    public init(from decoder: Decoder) throws { self = try TextCoding.decode(decoder, parse: Self.parse) }

    public func encode(to encoder: Encoder) throws { try TextCoding.encode(rawValue, to: encoder) }
}

/// How the multi-level metric fuses its levels' scores.
public enum FusionKind: String, Codable, Sendable, CaseIterable {
    /// Per-level normalisation + one learned weight per level (MML v1 / ADM).
    case learned
    /// MML v4: log of the weighted sum of per-level softmax outputs.
    case fixed

    /// Parses `learned` or `fixed`. - Throws: `MMLError(.config)` naming `fusion` for another name.
    public static func parse(_ text: String) throws -> FusionKind {
        guard let f = FusionKind(rawValue: text) else {
            throw MMLError(.config, "unknown fusion '\(text)' (`fusion`); use learned or fixed")
        }
        return f
    }

    public init(from decoder: Decoder) throws { self = try TextCoding.decode(decoder, parse: Self.parse) }

    public func encode(to encoder: Encoder) throws { try TextCoding.encode(rawValue, to: encoder) }
}

extension PartLevel.Form: Codable {
    /// Parses `channels`, `grid:G1,G2,...` or `G1,G2,...` (any letter case and spaces).
    /// - Throws: `MMLError(.config)` naming `partForm` for a malformed form or a grid size below 1.
    public static func parse(_ text: String) throws -> PartLevel.Form {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t == "channels" { return .channels }
        let body = t.hasPrefix("grid:") ? String(t.dropFirst(5)) : t
        let sizes = body.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw MMLError(.config, "`partForm` '\(text)' is not understood; use channels or grid:G1,G2,... with "
                           + "positive grid sizes (MML v4 uses grid:3,2)")
        }
        return .grid(sizes.map { $0! })
    }

    /// The canonical spelling: `channels` or `grid:3,2`.
    public var name: String {
        switch self {
        case .channels: return "channels"
        case .grid(let sizes): return "grid:" + sizes.map(String.init).joined(separator: ",")
        }
    }

    public init(from decoder: Decoder) throws { self = try TextCoding.decode(decoder, parse: Self.parse) }

    public func encode(to encoder: Encoder) throws { try TextCoding.encode(name, to: encoder) }
}

/// Everything that defines a multi-level metric, in a form that round-trips through JSON (checkpoints, `--json`
/// reports) and command-line flags. `makeMetric()` builds the `MultiLevelMetric` it describes.
///
///     var config = MetricConfiguration(levels: [.pixel, .distribution])
///     config.distance = .w2
///     var metric = try config.makeMetric()
///     let (out, _) = try metric.forward(support: s, labels: y, query: q, way: 5, training: false)
public struct MetricConfiguration: Codable, Sendable, Equatable {
    /// The enabled levels, in canonical order (pixel, part, distribution). A disabled level is absent.
    public var levels: [MetricLevel]
    /// Pixel level: neighbours K of the image-to-class top-K rule (MML's training scripts use 1, DN4 uses 3).
    public var pixelNeighbours: Int
    /// Part level: `.grid([3, 2])` (MML v4 pooled regions over a 3x3 and a 2x2 grid; any list of grid sizes) or
    /// `.channels` (MML v1 channel parts). Encoded as `grid:3,2` / `channels`.
    public var partForm: PartLevel.Form
    /// Part level: neighbours K.
    public var partNeighbours: Int
    /// Distribution level: `kl` (KL(query || class), ADM), `kl-cq` (KL(class || query), MML v1 code), `kl-sym`,
    /// `w2` (squared 2-Wasserstein) or `mml-v1` (the MML v1 code's distance).
    public var distance: DistributionDistance
    /// Distribution level: the ridge eps added to every covariance.
    public var distributionEps: Float
    /// `learned` (per-level normalisation + one weight per level, MML v1 / ADM) or `fixed` (MML v4: weighted sum
    /// of per-level softmax outputs).
    public var fusion: FusionKind
    /// Learned fusion: `per-level` (default; any n-way at test time) or `per-position` (official code; ties the
    /// model to its n-way).
    public var fusionNormalization: FusionNormalization
    /// Fixed fusion: one weight per enabled level; nil gives MML v4's (1, 0.5, 0.5) restricted to the enabled
    /// levels.
    public var fixedWeights: [Float]?
    /// The n-way the per-position normaliser is made for (ignored for per-level).
    public var way: Int

    /// The defaults of METHOD.md section 2: all three levels, K = 1 at the pixel level, Grid-3,2 parts with K = 1,
    /// KL(query || class) with eps 0.01, learned per-level fusion.
    public init(levels: Set<MetricLevel> = Set(MetricLevel.allCases), pixelNeighbours: Int = 1,
                partForm: PartLevel.Form = .grid([3, 2]), partNeighbours: Int = 1,
                distance: DistributionDistance = .kl, distributionEps: Float = 0.01, fusion: FusionKind = .learned,
                fusionNormalization: FusionNormalization = .perLevel, fixedWeights: [Float]? = nil, way: Int = 5) {
        self.levels = levels.sorted()
        self.pixelNeighbours = pixelNeighbours
        self.partForm = partForm
        self.partNeighbours = partNeighbours
        self.distance = distance
        self.distributionEps = distributionEps
        self.fusion = fusion
        self.fusionNormalization = fusionNormalization
        self.fixedWeights = fixedWeights
        self.way = way
    }

    /// The same configuration with other levels enabled (for ablations).
    public func with(levels: Set<MetricLevel>) -> MetricConfiguration {
        var c = self
        c.levels = levels.sorted()
        if let w = fixedWeights, w.count != c.levels.count { c.fixedWeights = nil }
        return c
    }

    /// Parses a level list: `all`, or names separated by commas or `+` (`pixel,distribution`, `part+pixel`).
    /// - Throws: `MMLError(.config)` naming `levels` for an unknown name or an empty list.
    public static func parseLevels(_ text: String) throws -> Set<MetricLevel> {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t == "all" { return Set(MetricLevel.allCases) }
        var out = Set<MetricLevel>()
        for raw in t.split(whereSeparator: { $0 == "," || $0 == "+" }) {
            let name = raw.trimmingCharacters(in: .whitespaces)
            let aliases: [String: MetricLevel] = ["pixel": .pixel, "part": .part, "distribution": .distribution,
                                                  "dist": .distribution, "p": .pixel]
            guard let level = aliases[name] else {
                throw MMLError(.config, "unknown metric level '\(name)' in `levels` '\(text)'; use pixel, part, "
                               + "distribution (comma-separated) or all")
            }
            out.insert(level)
        }
        guard !out.isEmpty else {
            throw MMLError(.config, "no metric level in `levels` '\(text)'; name at least one of pixel, part, "
                           + "distribution")
        }
        return out
    }

    /// Parses comma-separated fixed fusion weights (`1,0.5,0.5`).
    /// - Throws: `MMLError(.config)` naming `fixedWeights` for an entry that is not a number.
    public static func parseWeights(_ text: String) throws -> [Float] {
        try text.split(separator: ",").map {
            guard let v = Float($0.trimmingCharacters(in: .whitespaces)) else {
                throw MMLError(.config, "`fixedWeights` '\(text)': '\($0)' is not a number")
            }
            return v
        }
    }

    /// Checks every field. - Throws: `MMLError(.config)` naming the field, its value and the allowed range.
    public func validate() throws {
        guard !levels.isEmpty else {
            throw MMLError(.config, "no metric level enabled in `levels`; enable at least one of pixel, part, "
                           + "distribution")
        }
        guard pixelNeighbours >= 1 else {
            throw MMLError(.config, "pixel neighbours K = \(pixelNeighbours) (`pixelNeighbours`); K must be at least 1")
        }
        guard partNeighbours >= 1 else {
            throw MMLError(.config, "part neighbours K = \(partNeighbours) (`partNeighbours`); K must be at least 1")
        }
        if case .grid(let sizes) = partForm, sizes.isEmpty || sizes.contains(where: { $0 < 1 }) {
            throw MMLError(.config, "`partForm` '\(partForm.name)' is not understood; use channels or grid:G1,G2,... "
                           + "with positive grid sizes (MML v4 uses grid:3,2)")
        }
        try Limits.check(pixelNeighbours, "pixelNeighbours", in: Limits.neighbours, "pixel neighbours K")
        try Limits.check(partNeighbours, "partNeighbours", in: Limits.neighbours, "part neighbours K")
        if case .grid(let sizes) = partForm, let g = sizes.first(where: { $0 > Limits.imageSide.upperBound }) {
            throw MMLError(.invalidArgument, "`partForm` grid size \(g) is out of range: a grid size must be in "
                           + "1...\(Limits.imageSide.upperBound) (and at most the feature map's side)")
        }
        try Limits.check(way, "way", in: 0...Limits.way.upperBound, "classes per episode")
        guard distributionEps.isFinite, distributionEps > 0 else {
            throw MMLError(.config, "distribution eps = \(distributionEps) (`distributionEps`); it must be a positive "
                           + "number (0.01 is the METHOD.md default)")
        }
        switch fusion {
        case .learned:
            if fusionNormalization == .perPosition && way < 1 {
                throw MMLError(.config, "per-position fusion needs the n-way (`way` \(way))")
            }
        case .fixed:
            if let w = fixedWeights {
                guard w.count == levels.count, w.allSatisfy({ $0.isFinite && $0 >= 0 }), w.contains(where: { $0 > 0 }) else {
                    throw MMLError(.config, "fixed fusion weights \(w): give \(levels.count) non-negative weights (one "
                                   + "per enabled level: \(levels.map(\.rawValue).joined(separator: ", "))), one "
                                   + "positive, in `fixedWeights`")
                }
            }
        }
    }

    /// MML v4's fixed weights (pixel 1, part 0.5, distribution 0.5) for the enabled levels, or `fixedWeights`.
    public var resolvedFixedWeights: [Float] {
        if let w = fixedWeights { return w }
        return levels.map { $0 == .pixel ? 1 : 0.5 }
    }

    /// Builds the metric. - Throws: `MMLError(.config)` for an invalid configuration.
    /// - Parameter threads: threads for the heads' kernels (0 = all cores).
    public func makeMetric(threads: Int = 0) throws -> MultiLevelMetric {
        try validate()
        var m = try MultiLevelMetric(levels: Set(levels), pixel: PixelLevel(neighbours: pixelNeighbours, threads: threads),
                                     part: PartLevel(form: partForm, neighbours: partNeighbours,
                                                     threads: threads),
                                     distribution: DistributionLevel(distance: distance.kernelDistance,
                                                                     eps: distributionEps, threads: threads),
                                     normalization: fusionNormalization, way: way)
        if fusion == .fixed { m.fixedFusion = FixedFusion(weights: resolvedFixedWeights) }
        return m
    }

    /// A one-line summary, e.g. `pixel(K=1)+part(grid:3,2,K=1)+distribution(kl), learned per-level fusion`.
    public var summary: String {
        let parts = levels.map { l -> String in
            switch l {
            case .pixel: return "pixel(K=\(pixelNeighbours))"
            case .part: return "part(\(partForm.name),K=\(partNeighbours))"
            case .distribution: return "distribution(\(distance.rawValue))"
            }
        }
        let f = fusion == .fixed ? "fixed fusion \(resolvedFixedWeights)" : "learned \(fusionNormalization.rawValue) fusion"
        return parts.joined(separator: "+") + ", " + f
    }
}

/// The JSON of a setting written as text: decoded through its `parse` (so aliases and older spellings still load,
/// and a bad one is a `DecodingError` with mml's message), encoded as its canonical text.
enum TextCoding {
    static func decode<T>(_ decoder: Decoder, parse: (String) throws -> T) throws -> T {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { return try parse(text) } catch let e as MMLError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: e.message))
        }
    }

    static func encode(_ text: String, to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(text)
    }
}
