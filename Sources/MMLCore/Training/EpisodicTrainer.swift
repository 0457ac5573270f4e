import Foundation

/// What a trainer reports while it runs (for progress bars and logs).
public enum TrainingEvent: Sendable {
    /// Before the first episode of `run`: where it starts (episodes done and training seconds so far; both 0 unless
    /// resumed).
    case begin(episode: Int, elapsed: Double)
    /// After each training episode; `elapsed` is the training time before this episode's.
    case episode(index: Int, epoch: Int, loss: Double, accuracy: Double, learningRate: Float, elapsed: Double)
    /// Every `logEvery` episodes: the window's mean loss and accuracy.
    case log(episode: Int, epoch: Int, loss: Double, accuracy: Double, learningRate: Float, elapsed: Double)
    /// After each epoch's validation.
    case validation(EpisodicTrainingState.ValidationRecord, isBest: Bool)
    /// A checkpoint was written.
    case checkpoint(path: String, episode: Int)
}

/// Episodic training of a `FewShotModel` (METHOD.md 2.5): every random choice is a pure function of the seed and
/// the episode index (episodes, augmentation, DropBlock masks), so a run resumed from a checkpoint continues exactly
/// as the uninterrupted run would have.
///
/// Writes into `directory` (when set): `last.safetensors` (weights, optimiser moments, state) every
/// `checkpointEvery` episodes and at each epoch's end, `best.safetensors` at each new best validation accuracy, and
/// `log.jsonl` (one JSON object per log window and per validation).
public final class EpisodicTrainer {
    public let model: FewShotModel
    public let configuration: EpisodicTrainingConfiguration
    public private(set) var state: EpisodicTrainingState
    public let trainLoader: EpisodeLoader
    public let trainSampler: EpisodeSampler
    public let validationLoader: EpisodeLoader?
    public let validationSampler: EpisodeSampler?
    public let directory: String?
    /// Receives progress events.
    public var onEvent: ((TrainingEvent) -> Void)?
    let optimizer: any Optimizer

    /// - Parameters:
    ///   - train: loader and sampler of training episodes (the sampler's way/shot/query and seed are used).
    ///   - validation: loader and sampler of validation episodes (nil: none).
    ///   - directory: where checkpoints and the log go (nil: nowhere).
    /// - Throws: `MMLError(.config)` for an invalid configuration or a model without a metric.
    public init(model: FewShotModel, configuration: EpisodicTrainingConfiguration,
                train: (loader: EpisodeLoader, sampler: EpisodeSampler),
                validation: (loader: EpisodeLoader, sampler: EpisodeSampler)?, directory: String?) throws {
        try configuration.validate()
        guard model.metric != nil else {
            throw MMLError(.config, "episodic training needs a model with a metric head")
        }
        self.model = model
        self.configuration = configuration
        self.state = EpisodicTrainingState(training: configuration)
        trainLoader = train.loader
        trainSampler = train.sampler
        validationLoader = validation?.loader
        validationSampler = validation?.sampler
        self.directory = directory
        optimizer = try configuration.makeOptimizer()
    }

    /// Continues from a training checkpoint's state and optimiser moments (the model's weights must already be
    /// loaded from the same checkpoint).
    /// - Throws: `MMLError` when the checkpoint's training configuration differs from this trainer's, or the
    ///   state cannot be read.
    public func restore(state json: String, optimizerTensors: [(name: String, tensor: Tensor)]) throws {
        let s: EpisodicTrainingState
        do { s = try JSONDecoder().decode(EpisodicTrainingState.self, from: Data(json.utf8)) } catch {
            throw MMLError(.corruptFile, "the checkpoint's training state cannot be read (\(error))")
        }
        guard s.training == configuration else {
            let diff = s.training.differences(from: configuration)
                .map { "`\($0.field)` \($0.this) (checkpoint) vs \($0.other) (now)" }.joined(separator: "; ")
            throw MMLError(.config, "`resume`: the checkpoint was trained with different settings: \(diff); resume "
                           + "with the same options or start a new `out` directory")
        }
        state = s
        let prefix = "optimizer."
        try optimizer.importState(optimizerTensors.filter { $0.name.hasPrefix(prefix) }
            .map { (name: String($0.name.dropFirst(prefix.count)), tensor: $0.tensor) })
    }

    private func path(_ name: String) -> String? {
        directory.map { URL(fileURLWithPath: $0).appendingPathComponent(name).path }
    }

    /// Writes `last.safetensors` with the optimiser moments and the state.
    public func writeCheckpoint() throws {
        guard let p = path("last.safetensors") else { return }
        let opt = optimizer.exportState().map { (name: "optimizer." + $0.name, tensor: $0.tensor) }
        try Checkpoint.save(model, extra: opt, state: state.jsonString(), to: p)
        onEvent?(.checkpoint(path: p, episode: state.episodesDone))
    }

    private func appendLog<Record: Encodable>(_ record: Record) throws {
        guard let p = path("log.jsonl") else { return }
        try JSONLLog(path: p, fresh: false).append(encoded: record)
    }

    /// Drops log lines written after the checkpoint being resumed (they will be written again).
    public func truncateLog() {
        guard let p = path("log.jsonl"), FileManager.default.fileExists(atPath: p) else { return }
        let done = state.episodesDone
        try? JSONLLog(path: p, fresh: false).retain { ($0["episode"] as? Int).map { $0 <= done } ?? false }
    }

    /// One training episode: forward, cross-entropy on the fused logits, backward (gradients scaled by
    /// 1 / episodesPerStep and accumulated). Returns the loss and query accuracy.
    func trainEpisode(_ index: Int) throws -> (loss: Double, accuracy: Double) {
        let c = configuration
        let episode = trainSampler.episode(index)
        let batch = try trainLoader.batch(for: episode, augmentationSeed: c.seed &+ 0xA0C0_0000)
        var maskSeed = SeededRNG(seed: c.seed, path: [0xD80B, UInt64(index)])
        model.backbone.reseed(maskSeed.next())
        let (out, cache) = try model.forward(support: batch.support, labels: batch.supportLabels, query: batch.query,
                                             way: episode.way, training: true)
        let ce = try SoftmaxCrossEntropy.forward(logits: out.logits, labels: batch.queryLabels)
        let dLogits = SoftmaxCrossEntropy.backward(ce, scale: 1 / Float(c.episodesPerStep))
        try model.backward(dLogits, cache: cache!)
        return (ce.loss, accuracy(of: out.logits, labels: batch.queryLabels))
    }

    /// Validation on the validation split (inference mode). Nil when there is no validation.
    public func validate() throws -> EpisodeEvaluation? {
        guard let loader = validationLoader, let sampler = validationSampler, configuration.validationEpisodes > 0 else {
            return nil
        }
        return try evaluateModel(model, loader: loader, sampler: sampler, episodes: configuration.validationEpisodes)
    }

    /// Trains until `stopAfter` episodes in total (default: the whole run), then writes `last.safetensors`.
    /// Stops only at optimiser-step boundaries so the checkpoint holds no half-accumulated gradient.
    public func run(stopAfter: Int? = nil) throws {
        let c = configuration
        let end = min(stopAfter.map { (($0 + c.episodesPerStep - 1) / c.episodesPerStep) * c.episodesPerStep }
                          ?? c.totalEpisodes, c.totalEpisodes)
        if let d = directory { try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        var lastCheckpoint = state.episodesDone
        var clock = DispatchTime.now().uptimeNanoseconds
        model.zeroGradients()
        onEvent?(.begin(episode: state.episodesDone, elapsed: state.elapsedSeconds))
        while state.episodesDone < end {
            let e = state.episodesDone
            let epoch = e / c.episodesPerEpoch
            model.backbone.freezesBatchNormStatistics = c.freezeBatchNormAfterEpochs > 0
                && epoch >= c.freezeBatchNormAfterEpochs
            let lr = c.learningRate(afterEpisodes: e)
            let (loss, acc) = try trainEpisode(e)
            state.episodesDone += 1
            state.windowLoss += loss; state.windowAccuracy += acc; state.windowEpisodes += 1
            onEvent?(.episode(index: e, epoch: epoch, loss: loss, accuracy: acc, learningRate: lr,
                               elapsed: state.elapsedSeconds))
            let stepBoundary = state.episodesDone % c.episodesPerStep == 0 || state.episodesDone == c.totalEpisodes
            if stepBoundary {
                optimizer.learningRate = lr
                optimizer.step(model)
                model.zeroGradients()
                state.stepsDone += 1
            }
            let now = DispatchTime.now().uptimeNanoseconds
            state.elapsedSeconds += Double(now - clock) * 1e-9
            clock = now
            if state.episodesDone % c.logEvery == 0 {
                let n = Double(max(state.windowEpisodes, 1))
                let (ml, ma) = (state.windowLoss / n, state.windowAccuracy / n)
                try appendLog(EpisodicTrainLogRecord(episode: state.episodesDone, epoch: epoch + 1, loss: ml,
                                                     accuracy: ma, lr: Double(lr), elapsed: state.elapsedSeconds))
                onEvent?(.log(episode: state.episodesDone, epoch: epoch, loss: ml, accuracy: ma, learningRate: lr,
                              elapsed: state.elapsedSeconds))
                state.windowLoss = 0; state.windowAccuracy = 0; state.windowEpisodes = 0
            }
            let epochEnd = state.episodesDone % c.episodesPerEpoch == 0
            if epochEnd {
                try finishEpoch(epoch + 1)
                clock = DispatchTime.now().uptimeNanoseconds
            }
            if stepBoundary && (epochEnd || state.episodesDone - lastCheckpoint >= c.checkpointEvery) {
                try writeCheckpoint()
                lastCheckpoint = state.episodesDone
            }
        }
        if lastCheckpoint != state.episodesDone { try writeCheckpoint() }
    }

    /// Validation at an epoch's end, best-on-validation selection and its log line.
    private func finishEpoch(_ epoch: Int) throws {
        let eval = try validate()
        let record = EpisodicTrainingState.ValidationRecord(
            epoch: epoch, episode: state.episodesDone, accuracy: eval?.fused.mean ?? .nan, ci95: eval?.fused.ci95 ?? .nan,
            levels: Dictionary(uniqueKeysWithValues: (eval?.levels ?? [:]).map { ($0.key.rawValue, $0.value.mean) }))
        state.validations.append(record)
        // Without validation the latest epoch is the best one.
        let isBest = eval == nil || state.bestValidation.map { record.accuracy > $0 } ?? true
        if isBest {
            state.bestValidation = eval == nil ? nil : record.accuracy
            state.bestEpoch = epoch
            if let p = path("best.safetensors") { try Checkpoint.save(model, state: state.jsonString(), to: p) }
        }
        if eval != nil {
            try appendLog(EpisodicValidationLogRecord(episode: state.episodesDone, epoch: epoch,
                                                      accuracy: record.accuracy, ci95: record.ci95, best: isBest,
                                                      levels: record.levels))
        }
        onEvent?(.validation(record, isBest: isBest))
    }
}

/// Evaluates a `FewShotModel` with its metric on episodes `0..<episodes` of `sampler` (inference mode): fused and
/// per-level accuracy on the very same episodes.
/// - Throws: `MMLError` when the model has no metric, an episode cannot be loaded or the scores are not finite.
public func evaluateModel(_ model: FewShotModel, loader: EpisodeLoader, sampler: EpisodeSampler, episodes: Int,
                          progress: ((Int) -> Void)? = nil) throws -> EpisodeEvaluation {
    guard episodes >= 1 else { throw MMLError(.invalidArgument, "evaluate at least 1 episode, got \(episodes)") }
    return try evaluateModel(model, loader: loader, episodes: sampler.episodes(episodes), progress: progress)
}

/// Evaluates a `FewShotModel` on the given episodes (e.g. read from an episode list file).
public func evaluateModel(_ model: FewShotModel, loader: EpisodeLoader, episodes: [Episode],
                          progress: ((Int) -> Void)? = nil) throws -> EpisodeEvaluation {
    try evaluateEpisodeList(episodes, loader: loader, progress: progress) { b, way in
        try model.forward(support: b.support, labels: b.supportLabels, query: b.query, way: way, training: false).output
    }
}
