import Foundation

/// The episodic training recipe (METHOD.md 2.5, MML v1 code): n-way k-shot episodes with q queries, several
/// episodes per optimiser step, Adam(1e-3, betas 0.5/0.9), the rate halved every 10 epochs, BatchNorm statistics
/// frozen after the first epoch, best-on-validation selection.
public struct EpisodicTrainingConfiguration: Codable, Sendable, Equatable {
    public var way: Int
    public var shot: Int
    public var query: Int
    public var episodesPerEpoch: Int
    public var epochs: Int
    /// Gradients of this many episodes are averaged into one optimiser step (MML v1: 4).
    public var episodesPerStep: Int
    /// Adam or SGD (encoded `adam` / `sgd`).
    public var optimizer: OptimizerKind
    public var learningRate: Float
    /// Adam betas (MML v1: 0.5, 0.9).
    public var beta1: Float
    public var beta2: Float
    /// SGD momentum.
    public var momentum: Float
    public var weightDecay: Float
    /// `step` (times `lrFactor` every `lrStepEpochs` epochs), `cosine` (over all steps) or `constant`.
    public var schedule: ScheduleKind
    public var lrStepEpochs: Int
    public var lrFactor: Float
    /// BatchNorm running statistics are frozen (used and kept in training) after this many epochs; 0 = never.
    public var freezeBatchNormAfterEpochs: Int
    /// Seed of the training episodes, augmentation and DropBlock masks.
    public var seed: UInt64
    /// Validation after each epoch on this many episodes of the validation split (0: no validation, the last
    /// epoch is kept as best).
    public var validationEpisodes: Int
    /// Seed of the validation episodes (the same episodes every epoch).
    public var validationSeed: UInt64
    /// Write `last.safetensors` every this many episodes (rounded up to a whole optimiser step) and at each
    /// epoch's end.
    public var checkpointEvery: Int
    /// Log training loss / accuracy averages every this many episodes.
    public var logEvery: Int

    public init(way: Int = 5, shot: Int = 1, query: Int = 15, episodesPerEpoch: Int = 10_000, epochs: Int = 30,
                episodesPerStep: Int = 4, optimizer: OptimizerKind = .adam, learningRate: Float = 1e-3, beta1: Float = 0.5,
                beta2: Float = 0.9, momentum: Float = 0.9, weightDecay: Float = 0, schedule: ScheduleKind = .step,
                lrStepEpochs: Int = 10, lrFactor: Float = 0.5, freezeBatchNormAfterEpochs: Int = 1, seed: UInt64 = 1,
                validationEpisodes: Int = 200, validationSeed: UInt64 = 2, checkpointEvery: Int = 1000,
                logEvery: Int = 50) {
        self.way = way; self.shot = shot; self.query = query
        self.episodesPerEpoch = episodesPerEpoch; self.epochs = epochs; self.episodesPerStep = episodesPerStep
        self.optimizer = optimizer; self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2
        self.momentum = momentum; self.weightDecay = weightDecay; self.schedule = schedule
        self.lrStepEpochs = lrStepEpochs; self.lrFactor = lrFactor
        self.freezeBatchNormAfterEpochs = freezeBatchNormAfterEpochs; self.seed = seed
        self.validationEpisodes = validationEpisodes; self.validationSeed = validationSeed
        self.checkpointEvery = checkpointEvery; self.logEvery = logEvery
    }

    /// Total episodes of the run.
    public var totalEpisodes: Int { episodesPerEpoch * epochs }
    /// Total optimiser steps of the run.
    public var totalSteps: Int { (totalEpisodes + episodesPerStep - 1) / episodesPerStep }

    /// Checks every field. - Throws: `MMLError(.config)` naming the field and what is allowed.
    public func validate() throws {
        func need(_ ok: Bool, _ what: String) throws { if !ok { throw MMLError(.config, what) } }
        try need(way >= 2, "`way` \(way): an episode needs at least 2 classes")
        try need(shot >= 1, "`shot` \(shot): at least 1 support image per class")
        try need(query >= 1, "`query` \(query): at least 1 query image per class")
        try need(episodesPerEpoch >= 1 && epochs >= 1, "`episodesPerEpoch` \(episodesPerEpoch) and `epochs` "
                 + "\(epochs) must be at least 1")
        try need(episodesPerStep >= 1, "`episodesPerStep` \(episodesPerStep) must be at least 1")
        try need(learningRate.isFinite && learningRate > 0, "`learningRate` \(learningRate) must be a positive number")
        try need(lrStepEpochs >= 1 && lrFactor > 0 && lrFactor <= 1, "`lrStepEpochs` \(lrStepEpochs) must be >= 1 "
                 + "and `lrFactor` \(lrFactor) in (0, 1]")
        try need(freezeBatchNormAfterEpochs >= 0,
                 "`freezeBatchNormAfterEpochs` \(freezeBatchNormAfterEpochs) must be >= 0 (0: never)")
        try need(validationEpisodes >= 0, "`validationEpisodes` \(validationEpisodes) must be >= 0")
        try need(checkpointEvery >= 1 && logEvery >= 1, "`checkpointEvery` and `logEvery` must be at least 1")
        try Limits.check(way, "way", in: Limits.way, "classes per episode")
        try Limits.check(shot, "shot", in: Limits.shot, "support images per class")
        try Limits.check(query, "query", in: Limits.query, "query images per class")
        try Limits.imagesPerEpisode(way: way, wayField: "way", shot: shot, shotField: "shot", query: query,
                                    queryField: "query")
        try Limits.check(episodesPerEpoch, "episodesPerEpoch", in: Limits.episodesPerEpoch, "episodes per epoch")
        try Limits.check(epochs, "epochs", in: Limits.epochs, "epochs")
        _ = try Limits.product([("episodesPerEpoch", episodesPerEpoch), ("epochs", epochs)], in: Limits.totalEpisodes,
                               "training episodes")
        try Limits.check(episodesPerStep, "episodesPerStep", in: Limits.episodesPerEpoch, "episodes per step")
        try Limits.check(lrStepEpochs, "lrStepEpochs", in: Limits.epochs, "epochs between learning-rate steps")
        try Limits.check(freezeBatchNormAfterEpochs, "freezeBatchNormAfterEpochs", in: 0...Limits.epochs.upperBound,
                         "epochs before BatchNorm statistics freeze")
        try Limits.check(validationEpisodes, "validationEpisodes", in: 0...Limits.episodes.upperBound,
                         "validation episodes")
        try Limits.check(checkpointEvery, "checkpointEvery", in: Limits.interval, "episodes between checkpoints")
        try Limits.check(logEvery, "logEvery", in: Limits.interval, "episodes between log lines")
        try Limits.check(beta1, "beta1", "in [0, 1)") { $0 >= 0 && $0 < 1 }
        try Limits.check(beta2, "beta2", "in [0, 1)") { $0 >= 0 && $0 < 1 }
        try Limits.check(momentum, "momentum", "in [0, 1)") { $0 >= 0 && $0 < 1 }
        try Limits.check(weightDecay, "weightDecay", ">= 0") { $0 >= 0 }
        // Settings of another optimiser or schedule cannot apply: refused, never ignored.
        let d = EpisodicTrainingConfiguration()
        let inapplicable: [(String, Bool, String)] = [
            ("beta1", optimizer != .adam && beta1 != d.beta1, "`optimizer` adam"),
            ("beta2", optimizer != .adam && beta2 != d.beta2, "`optimizer` adam"),
            ("momentum", optimizer != .sgd && momentum != d.momentum, "`optimizer` sgd"),
            ("lrStepEpochs", schedule != .step && lrStepEpochs != d.lrStepEpochs, "`schedule` step"),
            ("lrFactor", schedule != .step && lrFactor != d.lrFactor, "`schedule` step"),
        ]
        if let (field, _, needs) = inapplicable.first(where: \.1) {
            throw MMLError(.invalidArgument, "`\(field)` only applies with \(needs) (this run uses `optimizer` "
                           + "\(optimizer.rawValue), `schedule` \(schedule.rawValue)); drop `\(field)` or use \(needs)")
        }
    }

    /// The learning rate for an optimiser step taken after `episodesDone` episodes.
    public func learningRate(afterEpisodes episodesDone: Int) -> Float {
        switch schedule {
        case .cosine:
            return LearningRateSchedule.cosine(total: totalSteps, minimum: 0)
                .learningRate(base: learningRate, step: episodesDone / episodesPerStep)
        case .constant:
            return learningRate
        case .step:
            return LearningRateSchedule.step(every: lrStepEpochs, factor: lrFactor)
                .learningRate(base: learningRate, step: episodesDone / episodesPerEpoch)
        }
    }

    /// The fields whose values differ between `self` and `other`, in declaration order, with both values as text.
    public func differences(from other: EpisodicTrainingConfiguration) -> [(field: String, this: String, other: String)] {
        zip(Mirror(reflecting: self).children, Mirror(reflecting: other).children).compactMap { a, b in
            let (x, y) = ("\(a.value)", "\(b.value)")
            guard let name = a.label, x != y else { return nil }
            return (name, x, y)
        }
    }

    /// The optimiser this configuration names.
    public func makeOptimizer() throws -> any Optimizer {
        optimizer == .sgd
            ? try SGD(learningRate: learningRate, momentum: momentum, weightDecay: weightDecay)
            : try Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, weightDecay: weightDecay)
    }
}

/// Where a training run is: enough, with the checkpoint's weights and optimiser moments, to continue it exactly.
public struct EpisodicTrainingState: Codable, Sendable, Equatable {

    /// Episodes trained so far (always a whole number of optimiser steps at a checkpoint).
    public var episodesDone: Int = 0
    /// Optimiser steps taken.
    public var stepsDone: Int = 0
    /// Best validation accuracy so far and the epoch (1-based) it came from.
    public var bestValidation: Double?
    public var bestEpoch: Int?
    /// Validation results per finished epoch.
    public var validations: [ValidationRecord] = []
    /// Running sums of the current logging window.
    public var windowLoss: Double = 0
    public var windowAccuracy: Double = 0
    public var windowEpisodes: Int = 0
    /// Training wall time so far (seconds), across resumes.
    public var elapsedSeconds: Double = 0
    /// The training configuration of the run (a resume must use the same).
    public var training: EpisodicTrainingConfiguration
    /// The kernel paths the run trained on, in the order it took them (`KernelPaths`); nil in checkpoints written
    /// before the paths were recorded.
    public var kernelPaths: [String]?

    public init(training: EpisodicTrainingConfiguration) {
        self.training = training
        kernelPaths = KernelPaths.fresh
    }

    /// One epoch's validation.
    public struct ValidationRecord: Codable, Sendable, Equatable {
        public var epoch: Int
        public var episode: Int
        public var accuracy: Double
        public var ci95: Double
        public var levels: [String: Double]
    }

    /// Compact JSON (sorted keys), the checkpoint's `mml.state`.
    /// - Throws: `MMLError(.numerical)` when a field cannot be encoded (a non-finite number): the state must never
    ///   be written empty, since a checkpoint without it can be neither resumed nor skipped.
    public func jsonString() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        do { return String(decoding: try enc.encode(self), as: UTF8.self) } catch {
            throw MMLError(.numerical, "the training state cannot be encoded (\(MMLError.describe(error)))")
        }
    }
}

extension EpisodicTrainingState {
    /// Decodes the state a checkpoint holds in its metadata (`mml.state`), its nesting depth checked first.
    /// - Throws: `MMLError(.corruptFile)` when it is not a training state.
    public init(metadata json: String) throws {
        try JSONInput.checkDepth(Array(json.utf8), source: "the checkpoint's training state (metadata 'mml.state')")
        do { self = try JSONDecoder().decode(EpisodicTrainingState.self, from: Data(json.utf8)) } catch {
            throw MMLError(.corruptFile, "the checkpoint's training state cannot be read (\(MMLError.describe(error)))")
        }
    }
}
