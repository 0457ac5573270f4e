import Foundation

/// How an evaluation scores an episode: the checkpoint's own multi-level metric, or a frozen-feature protocol.
public enum EvaluationProtocol: String, Codable, Sendable, CaseIterable {
    /// The checkpoint's metric: fused and per-level scores (episodic MML checkpoints only).
    case metric
    /// Frozen backbone features, cosine of each query to the class means of the support features.
    case prototype
    /// Frozen backbone features, a fresh cosine classifier trained per episode on the support features.
    case cosineClassifier = "cosine-classifier"
    /// Frozen backbone features flattened, ProtoNet's squared Euclidean distance to the class means.
    case protonet

    /// The frozen-feature protocol, or nil for `metric`.
    public var frozen: FrozenFeatureProtocol? {
        switch self {
        case .metric: return nil
        case .prototype: return .prototype
        case .cosineClassifier: return .cosineClassifier
        case .protonet: return .protonet
        }
    }

    /// "metric, prototype or cosine-classifier".
    public static var list: String {
        let names = allCases.map(\.rawValue)
        return names.dropLast().joined(separator: ", ") + " or " + names.last!
    }

    /// Parses a protocol name. - Throws: `MMLError(.invalidArgument)` naming `evaluationProtocol` for an unknown name.
    public static func parse(_ name: String) throws -> EvaluationProtocol {
        guard let p = EvaluationProtocol(rawValue: name) else {
            throw MMLError(.invalidArgument, "`evaluationProtocol` '\(name)' is unknown; use \(list)")
        }
        return p
    }

    /// The protocol to use for a checkpoint whose configuration is `model`: `requested`, or when nil the default
    /// (metric when the checkpoint has one, else prototype).
    /// - Throws: `MMLError(.invalidArgument)` for `metric` on a checkpoint without a metric.
    public static func resolve(_ requested: EvaluationProtocol?, model: ModelConfiguration,
                               checkpoint: String) throws -> EvaluationProtocol {
        guard let requested else { return model.metric == nil ? .prototype : .metric }
        if requested == .metric && model.metric == nil {
            throw MMLError(.invalidArgument, "`evaluationProtocol` metric: \(checkpoint) is a '\(model.kind)' checkpoint and "
                           + "has no metric head; evaluate its frozen features with `evaluationProtocol` prototype, "
                           + "cosine-classifier or protonet")
        }
        return requested
    }
}

/// The cosine-classifier protocol's settings as a run configuration gives them: nil fields take the official
/// defaults (`CosineClassifierProtocolOptions()`), a nil seed is derived from the episodes' seed. Errors name the
/// fields as `cosineClassifier.<field>`.
public struct CosineClassifierSettings: Codable, Sendable, Equatable {
    /// Passes over the support set (default 100).
    public var passes: Int?
    /// Support features per SGD step (default 4).
    public var batchSize: Int?
    /// SGD learning rate (default 0.01).
    public var learningRate: Float?
    /// SGD momentum (default 0.9).
    public var momentum: Float?
    /// SGD dampening (default 0.9).
    public var dampening: Float?
    /// SGD weight decay (default 0.001).
    public var weightDecay: Float?
    /// Logit scale s (default 5).
    public var scale: Float?
    /// Seed of the classifier weights and shuffles (default: `derivedSeed(episodeSeed:)`).
    public var seed: UInt64?

    public init(passes: Int? = nil, batchSize: Int? = nil, learningRate: Float? = nil, momentum: Float? = nil,
                dampening: Float? = nil, weightDecay: Float? = nil, scale: Float? = nil, seed: UInt64? = nil) {
        self.passes = passes; self.batchSize = batchSize; self.learningRate = learningRate; self.momentum = momentum
        self.dampening = dampening; self.weightDecay = weightDecay; self.scale = scale; self.seed = seed
    }

    /// The fields that are set, as dotted field names (`cosineClassifier.passes`, ...), in declaration order.
    public var givenFields: [String] {
        let given: [(String, Bool)] = [
            ("passes", passes != nil), ("batchSize", batchSize != nil), ("learningRate", learningRate != nil),
            ("momentum", momentum != nil), ("dampening", dampening != nil), ("weightDecay", weightDecay != nil),
            ("scale", scale != nil), ("seed", seed != nil),
        ]
        return given.filter(\.1).map { "cosineClassifier." + $0.0 }
    }

    /// The classifier seed when none is given: a stream of the episode seed, so the classifier does not share
    /// random numbers with the episodes.
    public static func derivedSeed(episodeSeed: UInt64) -> UInt64 {
        SeededRNG(seed: episodeSeed, path: [0x636C_6173_7369_6669]).state
    }

    /// Checks every set field. - Throws: `MMLError(.invalidArgument)` naming the field.
    public func validate() throws {
        func positive(_ v: Int?, _ field: String) throws {
            if let v, v < 1 { throw MMLError(.invalidArgument, "`cosineClassifier.\(field)` must be >= 1, got \(v)") }
        }
        func check(_ v: Float?, _ field: String, _ ok: (Float) -> Bool, _ what: String) throws {
            guard let v else { return }
            guard v.isFinite, ok(v) else {
                throw MMLError(.invalidArgument, "`cosineClassifier.\(field)` must be \(what), got \(v)")
            }
        }
        try positive(passes, "passes")
        try positive(batchSize, "batchSize")
        try Limits.check(passes, "cosineClassifier.passes", in: 1...1_000_000, "passes over the support set")
        try Limits.check(batchSize, "cosineClassifier.batchSize", in: Limits.images, "support features per step")
        try check(learningRate, "learningRate", { $0 > 0 }, "a number > 0")
        try check(momentum, "momentum", { $0 >= 0 && $0 < 1 }, "in [0, 1)")
        try check(dampening, "dampening", { $0 >= 0 && $0 <= 1 }, "in [0, 1]")
        try check(weightDecay, "weightDecay", { $0 >= 0 }, "a number >= 0")
        try check(scale, "scale", { $0 > 0 }, "a number > 0")
    }

    /// The protocol options, checked; the seed defaults to `derivedSeed(episodeSeed:)`.
    /// - Throws: `MMLError(.invalidArgument)` naming the field.
    public func options(episodeSeed: UInt64) throws -> CosineClassifierProtocolOptions {
        try validate()
        var o = CosineClassifierProtocolOptions()
        o.passes = passes ?? o.passes
        o.batchSize = batchSize ?? o.batchSize
        o.learningRate = learningRate ?? o.learningRate
        o.momentum = momentum ?? o.momentum
        o.dampening = dampening ?? o.dampening
        o.weightDecay = weightDecay ?? o.weightDecay
        o.scale = scale ?? o.scale
        o.seed = seed ?? Self.derivedSeed(episodeSeed: episodeSeed)
        return o
    }
}
