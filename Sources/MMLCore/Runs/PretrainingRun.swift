import Foundation

/// Supervised pre-training (METHOD.md section 3; Liu et al. 2020): a backbone trained as a classifier over all base
/// classes with a (negative-)margin head, validated each epoch by nearest-prototype few-shot episodes.
public struct PretrainingRunConfiguration: Codable, Sendable, Equatable {
    /// The training data (split nil: `train`).
    public var dataset: DatasetSource
    public var image: ImageSettings
    /// The backbone (defaults: `BackboneSettings.Defaults.supervised(seed:)`).
    public var backbone: BackboneSettings
    /// Classifier head and loss.
    public var loss: ClassifierHeadKind
    /// Margin m of neg-cosine / neg-softmax (negative raises the target logit).
    public var margin: Float
    /// Scale s (nil: 30 for cosine heads, 5 for neg-softmax).
    public var scale: Float?
    public var epochs: Int
    /// Images per mini-batch.
    public var batchSize: Int
    /// Stop each epoch after this many batches (nil: all).
    public var maxBatches: Int?
    /// Base learning rate (linear warm-up, then cosine annealing to 0 per iteration).
    public var learningRate: Float
    /// Epochs of linear warm-up.
    public var warmupEpochs: Int
    /// sgd (momentum 0.9) or adam.
    public var optimizer: OptimizerKind
    public var weightDecay: Float
    /// The validation split (nil: no validation; the last epoch is then evaluated).
    public var validationSplit: String?
    /// Validation episodes per epoch (5-way 1-shot, 15 queries, nearest prototype).
    public var validationEpisodes: Int
    /// Episodes of the final 5-way 1- and 5-shot evaluation of the chosen backbone (0: none).
    public var testEpisodes: Int
    /// Split of the final evaluation.
    public var testSplit: String
    /// Protocols of the final evaluation.
    public var testProtocols: [FrozenFeatureProtocol]
    /// Seed of weights, batch order and validation episodes.
    public var seed: UInt64
    /// Threads for the layer kernels (0: all cores).
    public var threads: Int
    /// A `.batch` event every this many batches (0: only per epoch).
    public var logEvery: Int
    /// Output directory: backbone.safetensors, best.safetensors, last.safetensors (resumable), log.jsonl.
    public var out: String
    /// Continue the run in `out` from its last.safetensors (the other settings must be the same).
    public var resume: Bool
    /// Also write last.safetensors every this many batches (0: only at each epoch's end and when stopped).
    public var checkpointEvery: Int

    public init(dataset: DatasetSource, image: ImageSettings = ImageSettings(), backbone: BackboneSettings = .init(),
                loss: ClassifierHeadKind = .negCosine, margin: Float = 0, scale: Float? = nil, epochs: Int = 10,
                batchSize: Int = 128, maxBatches: Int? = nil, learningRate: Float = 0.1, warmupEpochs: Int = 0,
                optimizer: OptimizerKind = .sgd, weightDecay: Float = 5e-4, validationSplit: String? = "val",
                validationEpisodes: Int = 100, testEpisodes: Int = 0, testSplit: String = "test",
                testProtocols: [FrozenFeatureProtocol] = [.prototype, .cosineClassifier], seed: UInt64 = 0,
                threads: Int = 0, logEvery: Int = 100, out: String, resume: Bool = false, checkpointEvery: Int = 0) {
        self.dataset = dataset; self.image = image; self.backbone = backbone
        self.loss = loss; self.margin = margin; self.scale = scale
        self.epochs = epochs; self.batchSize = batchSize; self.maxBatches = maxBatches
        self.learningRate = learningRate; self.warmupEpochs = warmupEpochs; self.optimizer = optimizer
        self.weightDecay = weightDecay; self.validationSplit = validationSplit
        self.validationEpisodes = validationEpisodes; self.testEpisodes = testEpisodes; self.testSplit = testSplit
        self.testProtocols = testProtocols; self.seed = seed; self.threads = threads; self.logEvery = logEvery
        self.out = out; self.resume = resume; self.checkpointEvery = checkpointEvery
    }

    /// Checks every field. - Throws: `MMLError(.config)` naming the field.
    public func validate() throws {
        try requireAtLeastOne(epochs, "epochs")
        try requireAtLeastOne(batchSize, "batchSize")
        if let maxBatches { try requireAtLeastOne(maxBatches, "maxBatches") }
        guard learningRate.isFinite, learningRate > 0 else {
            throw MMLError(.config, "`learningRate` must be > 0, got \(learningRate)")
        }
        guard weightDecay.isFinite, weightDecay >= 0 else {
            throw MMLError(.config, "`weightDecay` must be a number >= 0, got \(weightDecay)")
        }
        guard warmupEpochs >= 0, warmupEpochs < epochs else {
            throw MMLError(.config, "`warmupEpochs` \(warmupEpochs) must be in 0..<\(epochs) (`epochs`)")
        }
        if !loss.usesMargin && margin != 0 {
            throw MMLError(.config, "`margin` \(margin) has no effect with `loss` \(loss.rawValue); use `loss` "
                           + "neg-cosine or neg-softmax, or drop `margin`")
        }
        if validationSplit != nil { try requireAtLeastOne(validationEpisodes, "validationEpisodes") }
        guard testEpisodes >= 0 else { throw MMLError(.config, "`testEpisodes` must be >= 0, got \(testEpisodes)") }
        try dataset.validate()
        try image.validate()
        try backbone.validate()
        try Limits.check(threads, "threads", in: Limits.threads, "kernel threads (0: all cores)")
        try Limits.check(epochs, "epochs", in: Limits.epochs, "epochs")
        try Limits.check(batchSize, "batchSize", in: Limits.images, "images per batch")
        try Limits.check(maxBatches, "maxBatches", in: Limits.episodesPerEpoch, "batches per epoch")
        try Limits.check(validationEpisodes, "validationEpisodes", in: 0...Limits.episodes.upperBound,
                         "validation episodes")
        try Limits.check(testEpisodes, "testEpisodes", in: 0...Limits.episodes.upperBound, "test episodes")
        try Limits.check(logEvery, "logEvery", in: 0...Limits.interval.upperBound, "batches between progress lines")
        try Limits.check(checkpointEvery, "checkpointEvery", in: 0...Limits.interval.upperBound,
                         "batches between checkpoints (0: at each epoch's end)")
        try Limits.check(margin, "margin", "") { _ in true }
        try Limits.check(scale, "scale", "> 0") { $0 > 0 }
        // Options that cannot apply in this run's mode are refused, never ignored.
        if loss == .softmax, let scale {
            throw MMLError(.invalidArgument, "`scale` \(scale) has no effect with `loss` softmax (a linear layer with "
                           + "bias); use `loss` cosine, neg-cosine or neg-softmax, or drop `scale`")
        }
        let d = PretrainingRunConfiguration(dataset: dataset, out: out)
        if validationSplit == nil && validationEpisodes != d.validationEpisodes && validationEpisodes != 0 {
            throw MMLError(.invalidArgument, "`validationEpisodes` \(validationEpisodes) does not apply without a "
                           + "validation split (`validationSplit` none); give a split or drop `validationEpisodes`")
        }
        if testEpisodes == 0, let field = [("testSplit", testSplit != d.testSplit),
                                           ("testProtocols", testProtocols != d.testProtocols)].first(where: \.1)?.0 {
            throw MMLError(.invalidArgument, "`\(field)` sets the final few-shot evaluation, which runs only with "
                           + "`testEpisodes` > 0; give `testEpisodes` or drop `\(field)`")
        }
        var m = MemoryEstimate()
        let train = try image.configurations(for: dataset).train  // as loaded: the dataset's defaults, any resize
        m.addImages(batchSize, side: train.resize ?? train.size, channels: train.channels,
                    firstWidth: backbone.widths?.first ?? 64, training: true, what: "one batch")
        try m.check(lower: ["batchSize", "image.size"])
    }

    /// Parses a comma-separated protocol list (`prototype,cosine-classifier`).
    /// - Throws: `MMLError(.config)` naming `testProtocols` for an unknown name.
    public static func parseProtocols(_ text: String) throws -> [FrozenFeatureProtocol] {
        try text.split(separator: ",").map { name in
            guard let p = FrozenFeatureProtocol(rawValue: String(name)) else {
                throw MMLError(.config, "`testProtocols`: '\(name)' is unknown; use prototype, cosine-classifier and/or protonet")
            }
            return p
        }
    }
}

/// What a pre-training run did.
public struct PretrainingRunResult: Codable, Sendable {
    /// One epoch: training means and the validation accuracy (nil without validation).
    public struct Epoch: Codable, Sendable {
        public var epoch: Int
        public var loss: Double
        public var accuracy: Double
        public var learningRate: Float
        public var validation: AccuracySummary?
    }
    /// One final evaluation: `protocol` on 5-way `shot`-shot episodes.
    public struct Test: Codable, Sendable {
        public var shot: Int
        public var `protocol`: FrozenFeatureProtocol
        public var summary: AccuracySummary
    }
    public var epochs: [Epoch] = []
    /// The last epoch's checkpoint and the best-on-validation one (nil without validation).
    public var last: String
    public var best: String?
    /// The final evaluation (empty when `testEpisodes` is 0) and the checkpoint it evaluated.
    public var tests: [Test] = []
    public var testedCheckpoint: String?
    /// The resumable checkpoint (weights, head, optimiser state, position): `out/last.safetensors`.
    public var resumable: String?
}

/// Where a pre-training run is, as its last.safetensors records it.
struct PretrainingPosition: Codable, Sendable {
    /// Epochs finished, and batches finished of the next epoch.
    var epoch = 0
    var batch = 0
    /// Optimiser steps taken (the schedule's position).
    var step = 0
    /// The current epoch's running sums.
    var lossSum = 0.0, accuracySum = 0.0
    var seen = 0
    /// The best validation accuracy so far (-1: none yet).
    var best = -1.0
    /// The finished epochs' results.
    var epochs: [PretrainingRunResult.Epoch] = []
}

/// A supervised pre-training run: `PretrainingRun(config).run { event in ... }`.
public final class PretrainingRun: ConfiguredRun<PretrainingRunConfiguration> {
    /// Polled after each optimiser step (batch) and each test episode: once requested, the run writes
    /// last.safetensors (after the current batch) and throws `RunStopped` whose `checkpoint` a run with `resume`
    /// continues from, giving the uninterrupted run's bits.
    public var stop: StopRequest?

    /// Trains, writes the checkpoints and the log, and evaluates. Events: `.started`, `.supervised(.batch)` and
    /// `.supervised(.epoch)` per epoch, `.supervised(.checkpoints)`, then `.supervised(.test)` per evaluation.
    /// - Throws: `MMLError` for unreadable data, a non-finite loss or unwritable files.
    public func run(events: (RunEvent) -> Void = { _ in }) throws -> PretrainingRunResult {
        let c = configuration
        typealias Resume = SupervisedResume<PretrainingRunConfiguration, PretrainingPosition>
        if c.resume { try Resume.requireCheckpoint(c.out) } else {
            try Resume.refuseExistingRun(c.out, checkpoints: ["last.safetensors", "backbone.safetensors",
                                                              "best.safetensors"])
        }
        try OutputCheck.prepare(directory: c.out, what: "checkpoints")
        let setup = try SupervisedTrainingSetup(kind: "pretrained", dataset: c.dataset, backbone: c.backbone,
                                                image: c.image, seed: c.seed, threads: c.threads,
                                                optimizer: c.optimizer, learningRate: c.learningRate,
                                                weightDecay: c.weightDecay)
        let (train, model, loader, opt) = (setup.train, setup.model, setup.loader, setup.optimizer)
        for w in train.warnings where w.hasPrefix(DatasetHygiene.warningPrefix) { events(.warning(w)) }
        let config = model.configuration
        let head = try MarginClassifier(kind: c.loss, inputFeatures: model.backbone.outputChannels,
                                        classes: train.classCount, scale: c.scale, margin: c.margin,
                                        seed: SeededRNG(seed: c.seed, stream: 1).state)
        let sampler = try BatchSampler(itemCounts: train.itemCounts, batchSize: c.batchSize, seed: c.seed)
        let perEpoch = min(sampler.batchesPerEpoch, c.maxBatches ?? Int.max)
        let schedule = warmupCosineSchedule(total: c.epochs * perEpoch, warmup: c.warmupEpochs * perEpoch)
        var validation: (EpisodeLoader, EpisodeSampler)?
        if let split = c.validationSplit {
            let val = try c.dataset.with(split: split).open(events: events)
            validation = (try EpisodeLoader(dataset: val, config: setup.evalImage),
                          try fiveWayEpisodes(val, shot: 1, seed: c.seed))
        }
        // backbone, best and last (with the optimiser's moments, up to 2 per weight).
        try OutputCheck.checkRoom(c.out, bytesNeeded: 5 * setup.checkpointBytes(extra: head.namedParameters()
            .reduce(0) { $0 + $1.parameter.value.count }), what: "checkpoints")
        let last = c.out + "/backbone.safetensors", bestPath = c.out + "/best.safetensors"
        let resumePath = Resume.lastPath(c.out)
        var at = PretrainingPosition()
        var kernelPaths = KernelPaths.fresh
        if c.resume {
            (at, kernelPaths) = try Resume.restore(into: model, extra: [("head", head)], optimizer: opt,
                                                   configuration: c, out: c.out, otherCheckpoints: [last, bestPath],
                                                   events: events)
            events(.note(at.epoch < c.epochs
                ? "resuming \(c.out) at epoch \(at.epoch + 1) of \(c.epochs), batch \(at.batch) of \(perEpoch)"
                : "resuming \(c.out): its \(c.epochs) epochs are trained, the final evaluation runs again"))
        }
        let log = try JSONLLog(path: c.out + "/log.jsonl", fresh: !c.resume)
        // Records after the resumed position (an epoch that finished after last.safetensors was written) go.
        if c.resume { try log.retain { ($0["epoch"] as? Int).map { $0 <= at.epoch } ?? false } }
        let saveResumable = { (position: PretrainingPosition) throws in
            try Resume.save(model, extra: [("head", head)], optimizer: opt,
                            state: .init(configuration: c, position: position, kernelPaths: kernelPaths), out: c.out)
        }
        let size = config.image.size
        events(.started(run: "pretrain", facts: [
            ("data", train.name), ("split", setup.trainSplit), ("classes", "\(train.classCount)"),
            ("images", "\(train.totalItems)"), ("batches", "\(perEpoch)"), ("batchSize", "\(c.batchSize)"),
            ("backbone", config.backbone.rawValue), ("image", "\(size)x\(size)x\(config.inputChannels)"),
            ("loss", c.loss.rawValue), ("scale", "\(head.scale)"), ("margin", "\(head.margin)"),
            ("optimizer", c.optimizer.rawValue), ("learningRate", "\(c.learningRate)"),
        ]))
        var result = PretrainingRunResult(last: last, best: validation == nil ? nil : bestPath)
        result.epochs = at.epochs
        result.resumable = resumePath
        var best = at.best
        var step = at.step
        for epoch in at.epoch..<c.epochs {
            let t0 = Date()
            let resumed = epoch == at.epoch
            var lossSum = resumed ? at.lossSum : 0, accSum = resumed ? at.accuracySum : 0, seen = resumed ? at.seen : 0
            let firstBatch = resumed ? at.batch : 0
            for (b, refs) in sampler.epoch(epoch).prefix(perEpoch).enumerated() where b >= firstBatch {
                opt.learningRate = schedule.learningRate(base: c.learningRate, step: step)
                step += 1
                let x = try loader.tensor(for: refs, augmentationSeed: c.seed, stream: [UInt64(epoch), UInt64(b)])
                let labels = refs.map(\.classIndex)
                model.zeroGradients(); head.zeroGradients()
                let (fmap, cache) = model.backbone.forward(x, training: true)
                let r = try head.trainingStep(GlobalAveragePool.forward(fmap), labels: labels)
                guard r.loss.isFinite else {
                    throw MMLError(.numerical, "pretrain: the loss became \(r.loss) at epoch \(epoch + 1), batch "
                                   + "\(b + 1); lower `learningRate` or `scale`")
                }
                _ = model.backbone.backward(GlobalAveragePool.backward(r.dx, inputShape: fmap.shape), cache: cache,
                                            inputGradient: false)
                opt.step([model, head])
                lossSum += r.loss; accSum += r.accuracy; seen += 1
                let position = PretrainingPosition(epoch: epoch, batch: b + 1, step: step, lossSum: lossSum,
                                                   accuracySum: accSum, seen: seen, best: best, epochs: result.epochs)
                if let stop, stop.isRequested, epoch + 1 < c.epochs || b + 1 < perEpoch {
                    try saveResumable(position)
                    throw RunStopped(done: b + 1, total: perEpoch, phase: "batches of epoch \(epoch + 1) of \(c.epochs)",
                                     detail: "\(resumePath) holds every finished batch", checkpoint: resumePath)
                }
                if c.checkpointEvery > 0 && (b + 1) % c.checkpointEvery == 0 && b + 1 < perEpoch {
                    try saveResumable(position)
                }
                if c.logEvery > 0 && (b + 1) % c.logEvery == 0 {
                    events(.supervised(.batch(epoch: epoch + 1, batch: b + 1, batches: perEpoch,
                                              loss: lossSum / Double(seen), accuracy: accSum / Double(seen),
                                              learningRate: opt.learningRate, seconds: Date().timeIntervalSince(t0))))
                }
            }
            let trainSeconds = Date().timeIntervalSince(t0)
            var record = PretrainingEpochLogRecord(epoch: epoch + 1, loss: lossSum / Double(seen),
                                                   accuracy: accSum / Double(seen), lr: Double(opt.learningRate),
                                                   seconds: trainSeconds)
            let extra = head.namedParameters(prefix: "head").map { (name: $0.name, tensor: $0.parameter.value) }
            let state = JSONLLog.line(["epoch": epoch + 1, "loss": c.loss.rawValue, "margin": Double(head.margin),
                                       "scale": Double(head.scale), "classes": train.classCount])
            var summary: AccuracySummary?
            var isBest = false
            if let (vl, vs) = validation {
                let v = try evaluateFrozenFeatures(model: model, loader: vl, sampler: vs, episodes: c.validationEpisodes,
                                                   protocol: .prototype)
                record.validationAccuracy = v.summary.mean
                record.validationCI95 = v.summary.ci95
                summary = v.summary
                if v.summary.mean > best {
                    best = v.summary.mean
                    try Checkpoint.save(model, extra: extra, state: state, to: bestPath)
                    isBest = true
                }
            }
            try Checkpoint.save(model, extra: extra, state: state, to: last)
            try log.append(encoded: record)
            result.epochs.append(.init(epoch: epoch + 1, loss: lossSum / Double(seen),
                                       accuracy: accSum / Double(seen), learningRate: opt.learningRate,
                                       validation: summary))
            // After the log line: a resumed run keeps the log's records up to its position.
            try saveResumable(PretrainingPosition(epoch: epoch + 1, batch: 0, step: step, best: best,
                                                  epochs: result.epochs))
            events(.supervised(.epoch(epoch: epoch + 1, epochs: c.epochs, loss: lossSum / Double(seen),
                                      accuracy: accSum / Double(seen), seconds: trainSeconds, validation: summary,
                                      isBest: isBest)))
        }
        events(.supervised(.checkpoints(last: last, best: result.best)))
        if c.testEpisodes > 0 {
            try test(result: &result, evalImage: setup.evalImage, log: log, resumePath: resumePath, events: events)
        }
        return result
    }

    /// The final evaluation of the best-on-validation (else the last) backbone.
    /// Polls `stop` after each episode: training is then complete in `resumePath`, and a resumed run evaluates again.
    private func test(result: inout PretrainingRunResult, evalImage: ImageConfig, log: JSONLLog, resumePath: String,
                      events: (RunEvent) -> Void) throws {
        let c = configuration
        let file = result.best ?? result.last
        let chosen = try Checkpoint.load(file, threads: c.threads).model
        let test = try c.dataset.with(split: c.testSplit).open(events: events)
        let testLoader = try EpisodeLoader(dataset: test, config: evalImage)
        var record = PretrainingTestLogRecord(testSplit: c.testSplit, checkpoint: file)
        for shot in [1, 5] {
            let ts = try fiveWayEpisodes(test, shot: shot, seed: c.seed)
            for proto in c.testProtocols {
                let r = try evaluateFrozenFeatures(model: chosen, loader: testLoader, sampler: ts,
                                                   episodes: c.testEpisodes, protocol: proto) { done in
                    guard let stop = self.stop, stop.isRequested, done < c.testEpisodes else { return }
                    throw RunStopped(done: done, total: c.testEpisodes,
                                     phase: "test episodes of 5-way \(shot)-shot \(proto.rawValue)",
                                     detail: "training is finished in \(resumePath); resuming runs the test again",
                                     checkpoint: resumePath)
                }
                events(.supervised(.test(split: c.testSplit, shot: shot, protocol: proto, episodes: c.testEpisodes,
                                         summary: r.summary, seconds: r.seconds)))
                record.scores["\(proto.rawValue)_5way_\(shot)shot"] = r.summary.mean
                record.scores["\(proto.rawValue)_5way_\(shot)shot_ci95"] = r.summary.ci95
                result.tests.append(.init(shot: shot, protocol: proto, summary: r.summary))
            }
        }
        result.testedCheckpoint = file
        try log.append(encoded: record)
    }
}
