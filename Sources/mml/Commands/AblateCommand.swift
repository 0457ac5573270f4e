import ArgumentParser
import Foundation
import MMLCore

/// `mml ablate`: every non-empty subset of the three levels on identical episodes.
struct AblateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ablate",
        abstract: "Accuracy of every subset of the metric levels on identical episodes, with paired differences.",
        discussion: """
            From one trained model (--checkpoint): each level's scores are computed once per episode; each subset's \
            learned fusion is re-fitted on --refit-episodes validation episodes (frozen backbone and heads), then \
            evaluated on the test episodes. With --retrain: one model per subset, trained with the training flags \
            into --out/retrain-<levels>. Writes ablation.md, ablation.json, ablation.svg and the per-episode \
            results episodes.jsonl into --out.

            --shard i/n (or a SLURM job array) evaluates every n-th test episode (each shard re-fits the fusion \
            identically) and writes only its per-episode file; `mml ablate merge DIR...` writes the table of all \
            shards, equal in every number to an unsharded run.

            Training seeds: repeat --checkpoint (one per seed) or give the --out directory of mml train --seeds: \
            each seed is ablated on the same test episodes into --out/seed-<s>/, and --out/ablation.md, .json and \
            .svg combine them: per subset the mean over seeds with a 95% interval across seeds (Student t, n-1 \
            degrees of freedom), the seeds' values and the pooled per-episode interval; the differences to the full \
            set are paired per seed (per episode within a seed), then combined across seeds (docs/STATISTICS.md). \
            Sharded: each seed's shard file goes to --out/seed-<s>/, and `mml ablate merge OUT` combines them.

            --precision bf16 (or bf16amx) scores the refit and test episodes with the pixel and part levels' \
            similarities in bf16 (as mml eval --precision; --retrain's training stays fp32).
            """
    )

    @Option(help: ArgumentHelp("A trained checkpoint (mml train). Not used with --retrain.",
                               discussion: "Repeat it for several training seeds' models, or give the --out directory of mml train --seeds."))
    var checkpoint: [String] = []
    @OptionGroup var dataset: DatasetOptions
    @Option(help: "Validation split for the fusion refit.") var refitSplit = "val"
    @Option(help: "Validation episodes for the fusion refit.") var refitEpisodes = 200
    @Option(help: "Classes per test episode.") var way = 5
    @Option(help: "Support images per class in test episodes.") var shot = 1
    @Option(help: "Query images per class.") var query = 15
    @Option(help: "Test episodes.") var episodes = 600
    @Option(help: "Seed of the test episodes.") var seed: UInt64 = 0
    @Option(help: "Output directory for ablation.md / .json / .svg.") var out = "runs/ablation"
    @Option(help: "Threads for the kernels (0: all cores).") var threads = 0
    @Option(help: "The pixel and part levels' similarity arithmetic when scoring episodes: fp32, bf16 or bf16amx (see mml eval).")
    var precision = "fp32"
    @Flag(help: "Train one model per subset instead of re-fitting the fusion of one model.") var retrain = false
    @OptionGroup var backboneOptions: BackboneOptions
    @OptionGroup var image: ImageOptions
    @OptionGroup var metric: MetricOptions
    @OptionGroup var training: TrainingOptions
    @OptionGroup var sharding: ShardOptions

    func run() throws {
        try runReportingErrors { try Signals.stoppable("ablate") {
            if !retrain, !(try image.preprocessingOptions.preprocessing()).isEmpty {
                throw MMLError(.invalidArgument, "--ink, --resize-filter, --mean and --std set how --retrain's models "
                               + "are trained; without --retrain the checkpoint's own preprocessing is used (set it "
                               + "when training or importing the model)")
            }
            // Without --retrain the model is the checkpoint's: model and training flags cannot apply.
            let modelFlags = backboneOptions.givenFlags + image.givenFlags + metric.givenFlags + training.givenFlags
            if !retrain, !modelFlags.isEmpty {
                throw MMLError(.invalidArgument, modelFlags.joined(separator: ", ") + " cannot apply to the ablation "
                               + "of --checkpoint: its backbone, image size, metric and training are the checkpoint's "
                               + "(the test episodes use --way, --shot, --query, --episodes and --seed); drop "
                               + (modelFlags.count == 1 ? "it" : "them") + ", or train one model per subset with "
                               + "--retrain")
            }
            if checkpoint.count > 1 || checkpoint.contains(where: SeedStudySummary.isDirectory) {
                if retrain {
                    throw MMLError(.invalidArgument, "--retrain trains its own models: it takes no --checkpoint per "
                                   + "training seed (run one --retrain ablation per --seed instead)")
                }
                return try runSeeds()
            }
            let shard = try sharding.resolvedShard()
            let config = AblationRunConfiguration(
                checkpoint: checkpoint.first, dataset: dataset.source, refitSplit: refitSplit, refitEpisodes: refitEpisodes,
                way: way, shot: shot, query: query, episodes: episodes, seed: seed, out: out, threads: threads,
                retrain: retrain, retraining: retrain ? try retraining() : nil, shard: shard,
                episodesOut: sharding.episodesPath(shard: shard), precision: try SimilarityPrecision.parse(precision))
            var progress: (phase: String, line: ProgressLine)?
            var printer: EpisodicRunPrinter?
            let run = try AblationRun(config, naming: FlagNames.flag)
            run.stop = Signals.stop
            Signals.install(retrain ? "finishing the current optimiser step or episode, then stopping (a subset's "
                            + "training is saved; the same command resumes it)"
                            : "finishing the current episode, then stopping (no report is written)")
            let result = try run.run { event in
                switch event {
                case .progress(let phase, let done, let total):
                    if progress?.phase != phase { progress = (phase, ProgressLine(plainEvery: 200)) }
                    progress!.line.update(done: done, total: total, text: phase)
                    if done == total { progress!.line.finish() }
                case .ablationSubsetStarted(let levels, let dir, let reused):
                    printer = config.retraining.map { EpisodicRunPrinter($0, verbose: false) }
                    print("\(AblationRow.name(levels)): " + (reused ? "using the finished run in \(dir)" : "training into \(dir)"))
                case .ablationSubsetTrained(_, let episodes, let seconds):
                    print(String(format: "    %d episodes in %@", episodes, formatDuration(seconds)))
                case .training: printer?.print(event)
                case .warning(let text): warn(text)
                default: break
                }
            }
            if let shard {
                print("shard \(shard): \(result.episodes) of \(episodes) test episodes; wrote \(config.episodesPath)")
                print("make the table of all shards with: mml ablate merge \(config.out)")
            } else {
                print(result.markdown)
                if !result.conclusion.isEmpty { print("What the ablation shows: " + result.conclusion) }
                print("wrote \(config.outputPath("ablation.md")), ablation.json, ablation.svg, \(config.episodesPath)")
            }
        } }
    }

    /// Every training seed's checkpoint ablated on the same test episodes, combined (`SeedAblationRun`).
    private func runSeeds() throws {
        let checkpoints = try SeedCheckpoint.resolve(checkpoint)
        let shard = try sharding.resolvedShard()
        let ablation = AblationRunConfiguration(
            checkpoint: checkpoints[0].path, dataset: dataset.source, refitSplit: refitSplit,
            refitEpisodes: refitEpisodes, way: way, shot: shot, query: query, episodes: episodes, seed: seed, out: out,
            threads: threads, shard: shard, episodesOut: sharding.episodesOut,
            precision: try SimilarityPrecision.parse(precision))
        var progress: (phase: String, line: ProgressLine)?
        let run = try SeedAblationRun(SeedAblationRunConfiguration(ablation: ablation, checkpoints: checkpoints),
                                      naming: FlagNames.flag)
        run.stop = Signals.stop
        Signals.install("finishing the current episode, then stopping (no table is written)")
        let result = try run.run { event in
            switch event {
            case .note(let text): print(text)
            case .warning(let text): printError("warning: \(text)")
            case .progress(let phase, let done, let total):
                if progress?.phase != phase { progress = (phase, ProgressLine(plainEvery: 200)) }
                progress!.line.update(done: done, total: total, text: phase)
                if done == total { progress!.line.finish() }
            case .wrote(let path, let what): print("wrote \(path) (\(what))")
            default: break
            }
        }
        if let shard {
            print("shard \(shard) of \(result.seeds.count) seed(s); make the table of all shards with: "
                  + "mml ablate merge \(out)")
        } else {
            print(result.markdown)
        }
    }

    /// How `--retrain` trains each subset's model: as `mml train` does, with the training flags.
    func retraining() throws -> EpisodicTrainingRunConfiguration {
        var c = EpisodicTrainingRunConfiguration(dataset: dataset.source, image: try image.settings(),
                                                 backbone: try backboneOptions.settings(),
                                                 metric: try metric.configuration(way: training.way), threads: threads)
        try training.apply(to: &c)
        return c
    }
}

/// `mml ablate merge`: the table of all shards of one sharded `mml ablate` run.
struct AblateMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mml ablate merge",
        abstract: "Merge the per-episode files of a sharded mml ablate into its table (equal to an unsharded run's).",
        discussion: """
            Checks that the files come from one run (same checkpoint, data, settings, seed and re-fitted weights), \
            that every shard is there once and every episode once, then writes ablation.md, ablation.json, \
            ablation.svg and the merged episodes.jsonl into --out (default: the first input's directory).
            """
    )

    @Argument(help: "Per-episode files of the shards, or directories holding them.") var inputs: [String]
    @Option(help: "Output directory (default: the first input if a directory, else the first file's directory).")
    var out: String?

    func run() throws {
        try runReportingErrors {
            if inputs.count == 1, SeedEpisodeDirectories.holdsSeeds(inputs[0]) {
                let result = try SeedAblationRun.merge(inputs[0], out: out ?? inputs[0]) { event in
                    if case .wrote(let path, let what) = event { print("wrote \(path) (\(what))") }
                }
                print(result.markdown)
                return
            }
            let (result, file) = try AblationRunResult.merged(inputs)
            let dir = out ?? Self.defaultOut(inputs.first ?? ".")
            try result.writeFiles(into: dir) { _ in }
            let merged = URL(fileURLWithPath: dir).appendingPathComponent("episodes.jsonl").path
            try file.write(to: merged)
            print(result.markdown)
            if !result.conclusion.isEmpty { print("What the ablation shows: " + result.conclusion) }
            print("wrote \(URL(fileURLWithPath: dir).appendingPathComponent("ablation.md").path), ablation.json, "
                  + "ablation.svg, \(merged)")
        }
    }

    static func defaultOut(_ input: String) -> String {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: input, isDirectory: &isDir), isDir.boolValue { return input }
        return URL(fileURLWithPath: input).deletingLastPathComponent().path
    }
}
