import ArgumentParser
import Foundation
import MMLCore

/// `mml pretrain`: supervised pre-training of a backbone on all base classes with a (negative-)margin classifier
/// head (METHOD.md section 3; Liu et al. 2020).
struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Pre-train a backbone as a classifier over all base classes (softmax, cosine, neg-cosine, neg-softmax).",
        discussion: """
        Mini-batches over every image of the training split; features are the backbone output globally \
        average-pooled. Learning rate: linear warm-up, then cosine annealing to 0 (per iteration). Each epoch the \
        backbone is validated by nearest-prototype few-shot episodes on the validation split. Writes \
        DIR/backbone.safetensors (last epoch, with the head as extra tensor head.weight), DIR/best.safetensors \
        (best validation accuracy) and DIR/log.jsonl.
        """
    )

    @OptionGroup var dataset: DatasetOptions
    @OptionGroup var backboneOptions: BackboneOptions
    @OptionGroup var image: ImageOptions

    @Option(help: "Classifier head and loss: softmax, cosine, neg-cosine or neg-softmax.")
    var loss: ClassifierHeadKind = .negCosine
    @Option(help: "Margin m of neg-cosine / neg-softmax (negative raises the target logit).")
    var margin: Float = 0
    @Option(help: "Scale s (default 30 for cosine heads, 5 for neg-softmax).")
    var scale: Float?
    @Option(help: "Epochs.")
    var epochs = 10
    @Option(help: "Images per mini-batch.")
    var batchSize = 128
    @Option(help: "Stop each epoch after this many batches (default: all).")
    var maxBatches: Int?
    @Option(help: "Base learning rate.")
    var lr: Float = 0.1
    @Option(help: "Epochs of linear learning-rate warm-up before the cosine schedule.")
    var warmupEpochs = 0
    @Option(help: "Optimiser: sgd (momentum 0.9) or adam.")
    var optimizer = "sgd"
    @Option(help: "Weight decay.")
    var weightDecay: Float = 5e-4
    @Option(help: "Validation split ('none' to skip validation).")
    var valSplit = "val"
    @Option(help: "Validation episodes per epoch (5-way 1-shot, 15 queries, nearest prototype).")
    var valEpisodes = 100
    @Option(help: "After training, evaluate the best-on-validation backbone (last without validation) on this many 5-way 1-shot and 5-shot episodes of --test-split (0: none).")
    var testEpisodes = 0
    @Option(help: "Split of the final few-shot evaluation.")
    var testSplit = "test"
    @Option(help: "Comma-separated protocols of the final evaluation: prototype, cosine-classifier.")
    var testProtocols = "prototype,cosine-classifier"
    @Option(help: "Seed of weights, batch order and validation episodes.")
    var seed: UInt64 = 0
    @Option(help: "Threads for the layer kernels (0 = all cores).")
    var threads = 0
    @Option(help: "Print a progress line every N batches (0: only per epoch).")
    var logEvery = 100
    @Option(help: "Output directory.")
    var out: String

    func run() throws {
        try runReportingErrors {
            try requirePositive(epochs, "--epochs")
            try requirePositive(batchSize, "--batch-size")
            if let maxBatches { try requirePositive(maxBatches, "--max-batches") }
            guard lr.isFinite, lr > 0 else { throw MMLError(.invalidArgument, "--lr must be > 0, got \(lr)") }
            try requireNonNegative(weightDecay, "--weight-decay")
            guard warmupEpochs >= 0, warmupEpochs < epochs else {
                throw MMLError(.invalidArgument, "--warmup-epochs \(warmupEpochs) must be in 0..<\(epochs) (--epochs)")
            }
            if !loss.usesMargin && margin != 0 {
                throw MMLError(.invalidArgument, "--margin \(margin) has no effect with --loss \(loss.rawValue); use "
                               + "--loss neg-cosine or neg-softmax, or drop --margin")
            }
            let setup = try SupervisedTrainingSetup(kind: "pretrained", dataset: dataset, backbone: backboneOptions,
                                                    image: image, seed: seed, threads: threads, optimizer: optimizer,
                                                    learningRate: lr, weightDecay: weightDecay)
            let (train, trainSplit, model, loader, opt) = (setup.train, setup.trainSplit, setup.model, setup.loader,
                                                           setup.optimizer)
            let config = model.configuration
            let head = try MarginClassifier(kind: loss, inputFeatures: model.backbone.outputChannels,
                                            classes: train.classCount, scale: scale, margin: margin,
                                            seed: SeededRNG(seed: seed, stream: 1).state)
            let sampler = try BatchSampler(itemCounts: train.itemCounts, batchSize: batchSize, seed: seed)
            let perEpoch = min(sampler.batchesPerEpoch, maxBatches ?? Int.max)
            let schedule = warmupCosineSchedule(total: epochs * perEpoch, warmup: warmupEpochs * perEpoch)

            var validation: (EpisodeLoader, EpisodeSampler)?
            if valSplit != "none" {
                try requirePositive(valEpisodes, "--val-episodes")
                let val = try dataset.with(split: valSplit).open()
                validation = (try EpisodeLoader(dataset: val, config: setup.evalImage),
                              try fiveWayEpisodes(val, shot: 1, seed: seed))
            }
            guard testEpisodes >= 0 else {
                throw MMLError(.invalidArgument, "--test-episodes must be >= 0, got \(testEpisodes)")
            }
            let protocols = try testProtocols.split(separator: ",").map { name -> FrozenFeatureProtocol in
                guard let p = FrozenFeatureProtocol(rawValue: String(name)) else {
                    throw MMLError(.invalidArgument, "--test-protocols: '\(name)' is unknown; use prototype and/or "
                                   + "cosine-classifier")
                }
                return p
            }
            let log = try JSONLLog(path: out + "/log.jsonl", fresh: true)
            progressLine("pretrain \(train.name) [\(trainSplit)]: \(train.classCount) classes, \(train.totalItems) "
                         + "images, \(perEpoch) batches of \(batchSize) per epoch; \(config.backbone.rawValue) "
                         + "\(config.image.size)x\(config.image.size)x\(config.inputChannels), head \(loss.rawValue) "
                         + "s=\(head.scale) m=\(head.margin), \(optimizer) lr \(lr)")
            var best = -1.0
            var step = 0
            for epoch in 0..<epochs {
                let t0 = Date()
                var lossSum = 0.0, accSum = 0.0, seen = 0
                for (b, refs) in sampler.epoch(epoch).prefix(perEpoch).enumerated() {
                    opt.learningRate = schedule.learningRate(base: lr, step: step)
                    step += 1
                    let x = try loader.tensor(for: refs, augmentationSeed: seed, stream: [UInt64(epoch), UInt64(b)])
                    let labels = refs.map(\.classIndex)
                    model.zeroGradients(); head.zeroGradients()
                    let (fmap, cache) = model.backbone.forward(x, training: true)
                    let r = try head.trainingStep(GlobalAveragePool.forward(fmap), labels: labels)
                    guard r.loss.isFinite else {
                        throw MMLError(.numerical, "pretrain: the loss became \(r.loss) at epoch \(epoch + 1), batch "
                                       + "\(b + 1); lower --lr or --scale")
                    }
                    _ = model.backbone.backward(GlobalAveragePool.backward(r.dx, inputShape: fmap.shape), cache: cache,
                                                inputGradient: false)
                    opt.step([model, head])
                    lossSum += r.loss; accSum += r.accuracy; seen += 1
                    if logEvery > 0 && (b + 1) % logEvery == 0 {
                        progressLine(String(format: "  epoch %d batch %d/%d  loss %.4f  acc %.2f%%  lr %.5f  %.1f s",
                                            epoch + 1, b + 1, perEpoch, lossSum / Double(seen),
                                            accSum / Double(seen) * 100, opt.learningRate,
                                            Date().timeIntervalSince(t0)))
                    }
                }
                let trainSeconds = Date().timeIntervalSince(t0)
                var record: [String: Any] = ["epoch": epoch + 1, "loss": lossSum / Double(seen),
                                             "accuracy": accSum / Double(seen), "lr": Double(opt.learningRate),
                                             "seconds": trainSeconds]
                var line = String(format: "epoch %d/%d  loss %.4f  acc %.2f%%  %.1f s", epoch + 1, epochs,
                                  lossSum / Double(seen), accSum / Double(seen) * 100, trainSeconds)
                let extra = head.namedParameters(prefix: "head").map { (name: $0.name, tensor: $0.parameter.value) }
                let state = JSONLLog.line(["epoch": epoch + 1, "loss": loss.rawValue, "margin": Double(head.margin),
                                      "scale": Double(head.scale), "classes": train.classCount])
                if let (vl, vs) = validation {
                    let v = try evaluateFrozenFeatures(model: model, loader: vl, sampler: vs, episodes: valEpisodes,
                                                       protocol: .prototype)
                    record["val_accuracy"] = v.summary.mean
                    record["val_ci95"] = v.summary.ci95
                    line += "  val 5-way 1-shot " + v.summary.percentString + "%"
                    if v.summary.mean > best {
                        best = v.summary.mean
                        try Checkpoint.save(model, extra: extra, state: state, to: out + "/best.safetensors")
                        line += " (best)"
                    }
                }
                try Checkpoint.save(model, extra: extra, state: state, to: out + "/backbone.safetensors")
                try log.append(record)
                progressLine(line)
            }
            progressLine("wrote \(out)/backbone.safetensors" + (validation == nil ? "" : " and \(out)/best.safetensors"))
            if testEpisodes > 0 {
                let file = out + (validation == nil ? "/backbone.safetensors" : "/best.safetensors")
                let chosen = try Checkpoint.load(file, threads: threads).model
                let test = try dataset.with(split: testSplit).open()
                let testLoader = try EpisodeLoader(dataset: test, config: setup.evalImage)
                var record: [String: Any] = ["test_split": testSplit, "checkpoint": file]
                for shot in [1, 5] {
                    let ts = try fiveWayEpisodes(test, shot: shot, seed: seed)
                    for proto in protocols {
                        let r = try evaluateFrozenFeatures(model: chosen, loader: testLoader, sampler: ts,
                                                           episodes: testEpisodes, protocol: proto)
                        progressLine("test \(testSplit) 5-way \(shot)-shot \(proto.rawValue) (\(testEpisodes) episodes): "
                                     + r.summary.percentString + String(format: "%%  (%.1f s)", r.seconds))
                        record["\(proto.rawValue)_5way_\(shot)shot"] = r.summary.mean
                        record["\(proto.rawValue)_5way_\(shot)shot_ci95"] = r.summary.ci95
                    }
                }
                try log.append(record)
            }
        }
    }
}
