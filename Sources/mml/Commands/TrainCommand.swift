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

            --config FILE starts a new run with the settings of a saved one: FILE is the .json that mml train \
            writes beside every checkpoint (e.g. runs/mml/last.json; model, metric and training settings). Any \
            flag given on the command line overrides the file's value. The \
            data, --val-split, --val-way, --val-shot, --val-query and --out are not saved: give them as usual.

            --seeds 1,2,3 trains one model per training seed into --out/seed-<s>/ (each exactly the run --seed s \
            gives), one after the other, and lists them in --out/seeds.json; --seed-index i (or a SLURM job array \
            of as many tasks as seeds) trains only the i-th seed (0-based), for one process per seed. --resume \
            continues unfinished seeds, skips finished ones and starts seeds not started yet. mml eval / mml \
            ablate --checkpoint OUT evaluate every seed on the same episodes (README "Seeds", docs/STATISTICS.md).
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
    @Option(help: "Threads for the kernels (0: all cores; under mpirun, the cores divided by the ranks on each machine).")
    var threads = 0
    @Option(help: "Stop after this many episodes in total (the run stays resumable).") var stopAfter: Int?
    @Option(help: "Start from the settings saved beside a checkpoint (e.g. runs/mml/last.json); given flags override them.")
    var config: String?
    @Option(help: ArgumentHelp("Train one model per training seed (comma-separated, e.g. 1,2,3) into --out/seed-<s>/.",
                               valueName: "s1,s2,..."))
    var seeds: String?
    @Option(help: "With --seeds: train only the seed at this 0-based position of the list (default in a SLURM job array: the array task's).")
    var seedIndex: Int?
    @Flag(help: "With --seeds: each seed also seeds the initial weights (as --init-seed s); default: every seed starts from --init-seed's weights.")
    var seedInitialWeights = false
    @Flag(help: "Measure where the training time goes (data, backbone and each level forward and backward, fusion, optimiser, validation, checkpoints) and print it at the end; also written to --out/profile.json. Phases that did not happen (validation without a validation split, the exchange in one process, the levels left out) have no row in either.")
    var profile = false

    func run() throws {
        try runReportingErrors {
            if let study = try seedStudyConfiguration() { return try runSeeds(study) }
            let configuration = try runConfiguration()
            let run = try EpisodicTrainingRun(configuration)  // validated before anything uses its numbers
            Launch.checkSplit(configuration)
            let printer = EpisodicRunPrinter(configuration, verbose: true)
            run.group = Launch.group
            if Launch.isLeader, let plot { try OutputCheck.prepare(file: plot, field: "plot") }  // checks before work
            run.stop = Signals.stop
            run.profile = profile ? PhaseProfile() : nil
            Signals.install("finishing the current optimiser step, then saving \(out)/last.safetensors")
            // Under mpirun only rank 0 prints.
            let result = try run.run(events: Launch.isLeader ? printer.print : { _ in })
            if Launch.isLeader, let p = run.profile { try Self.report(p, out: out) }
            if result.stopped { Self.stopped(result, out: out) }
            guard Launch.isLeader else { return }
            printer.finish(result, out: out)
            if let plot {
                try TrainingPlot.write(logPath: result.log, to: plot)
                print("plot        \(plot)")
            }
        }
    }

    /// After a signal stopped the run (every rank at the same step): what was saved and the command that resumes;
    /// every rank exits with 128 + the signal number.
    static func stopped(_ result: EpisodicTrainingRunResult, out: String) -> Never {
        if Launch.isLeader {
            print("stopped     at episode \(result.state.episodesDone) of \(result.totalEpisodes) (\(Signals.name(Signals.stop.reason ?? SIGINT))); "
                  + "\(result.last) holds every finished step")
            print("resume      \(Signals.resumeCommand())")
            fflush(stdout)
        }
        Launch.finish()
        Foundation.exit(Signals.exitCode(Signals.stop.reason))
    }

    /// The seed study these options give (nil without `--seeds`).
    /// - Throws: `MMLError` for a bad seed list, `--seed` with `--seeds`, or the seed options without `--seeds`.
    func seedStudyConfiguration() throws -> SeedTrainingRunConfiguration? {
        guard let seeds else {
            if seedIndex != nil || seedInitialWeights {
                throw MMLError(.invalidArgument, "--seed-index and --seed-initial-weights go with --seeds (a list of "
                               + "training seeds)")
            }
            return nil
        }
        if training.seed != nil {
            throw MMLError(.invalidArgument, "give --seed (one run) or --seeds (one run per seed), not both")
        }
        if seedInitialWeights && backboneOptions.initSeed != nil {
            throw MMLError(.invalidArgument, "--seed-initial-weights sets the initial weights' seed to each training "
                           + "seed; drop --init-seed, or drop --seed-initial-weights to start every seed from it")
        }
        let list = try SeedStudy.parse(seeds)
        var index = seedIndex
        if index == nil, let i = try SeedStudy.indexFromSLURM(environment: ProcessInfo.processInfo.environment,
                                                              seeds: list) {
            printError("note: seed index \(i) (seed \(list[i])) from SLURM_ARRAY_TASK_ID (give --seed-index to override)")
            index = i
        }
        return SeedTrainingRunConfiguration(run: try runConfiguration(), seeds: list, seedIndex: index,
                                            seedInitialWeights: seedInitialWeights)
    }

    /// `--seeds`: every selected seed's run, its summary lines and, with `--plot`, its curves.
    private func runSeeds(_ study: SeedTrainingRunConfiguration) throws {
        Launch.checkSplit(study.run)
        let printer = EpisodicRunPrinter(study.run, verbose: true)
        let run = try SeedTrainingRun(study)
        run.group = Launch.group
        run.stop = Signals.stop
        run.profile = profile ? PhaseProfile() : nil
        Signals.install("finishing the current optimiser step, then saving the seed's last.safetensors")
        let result = try run.run(events: Launch.isLeader ? printer.print : { _ in })
        if Launch.isLeader, let p = run.profile { try Self.report(p, out: out) }
        if result.stopped, let last = result.seeds.last?.result { Self.stopped(last, out: out) }
        guard Launch.isLeader else { return }
        for s in result.seeds {
            print("seed \(s.seed)")
            guard let r = s.result else { print("    finished earlier: \(s.directory) (skipped)"); continue }
            printer.finish(r, out: s.directory)
            if let plot {
                let path = Self.seedPlotPath(plot, seed: s.seed)
                try TrainingPlot.write(logPath: r.log, to: path)
                print("plot        \(path)")
            }
        }
        print("seeds       \(result.summary)")
    }

    /// `--profile`: the table of phases (stdout) and `OUT/profile.json`. Printed for a stopped run too (the time of
    /// the episodes trained by this process so far).
    static func report(_ profile: PhaseProfile, out: String) throws {
        let rows = profile.rows
        print(String(format: "profile     wall time per phase over %d training episodes of this process "
                     + "(%.1f s measured; rank 0 under mpirun):", profile.episodes, profile.totalSeconds))
        print("            " + "phase".padding(toLength: 22, withPad: " ", startingAt: 0)
              + "     seconds   ms/episode    share")
        for r in rows {
            print("            " + r.phase.rawValue.padding(toLength: 22, withPad: " ", startingAt: 0)
                  + String(format: " %11.2f %12.2f %7.1f%%", r.seconds, r.perEpisodeMilliseconds, r.share * 100))
        }
        let path = URL(fileURLWithPath: out).appendingPathComponent("profile.json").path
        try AtomicFile.write(try ConfigurationJSON.text(profile.report) + "\n", to: path)
        print("            written to \(path)")
        fflush(stdout)
    }

    /// `--plot` of one seed: `curves.svg` -> `curves-seed-3.svg`.
    static func seedPlotPath(_ plot: String, seed: UInt64) -> String {
        let url = URL(fileURLWithPath: plot), ext = url.pathExtension
        let stem = ext.isEmpty ? plot : String(plot.dropLast(ext.count + 1))
        return stem + "-seed-\(seed)" + (ext.isEmpty ? "" : "." + ext)
    }

    /// The run these options give: the `--config` file's settings (else the defaults) with every given flag applied.
    /// - Throws: `MMLError` for an unreadable `--config` file or invalid options.
    func runConfiguration() throws -> EpisodicTrainingRunConfiguration {
        var c = EpisodicTrainingRunConfiguration(dataset: dataset.source, out: out, resume: resume, initFrom: initFrom,
                                                 threads: Launch.threads(threads), stopAfter: stopAfter)
        let saved = try config.map { try SavedEpisodicSettings(contentsOf: $0) }
        if let saved { (c.image, c.backbone, c.training) = (saved.image, saved.backbone, saved.training) }
        try training.apply(to: &c)
        c.image = try image.settings(over: c.image)
        c.backbone = try backboneOptions.settings(over: c.backbone)
        c.metric = try metric.configuration(over: saved?.metric ?? MetricConfiguration(), way: c.training.way)
        return c
    }
}

extension ImageOptions {
    /// `base` with the given image flags applied.
    func settings(over base: ImageSettings) throws -> ImageSettings {
        let given = try settings()
        var p = base.preprocessing ?? Preprocessing()
        if let g = given.preprocessing {
            p.ink = g.ink ?? p.ink
            p.resizeFilter = g.resizeFilter ?? p.resizeFilter
            p.mean = g.mean ?? p.mean
            p.std = g.std ?? p.std
        }
        return ImageSettings(size: given.size ?? base.size, channels: given.channels ?? base.channels,
                             augmentation: augment == nil ? base.augmentation : given.augmentation,
                             preprocessing: p.isEmpty ? nil : p)
    }
}

extension BackboneOptions {
    /// `base` with the given backbone flags applied.
    func settings(over base: BackboneSettings) throws -> BackboneSettings {
        let given = try settings()
        return BackboneSettings(kind: given.kind ?? base.kind, widths: given.widths ?? base.widths,
                                initialization: given.initialization ?? base.initialization,
                                seed: given.seed ?? base.seed)
    }
}

/// The lines of an episodic run: a progress bar on a terminal (stderr), plain lines every log window otherwise,
/// the facts before training and the summary after (stdout; only the progress bar when not `verbose`).
final class EpisodicRunPrinter {
    let verbose: Bool
    let total: Int, epochs: Int
    let progress: ProgressLine
    var startElapsed = 0.0, startDone = 0
    var windowLoss = 0.0, windowAcc = 0.0

    init(_ configuration: EpisodicTrainingRunConfiguration, verbose: Bool) {
        let t = configuration.effectiveTraining
        self.verbose = verbose
        total = t.totalEpisodes
        epochs = t.epochs
        progress = ProgressLine(plainEvery: max(t.logEvery, 1))
    }

    func print(_ event: RunEvent) {
        switch event {
        case .note(let text):
            if verbose { Swift.print(text) }
        case .started(_, let facts):
            guard verbose else { return }
            for (key, value) in facts { Swift.print(key.padding(toLength: 12, withPad: " ", startingAt: 0) + value) }
        case .training(let e):
            training(e)
        case .warning(let text):
            warn(text)
        case .progress, .wrote, .supervised, .evaluated, .ablationSubsetStarted, .ablationSubsetTrained:
            break
        }
    }

    private func training(_ event: TrainingEvent) {
        switch event {
        case .begin(let episode, let elapsed):
            (startDone, startElapsed) = (episode, elapsed)
        case .episode(let i, let epoch, _, _, let rate, let elapsed):
            guard progress.isTTY else { return }
            let done = i + 1
            let rateEps = Double(done - startDone) / max(elapsed - startElapsed, 1e-9)
            progress.update(done: done, total: total, text: String(
                format: "epoch %d/%d loss %.3f acc %.1f%% lr %.2g %.1f ep/s ETA %@", epoch + 1, epochs,
                windowLoss, windowAcc * 100, rate, rateEps, formatDuration(Double(total - done) / max(rateEps, 1e-9))))
        case .log(let e, let epoch, let loss, let acc, let rate, let elapsed):
            windowLoss = loss; windowAcc = acc
            if !progress.isTTY && verbose {
                let rateEps = Double(e - startDone) / max(elapsed - startElapsed, 1e-9)
                Swift.print(String(format: "episode %d/%d epoch %d loss %.4f acc %.2f%% lr %.3g %.2f ep/s ETA %@",
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
                Swift.print(String(format: "epoch %d validation %.2f +- %.2f%% (%@)%@", r.epoch, r.accuracy * 100,
                                   r.ci95 * 100, lv, isBest ? " best" : ""))
            } else {
                Swift.print("epoch \(r.epoch) done")
            }
            fflush(stdout)
        case .checkpoint:
            break
        }
    }

    /// The summary lines after the run.
    func finish(_ result: EpisodicTrainingRunResult, out: String) {
        guard verbose else { return }
        let s = result.state
        Swift.print(String(format: "trained     %d episodes in %@ (%.2f episodes/s)", s.episodesDone,
                           formatDuration(s.elapsedSeconds), Double(s.episodesDone) / max(s.elapsedSeconds, 1e-9)))
        if let b = s.bestValidation, let e = s.bestEpoch {
            Swift.print(String(format: "best        epoch %d, validation %.2f%% -> %@/best.safetensors", e, b * 100, out))
        }
        Swift.print("checkpoint  \(out)/last.safetensors; log \(out)/log.jsonl")
        if let x = result.exchange, x.steps > 0 {
            let steps = Double(x.steps)
            Swift.print(String(format: "exchange    %d steps: %.0f bytes gathered per step (%.0f sent by rank 0), "
                               + "%.3f ms exchange and %.3f ms compute per step on rank 0", x.steps,
                               Double(x.bytesGathered) / steps, Double(x.bytesSent) / steps,
                               x.seconds * 1e3 / steps, x.computeSeconds * 1e3 / steps))
        }
    }
}
