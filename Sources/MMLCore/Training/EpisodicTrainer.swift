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
///
/// The gradient of an optimiser step is reduced one canonical way, in one process or many (docs/DISTRIBUTED.md):
/// each episode's gradient is computed into zeroed buffers, and the step's gradient is their sum in episode order
/// (plain float additions, left to right from zero); each episode's running-statistics updates (BatchNorm, fusion
/// normaliser) are recorded and applied in episode order. With a `ProcessGroup` of N processes the episodes of a
/// step are split into N contiguous blocks, every process computes its block, all exchange their per-episode
/// gradients, updates, losses and accuracies, and every process then does exactly what one process would: the
/// weights, optimiser state and running statistics are bit-identical for every N (and every thread count).
/// Only rank 0 writes files.
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
    /// The processes training together (`SingleProcessGroup` unless given); rank 0 alone writes files.
    public let group: any ProcessGroup
    /// What the exchanges between processes cost so far in this process (all zero with one process).
    public private(set) var exchange = ExchangeStatistics()
    /// Polled after each chunk of episodes: once requested (in any process of the group), the run finishes the
    /// current optimiser step, writes `last.safetensors` and returns with `stopped` set.
    public var stopRequest: StopRequest?
    /// Receives the wall time of every phase of training (`mml train --profile`); nil: nothing is measured.
    public var profile: PhaseProfile?
    /// True when the last `run` ended early on `stopRequest` (the run is resumable from `last.safetensors`).
    public private(set) var stopped = false
    let optimizer: any Optimizer
    /// The trainable parameters and the buffers (running statistics), in visiting order.
    private let trainables: [Parameter]
    private let buffers: [Parameter]

    /// - Parameters:
    ///   - train: loader and sampler of training episodes (the sampler's way/shot/query and seed are used).
    ///   - validation: loader and sampler of validation episodes (nil: none).
    ///   - directory: where checkpoints and the log go (nil: nowhere); only rank 0 of `group` writes there.
    ///   - group: the processes training together (default: this one alone); see `EpisodicTrainer`.
    /// - Throws: `MMLError(.config)` for an invalid configuration, a model without a metric, or a process count
    ///   that does not divide `episodesPerStep`.
    public init(model: FewShotModel, configuration: EpisodicTrainingConfiguration,
                train: (loader: EpisodeLoader, sampler: EpisodeSampler),
                validation: (loader: EpisodeLoader, sampler: EpisodeSampler)?, directory: String?,
                group: any ProcessGroup = SingleProcessGroup()) throws {
        try configuration.validate()
        try Self.checkSplit(configuration, processes: group.size)
        guard model.metric != nil else {
            throw MMLError(.config, "episodic training needs a model with a metric head")
        }
        self.group = group
        let named = model.namedParameters().map(\.parameter)
        trainables = named.filter(\.isTrainable)
        buffers = named.filter { !$0.isTrainable }
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
    /// loaded from the same checkpoint). The state's `kernelPaths` gains this process's path when it differs.
    /// - Returns: a warning when this process takes another kernel path than the run's last one (`KernelPaths`).
    /// - Throws: `MMLError` when the checkpoint's training configuration differs from this trainer's, or the
    ///   state cannot be read.
    @discardableResult
    public func restore(state json: String, optimizerTensors: [(name: String, tensor: Tensor)]) throws -> String? {
        let s = try EpisodicTrainingState(metadata: json)
        guard s.training == configuration else {
            let diff = s.training.differences(from: configuration)
                .map { "`\($0.field)` \($0.this) (checkpoint) vs \($0.other) (now)" }.joined(separator: "; ")
            throw MMLError(.config, "`resume`: the checkpoint was trained with different settings: \(diff); resume "
                           + "with the same options or start a new `out` directory")
        }
        state = s
        let paths = KernelPaths.resumed(s.kernelPaths)
        state.kernelPaths = paths.record
        let prefix = "optimizer."
        try optimizer.importState(optimizerTensors.filter { $0.name.hasPrefix(prefix) }
            .map { (name: String($0.name.dropFirst(prefix.count)), tensor: $0.tensor) })
        return paths.warning
    }

    /// Adds the kernel paths of the group's other ranks to the state's record (`KernelPaths`): the ranks' gradients
    /// are summed, so a run whose ranks take different paths trained on all of them. Collective (every rank calls it,
    /// after `restore` when resuming, before `run`); with one process it changes nothing and exchanges nothing.
    /// - Parameter current: this rank's path (tests pass one per rank).
    /// - Returns: a warning naming each rank's path when they differ.
    /// - Throws: `MMLError` when the exchange fails.
    @discardableResult
    public func gatherKernelPaths(current: String = BLASRuntime.kernelISA) throws -> String? {
        guard group.size > 1 else { return nil }
        let paths = try group.allGather(Array(current.utf8)).map { String(decoding: $0, as: UTF8.self) }
        state.kernelPaths = KernelPaths.union([state.kernelPaths, paths])
        guard Set(paths).count > 1 else { return nil }
        let ranks = paths.enumerated().map { "rank \($0.offset) \($0.element)" }.joined(separator: ", ")
        return "the ranks take different kernel paths (\(ranks)): \(KernelPaths.roundsDifferently) (the checkpoint "
            + "records every path); set the same MML_KERNELS_ISA on every rank (`mpirun -x MML_KERNELS_ISA=...`, "
            + "docs/DISTRIBUTED.md)"
    }

    /// Checks that `processes` divides the configuration's `episodesPerStep` (each process computes the same
    /// number of episodes per step). - Throws: `MMLError(.config)` naming both numbers.
    public static func checkSplit(_ configuration: EpisodicTrainingConfiguration, processes: Int) throws {
        let e = configuration.episodesPerStep
        guard processes >= 1, e % processes != 0 else { return }
        let divisors = (1...e).filter { e % $0 == 0 }.map(String.init).joined(separator: ", ")
        throw MMLError(.config, "`episodesPerStep` \(e) cannot be split evenly over \(processes) processes: run "
                       + "with a process count that divides it (\(divisors)) or set `episodesPerStep` to a multiple "
                       + "of \(processes)")
    }

    /// A file in `directory`, on rank 0 only (nil: nothing to write).
    private func path(_ name: String) -> String? {
        guard group.rank == 0 else { return nil }
        return directory.map { URL(fileURLWithPath: $0).appendingPathComponent(name).path }
    }

    /// The optimiser's state (moments and step counts) as named tensors, as `last.safetensors` holds them.
    public var optimizerState: [(name: String, tensor: Tensor)] { optimizer.exportState() }

    /// Writes `last.safetensors` with the optimiser moments and the state.
    public func writeCheckpoint() throws {
        guard let p = path("last.safetensors") else { return }
        let opt = optimizer.exportState().map { (name: "optimizer." + $0.name, tensor: $0.tensor) }
        try Checkpoint.save(model, extra: opt, state: try state.jsonString(), to: p)
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
    /// 1 / episodesPerStep and added into the parameters' gradients). Returns the loss and query accuracy.
    func trainEpisode(_ index: Int) throws -> (loss: Double, accuracy: Double) {
        let c = configuration
        let (episode, batch) = try measured(profile, .data) {
            let episode = trainSampler.episode(index)
            return (episode, try trainLoader.batch(for: episode, augmentationSeed: c.seed &+ 0xA0C0_0000))
        }
        var maskSeed = SeededRNG(seed: c.seed, path: [0xD80B, UInt64(index)])
        model.backbone.reseed(maskSeed.next())
        let (out, cache) = try model.forward(support: batch.support, labels: batch.supportLabels, query: batch.query,
                                             way: episode.way, training: true, profile: profile)
        let (ce, dLogits) = try measured(profile, .loss) {
            let ce = try SoftmaxCrossEntropy.forward(logits: out.logits, labels: batch.queryLabels)
            return (ce, SoftmaxCrossEntropy.backward(ce, scale: 1 / Float(c.episodesPerStep)))
        }
        try model.backward(dLogits, cache: cache!, profile: profile)
        profile?.episodeDone()
        return (ce.loss, accuracy(of: out.logits, labels: batch.queryLabels))
    }

    /// Whether there is validation: a validation split and `validationEpisodes` > 0.
    private var validates: Bool {
        validationLoader != nil && validationSampler != nil && configuration.validationEpisodes > 0
    }

    /// Validation on the validation split (inference mode). Nil when there is no validation.
    public func validate() throws -> EpisodeEvaluation? {
        guard validates, let loader = validationLoader, let sampler = validationSampler else { return nil }
        let n = configuration.validationEpisodes
        if group.size == 1 { return try evaluateModel(model, loader: loader, sampler: sampler, episodes: n) }
        // Each rank evaluates a contiguous block of the episodes; the per-episode accuracies are gathered in
        // episode order and summarised exactly as one process would.
        let start = DispatchTime.now().uptimeNanoseconds
        let mine = group.share(of: 0..<n)
        var w = ExchangeWriter()
        if !mine.isEmpty {
            let local = try evaluateModel(model, loader: loader, episodes: Array(sampler.episodes(n)[mine]))
            w.append(local.fusedPerEpisode)
            let levels = MetricLevel.allCases.filter { local.levelsPerEpisode[$0] != nil }
            w.append(levels.count)
            for level in levels {
                w.append(MetricLevel.allCases.firstIndex(of: level)!)
                w.append(local.levelsPerEpisode[level]!)
            }
        }
        var fused: [Double] = [], perLevel: [MetricLevel: [Double]] = [:]
        for (r, bytes) in try group.allGather(w.bytes).enumerated() where !group.share(of: 0..<n, rank: r).isEmpty {
            var reader = ExchangeReader(bytes)
            fused += try reader.doubles()
            for _ in 0..<(try reader.int()) {
                let i = try reader.int()
                guard MetricLevel.allCases.indices.contains(i) else {
                    throw MMLError(.corruptFile, "rank \(r) sent validation scores of an unknown level \(i)")
                }
                perLevel[MetricLevel.allCases[i], default: []] += try reader.doubles()
            }
        }
        guard fused.count == n else {
            throw MMLError(.corruptFile, "the ranks returned \(fused.count) validation episodes, expected \(n)")
        }
        return EpisodeEvaluation(fused: AccuracySummary(fused), levels: perLevel.mapValues { AccuracySummary($0) },
                                 fusedPerEpisode: fused, levelsPerEpisode: perLevel,
                                 seconds: Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
    }

    /// What one training episode contributes to its step besides its gradient (which stays in the parameters'
    /// gradient buffers, computed from zero): its loss and accuracy and its running-statistics updates (per
    /// buffer, in the order they were made).
    struct EpisodeOutcome {
        var loss: Double
        var accuracy: Double
        var updates: [[(momentum: Float, target: [Float])]]
    }

    /// Runs one training episode with zeroed gradients: afterwards the parameters' gradients are the episode's own.
    private func computeEpisode(_ index: Int) throws -> EpisodeOutcome {
        measured(profile, .gradientSum) { model.zeroGradients() }
        let (loss, acc) = try trainEpisode(index)
        let updates = buffers.map { b -> [(momentum: Float, target: [Float])] in
            defer { b.deferredUpdates = [] }
            return b.deferredUpdates ?? []
        }
        return EpisodeOutcome(loss: loss, accuracy: acc, updates: updates)
    }

    /// The canonical reduction: `sum[offset + i] += gradient[i]`, element by element (the same code for every
    /// process count; the step's sum runs over the episodes in episode order).
    private static func accumulate(_ sum: inout [Float], at offset: Int, _ gradient: [Float]) {
        precondition(offset + gradient.count <= sum.count, "[trainer] gradient beyond the step's \(sum.count) values")
        for i in 0..<gradient.count { sum[offset + i] += gradient[i] }
    }

    /// Adds the episode gradient now in the parameters (all trainable tensors in visiting order) to `sum`.
    private func accumulateParameterGradients(into sum: inout [Float]) {
        var offset = 0
        for p in trainables {
            Self.accumulate(&sum, at: offset, p.grad.data)
            offset += p.grad.count
        }
    }

    /// Computes the episodes of `chunk` (this process's block of them), exchanges them with the other processes
    /// and adds every episode's gradient to `sum` in episode order. Returns the outcomes in episode order and
    /// whether a stop was requested in any process (carried in the exchange, so that every process stops at the
    /// same step and none waits for the others forever).
    private func computeChunk(_ chunk: Range<Int>, into sum: inout [Float]) throws
        -> (outcomes: [EpisodeOutcome], stop: Bool) {
        var outcomes: [EpisodeOutcome] = []
        if group.size == 1 {
            for e in chunk {
                outcomes.append(try computeEpisode(e))
                measured(profile, .gradientSum) { accumulateParameterGradients(into: &sum) }
            }
            return (outcomes, stopRequest?.isRequested ?? false)
        }
        let mine = group.share(of: chunk)
        let computeStart = DispatchTime.now().uptimeNanoseconds
        var w = ExchangeWriter()
        w.append(mine.count)
        for e in mine {
            let o = try computeEpisode(e)
            w.append(o.loss); w.append(o.accuracy)
            w.append(trainables.map(\.grad.data))
            for u in o.updates {
                w.append(u.count)
                for x in u { w.append([x.momentum]); w.append(x.target) }
            }
        }
        w.append(stopRequest?.isRequested == true ? 1 : 0)
        var stop = false
        let exchangeStart = DispatchTime.now().uptimeNanoseconds
        let all = try measured(profile, .exchange) { try group.allGather(w.bytes) }
        let exchangeEnd = DispatchTime.now().uptimeNanoseconds
        exchange.computeSeconds += Double(exchangeStart - computeStart) * 1e-9
        exchange.seconds += Double(exchangeEnd - exchangeStart) * 1e-9
        exchange.exchanges += 1
        exchange.bytesSent += w.bytes.count
        exchange.bytesGathered += all.reduce(0) { $0 + $1.count }
        for (r, bytes) in all.enumerated() {
            var reader = ExchangeReader(bytes)
            let expected = group.share(of: chunk, rank: r).count
            guard try reader.int() == expected else {
                throw MMLError(.corruptFile, "rank \(r) sent a different number of episodes than its \(expected)")
            }
            for _ in 0..<expected {
                let loss = try reader.double(), acc = try reader.double()
                let g = try reader.floats()
                guard g.count == sum.count else {
                    throw MMLError(.corruptFile, "rank \(r) sent a gradient of \(g.count) values, expected \(sum.count)")
                }
                Self.accumulate(&sum, at: 0, g)
                var updates: [[(momentum: Float, target: [Float])]] = []
                for _ in buffers {
                    var u: [(momentum: Float, target: [Float])] = []
                    for _ in 0..<(try reader.int()) {
                        let m = try reader.floats()
                        guard m.count == 1 else { throw MMLError(.corruptFile, "rank \(r) sent a malformed update") }
                        u.append((m[0], try reader.floats()))
                    }
                    updates.append(u)
                }
                outcomes.append(EpisodeOutcome(loss: loss, accuracy: acc, updates: updates))
            }
            if try reader.int() != 0 { stop = true }
            guard reader.atEnd else { throw MMLError(.corruptFile, "rank \(r) sent \(bytes.count) bytes, more than read") }
        }
        return (outcomes, stop)
    }

    /// Every buffer records its running-statistics updates (true) or applies them at once (false).
    private func deferBufferUpdates(_ on: Bool) {
        for b in buffers { b.deferredUpdates = on ? [] : nil }
    }

    /// Trains until `stopAfter` episodes in total (default: the whole run), then writes `last.safetensors`.
    /// Stops only at optimiser-step boundaries so the checkpoint holds no half-accumulated gradient.
    ///
    /// Episodes are computed in chunks: the episodes of one step that lie in one epoch (a whole step unless the
    /// epoch ends inside it). Each chunk is computed (split over the processes), exchanged, and then its episodes are
    /// taken in order: running-statistics updates applied, progress recorded, at a step's last episode the summed
    /// gradient applied by the optimiser, at an epoch's last the validation.
    ///
    /// A `stopRequest` seen after a chunk ends the run at the next step boundary (the current step is finished),
    /// with `last.safetensors` written and `stopped` set.
    public func run(stopAfter: Int? = nil) throws {
        let c = configuration
        let end = min(stopAfter.map { (($0 + c.episodesPerStep - 1) / c.episodesPerStep) * c.episodesPerStep }
                          ?? c.totalEpisodes, c.totalEpisodes)
        if group.rank == 0, let d = directory {
            try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        var lastCheckpoint = state.episodesDone
        var stopping = false
        stopped = false
        var stepGradient = [Float](repeating: 0, count: trainables.reduce(0) { $0 + $1.grad.count })
        deferBufferUpdates(true)
        defer { deferBufferUpdates(false) }
        onEvent?(.begin(episode: state.episodesDone, elapsed: state.elapsedSeconds))
        while state.episodesDone < end {
            let first = state.episodesDone
            let stepEnd = min((first / c.episodesPerStep + 1) * c.episodesPerStep, c.totalEpisodes)
            let chunk = first..<min(stepEnd, (first / c.episodesPerEpoch + 1) * c.episodesPerEpoch)
            model.backbone.freezesBatchNormStatistics = c.freezeBatchNormAfterEpochs > 0
                && first / c.episodesPerEpoch >= c.freezeBatchNormAfterEpochs
            let clock = DispatchTime.now().uptimeNanoseconds
            let (outcomes, stopAsked) = try computeChunk(chunk, into: &stepGradient)
            stopping = stopping || stopAsked
            let perEpisode = Double(DispatchTime.now().uptimeNanoseconds - clock) * 1e-9 / Double(chunk.count)
            exchange.episodes += chunk.count
            for (e, o) in zip(chunk, outcomes) {
                measured(profile, .optimizer) {
                    for (b, updates) in zip(buffers, o.updates) {
                        for u in updates { b.applyMovingAverage(toward: u.target, momentum: u.momentum) }
                    }
                }
                let epoch = e / c.episodesPerEpoch
                let lr = c.learningRate(afterEpisodes: e)
                state.episodesDone += 1
                state.windowLoss += o.loss; state.windowAccuracy += o.accuracy; state.windowEpisodes += 1
                onEvent?(.episode(index: e, epoch: epoch, loss: o.loss, accuracy: o.accuracy, learningRate: lr,
                                   elapsed: state.elapsedSeconds))
                state.elapsedSeconds += perEpisode
                let stepBoundary = state.episodesDone % c.episodesPerStep == 0 || state.episodesDone == c.totalEpisodes
                if stepBoundary { measured(profile, .optimizer) {
                    var offset = 0
                    for p in trainables {
                        let n = p.grad.count
                        p.grad.data.replaceSubrange(0..<n, with: stepGradient[offset..<(offset + n)])
                        offset += n
                    }
                    optimizer.learningRate = lr
                    optimizer.step(model)
                    model.zeroGradients()
                    for i in stepGradient.indices { stepGradient[i] = 0 }
                    state.stepsDone += 1
                    exchange.steps += 1
                } }
                if state.episodesDone % c.logEvery == 0 { try measured(profile, .checkpoint) {
                    let n = Double(max(state.windowEpisodes, 1))
                    let (ml, ma) = (state.windowLoss / n, state.windowAccuracy / n)
                    try appendLog(EpisodicTrainLogRecord(episode: state.episodesDone, epoch: epoch + 1, loss: ml,
                                                         accuracy: ma, lr: Double(lr), elapsed: state.elapsedSeconds))
                    onEvent?(.log(episode: state.episodesDone, epoch: epoch, loss: ml, accuracy: ma, learningRate: lr,
                                  elapsed: state.elapsedSeconds))
                    state.windowLoss = 0; state.windowAccuracy = 0; state.windowEpisodes = 0
                } }
                let epochEnd = state.episodesDone % c.episodesPerEpoch == 0
                if epochEnd { try finishEpoch(epoch + 1) }
                if stepBoundary && (epochEnd || state.episodesDone - lastCheckpoint >= c.checkpointEvery) {
                    try measured(profile, .checkpoint) { try writeCheckpoint() }
                    lastCheckpoint = state.episodesDone
                }
            }
            // One process polls again after the chunk's events (a request made meanwhile ends this very step); with
            // several the flag of the next exchange decides, the same on every rank.
            if group.size == 1, stopRequest?.isRequested == true { stopping = true }
            if stopping && state.episodesDone < end && state.episodesDone % c.episodesPerStep == 0 {
                stopped = true
                break
            }
        }
        if lastCheckpoint != state.episodesDone { try measured(profile, .checkpoint) { try writeCheckpoint() } }
    }

    /// Validation at an epoch's end, best-on-validation selection and its log line.
    private func finishEpoch(_ epoch: Int) throws {
        // Without validation the phase is not entered, so the profile has no validation row.
        let eval = try validates ? measured(profile, .validation) { try validate() } : nil
        let record = EpisodicTrainingState.ValidationRecord(
            epoch: epoch, episode: state.episodesDone, accuracy: eval?.fused.mean ?? .nan, ci95: eval?.fused.ci95 ?? .nan,
            levels: Dictionary(uniqueKeysWithValues: (eval?.levels ?? [:]).map { ($0.key.rawValue, $0.value.mean) }))
        // Without validation no record is kept (its accuracy is NaN, which JSON cannot hold), and the latest epoch
        // is the best one.
        if eval != nil { state.validations.append(record) }
        let isBest = eval == nil || state.bestValidation.map { record.accuracy > $0 } ?? true
        if isBest {
            state.bestValidation = eval == nil ? nil : record.accuracy
            state.bestEpoch = epoch
            if let p = path("best.safetensors") {
                try measured(profile, .checkpoint) { try Checkpoint.save(model, state: try state.jsonString(), to: p) }
            }
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
/// - Parameters:
///   - precision: the pixel and part levels' similarity arithmetic (`SimilarityPrecision`).
///   - profile: receives the time of building each episode's tensors (`data`), of the backbone and of each level
///     (`mml-bench episode --breakdown`); it changes no result.
/// - Throws: `MMLError` when the model has no metric, an episode cannot be loaded or the scores are not finite.
public func evaluateModel(_ model: FewShotModel, loader: EpisodeLoader, sampler: EpisodeSampler, episodes: Int,
                          precision: SimilarityPrecision = .fp32, profile: PhaseProfile? = nil,
                          progress: ((Int) throws -> Void)? = nil) throws -> EpisodeEvaluation {
    guard episodes >= 1 else { throw MMLError(.invalidArgument, "evaluate at least 1 episode, got \(episodes)") }
    return try evaluateModel(model, loader: loader, episodes: sampler.episodes(episodes), precision: precision,
                             profile: profile, progress: progress)
}

/// Evaluates a `FewShotModel` on the given episodes (e.g. read from an episode list file).
public func evaluateModel(_ model: FewShotModel, loader: EpisodeLoader, episodes: [Episode],
                          precision: SimilarityPrecision = .fp32, profile: PhaseProfile? = nil,
                          progress: ((Int) throws -> Void)? = nil) throws -> EpisodeEvaluation {
    try evaluateEpisodeList(episodes, loader: loader, profile: profile, progress: progress) { b, way in
        try model.forward(support: b.support, labels: b.supportLabels, query: b.query, way: way, training: false,
                          profile: profile, precision: precision).output
    }
}

/// What the exchanges of a distributed training run cost in one process (all zero with one process).
public struct ExchangeStatistics: Codable, Sendable, Equatable {
    /// Training episodes taken (by all processes together) and optimiser steps.
    public var episodes = 0
    public var steps = 0
    /// Gradient exchanges (one per step, two when an epoch ends inside a step).
    public var exchanges = 0
    /// Bytes this process contributed, and bytes of every process's contribution together (what each received
    /// plus its own), summed over the exchanges.
    public var bytesSent = 0
    public var bytesGathered = 0
    /// Seconds spent computing this process's episodes, and inside the exchanges (waiting for the slowest
    /// process included).
    public var computeSeconds = 0.0
    public var seconds = 0.0

    public init() {}
}
