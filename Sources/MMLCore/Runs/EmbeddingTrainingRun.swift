import Foundation

/// Metric learning (METHOD.md section 4; Levi et al. 2021): an embedding trained with a triplet or margin loss on
/// P x K batches, then evaluated by `RetrievalEvaluationRun` on held-out classes. With `evalOnly` the run only
/// evaluates a saved embedding.
public struct EmbeddingTrainingRunConfiguration: Codable, Sendable, Equatable {
    /// The training data (split nil: `train`).
    public var dataset: DatasetSource
    public var image: ImageSettings
    /// The backbone (defaults: `BackboneSettings.Defaults.supervised(seed:)`).
    public var backbone: BackboneSettings
    /// Loss, positive and negative selection and margin alpha.
    public var loss: EmbeddingLossConfiguration
    /// Initial beta of the margin loss.
    public var beta0: Float
    /// Embedding size: a linear layer from the pooled features to this size (0: no layer).
    public var dim: Int
    /// P: classes per batch.
    public var classesPerBatch: Int
    /// K: images per class in a batch.
    public var imagesPerClass: Int
    /// Training iterations (batches).
    public var iterations: Int
    /// Base learning rate (cosine schedule to 0).
    public var learningRate: Float
    public var optimizer: OptimizerKind
    public var weightDecay: Float
    /// Held-out split of the evaluation.
    public var evalSplit: String
    /// Few-shot episodes of the evaluation (0 or less: retrieval only).
    public var evalEpisodes: Int
    /// Evaluate this embedding checkpoint instead of training.
    public var evalOnly: String?
    /// Seed of weights, batches, tuple sampling and evaluation episodes.
    public var seed: UInt64
    public var threads: Int
    /// An `.iteration` event (and log record) every this many iterations, and at the last.
    public var logEvery: Int
    /// Output directory (required unless `evalOnly`): embedding.safetensors, last.safetensors (resumable), log.jsonl.
    public var out: String?
    /// Continue the run in `out` from its last.safetensors (the other settings must be the same).
    public var resume: Bool
    /// Write last.safetensors every this many iterations (and at the end and when stopped).
    public var checkpointEvery: Int

    public init(dataset: DatasetSource, image: ImageSettings = ImageSettings(), backbone: BackboneSettings = .init(),
                loss: EmbeddingLossConfiguration = .init(loss: .triplet, positives: .easy, negatives: .semiHard,
                                                         margin: 0.2),
                beta0: Float = 1.2, dim: Int = 0, classesPerBatch: Int = 16, imagesPerClass: Int = 4,
                iterations: Int = 1000, learningRate: Float = 1e-3, optimizer: OptimizerKind = .adam,
                weightDecay: Float = 0, evalSplit: String = "test", evalEpisodes: Int = 600, evalOnly: String? = nil,
                seed: UInt64 = 0, threads: Int = 0, logEvery: Int = 100, out: String?, resume: Bool = false,
                checkpointEvery: Int = 100) {
        self.dataset = dataset; self.image = image; self.backbone = backbone; self.loss = loss
        self.beta0 = beta0; self.dim = dim; self.classesPerBatch = classesPerBatch
        self.imagesPerClass = imagesPerClass; self.iterations = iterations; self.learningRate = learningRate
        self.optimizer = optimizer; self.weightDecay = weightDecay; self.evalSplit = evalSplit
        self.evalEpisodes = evalEpisodes; self.evalOnly = evalOnly; self.seed = seed; self.threads = threads
        self.logEvery = logEvery; self.out = out; self.resume = resume; self.checkpointEvery = checkpointEvery
    }

    /// Checks the fields training needs (nothing for `evalOnly`). - Throws: `MMLError(.config)` naming the field.
    public func validate() throws {
        try dataset.validate()
        try Limits.check(threads, "threads", in: Limits.threads, "kernel threads (0: all cores)")
        try Limits.check(evalEpisodes, "evalEpisodes", in: 0...Limits.episodes.upperBound, "few-shot episodes")
        if let evalOnly {
            // Everything that sets how to train cannot apply to evaluating a saved embedding.
            let d = EmbeddingTrainingRunConfiguration(dataset: dataset, out: out)
            let training: [(String, Bool)] = [
                ("image.size", image.size != nil), ("image.channels", image.channels != nil),
                ("image.augmentation", image.augmentation != d.image.augmentation),
                ("image.preprocessing", image.preprocessing != nil), ("backbone.kind", backbone.kind != nil),
                ("backbone.widths", backbone.widths != nil), ("backbone.initialization", backbone.initialization != nil),
                ("backbone.seed", backbone.seed != nil), ("loss", loss.loss != d.loss.loss),
                ("positives", loss.positives != d.loss.positives), ("negatives", loss.negatives != d.loss.negatives),
                ("margin", loss.margin != d.loss.margin), ("beta0", beta0 != d.beta0), ("dim", dim != d.dim),
                ("classesPerBatch", classesPerBatch != d.classesPerBatch),
                ("imagesPerClass", imagesPerClass != d.imagesPerClass), ("iterations", iterations != d.iterations),
                ("learningRate", learningRate != d.learningRate), ("optimizer", optimizer != d.optimizer),
                ("weightDecay", weightDecay != d.weightDecay), ("logEvery", logEvery != d.logEvery),
                ("out", out != nil), ("resume", resume), ("checkpointEvery", checkpointEvery != d.checkpointEvery),
            ]
            let given = training.filter(\.1).map { "`\($0.0)`" }
            if !given.isEmpty {
                throw MMLError(.invalidArgument, given.joined(separator: ", ") + " cannot apply with `evalOnly` "
                               + "\(evalOnly): a saved embedding is evaluated as it was trained; drop "
                               + (given.count == 1 ? "it" : "them") + " or `evalOnly`")
            }
            return
        }
        guard out != nil else {
            throw MMLError(.config, "`out` DIR is required to train (or give `evalOnly` CKPT)")
        }
        try requireAtLeastOne(iterations, "iterations")
        guard dim >= 0 else { throw MMLError(.config, "`dim` must be >= 0 (0: no linear layer), got \(dim)") }
        guard classesPerBatch >= 2, imagesPerClass >= 2 else {
            throw MMLError(.config, "`classesPerBatch` and `imagesPerClass` must be >= 2 (a batch needs positives "
                           + "and negatives), got P \(classesPerBatch), K \(imagesPerClass)")
        }
        guard learningRate.isFinite, learningRate > 0 else {
            throw MMLError(.config, "`learningRate` must be > 0, got \(learningRate)")
        }
        try image.validate()
        try backbone.validate()
        try Limits.check(iterations, "iterations", in: Limits.episodesPerEpoch, "training iterations")
        try Limits.check(dim, "dim", in: Limits.dimension, "the embedding size (0: no linear layer)")
        try Limits.check(classesPerBatch, "classesPerBatch", in: 2...Limits.way.upperBound, "classes per batch")
        try Limits.check(imagesPerClass, "imagesPerClass", in: 2...Limits.shot.upperBound, "images per class")
        let batch = try Limits.product([("classesPerBatch", classesPerBatch), ("imagesPerClass", imagesPerClass)],
                                       in: Limits.images, "images per batch")
        try Limits.check(weightDecay, "weightDecay", ">= 0") { $0 >= 0 }
        try Limits.check(loss.margin, "margin", ">= 0") { $0 >= 0 }
        try Limits.check(beta0, "beta0", "") { _ in true }
        if loss.loss != .margin && beta0 != EmbeddingTrainingRunConfiguration(dataset: dataset, out: out).beta0 {
            throw MMLError(.invalidArgument, "`beta0` \(beta0) is the initial beta of the margin loss; it has no "
                           + "effect with `loss` \(loss.loss.rawValue): use `loss` margin or drop `beta0`")
        }
        try Limits.check(logEvery, "logEvery", in: Limits.interval, "iterations between progress lines")
        try Limits.check(checkpointEvery, "checkpointEvery", in: Limits.interval, "iterations between checkpoints")
        var m = MemoryEstimate()
        let train = try image.configurations(for: dataset).train  // as loaded: the dataset's defaults, any resize
        m.addImages(batch, side: train.resize ?? train.size, channels: train.channels,
                    firstWidth: backbone.widths?.first ?? 64, training: true, what: "one batch")
        try m.check(lower: ["classesPerBatch", "imagesPerClass", "image.size"])
    }

    /// The evaluation this run ends with.
    public var evaluation: RetrievalEvaluationRunConfiguration {
        RetrievalEvaluationRunConfiguration(dataset: dataset, split: evalSplit, fewShotEpisodes: max(evalEpisodes, 0),
                                            seed: seed, threads: threads)
    }
}

/// What an embedding run did: the checkpoint it wrote (nil for `evalOnly`) and the evaluation.
public struct EmbeddingTrainingRunResult: Codable, Sendable {
    public var checkpoint: String?
    public var evaluation: RetrievalEvaluationRunResult
}

/// Where an embedding training run is, as its last.safetensors records it.
struct EmbeddingTrainingPosition: Codable, Sendable {
    /// Iterations (optimiser steps) finished.
    var iteration = 0
    /// The current log window's running sums.
    var lossSum = 0.0, activeSum = 0.0
    var seen = 0
}

/// An embedding training run: `EmbeddingTrainingRun(config).run { event in ... }`.
public final class EmbeddingTrainingRun: ConfiguredRun<EmbeddingTrainingRunConfiguration> {
    /// Polled after each iteration (optimiser step) and during the evaluation: once requested, the run writes
    /// last.safetensors (after the current iteration) and throws `RunStopped` whose `checkpoint` a run with
    /// `resume` continues from, giving the uninterrupted run's bits. With `evalOnly` it throws `RunStopped` without
    /// a checkpoint.
    public var stop: StopRequest?

    /// Trains (unless `evalOnly`), writes embedding.safetensors and log.jsonl, then evaluates. Events: `.started`,
    /// `.warning` for classes left out, `.supervised(.iteration)` per log window, `.wrote` for the checkpoint, then
    /// the `RetrievalEvaluationRun` events.
    /// - Throws: `MMLError` for unreadable data, a batch the data cannot fill or unwritable files.
    public func run(events: (RunEvent) -> Void = { _ in }) throws -> EmbeddingTrainingRunResult {
        let c = configuration
        let evaluation = try RetrievalEvaluationRun(c.evaluation)
        evaluation.stop = stop
        if let path = c.evalOnly {
            let (model, linear) = try RetrievalEvaluationRun.loadEmbedding(path, threads: c.threads, field: "evalOnly")
            return EmbeddingTrainingRunResult(checkpoint: nil,
                                              evaluation: try evaluation.run(model: model, linear: linear,
                                                                             events: events))
        }
        let (model, linear, path) = try train(events: events)
        let resumePath = SupervisedResume<EmbeddingTrainingRunConfiguration, EmbeddingTrainingPosition>.lastPath(c.out!)
        do {
            return EmbeddingTrainingRunResult(checkpoint: path,
                                              evaluation: try evaluation.run(model: model, linear: linear,
                                                                             events: events))
        } catch var stopped as RunStopped {
            stopped.detail = "training is finished in \(resumePath); resuming runs the evaluation again"
            stopped.checkpoint = resumePath
            throw stopped
        }
    }

    private func train(events: (RunEvent) -> Void) throws -> (FewShotModel, Linear?, String) {
        let c = configuration
        let out = c.out!
        typealias Resume = SupervisedResume<EmbeddingTrainingRunConfiguration, EmbeddingTrainingPosition>
        if c.resume { try Resume.requireCheckpoint(out) } else {
            try Resume.refuseExistingRun(out, checkpoints: ["last.safetensors", "embedding.safetensors"])
        }
        try OutputCheck.prepare(directory: out, what: "embedding checkpoint")
        let lossFn = try EmbeddingLoss(c.loss, beta0: c.beta0)
        let setup = try SupervisedTrainingSetup(kind: "embedding", dataset: c.dataset, backbone: c.backbone,
                                                image: c.image, seed: c.seed, threads: c.threads,
                                                optimizer: c.optimizer, learningRate: c.learningRate,
                                                weightDecay: c.weightDecay)
        let (train, model, loader, opt) = (setup.train, setup.model, setup.loader, setup.optimizer)
        var rng = SeededRNG(seed: c.seed, stream: 2)
        let linear = c.dim > 0 ? Linear(inputFeatures: model.backbone.outputChannels, outputFeatures: c.dim,
                                        initialization: .kaimingNormal(negativeSlope: 1), generator: &rng) : nil
        let pk = try PKSampler(dataset: train, classesPerBatch: c.classesPerBatch, imagesPerClass: c.imagesPerClass,
                               seed: c.seed)
        for w in train.warnings where w.hasPrefix(DatasetHygiene.warningPrefix) { events(.warning(w)) }
        for w in pk.warnings { events(.warning(w)) }
        let schedule = LearningRateSchedule.cosine(total: c.iterations, minimum: 0)
        // embedding and last (with the optimiser's moments, up to 2 per weight).
        try OutputCheck.checkRoom(out, bytesNeeded: 4 * setup.checkpointBytes(extra: linear.map {
            $0.namedParameters().reduce(0) { $0 + $1.parameter.value.count } } ?? 0), what: "embedding checkpoint")
        var extraContainers: [(prefix: String, container: any ParameterContainer)] = [("loss", lossFn)]
        if let linear { extraContainers.append(("embedding", linear)) }
        let path = out + "/embedding.safetensors"
        var at = EmbeddingTrainingPosition()
        var kernelPaths = KernelPaths.fresh
        if c.resume {
            (at, kernelPaths) = try Resume.restore(into: model, extra: extraContainers, optimizer: opt,
                                                   configuration: c, out: out, otherCheckpoints: [path], events: events)
            events(.note(at.iteration < c.iterations
                ? "resuming \(out) at iteration \(at.iteration) of \(c.iterations)"
                : "resuming \(out): its \(c.iterations) iterations are trained, the evaluation runs again"))
        }
        let log = try JSONLLog(path: out + "/log.jsonl", fresh: !c.resume)
        // Records after the resumed position (written after last.safetensors) go.
        if c.resume { try log.retain { ($0["iteration"] as? Int).map { $0 <= at.iteration } ?? false } }
        let saveResumable = { (position: EmbeddingTrainingPosition) throws in
            try Resume.save(model, extra: extraContainers, optimizer: opt,
                            state: .init(configuration: c, position: position, kernelPaths: kernelPaths), out: out)
        }
        events(.started(run: "train-embedding", facts: [
            ("data", train.name), ("classes", "\(pk.eligibleClasses.count)"), ("classesPerBatch", "\(c.classesPerBatch)"),
            ("imagesPerClass", "\(c.imagesPerClass)"), ("loss", c.loss.loss.rawValue), ("margin", "\(c.loss.margin)"),
            ("positives", c.loss.positives.rawValue), ("negatives", c.loss.negatives.rawValue),
            ("backbone", model.configuration.backbone.rawValue),
            ("dim", c.dim > 0 ? String(c.dim) : "\(model.backbone.outputChannels) (pooled)"),
            ("optimizer", c.optimizer.rawValue), ("learningRate", "\(c.learningRate)"),
        ]))
        var params: [any ParameterContainer] = [model, lossFn]
        if let linear { params.append(linear) }
        let t0 = Date()
        var lossSum = at.lossSum, activeSum = at.activeSum, seen = at.seen
        for it in at.iteration..<c.iterations {
            opt.learningRate = schedule.learningRate(base: c.learningRate, step: it)
            let refs = pk.batch(it)
            let x = try loader.tensor(for: refs, augmentationSeed: c.seed, stream: [UInt64(it)])
            for p in params { p.zeroGradients() }
            let (fmap, cache) = model.backbone.forward(x, training: true)
            let pooled = GlobalAveragePool.forward(fmap)
            let projected = linear.map { $0.forward(pooled, training: true) }
            let (e, ncache) = L2Normalize.forward(projected?.output ?? pooled)
            let r = try lossFn.compute(e, labels: refs.map(\.classIndex),
                                       seed: SeededRNG(seed: c.seed, path: [3, UInt64(it)]).state)
            var g = L2Normalize.backward(r.gradient, cache: ncache)
            if let linear, let projected { g = linear.backward(g, cache: projected.cache) }
            _ = model.backbone.backward(GlobalAveragePool.backward(g, inputShape: fmap.shape), cache: cache,
                                        inputGradient: false)
            opt.step(params)
            lossSum += r.loss
            activeSum += Double(r.activeTuples) / Double(max(r.tuples.count, 1))
            seen += 1
            if (c.logEvery > 0 && (it + 1) % c.logEvery == 0) || it + 1 == c.iterations {
                try log.append(encoded: EmbeddingIterationLogRecord(
                    iteration: it + 1, loss: lossSum / Double(seen), activeFraction: activeSum / Double(seen),
                    beta: Double(lossFn.beta.value.data[0]), lr: Double(opt.learningRate),
                    seconds: Date().timeIntervalSince(t0)))
                events(.supervised(.iteration(iteration: it + 1, iterations: c.iterations, loss: lossSum / Double(seen),
                                              activeFraction: activeSum / Double(seen),
                                              beta: lossFn.beta.value.data[0], learningRate: opt.learningRate,
                                              seconds: Date().timeIntervalSince(t0))))
                lossSum = 0; activeSum = 0; seen = 0
            }
            let position = EmbeddingTrainingPosition(iteration: it + 1, lossSum: lossSum, activeSum: activeSum,
                                                     seen: seen)
            if let stop, stop.isRequested, it + 1 < c.iterations {
                try saveResumable(position)
                throw RunStopped(done: it + 1, total: c.iterations, phase: "iterations",
                                 detail: "\(Resume.lastPath(out)) holds every finished iteration",
                                 checkpoint: Resume.lastPath(out))
            }
            if (it + 1) % c.checkpointEvery == 0 || it + 1 == c.iterations { try saveResumable(position) }
        }
        var extra: [(name: String, tensor: Tensor)] = []
        if let linear { extra += linear.namedParameters(prefix: "embedding").map { ($0.name, $0.parameter.value) } }
        if c.loss.loss == .margin { extra.append((name: "loss.beta", tensor: lossFn.beta.value)) }
        let state = JSONLLog.line(["iterations": c.iterations, "loss": c.loss.loss.rawValue,
                                   "positives": c.loss.positives.rawValue, "negatives": c.loss.negatives.rawValue,
                                   "margin": Double(c.loss.margin), "dim": c.dim])
        try Checkpoint.save(model, extra: extra, state: state, to: path)
        events(.wrote(path: path, what: "embedding"))
        return (model, linear, path)
    }
}
