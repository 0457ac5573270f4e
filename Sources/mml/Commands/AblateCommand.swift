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
            into --out/retrain-<levels>. Writes ablation.md, ablation.json and ablation.svg into --out.
            """
    )

    @Option(help: "A trained checkpoint (mml train). Not used with --retrain.") var checkpoint: String?
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
    @Flag(help: "Train one model per subset instead of re-fitting the fusion of one model.") var retrain = false
    @OptionGroup var backboneOptions: BackboneOptions
    @OptionGroup var image: ImageOptions
    @OptionGroup var metric: MetricOptions
    @OptionGroup var training: TrainingOptions

    func run() throws {
        try runReportingErrors {
            guard episodes >= 1, refitEpisodes >= 1 else {
                throw MMLError(.invalidArgument, "--episodes \(episodes) and --refit-episodes \(refitEpisodes) must be >= 1")
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let testData = dataset.with(split: dataset.split ?? "test")
            var rows: [AblationRow] = []
            var mode: String
            if retrain {
                mode = "one model per subset (--retrain)"
                rows = try retrainRows(testData: testData)
            } else {
                guard let checkpoint else {
                    throw MMLError(.invalidArgument, "give --checkpoint (a model trained with all levels) or --retrain")
                }
                mode = "one model (\(checkpoint)), fusion re-fitted per subset on \(refitEpisodes) \(refitSplit) episodes"
                rows = try refitRows(checkpoint: checkpoint, testData: testData)
            }
            let title = "Ablation: \(way)-way \(shot)-shot, \(query) queries, \(episodes) episodes (seed \(seed)), \(mode)"
            let md = ablationMarkdown(rows, title: title)
            print(md)
            try AtomicFile.write(md, to: path("ablation.md"))
            func summary(_ s: AccuracySummary) -> [String: Any] { ["mean": s.mean, "ci95": s.ci95, "std": s.std] }
            let obj: [String: Any] = [
                "way": way, "shot": shot, "query": query, "episodes": episodes, "seed": seed, "mode": mode,
                "rows": rows.map { r -> [String: Any] in
                    var o: [String: Any] = ["name": r.name, "levels": r.levels.map(\.rawValue),
                                            "accuracy": summary(r.accuracy), "difference_to_full": summary(r.differenceToFull),
                                            "per_episode": r.perEpisode]
                    if let w = r.weights { o["weights"] = w.map(Double.init) }
                    return o
                },
            ]
            try AtomicFile.write(try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted]),
                                 to: path("ablation.json"))
            let svg = SVGChart.bars(title: "\(way)-way \(shot)-shot accuracy by level subset (95% CI)",
                                    yLabel: "accuracy (%)", labels: rows.map(\.name),
                                    values: rows.map { $0.accuracy.mean * 100 }, errors: rows.map { $0.accuracy.ci95 * 100 })
            try AtomicFile.write(svg, to: path("ablation.svg"))
            print("wrote \(path("ablation.md")), ablation.json, ablation.svg")
        }
    }

    func path(_ name: String) -> String { URL(fileURLWithPath: out).appendingPathComponent(name).path }

    static func name(_ levels: [MetricLevel]) -> String { levels.map(\.rawValue).joined(separator: "+") }

    /// One model: scores once, fusion re-fitted per subset on validation episodes.
    func refitRows(checkpoint: String, testData: DatasetOptions) throws -> [AblationRow] {
        let model = try Checkpoint.load(checkpoint, threads: threads).model
        guard let mc = model.configuration.metric else {
            throw MMLError(.config, "\(checkpoint) has no metric head; ablate a model trained with mml train")
        }
        guard mc.levels.count == 3 else {
            throw MMLError(.config, "\(checkpoint) was trained with levels \(mc.levels.map(\.rawValue)); the ablation "
                           + "from one model needs all three (or use --retrain)")
        }
        let image = model.configuration.image.forEvaluation
        let testSet = try testData.open(image: image)
        let testEpisodes = try EpisodeSampler(dataset: testSet, way: way, shot: shot, query: query, seed: seed)
            .episodes(episodes)
        let progress = ProgressLine(plainEvery: 200)
        let test = try collectLevelScores(model, loader: try EpisodeLoader(dataset: testSet, config: image),
                                          episodes: testEpisodes) { progress.update(done: $0, total: episodes, text: "test episodes") }
        progress.finish()
        var rows: [AblationRow] = []
        if mc.fusion == "fixed" {
            for subset in allLevelSubsets() {
                let idx = subset.map { mc.levels.firstIndex(of: $0)! }
                let w = idx.map { mc.resolvedFixedWeights[$0] }
                let acc = fusedAccuracies(test, levels: subset, fixed: FixedFusion(weights: w))
                rows.append(AblationRow(name: Self.name(subset), levels: subset, accuracy: AccuracySummary(acc),
                                        differenceToFull: AccuracySummary([]), perEpisode: acc, weights: w))
            }
        } else {
            let valSet = try dataset.with(split: refitSplit).open(image: image)
            let valEpisodes = try EpisodeSampler(dataset: valSet, way: way, shot: shot, query: query, seed: seed &+ 1)
                .episodes(refitEpisodes)
            let vp = ProgressLine(plainEvery: 200)
            let val = try collectLevelScores(model, loader: try EpisodeLoader(dataset: valSet, config: image),
                                             episodes: valEpisodes) { vp.update(done: $0, total: refitEpisodes, text: "refit episodes") }
            vp.finish()
            // The trained model's own fusion, for reference.
            let trained = model.metric!.fusion
            let own = fusedAccuracies(test, levels: mc.levels, fusion: trained)
            for subset in allLevelSubsets() {
                let f = try FusionRefit.fit(levels: subset, on: val, normalization: mc.fusionNormalization)
                let acc = fusedAccuracies(test, levels: subset, fusion: f)
                rows.append(AblationRow(name: Self.name(subset), levels: subset, accuracy: AccuracySummary(acc),
                                        differenceToFull: AccuracySummary([]), perEpisode: acc, weights: f.weights))
            }
            rows.append(AblationRow(name: "all (trained fusion)", levels: mc.levels, accuracy: AccuracySummary(own),
                                    differenceToFull: AccuracySummary([]), perEpisode: own, weights: trained.weights))
        }
        let full = rows[0].perEpisode
        for i in rows.indices { rows[i].differenceToFull = pairedDifference(rows[i].perEpisode, full) }
        return rows
    }

    /// One model per subset, each trained with the training flags, evaluated on identical test episodes.
    func retrainRows(testData: DatasetOptions) throws -> [AblationRow] {
        var rows: [AblationRow] = []
        for subset in allLevelSubsets() {
            let dir = path("retrain-" + Self.name(subset))
            let best = URL(fileURLWithPath: dir).appendingPathComponent("best.safetensors").path
            if FileManager.default.fileExists(atPath: best) {
                print("\(Self.name(subset)): using the finished run in \(dir)")
            } else {
                print("\(Self.name(subset)): training into \(dir)")
                var mc = try metric.configuration(way: training.way).with(levels: Set(subset))
                if mc.fusion == "fixed" { mc.fixedWeights = nil }
                let run = TrainingRun(dataset: dataset, backbone: backboneOptions, image: image, metric: mc,
                                      training: training, out: dir,
                                      resume: FileManager.default.fileExists(atPath: URL(fileURLWithPath: dir)
                                        .appendingPathComponent("last.safetensors").path),
                                      initFrom: nil, threads: threads, stopAfter: nil, verbose: false)
                let s = try run.execute()
                print(String(format: "    %d episodes in %@", s.episodesDone, formatDuration(s.elapsedSeconds)))
            }
            let model = try Checkpoint.load(best, threads: threads).model
            let image = model.configuration.image.forEvaluation
            let testSet = try testData.open(image: image)
            let sampler = try EpisodeSampler(dataset: testSet, way: way, shot: shot, query: query, seed: seed)
            let r = try evaluateModel(model, loader: try EpisodeLoader(dataset: testSet, config: image), sampler: sampler,
                                      episodes: episodes)
            rows.append(AblationRow(name: Self.name(subset), levels: subset, accuracy: r.fused,
                                    differenceToFull: AccuracySummary([]), perEpisode: r.fusedPerEpisode,
                                    weights: model.metric?.fixedFusion == nil ? model.metric?.fusion.weights : nil))
        }
        let full = rows[0].perEpisode
        for i in rows.indices { rows[i].differenceToFull = pairedDifference(rows[i].perEpisode, full) }
        return rows
    }
}
