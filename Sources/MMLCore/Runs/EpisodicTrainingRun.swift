import Foundation

/// Episodic training of a multi-level metric model (METHOD.md 2.5) with validation, checkpoints and resume: the
/// run behind `mml train` and `mml ablate --retrain`, around `EpisodicTrainer`.
public struct EpisodicTrainingRunConfiguration: Codable, Sendable, Equatable {
    /// The training data (split nil: `train`).
    public var dataset: DatasetSource
    public var image: ImageSettings
    /// The backbone (defaults: `BackboneSettings.Defaults.episodic`).
    public var backbone: BackboneSettings
    /// The metric (its `way` should be `training.way`).
    public var metric: MetricConfiguration
    /// The training recipe (saved in every checkpoint; a resume must use the same).
    public var training: EpisodicTrainingConfiguration
    /// The validation split (`none`: no validation, the last epoch is kept as best).
    public var validationSplit: String
    /// Validation n-way and k-shot (nil: the training ones) and queries per class.
    public var validationWay: Int?
    public var validationShot: Int?
    public var validationQuery: Int
    /// Output directory: last.safetensors, best.safetensors, log.jsonl.
    public var out: String
    /// Continue the run in `out` from its last.safetensors.
    public var resume: Bool
    /// Initialise the backbone of a fresh model from this checkpoint.
    public var initFrom: String?
    /// Threads for the kernels (0: all cores).
    public var threads: Int
    /// Stop after this many episodes in total (the run stays resumable).
    public var stopAfter: Int?

    public init(dataset: DatasetSource, image: ImageSettings = ImageSettings(), backbone: BackboneSettings = .init(),
                metric: MetricConfiguration = MetricConfiguration(),
                training: EpisodicTrainingConfiguration = EpisodicTrainingConfiguration(),
                validationSplit: String = "val", validationWay: Int? = nil, validationShot: Int? = nil,
                validationQuery: Int = 15, out: String = "runs/mml", resume: Bool = false, initFrom: String? = nil,
                threads: Int = 0, stopAfter: Int? = nil) {
        self.dataset = dataset; self.image = image; self.backbone = backbone; self.metric = metric
        self.training = training; self.validationSplit = validationSplit; self.validationWay = validationWay
        self.validationShot = validationShot; self.validationQuery = validationQuery; self.out = out
        self.resume = resume; self.initFrom = initFrom; self.threads = threads; self.stopAfter = stopAfter
    }

    /// The training recipe as the trainer runs it: no validation episodes with `validationSplit` `none`.
    public var effectiveTraining: EpisodicTrainingConfiguration {
        var t = training
        if validationSplit == "none" { t.validationEpisodes = 0 }
        return t
    }

    /// Checks every field. - Throws: `MMLError(.config)` naming the field.
    public func validate() throws {
        try effectiveTraining.validate()
        try metric.validate()
    }
}

/// What an episodic training run did: the trainer's final state and the files it wrote.
public struct EpisodicTrainingRunResult: Codable, Sendable {
    /// Episodes, steps, validations, the best epoch and the training time.
    public var state: EpisodicTrainingState
    /// Episodes of the whole run (`state.episodesDone` is less after `stopAfter`).
    public var totalEpisodes: Int
    /// last.safetensors, best.safetensors (nil before the first epoch's end) and log.jsonl.
    public var last: String
    public var best: String?
    public var log: String
    /// What exchanging gradients between processes cost in this process (nil with one process).
    public var exchange: ExchangeStatistics?
}

/// An episodic training run: `EpisodicTrainingRun(config).run { event in ... }`.
public final class EpisodicTrainingRun: ConfiguredRun<EpisodicTrainingRunConfiguration> {
    /// The processes training together (default: this one alone). With N processes every one runs this same run;
    /// the episodes of each step are split between them, rank 0 writes the files, and the result is the same, bit
    /// for bit, for every N (`EpisodicTrainer`, docs/DISTRIBUTED.md).
    public var group: any ProcessGroup = SingleProcessGroup()

    /// Trains (or resumes) until the run's end or `stopAfter`. Events: `.note` (backbone initialised, resuming),
    /// `.started` with the facts `model`, `episodes`, `data`, then `.training` events (`.begin` first).
    /// - Throws: `MMLError` when `out` holds a run and `resume` is off (or none and it is on), for a checkpoint
    ///   trained with other settings, unreadable data or unwritable files.
    public func run(events: (RunEvent) -> Void = { _ in }) throws -> EpisodicTrainingRunResult {
        let c = configuration
        let config = c.effectiveTraining, t = config
        let dir = URL(fileURLWithPath: c.out)
        let lastPath = dir.appendingPathComponent("last.safetensors").path
        let exists = FileManager.default.fileExists(atPath: lastPath)
        if c.resume && !exists {
            throw MMLError(.fileNotFound, "`resume`: \(lastPath) does not exist; start the run without `resume`")
        }
        if !c.resume && exists {
            throw MMLError(.invalidArgument, "\(c.out) already holds a run (last.safetensors); pass `resume` to "
                           + "continue it, or choose another `out`")
        }
        try EpisodicTrainer.checkSplit(config, processes: group.size)
        // Every process has looked at `out` before rank 0 writes anything there.
        try group.barrier()
        let trainData = c.dataset.withDefaultSplit("train")
        let fresh = try c.backbone.modelConfiguration(kind: "episodic", dataset: trainData, image: c.image,
                                                      defaults: .episodic, metric: c.metric)
        let model: FewShotModel
        var loaded: Checkpoint.Loaded?
        if c.resume {
            loaded = try Checkpoint.load(lastPath, threads: c.threads)
            model = loaded!.model
        } else {
            model = try FewShotModel(fresh, threads: c.threads)
            if let initFrom = c.initFrom {
                let n = try Checkpoint.loadBackbone(into: model, from: initFrom)
                events(.note("initialised \(n) backbone tensors from \(initFrom)"))
            }
        }
        let trainImages = model.configuration.image
        let evalImages = trainImages.forEvaluation
        let trainSet = try trainData.open(image: evalImages, events: events)
        let trainSampler = try EpisodeSampler(dataset: trainSet, way: t.way, shot: t.shot, query: t.query, seed: t.seed)
        let trainLoader = try EpisodeLoader(dataset: trainSet, config: trainImages)
        var validation: (loader: EpisodeLoader, sampler: EpisodeSampler)?
        if config.validationEpisodes > 0 {
            let valSet = try c.dataset.with(split: c.validationSplit).open(image: evalImages, events: events)
            let s = try EpisodeSampler(dataset: valSet, way: c.validationWay ?? t.way,
                                       shot: c.validationShot ?? t.shot, query: c.validationQuery,
                                       seed: t.validationSeed)
            validation = (try EpisodeLoader(dataset: valSet, config: evalImages), s)
        }
        let trainer = try EpisodicTrainer(model: model, configuration: config, train: (trainLoader, trainSampler),
                                          validation: validation, directory: c.out, group: group)
        if let loaded {
            guard let state = loaded.state else {
                throw MMLError(.corruptFile, "\(lastPath) holds no training state; it is not a training checkpoint")
            }
            try trainer.restore(state: state, optimizerTensors: loaded.extra)
            trainer.truncateLog()
            events(.note("resuming \(c.out) at episode \(trainer.state.episodesDone) of \(config.totalEpisodes)"))
        }
        let mc = model.configuration
        let valFacts = validation.map {
            ", validation \($0.sampler.dataset.classCount) classes x \(config.validationEpisodes) episodes"
        } ?? ""
        events(.started(run: "train", facts: [
            ("model", "\(mc.backbone.rawValue) \(mc.image.size)x\(mc.image.size)x\(mc.image.channels), "
                + "\(model.trainableParameterCount) parameters; \(mc.metric!.summary)"),
            ("episodes", "\(t.way)-way \(t.shot)-shot \(t.query) queries, \(t.episodesPerEpoch) x \(t.epochs) epochs, "
                + "\(t.episodesPerStep) per step, \(t.optimizer.rawValue) lr \(t.learningRate) (\(t.schedule.rawValue))"),
            ("data", "train \(trainSet.classCount) classes" + valFacts),
        ]))
        try withoutActuallyEscaping(events) { events in
            trainer.onEvent = { events(.training($0)) }
            defer { trainer.onEvent = nil }
            try trainer.run(stopAfter: c.stopAfter)
        }
        let s = trainer.state
        return EpisodicTrainingRunResult(
            state: s, totalEpisodes: config.totalEpisodes, last: lastPath,
            best: s.bestEpoch == nil ? nil : dir.appendingPathComponent("best.safetensors").path,
            log: dir.appendingPathComponent("log.jsonl").path, exchange: group.size > 1 ? trainer.exchange : nil)
    }
}
