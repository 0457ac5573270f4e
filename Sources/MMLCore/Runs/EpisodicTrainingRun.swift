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
        try dataset.validate()
        try image.validate()
        try backbone.validate()
        try Limits.check(threads, "threads", in: Limits.threads, "kernel threads (0: all cores)")
        try Limits.check(stopAfter, "stopAfter", in: Limits.totalEpisodes, "episodes before stopping")
        try Limits.check(validationWay, "validationWay", in: 2...Limits.way.upperBound, "validation classes per episode")
        try Limits.check(validationShot, "validationShot", in: Limits.shot, "validation support images per class")
        try Limits.check(validationQuery, "validationQuery", in: Limits.query, "validation query images per class")
        let t = effectiveTraining
        if resume, let initFrom {
            throw MMLError(.invalidArgument, "`initFrom` \(initFrom) cannot apply with `resume`: a resumed run continues "
                           + "from its own last.safetensors; drop `initFrom`")
        }
        if t.validationEpisodes == 0, let field = [("validationWay", validationWay != nil),
                                                   ("validationShot", validationShot != nil),
                                                   ("validationQuery", validationQuery != 15)].first(where: \.1)?.0 {
            throw MMLError(.invalidArgument, "`\(field)` sets the validation episodes, but this run does not validate "
                           + "(`validationSplit` none or `validationEpisodes` 0); drop `\(field)` or validate")
        }
        let valImages = try Limits.imagesPerEpisode(
            way: validationWay ?? t.way, wayField: validationWay == nil ? "way" : "validationWay",
            shot: validationShot ?? t.shot, shotField: validationShot == nil ? "shot" : "validationShot",
            query: validationQuery, queryField: "validationQuery")
        // One training episode's images and caches, one validation episode's images, the validation episodes.
        var m = MemoryEstimate()
        // The images as the run will load them (the dataset's default size and channels, the augmentation's resize).
        let (trainImage, evalImage) = try image.configurations(for: dataset)
        let side = evalImage.size, trainSide = trainImage.resize ?? trainImage.size
        let channels = evalImage.channels, width = backbone.widths?.first ?? 64
        m.addImages(t.way * (t.shot + t.query), side: trainSide, channels: channels, firstWidth: width, training: true,
                    what: "one training episode")
        if t.validationEpisodes > 0 {
            m.addImages(valImages, side: side, channels: channels, firstWidth: width, training: false,
                        what: "one validation episode")
            m.addEpisodes(t.validationEpisodes, imagesPerEpisode: valImages, way: validationWay ?? t.way,
                          what: "validation episodes")
        }
        try m.check(lower: ["image.size", "way", "shot", "query", "validationEpisodes"])
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
    /// True when the run stopped early on its `stop` request: `last` holds the finished steps and resuming
    /// continues exactly there.
    public var stopped = false
}

/// An episodic training run: `EpisodicTrainingRun(config).run { event in ... }`.
public final class EpisodicTrainingRun: ConfiguredRun<EpisodicTrainingRunConfiguration> {
    /// The processes training together (default: this one alone). With N processes every one runs this same run;
    /// the episodes of each step are split between them, rank 0 writes the files, and the result is the same, bit
    /// for bit, for every N (`EpisodicTrainer`, docs/DISTRIBUTED.md).
    public var group: any ProcessGroup = SingleProcessGroup()
    /// Polled between optimiser steps: once requested, the run finishes the step, writes `last.safetensors` and
    /// returns with `stopped` set (in every process of `group` at the same step).
    public var stop: StopRequest?
    /// Receives the wall time of each phase of training (`PhaseProfile`); nil: nothing is measured.
    public var profile: PhaseProfile?

    /// Bytes the output directory needs for `last` and `best` of `model` with `optimizer`'s moments.
    static func outputBytes(_ model: FewShotModel, optimizer: OptimizerKind) -> Int64 {
        let values = model.namedParameters().reduce(0) { $0 + $1.parameter.value.count }
        return OutputCheck.checkpointBytes(parameters: values, moments: optimizer == .adam ? 2 : 1)
            + OutputCheck.checkpointBytes(parameters: values, moments: 0)
    }

    /// Trains (or resumes) until the run's end or `stopAfter`. Events: `.note` (backbone initialised, resuming),
    /// `.started` with the facts `model`, `episodes`, `data`, then `.training` events (`.begin` first).
    /// - Throws: `MMLError` when `out` holds a run and `resume` is off (or none and it is on), for a checkpoint
    ///   trained with other settings, unreadable data or unwritable files.
    public func run(events: (RunEvent) -> Void = { _ in }) throws -> EpisodicTrainingRunResult {
        let c = configuration
        let config = c.effectiveTraining, t = config
        let dir = URL(fileURLWithPath: c.out)
        let lastPath = dir.appendingPathComponent("last.safetensors").path
        // Checks before work: `out` exists (created), is writable, and stale temporary files of an interrupted
        // write are gone; the room for the checkpoints is checked once the model is built.
        if group.rank == 0 { try OutputCheck.prepare(directory: c.out, what: "checkpoints") }
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
        if group.rank == 0 {
            try OutputCheck.checkRoom(c.out, bytesNeeded: Self.outputBytes(model, optimizer: t.optimizer),
                                      what: "checkpoints")
            if c.resume {
                // The sidecars describe the checkpoints beside them (a kill between the two renames leaves an old one).
                for p in [lastPath, dir.appendingPathComponent("best.safetensors").path] {
                    guard try Checkpoint.repairSidecar(of: p) == .rewritten else { continue }
                    events(.note("rewrote \(Checkpoint.sidecarPath(p)) from \(p): it did not describe that checkpoint "
                                 + "(a write was interrupted)"))
                }
            }
        }
        let trainImages = model.configuration.image
        let evalImages = trainImages.forEvaluation
        let trainSet = try trainData.open(image: evalImages, events: events)
        let trainSampler = try EpisodeSampler(dataset: trainSet, way: t.way, shot: t.shot, query: t.query, seed: t.seed,
                                              fields: .run)
        let trainLoader = try EpisodeLoader(dataset: trainSet, config: trainImages)
        var validation: (loader: EpisodeLoader, sampler: EpisodeSampler)?
        if config.validationEpisodes > 0 {
            let valSet = try c.dataset.with(split: c.validationSplit).open(image: evalImages, events: events)
            let s = try EpisodeSampler(dataset: valSet, way: c.validationWay ?? t.way,
                                       shot: c.validationShot ?? t.shot, query: c.validationQuery,
                                       seed: t.validationSeed, fields: .validation(split: c.validationSplit))
            validation = (try EpisodeLoader(dataset: valSet, config: evalImages), s)
        }
        let trainer = try EpisodicTrainer(model: model, configuration: config, train: (trainLoader, trainSampler),
                                          validation: validation, directory: c.out, group: group)
        if let loaded {
            guard let state = loaded.state else {
                throw MMLError(.corruptFile, "\(lastPath) holds no training state; it is not a training checkpoint")
            }
            if let w = try trainer.restore(state: state, optimizerTensors: loaded.extra) { events(.warning(w)) }
            events(.note("resuming \(c.out) at episode \(trainer.state.episodesDone) of \(config.totalEpisodes)"))
        }
        if let w = try trainer.gatherKernelPaths() { events(.warning(w)) }
        // Log records after the starting point (all of them for a fresh run after an interrupted one) go.
        trainer.truncateLog()
        trainer.stopRequest = stop
        trainer.profile = profile
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
            log: dir.appendingPathComponent("log.jsonl").path, exchange: group.size > 1 ? trainer.exchange : nil,
            stopped: trainer.stopped)
    }
}
