import ArgumentParser
import Foundation
import MMLCore

/// How `mml eval` scores an episode: the checkpoint's own multi-level metric, or a frozen-feature protocol.
enum EvalProtocol: String, CaseIterable {
    /// The checkpoint's metric: fused and per-level scores (episodic MML checkpoints only).
    case metric
    /// Frozen backbone features, cosine of each query to the class means of the support features.
    case prototype
    /// Frozen backbone features, a fresh cosine classifier trained per episode on the support features.
    case cosineClassifier = "cosine-classifier"

    var frozen: FrozenFeatureProtocol? {
        switch self {
        case .metric: return nil
        case .prototype: return .prototype
        case .cosineClassifier: return .cosineClassifier
        }
    }

    /// "metric, prototype or cosine-classifier".
    static var list: String {
        let names = allCases.map(\.rawValue)
        return names.dropLast().joined(separator: ", ") + " or " + names.last!
    }

    /// The protocol `--protocol` names for a checkpoint whose configuration is `model`; nil `name` picks the
    /// default (metric when the checkpoint has one, else prototype).
    /// - Throws: `MMLError(.invalidArgument)` for an unknown name, or `metric` on a checkpoint without a metric.
    static func resolve(_ name: String?, model: ModelConfiguration, checkpoint: String) throws -> EvalProtocol {
        guard let name else { return model.metric == nil ? .prototype : .metric }
        guard let p = EvalProtocol(rawValue: name) else {
            throw MMLError(.invalidArgument, "--protocol '\(name)' is unknown; use \(list)")
        }
        if p == .metric && model.metric == nil {
            throw MMLError(.invalidArgument, "--protocol metric: \(checkpoint) is a '\(model.kind)' checkpoint and "
                           + "has no metric head; evaluate its frozen features with --protocol prototype or "
                           + "--protocol cosine-classifier")
        }
        return p
    }
}

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
            --classifier-* options change these).
            """
    )

    @Option(help: "The checkpoint (.safetensors written by mml train, mml pretrain or mml train-embedding).")
    var checkpoint: String
    @OptionGroup var dataset: DatasetOptions
    @Option(name: .customLong("protocol"),
            help: "metric, prototype or cosine-classifier (default: metric when the checkpoint has a metric, else prototype).")
    var protocolName: String?
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

    func run() throws {
        try runReportingErrors {
            let loaded = try Checkpoint.load(checkpoint, threads: threads)
            let model = loaded.model
            let proto = try EvalProtocol.resolve(protocolName, model: model.configuration, checkpoint: checkpoint)
            if proto != .cosineClassifier, let flag = classifier.given.first {
                throw MMLError(.invalidArgument, "\(flag) only applies to --protocol cosine-classifier (this run uses "
                               + "--protocol \(proto.rawValue))")
            }
            let features = try proto.frozen.map { _ in try frozenFeatureFunction(of: loaded, path: checkpoint) }
            var image = model.configuration.image
            image.augmentation = .none
            image.resize = nil
            let data = dataset.with(split: dataset.split ?? "test")
            let ds = try data.open(image: image)
            let loader = try EpisodeLoader(dataset: ds, config: image)
            var settings: [[String: Any]] = []
            var jobs: [(way: Int, shot: Int, query: Int, seed: UInt64, episodes: [Episode])] = []
            if let episodeList {
                let list = try EpisodeList.read(from: episodeList)
                jobs.append((list.way, list.shot, list.query, list.seed, try list.resolve(in: ds)))
            } else {
                for w in try parseIntList(way, option: "--way") {
                    for k in try parseIntList(shot, option: "--shot") {
                        let sampler = try EpisodeSampler(dataset: ds, way: w, shot: k, query: query, seed: seed)
                        guard episodes >= 1 else {
                            throw MMLError(.invalidArgument, "--episodes \(episodes): evaluate at least 1 episode")
                        }
                        jobs.append((w, k, query, seed, sampler.episodes(episodes)))
                    }
                }
            }
            // The classifier seed follows the episodes' seed (the list's own seed for an episode list), so a listed
            // episode is scored exactly as the sampled one.
            let classifierOptions = proto == .cosineClassifier
                ? try classifier.options(episodeSeed: jobs[0].seed) : nil
            if !json {
                print("checkpoint  \(checkpoint) (\(model.configuration.kind), \(model.configuration.backbone.rawValue), "
                      + "\(model.configuration.metric?.summary ?? "no metric"))")
                print("data        \(ds.name) split \(data.split ?? "-"), \(ds.classCount) classes")
                switch proto {
                case .metric:
                    print("protocol    metric (the checkpoint's fused and per-level scores)")
                case .prototype:
                    print("protocol    prototype (frozen features, cosine to the class means; no per-level scores)")
                case .cosineClassifier:
                    print("protocol    cosine-classifier (frozen features, a cosine classifier per episode: "
                          + "\(classifierOptions!.summary); no per-level scores)")
                }
            }
            func summary(_ s: AccuracySummary) -> [String: Any] {
                ["mean": s.mean, "ci95": s.ci95, "std": s.std, "episodes": s.count]
            }
            for job in jobs {
                let progress = ProgressLine(plainEvery: 100)
                let onEpisode: (Int) -> Void = { done in
                    if !json { progress.update(done: done, total: job.episodes.count, text: "episodes") }
                }
                let head = String(format: "%d-way %d-shot, %d queries, %d episodes (seed %llu): ", job.way, job.shot,
                                  job.query, job.episodes.count, job.seed)
                var setting: [String: Any] = [
                    "way": job.way, "shot": job.shot, "query": job.query, "episodes": job.episodes.count,
                    "seed": job.seed, "protocol": proto.rawValue,
                ]
                if let frozen = proto.frozen, let features {
                    let r = try evaluateFrozenFeatures(features: features, loader: loader, episodes: job.episodes,
                                                      protocol: frozen, options: classifierOptions ?? .init(),
                                                      progress: onEpisode)
                    progress.finish()
                    let perSecond = Double(job.episodes.count) / max(r.seconds, 1e-9)
                    if !json {
                        print(head + String(format: "%@ %@%%  (%.2f episodes/s)", proto.rawValue,
                                            r.summary.percentString, perSecond))
                    }
                    setting["accuracy"] = summary(r.summary)
                    setting["seconds"] = r.seconds
                    setting["episodes_per_second"] = perSecond
                } else {
                    let r = try evaluateModel(model, loader: loader, episodes: job.episodes, progress: onEpisode)
                    progress.finish()
                    let levels = r.levels.sorted { $0.key < $1.key }
                    if !json {
                        print(head + String(format: "fused %@%%  (%.2f episodes/s)", r.fused.percentString,
                                            r.episodesPerSecond))
                        for (l, s) in levels {
                            print("    \(l.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0)) \(s.percentString)%")
                        }
                    }
                    setting["accuracy"] = summary(r.fused)
                    setting["fused"] = summary(r.fused)
                    setting["levels"] = Dictionary(uniqueKeysWithValues: levels.map { ($0.key.rawValue, summary($0.value)) })
                    setting["seconds"] = r.seconds
                    setting["episodes_per_second"] = r.episodesPerSecond
                }
                settings.append(setting)
            }
            var obj: [String: Any] = [
                "checkpoint": checkpoint, "dataset": ds.name, "split": data.split ?? "",
                "model": (try? JSONSerialization.jsonObject(with: Data(model.configuration.jsonString().utf8))) ?? [:],
                "protocol": proto.rawValue, "per_level": proto == .metric,
                "results": settings,
            ]
            if let classifierOptions { obj["cosine_classifier"] = classifierOptions.json }
            let text = String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted]),
                              as: UTF8.self)
            if json { print(text) }
            if let report { try AtomicFile.write(text + "\n", to: report) }
        }
    }
}
