import Foundation

/// A metric level of MML (METHOD.md section 2).
public enum MetricLevel: String, Sendable, Codable, CaseIterable, Comparable {
    case pixel, part, distribution
    public static func < (a: MetricLevel, b: MetricLevel) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// The multi-level metric: the enabled heads score every (query, class) pair and a fusion combines them.
/// A disabled level is absent (its head is not run and the fusion has no weight for it), not zeroed.
public struct MultiLevelMetric {
    /// The enabled levels, in canonical order (pixel, part, distribution).
    public let levels: [MetricLevel]
    public var pixel: PixelLevel
    public var part: PartLevel
    public var distribution: DistributionLevel
    /// The learned fusion over `levels` (used unless `fixedFusion` is set). Its weight and statistics are
    /// `Parameter`s, shared by copies of the metric (`fusion.copy()` for an independent fusion).
    public var fusion: LearnedFusion
    /// When set, the fixed-weight fusion of MML v4 (one weight per enabled level) replaces the learned one.
    public var fixedFusion: FixedFusion?

    /// - Throws: `MMLError` when no level is enabled.
    public init(levels: Set<MetricLevel>, pixel: PixelLevel = PixelLevel(), part: PartLevel = PartLevel(),
                distribution: DistributionLevel = DistributionLevel(),
                normalization: FusionNormalization = .perLevel, way: Int = 0) throws {
        guard !levels.isEmpty else {
            throw MMLError(.config, "no metric level enabled; enable at least one of pixel, part, distribution")
        }
        self.levels = levels.sorted()
        self.pixel = pixel
        self.part = part
        self.distribution = distribution
        fusion = LearnedFusion(levels: levels.count, normalization: normalization, way: way)
    }

    /// What `backward` needs.
    public struct Cache: Sendable {
        var pixel: PixelLevel.Cache?, part: PartLevel.Cache?, distribution: DistributionLevel.Cache?
        var fusion: LearnedFusion.Cache?
        var fixed: FixedFusion.Cache?
    }

    /// Per-level scores and fused logits for one episode.
    public struct Output: Sendable {
        /// Each enabled level's own scores (queries x way).
        public var levelScores: [MetricLevel: Tensor]
        /// Fused logits (queries x way).
        public var logits: Tensor
    }

    /// Score an episode of feature maps.
    /// - Parameters:
    ///   - support: (N_s, C, H, W) maps with `labels` in 0..<way; query: (N_q, C, H, W).
    ///   - training: batch statistics in the fusion and keep what `backward` needs.
    ///   - profile: receives each level's and the fusion's time.
    ///   - precision: the pixel and part levels' similarity arithmetic (`SimilarityPrecision`); anything but fp32
    ///     is for evaluation only: with `training` it is a programming error (training stays fp32).
    public mutating func forward(support: Tensor, labels: [Int], query: Tensor, way: Int,
                                 training: Bool, profile: PhaseProfile? = nil,
                                 precision: SimilarityPrecision = .fp32) throws -> (Output, Cache) {
        precondition(!training || precision == .fp32,
                     "[multi-level] training runs in fp32; precision \(precision.rawValue) is for evaluation only")
        var scores: [MetricLevel: Tensor] = [:]
        var cache = Cache()
        for level in levels {
            switch level {
            case .pixel:
                let (s, c) = try measured(profile, .pixelForward) {
                    try pixel.forward(support: support, labels: labels, query: query, way: way, keepCache: training,
                                      precision: precision)
                }
                scores[.pixel] = s; cache.pixel = c
            case .part:
                let (s, c) = try measured(profile, .partForward) {
                    try part.forward(support: support, labels: labels, query: query, way: way, keepCache: training,
                                     precision: precision)
                }
                scores[.part] = s; cache.part = c
            case .distribution:
                let (s, c) = try measured(profile, .distributionForward) {
                    try distribution.forward(support: support, labels: labels, query: query, way: way,
                                             keepCache: training)
                }
                scores[.distribution] = s; cache.distribution = c
            }
        }
        let perLevel = levels.map { scores[$0]! }
        let logits: Tensor
        if let fixed = fixedFusion {
            guard fixed.weights.count == levels.count else {
                throw MMLError(.config, "fixed fusion has \(fixed.weights.count) weights for \(levels.count) levels "
                               + "(\(levels.map(\.rawValue).joined(separator: ", "))); give one weight per enabled level")
            }
            let (l, fc) = measured(profile, .fusionForward) { fixed.forward(perLevel) }
            logits = l
            cache.fixed = training ? fc : nil
        } else {
            let (l, fc) = measured(profile, .fusionForward) { fusion.forward(perLevel, training: training) }
            logits = l
            cache.fusion = fc
        }
        return (Output(levelScores: scores, logits: logits), cache)
    }

    /// Backward of a training forward: dL/dlogits -> gradients of the support and query maps; the fusion weights'
    /// gradient is accumulated into `fusionGradients`.
    public func backward(_ dLogits: Tensor, cache: Cache, fusionGradients: inout LearnedFusion.Gradients,
                         profile: PhaseProfile? = nil) throws -> (support: Tensor, query: Tensor) {
        let dScores: [Tensor]
        if let fixed = fixedFusion {
            guard let fc = cache.fixed else { preconditionFailure("[multi-level] backward needs a training forward") }
            dScores = measured(profile, .fusionBackward) { fixed.backward(dLogits, cache: fc) }
        } else {
            guard let fc = cache.fusion else { preconditionFailure("[multi-level] backward needs a training forward") }
            dScores = measured(profile, .fusionBackward) {
                fusion.backward(dLogits, cache: fc, grads: &fusionGradients)
            }
        }
        var ds: Tensor?, dq: Tensor?
        func add(_ g: (support: Tensor, query: Tensor)) {
            guard var s = ds, var q = dq else { ds = g.support; dq = g.query; return }
            ds = nil; dq = nil  // unique storage: the adds below write in place
            s.add(g.support)
            q.add(g.query)
            ds = s; dq = q
        }
        for (l, level) in levels.enumerated() {
            switch level {
            case .pixel: add(measured(profile, .pixelBackward) { pixel.backward(dScores[l], cache: cache.pixel!) })
            case .part: add(measured(profile, .partBackward) { part.backward(dScores[l], cache: cache.part!) })
            case .distribution:
                add(try measured(profile, .distributionBackward) {
                    try distribution.backward(dScores[l], cache: cache.distribution!)
                })
            }
        }
        return (ds!, dq!)
    }
}
