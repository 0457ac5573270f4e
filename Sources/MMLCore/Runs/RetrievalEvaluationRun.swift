import Foundation

/// Retrieval evaluation of an embedding on held-out classes (METHOD.md section 4): Recall@1/2/4/8, R-precision and
/// MAP@R with every image a query against all others, then 5-way 1- and 5-shot nearest-prototype accuracy of the
/// same embedding.
public struct RetrievalEvaluationRunConfiguration: Codable, Sendable, Equatable {
    /// The data (its split is replaced by `split`).
    public var dataset: DatasetSource
    /// The held-out split.
    public var split: String
    /// The embedding checkpoint `run(events:)` evaluates (`mml train-embedding`'s embedding.safetensors).
    public var checkpoint: String?
    /// Few-shot episodes per shot (0: retrieval only).
    public var fewShotEpisodes: Int
    /// Seed of the few-shot episodes.
    public var seed: UInt64
    /// Threads for the layer kernels (0: all cores).
    public var threads: Int

    public init(dataset: DatasetSource, split: String = "test", checkpoint: String? = nil, fewShotEpisodes: Int = 600,
                seed: UInt64 = 0, threads: Int = 0) {
        self.dataset = dataset; self.split = split; self.checkpoint = checkpoint
        self.fewShotEpisodes = fewShotEpisodes; self.seed = seed; self.threads = threads
    }

    /// Checks every field. - Throws: `MMLError(.config)` naming the field.
    public func validate() throws {
        try dataset.validate()
        try Limits.check(threads, "threads", in: Limits.threads, "kernel threads (0: all cores)")
        try Limits.check(fewShotEpisodes, "fewShotEpisodes", in: 0...Limits.episodes.upperBound, "few-shot episodes")
        guard fewShotEpisodes >= 0 else {
            throw MMLError(.config, "`fewShotEpisodes` must be >= 0, got \(fewShotEpisodes)")
        }
    }
}

/// The metrics of a retrieval evaluation. Encoded flat as `mml train-embedding` prints its `result` line:
/// `split`, `classes`, `queries`, `recall_at_K`, `r_precision`, `map_at_r`, `fewshot_5way_Sshot(_ci95)`.
public struct RetrievalEvaluationRunResult: Codable, Sendable, Equatable {
    public var split: String
    public var classes: Int
    /// The retrieval metrics (`skippedQueries` is not encoded).
    public var metrics: RetrievalMetrics
    /// Nearest-prototype 5-way accuracy by shot (1, 5); empty with `fewShotEpisodes` 0.
    public var fewShot: [Int: FewShotAccuracy]

    /// A mean accuracy and the half-width of its 95% interval.
    public struct FewShotAccuracy: Codable, Sendable, Equatable {
        public var mean: Double
        public var ci95: Double
        public init(mean: Double, ci95: Double) { self.mean = mean; self.ci95 = ci95 }
    }

    public init(split: String, classes: Int, metrics: RetrievalMetrics, fewShot: [Int: FewShotAccuracy] = [:]) {
        self.split = split; self.classes = classes; self.metrics = metrics; self.fewShot = fewShot
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(split, forKey: Key("split"))
        try c.encode(classes, forKey: Key("classes"))
        try c.encode(metrics.queries, forKey: Key("queries"))
        try c.encode(metrics.rPrecision, forKey: Key("r_precision"))
        try c.encode(metrics.mapAtR, forKey: Key("map_at_r"))
        for (k, v) in metrics.recallAt { try c.encode(v, forKey: Key("recall_at_\(k)")) }
        for (shot, s) in fewShot {
            try c.encode(s.mean, forKey: Key("fewshot_5way_\(shot)shot"))
            try c.encode(s.ci95, forKey: Key("fewshot_5way_\(shot)shot_ci95"))
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        split = try c.decode(String.self, forKey: Key("split"))
        classes = try c.decode(Int.self, forKey: Key("classes"))
        var recall: [Int: Double] = [:]
        var means: [Int: Double] = [:], cis: [Int: Double] = [:]
        for key in c.allKeys {
            let name = key.stringValue
            if name.hasPrefix("recall_at_"), let k = Int(name.dropFirst("recall_at_".count)) {
                recall[k] = try c.decode(Double.self, forKey: key)
            } else if name.hasPrefix("fewshot_5way_") {
                let rest = name.dropFirst("fewshot_5way_".count)
                if rest.hasSuffix("shot"), let shot = Int(rest.dropLast(4)) {
                    means[shot] = try c.decode(Double.self, forKey: key)
                } else if rest.hasSuffix("shot_ci95"), let shot = Int(rest.dropLast(9)) {
                    cis[shot] = try c.decode(Double.self, forKey: key)
                }
            }
        }
        metrics = RetrievalMetrics(recallAt: recall, rPrecision: try c.decode(Double.self, forKey: Key("r_precision")),
                                   mapAtR: try c.decode(Double.self, forKey: Key("map_at_r")),
                                   queries: try c.decode(Int.self, forKey: Key("queries")), skippedQueries: 0)
        fewShot = means.reduce(into: [:]) { $0[$1.key] = FewShotAccuracy(mean: $1.value, ci95: cis[$1.key] ?? .nan) }
    }
}

/// A retrieval evaluation: of the checkpoint in the configuration (`run(events:)`), or of a model in memory
/// (`run(model:linear:events:)`, as `EmbeddingTrainingRun` does after training).
public final class RetrievalEvaluationRun: ConfiguredRun<RetrievalEvaluationRunConfiguration> {
    /// Polled between chunks of embedded images and after each few-shot episode: once requested, the run throws
    /// `RunStopped` saying how far it got.
    public var stop: StopRequest?

    /// Evaluates `configuration.checkpoint`.
    /// - Throws: `MMLError` when there is no checkpoint, it is not an embedding, or the data cannot be read.
    public func run(events: (RunEvent) -> Void = { _ in }) throws -> RetrievalEvaluationRunResult {
        guard let path = configuration.checkpoint else {
            throw MMLError(.config, "`checkpoint` is required: give the embedding checkpoint to evaluate")
        }
        let (model, linear) = try Self.loadEmbedding(path, threads: configuration.threads, field: "checkpoint")
        return try run(model: model, linear: linear, events: events)
    }

    /// An embedding checkpoint's model and linear layer.
    /// - Throws: `MMLError` naming `field` when the checkpoint is not an embedding.
    static func loadEmbedding(_ path: String, threads: Int, field: String) throws -> (FewShotModel, Linear?) {
        let loaded = try Checkpoint.load(path, threads: threads)
        guard loaded.model.configuration.kind == "embedding" else {
            throw MMLError(.config, "\(path) is a '\(loaded.model.configuration.kind)' checkpoint; `\(field)` takes "
                           + "the embedding.safetensors written by mml train-embedding")
        }
        return (loaded.model, try storedEmbeddingLayer(in: loaded, path: path))
    }

    /// Evaluates the embedding of `model` (pooled features, then `linear` when given, L2-normalised). Events:
    /// `.supervised(.retrieval)`, then `.supervised(.fewShot)` for 1 and 5 shots.
    /// - Throws: `MMLError` when the data cannot be read or the layer does not fit the backbone.
    public func run(model: FewShotModel, linear: Linear?,
                    events: (RunEvent) -> Void = { _ in }) throws -> RetrievalEvaluationRunResult {
        let c = configuration
        let heldOut = try c.dataset.with(split: c.split).open(events: events)
        let loader = try EpisodeLoader(dataset: heldOut, config: model.configuration.image.forEvaluation)
        if let linear, linear.inputFeatures != model.backbone.outputChannels {
            throw MMLError(.corruptFile, "the embedding layer takes \(linear.inputFeatures) features but the backbone "
                           + "gives \(model.backbone.outputChannels)")
        }
        let embed = embeddingFunction(model: model, linear: linear)
        let t0 = Date()
        var refs: [ItemRef] = []
        for (cl, n) in heldOut.itemCounts.enumerated() { for i in 0..<n { refs.append(ItemRef(classIndex: cl, item: i)) } }
        var embedded = 0
        let e = try mapInChunks(refs, loader: loader) { x in
            if let stop, stop.isRequested {
                throw RunStopped(done: embedded, total: refs.count, phase: "images of the retrieval evaluation")
            }
            embedded += x.shape[0]
            return try embed(x)
        }
        let m = try retrievalMetrics(embeddings: e, labels: refs.map(\.classIndex))
        events(.supervised(.retrieval(dataset: heldOut.name, split: c.split, classes: heldOut.classCount, metrics: m,
                                      seconds: Date().timeIntervalSince(t0))))
        var result = RetrievalEvaluationRunResult(split: c.split, classes: heldOut.classCount, metrics: m)
        if c.fewShotEpisodes > 0 {
            for shot in [1, 5] {
                let sampler = try fiveWayEpisodes(heldOut, shot: shot, seed: c.seed)
                let r = try evaluateFrozenFeatures(features: embed, loader: loader, sampler: sampler,
                                                   episodes: c.fewShotEpisodes, protocol: .prototype) { done in
                    guard let stop = self.stop, stop.isRequested, done < c.fewShotEpisodes else { return }
                    throw RunStopped(done: done, total: c.fewShotEpisodes, phase: "episodes of 5-way \(shot)-shot")
                }
                events(.supervised(.fewShot(shot: shot, episodes: c.fewShotEpisodes, summary: r.summary)))
                result.fewShot[shot] = .init(mean: r.summary.mean, ci95: r.summary.ci95)
            }
        }
        return result
    }
}
