import ArgumentParser
import Foundation
import MMLCore

/// `mml eval`: few-shot accuracy of a checkpoint on episodes of a split, fused and per level, with 95% intervals.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint on few-shot episodes: mean accuracy +- 95% CI, fused and per level.",
        discussion: """
            Episodes are a pure function of (--seed, index): the same seed gives the same episodes for every \
            checkpoint and level set. --way and --shot take comma-separated lists (e.g. --way 5,20 --shot 1,5) to \
            evaluate every combination in one run.
            """
    )

    @Option(help: "The checkpoint (.safetensors written by mml train).") var checkpoint: String
    @OptionGroup var dataset: DatasetOptions
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
            var image = model.configuration.image
            image.augmentation = .none
            image.resize = nil
            let data = dataset.with(split: dataset.split ?? "test")
            let ds = try data.open(image: image)
            let loader = try EpisodeLoader(dataset: ds, config: image)
            var settings: [[String: Any]] = []
            var jobs: [(way: Int, shot: Int, episodes: [Episode])] = []
            if let episodeList {
                let list = try EpisodeList.read(from: episodeList)
                jobs.append((list.way, list.shot, try list.resolve(in: ds)))
            } else {
                for w in try parseIntList(way, option: "--way") {
                    for k in try parseIntList(shot, option: "--shot") {
                        let sampler = try EpisodeSampler(dataset: ds, way: w, shot: k, query: query, seed: seed)
                        guard episodes >= 1 else {
                            throw MMLError(.invalidArgument, "--episodes \(episodes): evaluate at least 1 episode")
                        }
                        jobs.append((w, k, sampler.episodes(episodes)))
                    }
                }
            }
            if !json {
                print("checkpoint  \(checkpoint) (\(model.configuration.backbone.rawValue), "
                      + "\(model.configuration.metric?.summary ?? "no metric"))")
                print("data        \(ds.name) split \(data.split ?? "-"), \(ds.classCount) classes")
            }
            for job in jobs {
                let progress = ProgressLine(plainEvery: 100)
                let r = try evaluateModel(model, loader: loader, episodes: job.episodes) { done in
                    if !json { progress.update(done: done, total: job.episodes.count, text: "episodes") }
                }
                progress.finish()
                let levels = r.levels.sorted { $0.key < $1.key }
                if !json {
                    print(String(format: "%d-way %d-shot, %d queries, %d episodes (seed %llu): fused %@%%  (%.2f episodes/s)",
                                 job.way, job.shot, query, job.episodes.count, seed, r.fused.percentString,
                                 r.episodesPerSecond))
                    for (l, s) in levels { print("    \(l.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0)) \(s.percentString)%") }
                }
                func summary(_ s: AccuracySummary) -> [String: Any] {
                    ["mean": s.mean, "ci95": s.ci95, "std": s.std, "episodes": s.count]
                }
                settings.append([
                    "way": job.way, "shot": job.shot, "query": query, "episodes": job.episodes.count,
                    "seed": seed, "fused": summary(r.fused),
                    "levels": Dictionary(uniqueKeysWithValues: levels.map { ($0.key.rawValue, summary($0.value)) }),
                    "seconds": r.seconds, "episodes_per_second": r.episodesPerSecond,
                ])
            }
            let obj: [String: Any] = [
                "checkpoint": checkpoint, "dataset": ds.name, "split": data.split ?? "",
                "model": (try? JSONSerialization.jsonObject(with: Data(model.configuration.jsonString().utf8))) ?? [:],
                "results": settings,
            ]
            let text = String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted]),
                              as: UTF8.self)
            if json { print(text) }
            if let report { try AtomicFile.write(text + "\n", to: report) }
        }
    }
}
