import ArgumentParser
import Foundation
import MMLCore

/// `mml train-embedding`: metric learning with triplet / margin losses on P x K batches, with easy-positive
/// sampling (METHOD.md section 4; Levi et al. 2021), and retrieval evaluation on held-out classes.
struct TrainEmbeddingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-embedding",
        abstract: "Train an embedding with a triplet or margin loss on P x K batches (random, hardest or easy positives).",
        discussion: """
        Embedding = backbone output globally average-pooled, optionally a linear layer to --dim, L2-normalised; \
        distances are Euclidean on the normalised embeddings. Writes DIR/embedding.safetensors (kind "embedding"; \
        the linear layer as extra tensors embedding.weight / embedding.bias, the margin loss's beta as loss.beta) \
        and DIR/log.jsonl, then reports Recall@1/2/4/8, R-precision and MAP@R on the held-out split (every image \
        a query against all others) and 5-way 1-/5-shot nearest-prototype accuracy of the same embedding. \
        --eval-only CKPT evaluates a saved embedding.
        """
    )

    @OptionGroup var dataset: DatasetOptions
    @OptionGroup var backboneOptions: BackboneOptions
    @OptionGroup var image: ImageOptions

    @Option(help: "Loss: triplet or margin (Wu et al., learnable beta).")
    var loss: EmbeddingLossKind = .triplet
    @Option(help: "Positive selection: random, hardest or easy (EPS).")
    var positives: PositiveSelection = .easy
    @Option(help: "Negative selection: semi-hard or distance-weighted.")
    var negatives: NegativeSelection = .semiHard
    @Option(help: "Margin alpha.")
    var margin: Float = 0.2
    @Option(help: "Initial beta of the margin loss.")
    var beta0: Float = 1.2
    @Option(help: "Embedding size: a linear layer from the pooled features to this size (0: no layer).")
    var dim = 0
    @Option(name: .customLong("classes-per-batch"), help: "P: classes per batch.")
    var p = 16
    @Option(name: .customLong("images-per-class"), help: "K: images per class in a batch.")
    var k = 4
    @Option(help: "Training iterations (batches).")
    var iterations = 1000
    @Option(help: "Base learning rate (cosine schedule to 0).")
    var lr: Float = 1e-3
    @Option(help: "Optimiser: adam or sgd (momentum 0.9).")
    var optimizer = "adam"
    @Option(help: "Weight decay.")
    var weightDecay: Float = 0
    @Option(help: "Held-out split for the evaluation.")
    var evalSplit = "test"
    @Option(help: "Few-shot episodes of the evaluation (0: retrieval only).")
    var evalEpisodes = 600
    @Option(help: "Evaluate this embedding checkpoint instead of training.")
    var evalOnly: String?
    @Option(help: "Seed of weights, batches, tuple sampling and evaluation episodes.")
    var seed: UInt64 = 0
    @Option(help: "Threads for the layer kernels (0 = all cores).")
    var threads = 0
    @Option(help: "Print a progress line every N iterations.")
    var logEvery = 100
    @Option(help: "Output directory (required unless --eval-only).")
    var out: String?

    func run() throws {
        try runReportingErrors {
            if let path = evalOnly {
                let loaded = try Checkpoint.load(path, threads: threads)
                guard loaded.model.configuration.kind == "embedding" else {
                    throw MMLError(.invalidArgument, "\(path) is a '\(loaded.model.configuration.kind)' checkpoint; "
                                   + "--eval-only takes the embedding.safetensors written by mml train-embedding")
                }
                let linear = try storedEmbeddingLayer(in: loaded, path: path)
                try evaluate(model: loaded.model, linear: linear)
                return
            }
            guard let out else {
                throw MMLError(.invalidArgument, "--out DIR is required to train (or give --eval-only CKPT)")
            }
            try requirePositive(iterations, "--iterations")
            guard dim >= 0 else { throw MMLError(.invalidArgument, "--dim must be >= 0 (0: no linear layer), got \(dim)") }
            guard p >= 2, k >= 2 else {
                throw MMLError(.invalidArgument, "--classes-per-batch and --images-per-class must be >= 2 (a batch "
                               + "needs positives and negatives), got P \(p), K \(k)")
            }
            guard lr.isFinite, lr > 0 else { throw MMLError(.invalidArgument, "--lr must be > 0, got \(lr)") }
            let cfgLoss = EmbeddingLossConfiguration(loss: loss, positives: positives, negatives: negatives, margin: margin)
            let lossFn = try EmbeddingLoss(cfgLoss, beta0: beta0)
            let setup = try SupervisedTrainingSetup(kind: "embedding", dataset: dataset, backbone: backboneOptions,
                                                    image: image, seed: seed, threads: threads, optimizer: optimizer,
                                                    learningRate: lr, weightDecay: weightDecay)
            let (train, model, loader, opt) = (setup.train, setup.model, setup.loader, setup.optimizer)
            let config = model.configuration
            var rng = SeededRNG(seed: seed, stream: 2)
            let linear = dim > 0 ? Linear(inputFeatures: model.backbone.outputChannels, outputFeatures: dim,
                                          initialization: .kaimingNormal(negativeSlope: 1), generator: &rng) : nil
            let pk = try PKSampler(dataset: train, classesPerBatch: p, imagesPerClass: k, seed: seed)
            for w in pk.warnings { warn(w) }
            let schedule = LearningRateSchedule.cosine(total: iterations, minimum: 0)
            let log = try JSONLLog(path: out + "/log.jsonl", fresh: true)
            progressLine("train-embedding \(train.name): \(pk.eligibleClasses.count) classes, P \(p) x K \(k), "
                         + "\(loss.rawValue) loss (alpha \(margin)), \(positives.rawValue) positives, "
                         + "\(negatives.rawValue) negatives, \(config.backbone.rawValue), dim "
                         + "\(dim > 0 ? String(dim) : "\(model.backbone.outputChannels) (pooled)"), \(optimizer) lr \(lr)")
            var params: [any ParameterContainer] = [model, lossFn]
            if let linear { params.append(linear) }
            let t0 = Date()
            var lossSum = 0.0, activeSum = 0.0, seen = 0
            for it in 0..<iterations {
                opt.learningRate = schedule.learningRate(base: lr, step: it)
                let refs = pk.batch(it)
                let x = try loader.tensor(for: refs, augmentationSeed: seed, stream: [UInt64(it)])
                for c in params { c.zeroGradients() }
                let (fmap, cache) = model.backbone.forward(x, training: true)
                let pooled = GlobalAveragePool.forward(fmap)
                let projected = linear.map { $0.forward(pooled, training: true) }
                let (e, ncache) = L2Normalize.forward(projected?.output ?? pooled)
                let r = try lossFn.compute(e, labels: refs.map(\.classIndex),
                                           seed: SeededRNG(seed: seed, path: [3, UInt64(it)]).state)
                var g = L2Normalize.backward(r.gradient, cache: ncache)
                if let linear, let projected { g = linear.backward(g, cache: projected.cache) }
                _ = model.backbone.backward(GlobalAveragePool.backward(g, inputShape: fmap.shape), cache: cache,
                                            inputGradient: false)
                opt.step(params)
                lossSum += r.loss
                activeSum += Double(r.activeTuples) / Double(max(r.tuples.count, 1))
                seen += 1
                if (logEvery > 0 && (it + 1) % logEvery == 0) || it + 1 == iterations {
                    let rec: [String: Any] = ["iteration": it + 1, "loss": lossSum / Double(seen),
                                              "active_fraction": activeSum / Double(seen),
                                              "beta": Double(lossFn.beta.value.data[0]),
                                              "lr": Double(opt.learningRate), "seconds": Date().timeIntervalSince(t0)]
                    try log.append(rec)
                    progressLine(String(format: "  iter %d/%d  loss %.4f  active %.2f  beta %.3f  lr %.2e  %.1f s",
                                        it + 1, iterations, lossSum / Double(seen), activeSum / Double(seen),
                                        lossFn.beta.value.data[0], opt.learningRate, Date().timeIntervalSince(t0)))
                    lossSum = 0; activeSum = 0; seen = 0
                }
            }
            var extra: [(name: String, tensor: Tensor)] = []
            if let linear { extra += linear.namedParameters(prefix: "embedding").map { ($0.name, $0.parameter.value) } }
            if loss == .margin { extra.append((name: "loss.beta", tensor: lossFn.beta.value)) }
            let state = JSONLLog.line(["iterations": iterations, "loss": loss.rawValue, "positives": positives.rawValue,
                                  "negatives": negatives.rawValue, "margin": Double(margin), "dim": dim])
            try Checkpoint.save(model, extra: extra, state: state, to: out + "/embedding.safetensors")
            progressLine("wrote \(out)/embedding.safetensors")
            try evaluate(model: model, linear: linear)
        }
    }

    /// Retrieval metrics and few-shot accuracy of the embedding on the held-out split.
    func evaluate(model: FewShotModel, linear: Linear?) throws {
        let heldOut = try dataset.with(split: evalSplit).open()
        let loader = try EpisodeLoader(dataset: heldOut, config: model.configuration.image.forEvaluation)
        if let linear, linear.inputFeatures != model.backbone.outputChannels {
            throw MMLError(.corruptFile, "the embedding layer takes \(linear.inputFeatures) features but the backbone "
                           + "gives \(model.backbone.outputChannels)")
        }
        let embed = embeddingFunction(model: model, linear: linear)
        let t0 = Date()
        var refs: [ItemRef] = []
        for (c, n) in heldOut.itemCounts.enumerated() { for i in 0..<n { refs.append(ItemRef(classIndex: c, item: i)) } }
        let e = try mapInChunks(refs, loader: loader, embed)
        let m = try retrievalMetrics(embeddings: e, labels: refs.map(\.classIndex))
        progressLine("retrieval on \(heldOut.name) [\(evalSplit)]: \(heldOut.classCount) classes, \(m.queries) queries: "
                     + m.summary + String(format: "  (%.1f s)", Date().timeIntervalSince(t0)))
        var record: [String: Any] = ["split": evalSplit, "classes": heldOut.classCount, "queries": m.queries,
                                     "r_precision": m.rPrecision, "map_at_r": m.mapAtR]
        for (kk, v) in m.recallAt { record["recall_at_\(kk)"] = v }
        if evalEpisodes > 0 {
            for shot in [1, 5] {
                let sampler = try fiveWayEpisodes(heldOut, shot: shot, seed: seed)
                let r = try evaluateFrozenFeatures(features: embed, loader: loader, sampler: sampler,
                                                   episodes: evalEpisodes, protocol: .prototype)
                progressLine("few-shot 5-way \(shot)-shot (\(evalEpisodes) episodes, nearest prototype): "
                             + r.summary.percentString + "%")
                record["fewshot_5way_\(shot)shot"] = r.summary.mean
                record["fewshot_5way_\(shot)shot_ci95"] = r.summary.ci95
            }
        }
        progressLine("result " + JSONLLog.line(record))
    }
}
