import ArgumentParser
import Foundation
import MMLCore

/// `mml eval`: few-shot accuracy of a checkpoint on episodes of a split, fused and per level (metric protocol) or
/// with a frozen-feature protocol, with 95% intervals.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint on few-shot episodes: mean accuracy +- 95% CI (fused and per level, or frozen features).",
        discussion: """
            Episodes are a pure function of (--seed, index): the same seed gives the same episodes for every \
            checkpoint, level set and protocol. --way and --shot take comma-separated lists (e.g. --way 5,20 \
            --shot 1,5) to evaluate every combination in one run.

            --protocol metric (the default for checkpoints of mml train) scores episodes with the checkpoint's \
            multi-level metric and reports fused and per-level accuracy. The frozen-feature protocols (the default \
            `prototype` for checkpoints without a metric: mml pretrain, mml train-embedding) use only the backbone's \
            globally average-pooled features (for embedding checkpoints: the trained embedding, with its linear \
            layer and L2 normalisation) and report one accuracy, no per-level scores: `prototype` is the cosine of \
            each query to the class means of the support features; `cosine-classifier` is the official \
            negative-margin protocol, a fresh cosine classifier per episode trained on the support features (SGD \
            lr 0.01, momentum 0.9, dampening 0.9, weight decay 1e-3, 100 passes in mini-batches of 4, s = 5; the \
            --classifier-* options change these); `protonet` is Prototypical Networks' head, the squared Euclidean \
            distance of each query's flattened feature map to the class means.

            --ink, --resize-filter, --mean and --std override the preprocessing the checkpoint was trained or \
            imported with (its configuration records it).

            --precision bf16 (metric protocol) computes the pixel and part levels' similarities from descriptors \
            rounded to bf16 with fp32 sums (AVX512-BF16 VDPBF16PS; on a CPU without it a portable path with the \
            same bits, much slower, with a warning). Opt-in, fp32 is the default: on a trained Omniglot model bf16 \
            changed 0.013% or less of the fused predictions, but it is slower than fp32 on Intel CPUs (README, "bf16 \
            similarity in evaluation"). --precision bf16amx rounds the same way but sums in Intel AMX's order \
            (TDPBF16PS tiles where the CPU and OS allow it, else a portable path with the same bits): the fast one on \
            Intel CPUs with AMX; its results differ from bf16's in the last bits.

            Clusters: --shard i/n (or a SLURM job array) evaluates every n-th episode and writes its per-episode \
            results with --episodes-out; `mml eval merge DIR...` makes the report of all shards, equal in every \
            number to an unsharded run (timing: the shards' summed time). Any run can write --episodes-out; \
            `mml compare A B` pairs two such files episode by episode.

            Training seeds: repeat --checkpoint (one per training seed) or give the --out directory of mml train \
            --seeds: every seed's model is evaluated on the same episodes (--seed fixes them) and each setting \
            reports the mean over seeds with a 95% interval across seeds (Student t, n-1 degrees of freedom; none \
            with one seed) next to the pooled per-episode interval, per level too (docs/STATISTICS.md). --plot \
            draws each seed and the mean with its interval. With --episodes-out DIR each seed's file goes to \
            DIR/seed-<s>/, and `mml eval merge DIR` combines sharded seeds.
            """
    )

    @Option(help: ArgumentHelp("The checkpoint (.safetensors written by mml train, mml pretrain or mml train-embedding).",
                               discussion: "Repeat it for several training seeds' models, or give the --out directory of mml train --seeds."))
    var checkpoint: [String]
    @OptionGroup var dataset: DatasetOptions
    @Option(name: .customLong("protocol"),
            help: "metric, prototype, cosine-classifier or protonet (default: metric when the checkpoint has a metric, else prototype).")
    var protocolName: String?
    @OptionGroup(title: "Preprocessing (default: the checkpoint's own)") var preprocessingOptions: PreprocessingOptions
    @OptionGroup var classifier: CosineClassifierOptions
    @Option(help: "Classes per episode (a comma-separated list evaluates each).") var way = "5"
    @Option(help: "Support images per class (a comma-separated list evaluates each).") var shot = "1"
    @Option(help: "Query images per class.") var query = 15
    @Option(help: "Number of episodes.") var episodes = 600
    @Option(help: "Seed of the episodes.") var seed: UInt64 = 0
    @Option(help: "Evaluate the episodes of this list file (from `mml data episodes`) instead of sampling.")
    var episodeList: String?
    @Option(help: "Threads for the kernels (0: all cores).") var threads = 0
    @Option(help: "The pixel and part levels' similarity arithmetic in evaluation: fp32, bf16 or bf16amx (metric protocol; see the README).")
    var precision = "fp32"
    @Flag(help: "Print a JSON report on standard output (for harnesses).") var json = false
    @Option(help: "Also write the JSON report to this file.") var report: String?
    @OptionGroup var sharding: ShardOptions
    @Option(help: "Over training seeds: write a chart of each seed's accuracy and the mean with its interval (SVG).")
    var plot: String?

    func run() throws {
        try runReportingErrors { try Signals.stoppable("eval") {
            if let report { try OutputCheck.prepare(file: report, field: "report") }  // checks before work
            if checkpoint.count > 1 || checkpoint.contains(where: SeedStudySummary.isDirectory) {
                if let plot { try OutputCheck.prepare(file: plot, field: "plot") }
                return try runSeeds()
            }
            if plot != nil {
                throw MMLError(.invalidArgument, "--plot draws the spread over training seeds: give several "
                               + "--checkpoint (one per seed) or a study directory of mml train --seeds")
            }
            guard let checkpoint = self.checkpoint.first else {
                throw MMLError(.invalidArgument, "give --checkpoint: the checkpoint to evaluate")
            }
            let loaded = try Checkpoint.load(checkpoint, threads: threads)  // its errors come first, as they always have
            let config = try configuration(checkpoint: checkpoint)
            let shard = config.shard
            let printer = EvaluationPrinter(json: json)
            let run = try EvaluationRun(config, checkpoint: loaded)
            run.stop = Signals.stop
            Signals.install("finishing the current episode, then stopping (no report or per-episode file is written)")
            let result = try run.run { event in
                if printer.print(event) { return }
                switch event {
                case .started(_, let facts):
                    if !json { for f in facts { Self.render(fact: f.key, f.value) } }
                    if !json, let shard {
                        Self.render(fact: "shard", "\(shard): the episodes at positions p with p % \(shard.count) == "
                                    + "\(shard.index)")
                    }
                case .warning(let text): warn(text)
                default: break
                }
            }
            let text = try result.jsonText()
            if json { print(text) }
            if let report { try AtomicFile.write(text + "\n", to: report) }
        } }
    }

    /// Every training seed's checkpoint on the same episodes, combined (`SeedEvaluationRun`).
    private func runSeeds() throws {
        let checkpoints = try SeedCheckpoint.resolve(checkpoint)
        var evaluation = try configuration(checkpoint: checkpoints[0].path)
        // A directory that gets one subdirectory per seed.
        evaluation.episodesOut = sharding.episodesOut
        let config = SeedEvaluationRunConfiguration(evaluation: evaluation, checkpoints: checkpoints)
        let printer = EvaluationPrinter(json: json)
        let run = try SeedEvaluationRun(config)
        run.stop = Signals.stop
        Signals.install("finishing the current episode, then stopping (no report or per-episode file is written)")
        let result = try run.run { event in
            if printer.print(event) { return }
            switch event {
            case .note(let text):
                if !json { print(text) }
            case .warning(let text):
                printError("warning: \(text)")
            default: break
            }
        }
        try Self.finish(result, json: json, report: report, plot: plot)
    }

    /// Prints (or writes) the report over seeds: the combined table, or the JSON, the report file and the chart.
    static func finish(_ result: SeedEvaluationRunResult, json: Bool, report: String?, plot: String?) throws {
        if !json { renderSeeds(result) }
        let text = try result.jsonText()
        if json { print(text) }
        if let report { try AtomicFile.write(text + "\n", to: report) }
        if let plot {
            try AtomicFile.write(result.svg, to: plot)
            if !json { print("wrote \(plot) (accuracy over seeds, chart)") }
        }
    }

    /// The evaluation of one checkpoint these options give. - Throws: `MMLError` for bad options.
    func configuration(checkpoint: String) throws -> EvaluationRunConfiguration {
        let shard = try sharding.resolvedShard()
        return EvaluationRunConfiguration(
            checkpoint: checkpoint, dataset: dataset.source,
            evaluationProtocol: try protocolName.map(EvaluationProtocol.parse), cosineClassifier: classifier.settings,
            ways: try parseIntList(way, option: "--way"), shots: try parseIntList(shot, option: "--shot"),
            query: query, episodes: episodes, seed: seed, episodeList: episodeList, threads: threads,
            shard: shard, episodesOut: sharding.episodesPath(shard: shard),
            preprocessing: try preprocessingOptions.preprocessing(), precision: try SimilarityPrecision.parse(precision))
    }

    /// The combined lines over seeds: per setting the mean across seeds with its t interval and the seeds' values,
    /// the pooled per-episode figure, and the same per level.
    static func renderSeeds(_ r: SeedEvaluationRunResult) {
        let n = r.seeds.count
        print("over \(n) training seed(s) (\(r.labels.joined(separator: ", "))), each on the same episodes; "
              + (n > 1 ? "intervals across seeds: mean +- t(0.975, \(n - 1) df) x std / sqrt(\(n))"
                       : "one seed: no interval across seeds (the spread between training runs is unknown)"))
        if let note = r.kernelPathNote { print(note) }
        for s in r.results {
            print(String(format: "%d-way %d-shot, %d queries, %d episodes per seed (seed %llu):", s.way, s.shot,
                         s.query, s.episodes, s.seed))
            func line(_ name: String, _ a: SeedSummary, _ p: EvaluationRunResult.Summary) {
                print("    " + name.padding(toLength: 13, withPad: " ", startingAt: 0) + " \(a.percentString)% across "
                      + "seeds (\(a.perSeedPercentString)); pooled episodes \(p.percentString)% (\(p.episodes))")
            }
            line(s.evaluationProtocol == .metric ? "fused" : s.evaluationProtocol.rawValue, s.accuracy, s.pooled)
            for l in s.orderedLevels { line(l.level.rawValue, l.acrossSeeds, l.pooled) }
        }
    }

    /// A fact line of the run's start (`checkpoint`, `data`, `protocol`).
    static func render(fact key: String, _ value: String) {
        print(key.padding(toLength: 12, withPad: " ", startingAt: 0) + value)
    }

    /// The lines of one evaluated setting.
    static func render(_ s: EvaluationRunResult.Setting) {
        let head = String(format: "%d-way %d-shot, %d queries, %d episodes (seed %llu): ", s.way, s.shot, s.query,
                          s.episodes, s.seed)
        guard s.evaluationProtocol == .metric else {
            print(head + String(format: "%@ %@%%  (%.2f episodes/s)", s.evaluationProtocol.rawValue,
                                s.accuracy.percentString, s.episodesPerSecond))
            return
        }
        print(head + String(format: "fused %@%%  (%.2f episodes/s)", s.accuracy.percentString, s.episodesPerSecond))
        for (l, summary) in s.orderedLevels {
            print("    \(l.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0)) \(summary.percentString)%")
        }
    }
}

/// `mml eval merge`: the report of all shards of one sharded `mml eval` run.
struct EvalMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mml eval merge",
        abstract: "Merge the per-episode files of a sharded mml eval into its report (equal to an unsharded run's).",
        discussion: """
            Takes the shards' files (or directories holding episodes*.jsonl), checks that they come from one run \
            (same checkpoint, data, protocol, settings and seed), that every shard 0..<n is there once and every \
            episode once, and prints the report exactly as an unsharded mml eval does; every accuracy and interval \
            is equal, the episodes/s figure is over the shards' summed time.

            Over training seeds: a directory of seed-<s>/ subdirectories (mml eval --checkpoint STUDY \
            --episodes-out DIR), or report files (.json, mml eval --report) of one training seed each (or over \
            seeds), evaluated on the same episodes anywhere (one array task or one day per seed): the combined \
            report over seeds, as mml eval over all the checkpoints prints it.
            """
    )

    @Argument(help: "Per-episode files of the shards, or directories holding them; or report files (.json) of training seeds.")
    var inputs: [String]
    @Flag(help: "Print the JSON report on standard output.") var json = false
    @Option(help: "Also write the JSON report to this file.") var report: String?
    @Option(help: "Also write the merged per-episode file (one file for mml compare).") var episodesOut: String?

    @Option(help: "Over training seeds (a directory of seed-<s>/ subdirectories, or report files): write the chart of the seeds (SVG).")
    var plot: String?

    func run() throws {
        try runReportingErrors {
            if inputs.allSatisfy({ $0.hasSuffix(".json") }) {
                if episodesOut != nil {
                    throw MMLError(.invalidArgument, "--episodes-out writes merged per-episode files; report files "
                                   + "(.json) hold none: merge the per-episode files (--episodes-out of mml eval) "
                                   + "to get one")
                }
                let result = try SeedEvaluationRunResult(reports: inputs)
                printError("combined \(inputs.count) report file(s): \(result.seeds.count) training seed(s)")
                return try EvalCommand.finish(result, json: json, report: report, plot: plot)
            }
            if inputs.count == 1, SeedEpisodeDirectories.holdsSeeds(inputs[0]) {
                if episodesOut != nil {
                    throw MMLError(.invalidArgument, "--episodes-out writes one run's merged file; over seeds each "
                                   + "seed-<s>/ directory is its own run: merge one of them to get its file")
                }
                let result = try SeedEvaluationRun.merged(inputs[0])
                printError("merged the per-episode files of \(result.seeds.count) training seed(s)")
                return try EvalCommand.finish(result, json: json, report: report, plot: plot)
            }
            if plot != nil {
                throw MMLError(.invalidArgument, "--plot draws the spread over training seeds: give a directory of "
                               + "seed-<s>/ subdirectories (mml eval --checkpoint ... --episodes-out DIR)")
            }
            let (result, file) = try EvaluationRunResult.merged(inputs)
            printError("merged \(file.records.count) episodes of \(file.header.settings.count) setting(s)")
            if !json {
                for f in file.header.facts where f.count == 2 { EvalCommand.render(fact: f[0], f[1]) }
                for s in result.results { EvalCommand.render(s) }
            }
            let text = try result.jsonText()
            if json { print(text) }
            if let report { try AtomicFile.write(text + "\n", to: report) }
            if let episodesOut {
                let path = EpisodeFileFormat.outputPath(episodesOut, shard: nil)
                try file.write(to: path)
                if !json { print("wrote \(path) (per-episode results)") }
            }
        }
    }
}

/// The lines both evaluation paths (one checkpoint, or one per training seed) print for progress, a finished setting
/// and a written file; with `--json` only the progress line is kept quiet and nothing else prints.
final class EvaluationPrinter {
    let json: Bool
    var progress = ProgressLine(plainEvery: 100)

    init(json: Bool) { self.json = json }

    /// Prints `event` when it is one of those three kinds; false for any other event.
    func print(_ event: RunEvent) -> Bool {
        switch event {
        case .progress(_, let done, let total):
            if !json { progress.update(done: done, total: total, text: "episodes") }
        case .evaluated(let setting):
            progress.finish()
            progress = ProgressLine(plainEvery: 100)
            if !json { EvalCommand.render(setting) }
        case .wrote(let path, let what):
            if !json { Swift.print("wrote \(path) (\(what))") }
        default:
            return false
        }
        return true
    }
}
