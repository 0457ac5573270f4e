import ArgumentParser
import Foundation
import MMLCore

/// `mml train`: episodic training of a multi-level metric model with validation, checkpoints and resume.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a multi-level metric model on episodes (METHOD.md 2.5).",
        discussion: """
            Writes into --out: last.safetensors (weights, optimiser moments and state; every --checkpoint-every \
            episodes and at each epoch's end), best.safetensors (best validation accuracy), log.jsonl, and with \
            --plot an SVG of the curves. --resume continues the run in --out exactly where it stopped.
            """
    )

    @OptionGroup var dataset: DatasetOptions
    @OptionGroup var backboneOptions: BackboneOptions
    @OptionGroup var image: ImageOptions
    @OptionGroup var metric: MetricOptions
    @OptionGroup var training: TrainingOptions

    @Option(help: "Output directory.") var out = "runs/mml"
    @Flag(help: "Continue the run in --out from its last.safetensors.") var resume = false
    @Option(name: .customLong("init"), help: "Initialise the backbone from a checkpoint (e.g. from mml pretrain).")
    var initFrom: String?
    @Option(help: "Write the loss / accuracy curves as SVG to this path.") var plot: String?
    @Option(help: "Threads for the kernels (0: all cores).") var threads = 0
    @Option(help: "Stop after this many episodes in total (the run stays resumable).") var stopAfter: Int?

    func run() throws {
        try runReportingErrors {
            let run = TrainingRun(dataset: dataset, backbone: backboneOptions, image: image,
                                  metric: try metric.configuration(way: training.way), training: training,
                                  out: out, resume: resume, initFrom: initFrom, threads: threads, stopAfter: stopAfter,
                                  verbose: true)
            _ = try run.execute()
            if let plot {
                try TrainingPlot.write(logPath: URL(fileURLWithPath: out).appendingPathComponent("log.jsonl").path,
                                       to: plot)
                print("plot        \(plot)")
            }
        }
    }
}

/// One training run as `mml train` does it (also used by `mml ablate --retrain`).
struct TrainingRun {
    var dataset: DatasetOptions
    var backbone: BackboneOptions
    var image: ImageOptions
    var metric: MetricConfiguration
    var training: TrainingOptions
    var out: String
    var resume = false
    var initFrom: String?
    var threads = 0
    var stopAfter: Int?
    var verbose = true

    /// Trains (or resumes) and returns the final trainer state. - Throws: `MMLError`.
    func execute() throws -> EpisodicTrainingState {
        let config = try training.configuration()
        let t = training
        let lastPath = URL(fileURLWithPath: out).appendingPathComponent("last.safetensors").path
        let exists = FileManager.default.fileExists(atPath: lastPath)
        if resume && !exists {
            throw MMLError(.fileNotFound, "--resume: \(lastPath) does not exist; start the run without --resume")
        }
        if !resume && exists {
            throw MMLError(.invalidArgument, "\(out) already holds a run (last.safetensors); pass --resume to "
                           + "continue it, or choose another --out")
        }
        let trainData = dataset.with(split: dataset.split ?? "train")
        let fresh = try backbone.modelConfiguration(kind: "episodic", dataset: trainData, image: image,
                                                    defaults: .episodic, metric: metric)
        let model: FewShotModel
        var loaded: Checkpoint.Loaded?
        if resume {
            loaded = try Checkpoint.load(lastPath, threads: threads)
            model = loaded!.model
        } else {
            model = try FewShotModel(fresh, threads: threads)
            if let initFrom {
                let n = try Checkpoint.loadBackbone(into: model, from: initFrom)
                if verbose { print("initialised \(n) backbone tensors from \(initFrom)") }
            }
        }
        let trainImages = model.configuration.image
        let evalImages = trainImages.forEvaluation
        let trainSet = try trainData.open(image: evalImages)
        let trainSampler = try EpisodeSampler(dataset: trainSet, way: t.way, shot: t.shot, query: t.query, seed: t.seed)
        let trainLoader = try EpisodeLoader(dataset: trainSet, config: trainImages)
        var validation: (loader: EpisodeLoader, sampler: EpisodeSampler)?
        if config.validationEpisodes > 0 {
            let valSet = try dataset.with(split: t.valSplit).open(image: evalImages)
            let s = try EpisodeSampler(dataset: valSet, way: t.valWay ?? t.way, shot: t.valShot ?? t.shot,
                                       query: t.valQuery, seed: t.valSeed)
            validation = (try EpisodeLoader(dataset: valSet, config: evalImages), s)
        }
        let trainer = try EpisodicTrainer(model: model, configuration: config, train: (trainLoader, trainSampler),
                                          validation: validation, directory: out)
        if let loaded {
            guard let state = loaded.state else {
                throw MMLError(.corruptFile, "\(lastPath) holds no training state; it is not a training checkpoint")
            }
            try trainer.restore(state: state, optimizerTensors: loaded.extra)
            trainer.truncateLog()
            if verbose { print("resuming \(out) at episode \(trainer.state.episodesDone) of \(config.totalEpisodes)") }
        }
        let mc = model.configuration
        if verbose {
            print("model       \(mc.backbone.rawValue) \(mc.image.size)x\(mc.image.size)x\(mc.image.channels), "
                  + "\(model.trainableParameterCount) parameters; \(mc.metric!.summary)")
            print("episodes    \(t.way)-way \(t.shot)-shot \(t.query) queries, \(t.episodesPerEpoch) x \(t.epochs) epochs, "
                  + "\(t.episodesPerStep) per step, \(t.optimizer) lr \(t.lr) (\(t.schedule))")
            print("data        train \(trainSet.classCount) classes"
                  + (validation.map { ", validation \($0.sampler.dataset.classCount) classes x \(config.validationEpisodes) episodes" } ?? ""))
        }
        attachProgress(trainer, total: config.totalEpisodes, epochs: t.epochs, logEvery: t.logEvery)
        try trainer.run(stopAfter: stopAfter)
        let s = trainer.state
        if verbose {
            print(String(format: "trained     %d episodes in %@ (%.2f episodes/s)", s.episodesDone,
                         formatDuration(s.elapsedSeconds), Double(s.episodesDone) / max(s.elapsedSeconds, 1e-9)))
            if let b = s.bestValidation, let e = s.bestEpoch {
                print(String(format: "best        epoch %d, validation %.2f%% -> %@/best.safetensors", e, b * 100, out))
            }
            print("checkpoint  \(out)/last.safetensors; log \(out)/log.jsonl")
        }
        return s
    }

    /// Progress bar on a terminal, plain lines every log window otherwise.
    private func attachProgress(_ trainer: EpisodicTrainer, total: Int, epochs: Int, logEvery: Int) {
        let progress = ProgressLine(plainEvery: max(logEvery, 1))
        let startElapsed = trainer.state.elapsedSeconds, startDone = trainer.state.episodesDone
        var windowLoss = 0.0, windowAcc = 0.0
        let verbose = self.verbose
        trainer.onEvent = { [unowned trainer] event in
            switch event {
            case .episode(let i, let epoch, _, _, let rate):
                guard progress.isTTY else { return }
                let done = i + 1
                let rateEps = Double(done - startDone) / max(trainer.state.elapsedSeconds - startElapsed, 1e-9)
                progress.update(done: done, total: total, text: String(
                    format: "epoch %d/%d loss %.3f acc %.1f%% lr %.2g %.1f ep/s ETA %@", epoch + 1, epochs,
                    windowLoss, windowAcc * 100, rate, rateEps, formatDuration(Double(total - done) / max(rateEps, 1e-9))))
            case .log(let e, let epoch, let loss, let acc, let rate, let elapsed):
                windowLoss = loss; windowAcc = acc
                if !progress.isTTY && verbose {
                    let rateEps = Double(e - startDone) / max(elapsed - startElapsed, 1e-9)
                    print(String(format: "episode %d/%d epoch %d loss %.4f acc %.2f%% lr %.3g %.2f ep/s ETA %@",
                                 e, total, epoch + 1, loss, acc * 100, rate, rateEps,
                                 formatDuration(Double(total - e) / max(rateEps, 1e-9))))
                    fflush(stdout)
                }
            case .validation(let r, let isBest):
                progress.finish()
                guard verbose else { return }
                if r.accuracy.isFinite {
                    let lv = r.levels.sorted { $0.key < $1.key }
                        .map { String(format: "%@ %.2f", $0.key, $0.value * 100) }.joined(separator: ", ")
                    print(String(format: "epoch %d validation %.2f +- %.2f%% (%@)%@", r.epoch, r.accuracy * 100,
                                 r.ci95 * 100, lv, isBest ? " best" : ""))
                } else {
                    print("epoch \(r.epoch) done")
                }
                fflush(stdout)
            case .checkpoint:
                break
            }
        }
    }
}

