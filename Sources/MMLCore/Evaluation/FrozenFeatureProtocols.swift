import Foundation

/// Few-shot evaluation of a frozen backbone (METHOD.md section 3): no metric, only the backbone's features.
public enum FrozenFeatureProtocol: String, Sendable, Codable, CaseIterable {
    /// Nearest prototype: cosine similarity of each query feature to the class means of the support features.
    case prototype
    /// The official neg-margin protocol: per episode a fresh cosine classifier (s = 5, m = 0) trained on the
    /// support features with SGD (lr 0.01, momentum 0.9, dampening 0.9, weight decay 1e-3), 100 passes over the
    /// support set in shuffled mini-batches of 4; the queries are scored with its logits.
    case cosineClassifier = "cosine-classifier"
    /// Prototypical Networks (Snell et al. 2017): score = -||x - p_c||^2, the squared Euclidean distance of each query
    /// feature to the class means; the features are the flattened feature maps (`flattenedFeatures`), as ProtoNet
    /// flattens its Conv-4 output.
    case protonet
}

/// The hyper-parameters of the cosine-classifier protocol (defaults: the official ones).
public struct CosineClassifierProtocolOptions: Sendable, Equatable {
    public var scale: Float = 5
    public var learningRate: Float = 0.01
    public var momentum: Float = 0.9
    public var dampening: Float = 0.9
    public var weightDecay: Float = 1e-3
    /// Passes over the support set.
    public var passes: Int = 100
    public var batchSize: Int = 4
    /// Seed of the classifier weights and shuffles: episode e uses `SeededRNG(seed: seed, path: [e, ...])`.
    public var seed: UInt64 = 0
    public init() {}
}

/// The per-episode accuracies of a frozen-feature evaluation and their summary.
public struct FrozenFeatureEvaluation: Sendable {
    public var perEpisode: [Double]
    public var summary: AccuracySummary
    public var seconds: Double
    /// Per episode, each query's predicted label (`predictions(of:)`, queries in the episode's order).
    public var predictions: [[Int]] = []
}

/// The features the frozen protocols use: backbone output `(N, C, h, w)` in inference mode, globally
/// average-pooled to `(N, C)`. (For Conv-4 at 28x28 the map is 1x1, so this is the flattened output.)
public func pooledFeatures(model: FewShotModel, images: Tensor) throws -> Tensor {
    GlobalAveragePool.forward(try model.features(images))
}

/// The `(Q, way)` scores of one episode's queries under a frozen-feature protocol.
/// - Parameters: `support (S, D)` features with `supportLabels` in 0..<way, `query (Q, D)` features,
///   `episode` the episode index (seeds the cosine classifier).
/// - Throws: `MMLError(.invalidArgument)` for shape or label mismatches.
public func frozenFeatureScores(support: Tensor, supportLabels: [Int], query: Tensor, way: Int,
                                protocol proto: FrozenFeatureProtocol,
                                options: CosineClassifierProtocolOptions = CosineClassifierProtocolOptions(),
                                episode: Int = 0) throws -> Tensor {
    guard support.rank == 2, query.rank == 2, support.shape[1] == query.shape[1],
          supportLabels.count == support.shape[0], way >= 1 else {
        throw MMLError(.invalidArgument, "frozen-feature protocol: support \(support.shape) with "
                       + "\(supportLabels.count) labels and query \(query.shape) must be (S, D) and (Q, D)")
    }
    if let bad = supportLabels.first(where: { $0 < 0 || $0 >= way }) {
        throw MMLError(.invalidArgument, "frozen-feature protocol: support label \(bad) is outside 0..<\(way)")
    }
    let s = support.shape[0], d = support.shape[1], q = query.shape[0]
    switch proto {
    case .prototype:
        var protos = Tensor(shape: [way, d])
        var counts = [Float](repeating: 0, count: way)
        for i in 0..<s {
            counts[supportLabels[i]] += 1
            for c in 0..<d { protos.data[supportLabels[i] * d + c] += support.data[i * d + c] }
        }
        for j in 0..<way where counts[j] > 0 { for c in 0..<d { protos.data[j * d + c] /= counts[j] } }
        let (pn, _) = normalizeRows(protos.data, rows: way, cols: d)
        let (qn, _) = normalizeRows(query.data, rows: q, cols: d)
        var scores = Tensor(shape: [q, way])
        for i in 0..<q {
            for j in 0..<way {
                var dot: Float = 0
                for c in 0..<d { dot += qn[i * d + c] * pn[j * d + c] }
                scores.data[i * way + j] = dot
            }
        }
        return scores
    case .protonet:
        var protos = [Double](repeating: 0, count: way * d)
        var counts = [Double](repeating: 0, count: way)
        for i in 0..<s {
            counts[supportLabels[i]] += 1
            for c in 0..<d { protos[supportLabels[i] * d + c] += Double(support.data[i * d + c]) }
        }
        for j in 0..<way where counts[j] > 0 { for c in 0..<d { protos[j * d + c] /= counts[j] } }
        var scores = Tensor(shape: [q, way])
        for i in 0..<q {
            for j in 0..<way {
                var sum = 0.0
                for c in 0..<d { let t = Double(query.data[i * d + c]) - protos[j * d + c]; sum += t * t }
                scores.data[i * way + j] = Float(-sum)
            }
        }
        return scores
    case .cosineClassifier:
        guard options.passes >= 1, options.batchSize >= 1 else {
            throw MMLError(.invalidArgument, "cosine-classifier protocol: passes (\(options.passes)) and batch size "
                           + "(\(options.batchSize)) must be >= 1")
        }
        let head = try MarginClassifier(kind: .negCosine, inputFeatures: d, classes: way, scale: options.scale,
                                        margin: 0, seed: SeededRNG(seed: options.seed, path: [UInt64(episode), 0]).state)
        let opt = try SGD(learningRate: options.learningRate, momentum: options.momentum,
                          dampening: options.dampening, weightDecay: options.weightDecay)
        var order = Array(0..<s)
        for pass in 0..<options.passes {
            var rng = SeededRNG(seed: options.seed, path: [UInt64(episode), 1, UInt64(pass)])
            rng.shuffle(&order)
            var start = 0
            while start < s {
                let idx = Array(order[start..<min(s, start + options.batchSize)])
                start += options.batchSize
                var x = Tensor(shape: [idx.count, d])
                for (r, i) in idx.enumerated() { for c in 0..<d { x.data[r * d + c] = support.data[i * d + c] } }
                head.zeroGradients()
                _ = try head.trainingStep(x, labels: idx.map { supportLabels[$0] })
                opt.step(head)
            }
        }
        return try head.predict(query)
    }
}

/// Few-shot accuracy of frozen features on `episodes` (images from `loader`, no augmentation): for each episode,
/// `features` maps the support and query images to `(N, D)` features once, then `protocol` scores the queries.
/// The cosine classifier of an episode is seeded by `(options.seed, episode.index)`, so an episode gives the same
/// result whether it comes from a sampler or from an episode list. Returns the per-episode accuracies and their
/// mean with 95% CI.
/// - Parameter progress: called after each episode with the number done.
/// - Throws: `MMLError` for an empty list, from loading, the features (wrong shape) or the protocol.
public func evaluateFrozenFeatures(features: (Tensor) throws -> Tensor, loader: EpisodeLoader, episodes: [Episode],
                                   protocol proto: FrozenFeatureProtocol,
                                   options: CosineClassifierProtocolOptions = CosineClassifierProtocolOptions(),
                                   progress: ((Int) throws -> Void)? = nil) throws -> FrozenFeatureEvaluation {
    guard !episodes.isEmpty else {
        throw MMLError(.invalidArgument, "frozen-feature evaluation: episodes must be >= 1, got 0")
    }
    let t0 = Date()
    var accs: [Double] = [], predicted: [[Int]] = []
    for (k, ep) in episodes.enumerated() {
        let batch = try loader.batch(for: ep)
        let fs = try features(batch.support), fq = try features(batch.query)
        guard fs.rank == 2, fq.rank == 2 else {
            throw MMLError(.invalidArgument, "frozen-feature evaluation: the feature function must return (N, D), "
                           + "got \(fs.shape)")
        }
        let scores = try frozenFeatureScores(support: fs, supportLabels: batch.supportLabels, query: fq,
                                             way: ep.way, protocol: proto, options: options, episode: ep.index)
        let p = predictions(of: scores)
        accs.append(accuracy(predictions: p, labels: batch.queryLabels))
        predicted.append(p)
        try progress?(k + 1)
    }
    return FrozenFeatureEvaluation(perEpisode: accs, summary: AccuracySummary(accs),
                                   seconds: Date().timeIntervalSince(t0), predictions: predicted)
}

/// Few-shot accuracy of frozen features on episodes `0..<episodes` of `sampler`: `evaluateFrozenFeatures` on
/// `sampler.episodes(episodes)`.
/// - Throws: `MMLError` for `episodes < 1`, from loading, the features (wrong shape) or the protocol.
public func evaluateFrozenFeatures(features: (Tensor) throws -> Tensor, loader: EpisodeLoader,
                                   sampler: EpisodeSampler, episodes: Int, protocol proto: FrozenFeatureProtocol,
                                   options: CosineClassifierProtocolOptions = CosineClassifierProtocolOptions(),
                                   progress: ((Int) throws -> Void)? = nil) throws -> FrozenFeatureEvaluation {
    guard episodes >= 1 else {
        throw MMLError(.invalidArgument, "frozen-feature evaluation: episodes must be >= 1, got \(episodes)")
    }
    return try evaluateFrozenFeatures(features: features, loader: loader, episodes: sampler.episodes(episodes),
                                      protocol: proto, options: options, progress: progress)
}

/// `evaluateFrozenFeatures` with the model's globally average-pooled backbone features (`pooledFeatures`), or for
/// `protonet` the flattened maps (`flattenedFeatures`).
public func evaluateFrozenFeatures(model: FewShotModel, loader: EpisodeLoader, sampler: EpisodeSampler,
                                   episodes: Int, protocol proto: FrozenFeatureProtocol,
                                   options: CosineClassifierProtocolOptions = CosineClassifierProtocolOptions(),
                                   progress: ((Int) throws -> Void)? = nil) throws -> FrozenFeatureEvaluation {
    let features: (Tensor) throws -> Tensor = proto == .protonet
        ? { try flattenedFeatures(model: model, images: $0) } : { try pooledFeatures(model: model, images: $0) }
    return try evaluateFrozenFeatures(features: features, loader: loader,
                               sampler: sampler, episodes: episodes, protocol: proto, options: options,
                               progress: progress)
}

/// The backbone output `(N, C, h, w)` in inference mode, flattened to `(N, C h w)` (the protonet protocol's
/// features).
public func flattenedFeatures(model: FewShotModel, images: Tensor) throws -> Tensor {
    var f = try model.features(images)
    f.shape = [f.shape[0], f.count / max(f.shape[0], 1)]
    return f
}

/// The features `proto` uses for a loaded checkpoint: `frozenFeatureFunction(of:path:)`, except that `protonet`
/// takes the flattened maps of a non-embedding checkpoint (an embedding checkpoint keeps its trained embedding).
public func frozenFeatureFunction(of loaded: Checkpoint.Loaded, path: String,
                                  protocol proto: FrozenFeatureProtocol) throws -> (Tensor) throws -> Tensor {
    if proto == .protonet && loaded.model.configuration.kind != "embedding" {
        let model = loaded.model
        return { try flattenedFeatures(model: model, images: $0) }
    }
    return try frozenFeatureFunction(of: loaded, path: path)
}

/// The features the frozen-feature protocols use for a loaded checkpoint. For an `embedding` checkpoint
/// (`mml train-embedding`): the trained embedding, i.e. the pooled backbone features, then the linear layer stored
/// as the extra tensors `embedding.weight (dim, C)` / `embedding.bias (dim)` when present, L2-normalised. For any
/// other kind: `pooledFeatures`.
/// - Parameter path: the checkpoint's file, for error messages.
/// - Throws: `MMLError(.corruptFile)` when the embedding layer is malformed or does not fit the backbone.
public func frozenFeatureFunction(of loaded: Checkpoint.Loaded, path: String) throws -> (Tensor) throws -> Tensor {
    let model = loaded.model
    guard model.configuration.kind == "embedding" else {
        return { try pooledFeatures(model: model, images: $0) }
    }
    return embeddingFunction(model: model, linear: try storedEmbeddingLayer(in: loaded, path: path))
}

/// The linear layer an embedding checkpoint (`mml train-embedding --dim D`) stores as the extra tensors
/// `embedding.weight` / `embedding.bias`, or nil when it has none.
/// - Throws: `MMLError(.corruptFile)` naming `path` when the pair is incomplete or does not fit the backbone.
public func storedEmbeddingLayer(in loaded: Checkpoint.Loaded, path: String) throws -> Linear? {
    guard let w = loaded.extra.first(where: { $0.name == "embedding.weight" })?.tensor else { return nil }
    guard w.rank == 2, let b = loaded.extra.first(where: { $0.name == "embedding.bias" })?.tensor,
          b.shape == [w.shape[0]] else {
        throw MMLError(.corruptFile, "\(path): embedding.weight \(w.shape) without a matching embedding.bias")
    }
    guard w.shape[1] == loaded.model.backbone.outputChannels else {
        throw MMLError(.corruptFile, "\(path): the embedding layer takes \(w.shape[1]) features but the backbone "
                       + "gives \(loaded.model.backbone.outputChannels)")
    }
    var rng = SeededRNG(seed: 0)
    let l = Linear(inputFeatures: w.shape[1], outputFeatures: w.shape[0], generator: &rng)
    l.weight.value = w
    l.bias!.value = b
    return l
}

/// The embedding `mml train-embedding` trains: globally average-pooled backbone features, the optional linear
/// layer, L2-normalised.
public func embeddingFunction(model: FewShotModel, linear: Linear?) -> (Tensor) throws -> Tensor {
    { images in
        var f = try pooledFeatures(model: model, images: images)
        if let linear { f = linear.forward(f, training: false).output }
        return L2Normalize.forward(f).output
    }
}
