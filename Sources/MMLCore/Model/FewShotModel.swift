import Foundation

/// Everything needed to rebuild a model from a checkpoint: backbone, image pipeline and (for episodic MML models)
/// the metric. Stored as JSON in every checkpoint's metadata.
public struct ModelConfiguration: Codable, Sendable, Equatable {
    /// What produced the model: `episodic` (MML training), `pretrained` (classifier pre-training) or `embedding`
    /// (metric-learning losses). A model without a metric is evaluated with the frozen-feature protocols.
    public var kind: String
    public var backbone: BackboneKind
    public var inputChannels: Int
    /// Channel widths per block / stage (nil: the architecture's own).
    public var widths: [Int]?
    public var initialization: BackboneInitialization
    /// Seed of the initial weights (and ResNet-12's DropBlock).
    public var seed: UInt64
    public var dropBlockRate: Float
    public var dropBlockSize: Int
    /// Image size, channels, resize and normalisation used in training (evaluation uses them without augmentation).
    public var image: ImageConfig
    /// The metric of an episodic model; nil for backbones trained otherwise.
    public var metric: MetricConfiguration?

    public init(kind: String = "episodic", backbone: BackboneKind, inputChannels: Int, widths: [Int]? = nil,
                initialization: BackboneInitialization = .mml, seed: UInt64, dropBlockRate: Float = 0.1,
                dropBlockSize: Int = 5, image: ImageConfig, metric: MetricConfiguration?) {
        self.kind = kind; self.backbone = backbone; self.inputChannels = inputChannels; self.widths = widths
        self.initialization = initialization; self.seed = seed; self.dropBlockRate = dropBlockRate
        self.dropBlockSize = dropBlockSize; self.image = image; self.metric = metric
    }

    /// The backbone part.
    public var backboneConfiguration: BackboneConfiguration {
        BackboneConfiguration(kind: backbone, inputChannels: inputChannels, widths: widths,
                              initialization: initialization, seed: seed, dropBlockRate: dropBlockRate,
                              dropBlockSize: dropBlockSize)
    }

    /// Checks the backbone and metric parts. - Throws: `MMLError(.config)`.
    public func validate() throws {
        try backboneConfiguration.validate()
        try metric?.validate()
        guard image.channels == inputChannels else {
            throw MMLError(.config, "images have \(image.channels) channel(s) but the backbone takes \(inputChannels)")
        }
    }

    /// Compact JSON (sorted keys). - Throws: `MMLError(.numerical)` when a field cannot be encoded (a
    /// non-finite number), rather than writing an empty configuration.
    public func jsonString() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        do { return String(decoding: try enc.encode(self), as: UTF8.self) } catch {
            throw MMLError(.numerical, "the model configuration cannot be encoded (\(MMLError.describe(error)))")
        }
    }
}

/// A backbone with an optional multi-level metric: the unit `mml train` trains, checkpoints and `mml eval` loads.
///
/// Parameters are visited as `backbone.*` and, with a learned fusion, the fusion's own `fusion.weight` (trainable)
/// and `fusion.running_mean` / `fusion.running_var` buffers, so one optimiser and one safetensors file cover it all.
public final class FewShotModel: ParameterContainer {
    public let configuration: ModelConfiguration
    public let backbone: any Backbone
    /// The metric (nil for a backbone-only model). Its learned fusion holds the fusion parameters the model visits
    /// (a copy of the metric shares them; `metric.fusion.copy()` gives an independent fusion).
    public private(set) var metric: MultiLevelMetric?

    /// Builds a freshly initialised model. - Throws: `MMLError(.config)` for an invalid configuration.
    /// - Parameter threads: threads for the layer and head kernels (0 = all cores).
    public init(_ configuration: ModelConfiguration, threads: Int = 0) throws {
        try Limits.check(threads, "threads", in: Limits.threads, "kernel threads (0: all cores)")
        try configuration.validate()
        self.configuration = configuration
        let b = try makeBackbone(configuration.backboneConfiguration)
        b.threads = threads
        backbone = b
        metric = try configuration.metric?.makeMetric(threads: threads)
    }

    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {
        backbone.visitParameters(prefix: parameterName(prefix, "backbone"), visit)
        if let metric, metric.fixedFusion == nil {
            metric.fusion.visitParameters(prefix: parameterName(prefix, "fusion"), visit)
        }
    }

    /// Backbone features of a batch of images `(N, C_in, H, W) -> (N, C, h, w)` in inference mode, in chunks of
    /// `batchSize` images (bounded memory).
    public func features(_ images: Tensor, batchSize: Int = 128) throws -> Tensor {
        try validateBackboneInput(backbone, shape: images.shape)
        let n = images.shape[0], per = images.count / max(n, 1)
        var out: Tensor?
        var start = 0
        while start < n {
            let end = min(n, start + max(batchSize, 1))
            let chunk = Tensor(shape: [end - start] + Array(images.shape.dropFirst()),
                               data: Array(images.data[(start * per)..<(end * per)]))
            let f = backbone.forward(chunk, training: false).output
            if out == nil {
                out = Tensor(shape: [n] + Array(f.shape.dropFirst()))
                out!.data.removeAll(keepingCapacity: true)
            }
            out!.data += f.data
            start = end
        }
        return out!
    }

    /// What `backward` needs from a training forward.
    public struct EpisodeCache {
        let backbone: BackboneCache
        let metric: MultiLevelMetric.Cache
        let supportCount: Int
    }

    /// One episode: backbone over support and query images together, then the metric.
    /// - Parameters:
    ///   - support: (N_s, C_in, H, W) images with `labels` in 0..<way; query: (N_q, C_in, H, W).
    ///   - training: batch statistics, fusion statistics update, and a cache for `backward`.
    ///   - profile: receives the backbone's and each level's time (`mml train --profile`).
    ///   - precision: the pixel and part levels' similarity arithmetic; bf16 / bf16amx only in inference (`training`
    ///     false).
    /// - Throws: `MMLError` when the model has no metric or the inputs do not fit.
    public func forward(support: Tensor, labels: [Int], query: Tensor, way: Int, training: Bool,
                        profile: PhaseProfile? = nil, precision: SimilarityPrecision = .fp32) throws
        -> (output: MultiLevelMetric.Output, cache: EpisodeCache?) {
        guard metric != nil else {
            throw MMLError(.config, "this \(configuration.kind) model has no metric head; evaluate it with the "
                           + "frozen-feature protocols (`evaluationProtocol` prototype or cosine-classifier)")
        }
        try validateBackboneInput(backbone, shape: support.shape)
        try validateBackboneInput(backbone, shape: query.shape)
        var x = support
        x.shape[0] += query.shape[0]
        x.data += query.data
        let (f, bc) = measured(profile, .backboneForward) { backbone.forward(x, training: training) }
        let ns = support.shape[0], per = f.count / f.shape[0]
        let rest = Array(f.shape.dropFirst())
        let s = Tensor(shape: [ns] + rest, data: Array(f.data[0..<(ns * per)]))
        let q = Tensor(shape: [f.shape[0] - ns] + rest, data: Array(f.data[(ns * per)...]))
        let (out, mc) = try metric!.forward(support: s, labels: labels, query: q, way: way, training: training,
                                            profile: profile, precision: precision)
        return (out, training ? EpisodeCache(backbone: bc, metric: mc, supportCount: ns) : nil)
    }

    /// Backward of a training forward: gradients accumulate into every parameter (backbone and fusion weight).
    public func backward(_ dLogits: Tensor, cache: EpisodeCache, profile: PhaseProfile? = nil) throws {
        guard let metric else { preconditionFailure("[model] backward without a metric") }
        var fg = LearnedFusion.Gradients(levels: metric.levels.count)
        let (ds, dq) = try metric.backward(dLogits, cache: cache.metric, fusionGradients: &fg, profile: profile)
        if metric.fixedFusion == nil {
            let w = metric.fusion.weight
            for i in 0..<fg.weights.count { w.grad.data[i] += fg.weights[i] }
        }
        var df = ds
        df.shape[0] += dq.shape[0]
        df.data += dq.data
        _ = measured(profile, .backboneBackward) { backbone.backward(df, cache: cache.backbone, inputGradient: false) }
    }
}
