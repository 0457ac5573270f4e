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

            Clusters: --shard i/n (or a SLURM job array) evaluates every n-th episode and writes its per-episode \
            results with --episodes-out; `mml eval merge DIR...` makes the report of all shards, equal in every \
            number to an unsharded run (timing: the shards' summed time). Any run can write --episodes-out; \
            `mml compare A B` pairs two such files episode by episode.
            """
    )

    @Option(help: "The checkpoint (.safetensors written by mml train, mml pretrain or mml train-embedding).")
    var checkpoint: String
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
    @Flag(help: "Print a JSON report on standard output (for harnesses).") var json = false
    @Option(help: "Also write the JSON report to this file.") var report: String?
    @OptionGroup var sharding: ShardOptions

    func run() throws {
        try runReportingErrors { try Signals.stoppable("eval") {
            if let report { try OutputCheck.prepare(file: report, field: "report") }  // checks before work
            let loaded = try Checkpoint.load(checkpoint, threads: threads)  // its errors come first, as they always have
            let shard = try sharding.resolvedShard()
            let config = EvaluationRunConfiguration(
                checkpoint: checkpoint, dataset: dataset.source,
                evaluationProtocol: try protocolName.map(EvaluationProtocol.parse), cosineClassifier: classifier.settings,
                ways: try parseIntList(way, option: "--way"), shots: try parseIntList(shot, option: "--shot"),
                query: query, episodes: episodes, seed: seed, episodeList: episodeList, threads: threads,
                shard: shard, episodesOut: sharding.episodesPath(shard: shard),
                preprocessing: try preprocessingOptions.preprocessing())
            var progress = ProgressLine(plainEvery: 100)
            let run = try EvaluationRun(config, checkpoint: loaded)
            run.stop = Signals.stop
            Signals.install("finishing the current episode, then stopping (no report or per-episode file is written)")
            let result = try run.run { event in
                switch event {
                case .progress(_, let done, let total):
                    if !json { progress.update(done: done, total: total, text: "episodes") }
                case .evaluated(let setting):
                    progress.finish()
                    progress = ProgressLine(plainEvery: 100)
                    if !json { Self.render(setting) }
                case .started(_, let facts):
                    if !json { for f in facts { Self.render(fact: f.key, f.value) } }
                    if !json, let shard {
                        Self.render(fact: "shard", "\(shard): the episodes at positions p with p % \(shard.count) == "
                                    + "\(shard.index)")
                    }
                case .wrote(let path, let what):
                    if !json { print("wrote \(path) (\(what))") }
                case .warning(let text): warn(text)
                default: break
                }
            }
            let text = try result.jsonText()
            if json { print(text) }
            if let report { try AtomicFile.write(text + "\n", to: report) }
        } }
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
            """
    )

    @Argument(help: "Per-episode files of the shards, or directories holding them.") var inputs: [String]
    @Flag(help: "Print the JSON report on standard output.") var json = false
    @Option(help: "Also write the JSON report to this file.") var report: String?
    @Option(help: "Also write the merged per-episode file (one file for mml compare).") var episodesOut: String?

    func run() throws {
        try runReportingErrors {
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
