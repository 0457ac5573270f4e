import Foundation

/// What `EvaluationRun` evaluates: a checkpoint on few-shot episodes of a split, every (way, shot) combination, with
/// the checkpoint's metric or a frozen-feature protocol.
public struct EvaluationRunConfiguration: Codable, Sendable, Equatable {
    /// The checkpoint (`.safetensors` of an episodic, pretrained or embedding model).
    public var checkpoint: String
    /// The data; a nil split is `test`.
    public var dataset: DatasetSource
    /// The protocol (nil: metric when the checkpoint has one, else prototype).
    public var evaluationProtocol: EvaluationProtocol?
    /// The cosine-classifier protocol's settings (only with that protocol).
    public var cosineClassifier: CosineClassifierSettings
    /// Classes per episode; each value is evaluated (with each shot).
    public var ways: [Int]
    /// Support images per class; each value is evaluated.
    public var shots: [Int]
    /// Query images per class.
    public var query: Int
    /// Episodes per setting.
    public var episodes: Int
    /// Seed of the episodes.
    public var seed: UInt64
    /// Evaluate the episodes of this list file (`mml data episodes`) instead of sampling (ways, shots, query,
    /// episodes and seed are then the list's).
    public var episodeList: String?
    /// Kernel threads (0: all cores).
    public var threads: Int
    /// Evaluate only this shard's episodes (`ShardSpec`: position % count == index in each setting); needs
    /// `episodesOut`, and `mml eval merge` makes the report of all shards.
    public var shard: ShardSpec?
    /// Write the per-episode results to this file (`EpisodeFile`, docs/EPISODES.md); a directory (existing, or
    /// ending in `/`) gets `episodes.jsonl` or the shard's `ShardSpec.fileName`.
    public var episodesOut: String?
    /// Preprocessing laid over the checkpoint's own (ink, resize filter, mean, std; unset fields keep the
    /// checkpoint's). Older configurations lack it: the checkpoint's own.
    @DefaultWhenAbsent public var preprocessing: Preprocessing
    /// The training seed of the checkpoint when it is one seed of a study (`SeedEvaluationRun`): written into the
    /// per-episode records and the file's manifest (`training_seed`); nil otherwise.
    public var trainingSeed: UInt64?
    /// The pixel and part levels' similarity arithmetic (metric protocol only): fp32 (the default), bf16 or bf16amx
    /// (`SimilarityPrecision`; on a CPU without the fast path, AVX512-BF16 or AMX, the run warns that it is slower
    /// than fp32). Older configurations lack it: fp32.
    @DefaultWhenAbsent public var precision: SimilarityPrecision

    public init(checkpoint: String, dataset: DatasetSource = DatasetSource(),
                evaluationProtocol: EvaluationProtocol? = nil,
                cosineClassifier: CosineClassifierSettings = CosineClassifierSettings(), ways: [Int] = [5],
                shots: [Int] = [1], query: Int = 15, episodes: Int = 600, seed: UInt64 = 0, episodeList: String? = nil,
                threads: Int = 0, shard: ShardSpec? = nil, episodesOut: String? = nil,
                preprocessing: Preprocessing = Preprocessing(), trainingSeed: UInt64? = nil,
                precision: SimilarityPrecision = .fp32) {
        self.checkpoint = checkpoint; self.dataset = dataset; self.evaluationProtocol = evaluationProtocol
        self.cosineClassifier = cosineClassifier; self.ways = ways; self.shots = shots; self.query = query
        self.episodes = episodes; self.seed = seed; self.episodeList = episodeList; self.threads = threads
        self.shard = shard; self.episodesOut = episodesOut; self.preprocessing = preprocessing
        self.trainingSeed = trainingSeed; self.precision = precision
    }

    /// Checks the episode settings (the protocol and the classifier settings are checked against the checkpoint
    /// when the run starts). - Throws: `MMLError` naming the field.
    public func validate() throws {
        try dataset.validate()
        try Limits.check(threads, "threads", in: Limits.threads, "kernel threads (0: all cores)")
        try cosineClassifier.validate()
        if let shard {
            try shard.validate()
            if episodesOut == nil {
                throw MMLError(.invalidArgument, "`shard` \(shard): a shard's results go to a per-episode file; give "
                               + "`episodesOut` (a file, or a directory for \(shard.fileName))")
            }
        }
        if let episodeList {
            let d = EvaluationRunConfiguration(checkpoint: checkpoint)
            let given = [("ways", ways != d.ways), ("shots", shots != d.shots), ("query", query != d.query),
                         ("episodes", episodes != d.episodes), ("seed", seed != d.seed)].filter(\.1).map { "`\($0.0)`" }
            if !given.isEmpty {
                throw MMLError(.invalidArgument, given.joined(separator: ", ") + " cannot apply with `episodeList` "
                               + "\(episodeList): the list fixes the episodes (their way, shot, queries, number and "
                               + "seed); drop " + (given.count == 1 ? "it" : "them") + " or `episodeList`")
            }
            return
        }
        for (field, values) in [("ways", ways), ("shots", shots)] where values.isEmpty || values.contains(where: { $0 < 1 }) {
            throw MMLError(.config, "`\(field)` \(values): give positive integers")
        }
        guard episodes >= 1 else {
            throw MMLError(.invalidArgument, "`episodes` \(episodes): evaluate at least 1 episode")
        }
        for w in ways { try Limits.check(w, "ways", in: Limits.way, "classes per episode") }
        for k in shots { try Limits.check(k, "shots", in: Limits.shot, "support images per class") }
        try Limits.check(query, "query", in: Limits.query, "query images per class")
        try Limits.check(episodes, "episodes", in: Limits.episodes, "episodes per setting")
        for w in ways {
            for k in shots {
                try Limits.imagesPerEpisode(way: w, wayField: "ways", shot: k, shotField: "shots", query: query,
                                            queryField: "query")
            }
        }
        try memoryEstimate(image: nil, firstWidth: 0).check(lower: ["episodes", "ways", "shots", "query"])
    }

    /// What the run holds at once: every setting's sampled episodes and records, and one episode's images through
    /// the backbone (`image`, `firstWidth`: the checkpoint's; nil before it is loaded). An episode list's sizes are
    /// not known before it is read: nothing is counted for it.
    public func memoryEstimate(image: ImageConfig?, firstWidth: Int) -> MemoryEstimate {
        var m = MemoryEstimate()
        guard episodeList == nil else { return m }
        for w in ways {
            for k in shots {
                let images = w * (k + query)  // bounded by validate()
                m.addEpisodes(episodes, imagesPerEpisode: images, way: w, what: "\(w)-way \(k)-shot episodes")
            }
        }
        if let image {
            let largest = (ways.max() ?? 1) * ((shots.max() ?? 1) + query)
            m.addImages(largest, side: image.size, channels: image.channels, firstWidth: firstWidth, training: false,
                        what: "one episode")
        }
        return m
    }
}

/// What `EvaluationRun` found; encoded (sorted keys) it is the report of `mml eval --json`.
public struct EvaluationRunResult: Codable, Sendable {
    /// An accuracy over episodes with its 95% interval.
    public struct Summary: Codable, Sendable, Equatable {
        public var mean: Double
        public var ci95: Double
        public var std: Double
        public var episodes: Int

        public init(_ s: AccuracySummary) {
            mean = s.mean
            ci95 = s.ci95
            std = s.std
            episodes = s.count
        }

        /// "98.71 +- 0.21" in percent.
        public var percentString: String { String(format: "%.2f +- %.2f", mean * 100, ci95 * 100) }
    }

    /// One (way, shot) setting.
    public struct Setting: Codable, Sendable {
        public var way: Int
        public var shot: Int
        public var query: Int
        public var episodes: Int
        public var seed: UInt64
        public var evaluationProtocol: EvaluationProtocol
        /// The reported accuracy: fused (metric) or the protocol's.
        public var accuracy: Summary
        /// Metric protocol: the fused accuracy (= `accuracy`).
        public var fused: Summary?
        /// Metric protocol: each level's accuracy, by level name.
        public var levels: [String: Summary]?
        public var seconds: Double
        public var episodesPerSecond: Double

        enum CodingKeys: String, CodingKey {
            case way, shot, query, episodes, seed, accuracy, fused, levels, seconds
            case evaluationProtocol = "protocol", episodesPerSecond = "episodes_per_second"
        }

        /// The levels' accuracies in canonical order (pixel, part, distribution).
        public var orderedLevels: [(level: MetricLevel, summary: Summary)] {
            MetricLevel.allCases.compactMap { l in levels?[l.rawValue].map { (l, $0) } }
        }
    }

    /// The cosine-classifier settings used, as reported.
    public struct CosineClassifierReport: Codable, Sendable, Equatable {
        public var scale, learningRate, momentum, dampening, weightDecay: Double
        public var passes, batchSize: Int
        public var seed: UInt64

        public init(_ o: CosineClassifierProtocolOptions) {
            scale = Double(o.scale)
            learningRate = Double(o.learningRate)
            momentum = Double(o.momentum)
            dampening = Double(o.dampening)
            weightDecay = Double(o.weightDecay)
            passes = o.passes
            batchSize = o.batchSize
            seed = o.seed
        }

        enum CodingKeys: String, CodingKey {
            case scale, momentum, dampening, passes, seed
            case learningRate = "learning_rate", weightDecay = "weight_decay", batchSize = "batch_size"
        }
    }

    public var checkpoint: String
    /// The dataset's name.
    public var dataset: String
    public var split: String
    /// The checkpoint's model configuration.
    public var model: ModelConfiguration
    public var evaluationProtocol: EvaluationProtocol
    /// Whether the settings hold per-level accuracies (metric protocol).
    public var perLevel: Bool
    public var results: [Setting]
    /// The classifier settings (cosine-classifier protocol only).
    public var cosineClassifier: CosineClassifierReport?
    /// The pixel and part levels' similarity arithmetic when it was not fp32 (`bf16`, `bf16amx`); nil (absent from
    /// the JSON, as in reports of earlier versions) for fp32.
    public var precision: SimilarityPrecision? = nil
    /// The training seed of the evaluated checkpoint (from its training state), when it has one; absent from reports
    /// of earlier versions. `SeedEvaluationRunResult(reports:)` uses it to combine single-seed reports.
    public var trainingSeed: UInt64? = nil
    /// The kernel paths that computed it (`BLASRuntime.kernelISA`; a merge of shards lists each path once): the
    /// Gaussian kernels' paths round differently. Absent from reports of earlier versions.
    public var kernels: [String]? = nil

    enum CodingKeys: String, CodingKey {
        case checkpoint, dataset, split, model, results, precision, kernels
        case evaluationProtocol = "protocol", perLevel = "per_level", cosineClassifier = "cosine_classifier"
        case trainingSeed = "training_seed"
    }

    /// The report as pretty-printed JSON with sorted keys (what `mml eval --json` prints).
    public func jsonText() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: try enc.encode(self), as: UTF8.self)
    }
}

/// Few-shot accuracy of a checkpoint: fused and per level (metric protocol) or with a frozen-feature protocol, with
/// 95% intervals, on the same episodes for every checkpoint (episodes are a pure function of seed and index).
///
/// Events: `started` (facts `checkpoint`, `data`, `protocol`), then per setting `progress` (`episodes`) and
/// `evaluated`.
public final class EvaluationRun: ConfiguredRun<EvaluationRunConfiguration> {
    /// The fields an episode-size error names: an evaluation sets lists of ways and shots (`ways`, `shots`).
    static let episodeFields = EpisodeFields(shot: "shots", query: "query",
                                             tooFewClasses: "lower `ways` or use a larger split", dropSmallClasses: nil)

    private let loaded: Checkpoint.Loaded?
    /// Polled after each episode: once requested, the run throws `RunStopped` (how many episodes of which setting
    /// were done) and writes nothing (no per-episode file: one is only ever written whole).
    public var stop: StopRequest?

    /// - Parameter loaded: the checkpoint `configuration.checkpoint` names, already loaded (nil: the run loads it).
    /// - Throws: `MMLError` naming the invalid field.
    public init(_ configuration: EvaluationRunConfiguration, checkpoint loaded: Checkpoint.Loaded? = nil) throws {
        self.loaded = loaded
        try super.init(configuration)
    }

    /// Loads the checkpoint and evaluates every setting. - Throws: `MMLError`.
    public func run(events: (RunEvent) -> Void = { _ in }) throws -> EvaluationRunResult {
        // The evaluators take optional (escaping) progress callbacks; none outlives the run.
        try withoutActuallyEscaping(events) { try evaluate(events: $0) }
    }

    private func evaluate(events: @escaping (RunEvent) -> Void) throws -> EvaluationRunResult {
        let c = configuration
        // Checks before work: the per-episode file's directory is writable (created if missing).
        if let given = c.episodesOut {
            try OutputCheck.prepare(file: EpisodeFileFormat.outputPath(given, shard: c.shard), field: "episodesOut")
        }
        let loaded = try self.loaded ?? Checkpoint.load(c.checkpoint, threads: c.threads)
        let model = loaded.model
        let proto = try EvaluationProtocol.resolve(c.evaluationProtocol, model: model.configuration,
                                                   checkpoint: c.checkpoint)
        if proto != .cosineClassifier, let field = c.cosineClassifier.givenFields.first {
            throw MMLError(.invalidArgument, "`\(field)` only applies to `evaluationProtocol` cosine-classifier (this "
                           + "run uses `evaluationProtocol` \(proto.rawValue))")
        }
        try Self.checkPrecision(c.precision, protocol: proto, metric: model.configuration.metric)
        let features = try proto.frozen.map { try frozenFeatureFunction(of: loaded, path: c.checkpoint, protocol: $0) }
        let image = try c.preprocessing.applied(to: model.configuration.image.forEvaluation)
        let mc = model.configuration
        try c.memoryEstimate(image: image, firstWidth: mc.backboneConfiguration.resolvedWidths[0])
            .check(lower: ["episodes", "ways", "shots", "query"])
        let data = c.dataset.withDefaultSplit("test")
        let ds = try data.open(image: image, events: events)
        let loader = try EpisodeLoader(dataset: ds, config: image)
        let jobs = try episodeJobs(ds, events: events)
        // The classifier seed follows the episodes' seed (the list's own seed for an episode list), so a listed
        // episode is scored exactly as the sampled one.
        let classifier = proto == .cosineClassifier ? try c.cosineClassifier.options(episodeSeed: jobs[0].seed) : nil
        let how: String
        switch proto {
        case .metric: how = "metric (the checkpoint's fused and per-level scores)"
        case .prototype: how = "prototype (frozen features, cosine to the class means; no per-level scores)"
        case .protonet:
            how = "protonet (frozen features flattened, squared Euclidean distance to the class means; no per-level "
                + "scores)"
        case .cosineClassifier:
            how = "cosine-classifier (frozen features, a cosine classifier per episode: \(classifier!.summary); no "
                + "per-level scores)"
        }
        var facts: [(key: String, value: String)] = [
            ("checkpoint", "\(c.checkpoint) (\(mc.kind), \(mc.backbone.rawValue), \(mc.metric?.summary ?? "no metric"))"),
            ("data", "\(ds.name) split \(data.split ?? "-"), \(ds.classCount) classes"),
            ("protocol", how),
        ]
        if c.precision != .fp32 { facts.append(("precision", c.precision.fact)) }
        events(.started(run: "evaluation", facts: facts))
        if let note = c.precision.portableNote { events(.warning(note)) }
        if let shard = c.shard {
            for job in jobs {
                try shard.validate(episodes: job.episodes.count, setting: "\(job.way)-way \(job.shot)-shot")
            }
        }
        var settings: [EvaluationRunResult.Setting] = [], records: [EpisodeRecord] = []
        for job in jobs {
            // This shard's share (all episodes without one), with each episode's position in its setting.
            let mine = job.episodes.indices.filter { c.shard?.contains($0) ?? true }
            let episodes = mine.map { job.episodes[$0] }
            let phase = "episodes of \(job.way)-way \(job.shot)-shot" + (jobs.count > 1 ? " (setting \(settings.count + 1) "
                + "of \(jobs.count))" : "")
            let onEpisode: (Int) throws -> Void = { [stop] done in
                events(.progress(phase: "episodes", done: done, total: episodes.count))
                if done < episodes.count { try stop?.check(done: done, total: episodes.count, phase: phase) }
            }
            var fused: [Double], levels: [MetricLevel: [Double]] = [:], seconds: Double
            // Each query's predicted label, by measure ("accuracy": fused or the protocol's; each level's name).
            var predicted: [String: [[Int]]]
            if let frozen = proto.frozen, let features {
                let r = try evaluateFrozenFeatures(features: features, loader: loader, episodes: episodes,
                                                  protocol: frozen, options: classifier ?? .init(), progress: onEpisode)
                (fused, seconds) = (r.perEpisode, r.seconds)
                predicted = ["accuracy": r.predictions]
            } else {
                let r = try evaluateModel(model, loader: loader, episodes: episodes, precision: c.precision,
                                          progress: onEpisode)
                (fused, levels, seconds) = (r.fusedPerEpisode, r.levelsPerEpisode, r.seconds)
                predicted = ["accuracy": r.fusedPredictions]
                for (l, p) in r.levelPredictions { predicted[l.rawValue] = p }
            }
            let identity = data.episodeDataIdentity
            let mineRecords = mine.enumerated().map { k, position in
                EpisodeRecord(way: job.way, shot: job.shot, index: position,
                              hash: EpisodeRecord.contentHash(of: job.episodes[position], in: job.dataset,
                                                              dataIdentity: identity),
                              accuracy: fused[k],
                              levels: proto == .metric ? Dictionary(uniqueKeysWithValues: levels.map {
                                  ($0.key.rawValue, $0.value[k]) }) : nil, trainingSeed: c.trainingSeed,
                              predictions: predicted.mapValues { $0[k] })
            }
            let s = EvaluationRunResult.Setting(way: job.way, shot: job.shot, query: job.query, seed: job.seed,
                                                evaluationProtocol: proto, records: mineRecords, seconds: seconds)
            events(.evaluated(s))
            settings.append(s)
            records += mineRecords
        }
        var result = EvaluationRunResult(checkpoint: c.checkpoint, dataset: ds.name, split: data.split ?? "", model: mc,
                                         evaluationProtocol: proto, perLevel: proto == .metric, results: settings,
                                         cosineClassifier: classifier.map(EvaluationRunResult.CosineClassifierReport.init),
                                         precision: c.precision == .fp32 ? nil : c.precision)
        result.trainingSeed = c.trainingSeed ?? loaded.state.flatMap(SeedCheckpoint.trainingSeed(ofState:))
        result.kernels = [BLASRuntime.kernelISA]
        if let given = c.episodesOut {
            let path = EpisodeFileFormat.outputPath(given, shard: c.shard)
            var manifest = [
                "command": "eval", "checkpoint_hash": try FNV1a64.ofFile(c.checkpoint), "dataset": ds.name,
                "split": data.split ?? "", "layout": data.resolvedLayout.rawValue, "data": data.episodeDataIdentity,
                "protocol": proto.rawValue, "metric": mc.metric?.summary ?? "none",
                "cosine_classifier": classifier?.summary ?? "none", "seed": "\(jobs[0].seed)",
            ]
            manifest["episode_list"] = try c.episodeList.map(FNV1a64.ofFile) ?? "none"
            // Only a bf16 / bf16amx run says so: fp32 files keep the manifest of earlier versions (and merge with them).
            if c.precision != .fp32 { manifest["precision"] = c.precision.rawValue }
            if let s = c.trainingSeed { manifest["training_seed"] = "\(s)" }
            // The images as the backbone saw them (size, channels, ink, resize filter, mean, std): shards run with
            // other preprocessing flags are not the same run.
            manifest["image"] = try ConfigurationJSON.text(image)
            let header = EpisodeFileHeader(
                command: "eval", manifest: manifest,
                settings: jobs.map {
                    EpisodeSetting(way: $0.way, shot: $0.shot, query: $0.query, episodes: $0.episodes.count)
                },
                shard: c.shard, seconds: settings.reduce(0) { $0 + $1.seconds }, facts: facts.map { [$0.0, $0.1] },
                report: result)
            try EpisodeFile(header: header, records: records).write(to: path)
            events(.wrote(path: path, what: c.shard.map { "per-episode results of shard \($0)" }
                          ?? "per-episode results"))
        }
        return result
    }

    /// Refuses a precision that would change nothing: bf16 and bf16amx apply to the metric protocol's pixel and part
    /// levels.
    /// - Throws: `MMLError(.invalidArgument)` naming `precision`.
    static func checkPrecision(_ precision: SimilarityPrecision, protocol proto: EvaluationProtocol,
                               metric: MetricConfiguration?) throws {
        guard precision != .fp32 else { return }
        if proto != .metric {
            throw MMLError(.invalidArgument, "`precision` \(precision.rawValue) applies to the pixel and part levels of "
                           + "`evaluationProtocol` metric; this run uses `evaluationProtocol` \(proto.rawValue) "
                           + "(frozen features, no similarity kernel): drop `precision`")
        }
        if let levels = metric?.levels, !levels.contains(.pixel), !levels.contains(.part) {
            throw MMLError(.invalidArgument, "`precision` \(precision.rawValue) applies to the pixel and part levels; "
                           + "this checkpoint's metric has only \(levels.map(\.rawValue).joined(separator: ", ")): "
                           + "drop `precision`")
        }
    }

    /// One setting's episodes and the dataset their indices point into.
    private typealias Job = (way: Int, shot: Int, query: Int, seed: UInt64, episodes: [Episode],
                             dataset: any FewShotDataset)

    /// The episodes of each setting: the list's, or every (way, shot) sampled from `ds`.
    private func episodeJobs(_ ds: any FewShotDataset, events: (RunEvent) -> Void) throws -> [Job] {
        let c = configuration
        if let path = c.episodeList {
            let list = try EpisodeList.read(from: path)
            var warnings: [String] = []
            let episodes = try list.resolve(in: ds, allowDuplicates: c.dataset.allowDuplicates, warnings: &warnings)
            for w in warnings { events(.warning(w)) }
            return [(list.way, list.shot, list.query, list.seed, episodes, ds)]
        }
        var jobs: [Job] = []
        for w in c.ways {
            for k in c.shots {
                let sampler = try EpisodeSampler(dataset: ds, way: w, shot: k, query: c.query, seed: c.seed,
                                                 fields: Self.episodeFields)
                jobs.append((w, k, c.query, c.seed, sampler.episodes(c.episodes), sampler.dataset))
            }
        }
        return jobs
    }
}

extension CosineClassifierProtocolOptions {
    /// "s 5.0, SGD lr 0.01 momentum 0.9 dampening 0.9 weight decay 0.001, 100 passes in batches of 4, seed 7".
    public var summary: String {
        "s \(scale), SGD lr \(learningRate) momentum \(momentum) dampening \(dampening) weight decay \(weightDecay), "
            + "\(passes) passes in batches of \(batchSize), seed \(seed)"
    }
}
