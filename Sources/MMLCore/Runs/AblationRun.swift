import Foundation

/// What `AblationRun` compares: every non-empty subset of the metric levels on identical test episodes, from one
/// trained model (its fusion re-fitted per subset) or from one model trained per subset (`retrain`).
public struct AblationRunConfiguration: Codable, Sendable, Equatable {
    /// A checkpoint trained with all three levels (not used with `retrain`).
    public var checkpoint: String?
    /// The data; a nil split is `test` for the test episodes (and `train` for retraining).
    public var dataset: DatasetSource
    /// The split of the fusion refit's validation episodes.
    public var refitSplit: String
    /// Validation episodes of the fusion refit (seed `seed + 1`).
    public var refitEpisodes: Int
    /// Classes per test episode.
    public var way: Int
    /// Support images per class in test episodes.
    public var shot: Int
    /// Query images per class.
    public var query: Int
    /// Test episodes.
    public var episodes: Int
    /// Seed of the test episodes.
    public var seed: UInt64
    /// Directory of `ablation.md`, `ablation.json`, `ablation.svg` (and the retrained runs, `retrain-<levels>`).
    public var out: String
    /// Kernel threads (0: all cores).
    public var threads: Int
    /// Train one model per subset instead of re-fitting the fusion of one model.
    public var retrain: Bool
    /// With `retrain`: how each subset's model is trained (`EpisodicTrainingRun`); its `metric` is the one whose
    /// levels each subset replaces, its `out` and `resume` are set per subset (`out/retrain-<levels>`).
    public var retraining: EpisodicTrainingRunConfiguration?
    /// Evaluate only this shard's test episodes (`ShardSpec`); the shard writes its per-episode file only, and
    /// `mml ablate merge` makes the table of all shards. Not with `retrain`.
    public var shard: ShardSpec?
    /// The per-episode file (nil: `out/episodes.jsonl`, or `out/episodes-shard-<i>-of-<n>.jsonl` for a shard; a
    /// directory gets that name inside it).
    public var episodesOut: String?
    /// The training seed of `checkpoint` when it is one seed of a study (`SeedAblationRun`): written into the
    /// per-episode records and the file's manifest (`training_seed`); nil otherwise.
    public var trainingSeed: UInt64?
    /// The pixel and part levels' similarity arithmetic when episodes are scored (the refit's validation episodes
    /// and the test episodes; `retrain`'s training stays fp32): fp32 (the default), bf16 or bf16amx
    /// (`SimilarityPrecision`). Older configurations lack it: fp32.
    @DefaultWhenAbsent public var precision: SimilarityPrecision

    public init(checkpoint: String? = nil, dataset: DatasetSource = DatasetSource(), refitSplit: String = "val",
                refitEpisodes: Int = 200, way: Int = 5, shot: Int = 1, query: Int = 15, episodes: Int = 600,
                seed: UInt64 = 0, out: String = "runs/ablation", threads: Int = 0, retrain: Bool = false,
                retraining: EpisodicTrainingRunConfiguration? = nil, shard: ShardSpec? = nil,
                episodesOut: String? = nil, trainingSeed: UInt64? = nil, precision: SimilarityPrecision = .fp32) {
        self.checkpoint = checkpoint; self.dataset = dataset; self.refitSplit = refitSplit
        self.refitEpisodes = refitEpisodes; self.way = way; self.shot = shot; self.query = query
        self.episodes = episodes; self.seed = seed; self.out = out; self.threads = threads; self.retrain = retrain
        self.retraining = retraining; self.shard = shard; self.episodesOut = episodesOut
        self.trainingSeed = trainingSeed; self.precision = precision
    }

    /// Where the per-episode file goes.
    public var episodesPath: String {
        episodesOut.map { EpisodeFileFormat.outputPath($0, shard: shard) }
            ?? outputPath(shard?.fileName ?? "episodes.jsonl")
    }

    /// - Throws: `MMLError` naming the field: episode counts below 1, no checkpoint without `retrain`.
    public func validate() throws {
        guard episodes >= 1, refitEpisodes >= 1 else {
            throw MMLError(.invalidArgument, "`episodes` \(episodes) and `refitEpisodes` \(refitEpisodes) must be >= 1")
        }
        if !retrain && checkpoint == nil {
            throw MMLError(.invalidArgument, "give `checkpoint` (a model trained with all levels) or `retrain`")
        }
        if !retrain && retraining != nil {
            throw MMLError(.invalidArgument, "`retraining` (how to train the subsets' models) only applies with "
                           + "`retrain`; the ablation of `checkpoint` re-fits its fusion: drop the training settings")
        }
        try dataset.validate()
        try Limits.check(threads, "threads", in: Limits.threads, "kernel threads (0: all cores)")
        try Limits.check(way, "way", in: Limits.way, "classes per episode")
        try Limits.check(shot, "shot", in: Limits.shot, "support images per class")
        try Limits.check(query, "query", in: Limits.query, "query images per class")
        try Limits.check(episodes, "episodes", in: Limits.episodes, "test episodes")
        try Limits.check(refitEpisodes, "refitEpisodes", in: Limits.episodes, "refit episodes")
        let images = try Limits.imagesPerEpisode(way: way, wayField: "way", shot: shot, shotField: "shot",
                                                 query: query, queryField: "query")
        // The test and refit episodes are sampled up front, with every level's (queries x way) scores of each.
        var m = MemoryEstimate()
        m.addEpisodes(episodes, imagesPerEpisode: images, way: way, what: "test episodes")
        m.add("their level scores", bytes: Double(episodes) * 12 * Double(way) * Double(way) * Double(query))
        if !retrain {
            m.addEpisodes(refitEpisodes, imagesPerEpisode: images, way: way, what: "refit episodes")
            m.add("their level scores", bytes: Double(refitEpisodes) * 12 * Double(way) * Double(way) * Double(query))
        }
        try m.check(lower: retrain ? ["episodes", "way", "query"] : ["episodes", "refitEpisodes", "way", "query"])
        try retraining?.validate()
        if let shard {
            try shard.validate()
            if retrain {
                throw MMLError(.invalidArgument, "`shard` does not work with `retrain` (every shard would train the "
                               + "seven models); retrain in one run (in a job array: `shard` 0/1), or shard the "
                               + "ablation of one trained checkpoint")
            }
            try shard.validate(episodes: episodes, setting: "the ablation")
        }
        if retrain, let checkpoint {
            throw MMLError(.invalidArgument, "`checkpoint` \(checkpoint) is not used with `retrain` (each subset's "
                           + "model is trained from scratch); drop one of them")
        }
        if retrain {
            let d = AblationRunConfiguration(retrain: true)
            if let field = [("refitSplit", refitSplit != d.refitSplit), ("refitEpisodes", refitEpisodes != d.refitEpisodes)]
                .first(where: \.1)?.0 {
                throw MMLError(.invalidArgument, "`\(field)` sets the fusion refit of one checkpoint's ablation; with "
                               + "`retrain` each subset's model is trained with its own fusion: drop `\(field)`")
            }
        }
    }

    /// The path of `name` in `out`.
    public func outputPath(_ name: String) -> String { URL(fileURLWithPath: out).appendingPathComponent(name).path }
}

/// An ablation's table; encoded (sorted keys) it is `ablation.json`.
public struct AblationRunResult: Codable, Sendable {
    public var way: Int
    public var shot: Int
    public var query: Int
    public var episodes: Int
    public var seed: UInt64
    /// How the subsets were obtained, in words.
    public var mode: String
    /// One row per subset (the full set first), and for a re-fitted model the trained fusion's row last.
    public var rows: [AblationRow]
    /// The kernel paths that computed it (as `EvaluationRunResult.kernels`); absent from tables of earlier versions.
    public var kernels: [String]? = nil

    /// The table's title.
    public var title: String {
        "Ablation: \(way)-way \(shot)-shot, \(query) queries, \(episodes) episodes (seed \(seed)), \(mode)"
    }

    /// The table as Markdown (`ablation.md`).
    public var markdown: String { ablationMarkdown(rows, title: title) }

    /// What the ablation shows, in one sentence (`ablationConclusion`); empty for a table without single levels
    /// and pairs.
    public var conclusion: String { ablationConclusion(rows) }

    /// The table as pretty-printed JSON with sorted keys (`ablation.json`).
    public func jsonText() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: try enc.encode(self), as: UTF8.self)
    }

    /// The accuracies as a bar chart with 95% intervals (`ablation.svg`).
    public var svg: String {
        SVGChart.bars(title: "\(way)-way \(shot)-shot accuracy by level subset (95% CI)", yLabel: "accuracy (%)",
                      labels: rows.map(\.name), values: rows.map { $0.accuracy.mean * 100 },
                      errors: rows.map { $0.accuracy.ci95 * 100 })
    }
}

/// The accuracy of every non-empty subset of the metric levels on identical test episodes, with paired
/// differences to the full set; writes `ablation.md`, `ablation.json` and `ablation.svg` into `out`.
///
/// From one model, each level's scores are computed once per episode and each subset's learned fusion is re-fitted
/// on validation episodes (`FusionRefit`; a fixed fusion keeps its weights). With `retrain`, one model per subset is
/// trained into `out/retrain-<levels>` (an `EpisodicTrainingRun` from `retraining`, or a caller's `trainer`; a
/// finished run there is reused) and each is evaluated.
///
/// Events: `progress` (`test episodes`, then `refit episodes`) or per subset `ablationSubsetStarted` and
/// `ablationSubsetTrained` with the subset's training events (`training`, ...) between them; then `wrote` for each
/// file.
public final class AblationRun: ConfiguredRun<AblationRunConfiguration> {
    /// Trains (or resumes, `resume`) one episodic model with `metric` into `directory`, leaving `best.safetensors`
    /// there; returns the training episodes done and the seconds it took.
    public typealias SubsetTrainer = (_ metric: MetricConfiguration, _ directory: String, _ resume: Bool) throws
        -> (episodes: Int, seconds: Double)

    private let trainer: SubsetTrainer?
    private let naming: (String) -> String
    /// Polled between episodes (and, with `retrain`, between optimiser steps of a subset's training): once
    /// requested the run throws `RunStopped` and writes no report; a subset's training stops resumably, and the
    /// same run started again reuses finished subsets and resumes the stopped one.
    public var stop: StopRequest?

    /// - Parameters:
    ///   - trainer: trains a subset's model instead of an `EpisodicTrainingRun` from `retraining` (optional).
    ///   - naming: how the result's words name a configuration field (the CLI: its flag); default the bare name.
    /// - Throws: `MMLError` naming the invalid field.
    public init(_ configuration: AblationRunConfiguration, trainer: SubsetTrainer? = nil,
                naming: @escaping (String) -> String = { $0 }) throws {
        self.trainer = trainer
        self.naming = naming
        try super.init(configuration)
        if configuration.retrain && trainer == nil && configuration.retraining == nil {
            throw MMLError(.config, "`retrain` needs `retraining`: how to train the subsets' models")
        }
    }

    /// Scores the subsets and writes the report. - Throws: `MMLError`.
    public func run(events: (RunEvent) -> Void = { _ in }) throws -> AblationRunResult {
        // The score collector takes an optional (escaping) progress callback; none outlives the run.
        try withoutActuallyEscaping(events) { try ablate(events: $0) }
    }

    private func ablate(events: @escaping (RunEvent) -> Void) throws -> AblationRunResult {
        let c = configuration
        // Checks before work: `out` is a writable directory (created if missing).
        try OutputCheck.prepare(directory: c.out, what: "ablation report")
        if let note = c.precision.portableNote { events(.warning(note)) }
        let testData = c.dataset.withDefaultSplit("test")
        var mode: String, scored: Scored
        var manifest = [
            "command": "ablate", "dataset": "", "split": testData.split ?? "",
            "layout": testData.resolvedLayout.rawValue, "data": testData.episodeDataIdentity, "seed": "\(c.seed)",
        ]
        if c.retrain {
            mode = "one model per subset (\(naming("retrain")))"
            scored = try retrainRows(testData: testData, events: events)
        } else {
            mode = "one model (\(c.checkpoint!)), fusion re-fitted per subset on \(c.refitEpisodes) \(c.refitSplit) "
                + "episodes"
            scored = try refitRows(checkpoint: c.checkpoint!, testData: testData, events: events)
            manifest["refit"] = "\(c.refitEpisodes) \(c.refitSplit) episodes (seed \(c.seed &+ 1))"
        }
        if c.precision != .fp32 { mode += ", \(c.precision.rawValue) similarity at the pixel and part levels" }
        manifest["checkpoint_hash"] = scored.checkpointHash
        manifest["dataset"] = scored.datasetName
        manifest["mode"] = c.retrain ? "retrain" : "refit"
        if let s = c.trainingSeed { manifest["training_seed"] = "\(s)" }
        // Only a bf16 / bf16amx run says so: fp32 files keep the manifest of earlier versions (and merge with them).
        if c.precision != .fp32 { manifest["precision"] = c.precision.rawValue }
        manifest["weights"] = scored.rows.map { r in
            r.name + ": " + (r.weights?.map { String(format: "%.9g", $0) }.joined(separator: ",") ?? "-")
        }.joined(separator: "; ")
        // The records: each episode's accuracy under every row; the table is made from them (as a merge makes it).
        let records = scored.episodes.enumerated().map { k, e in
            EpisodeRecord(way: c.way, shot: c.shot, index: e.position, hash: e.hash,
                          accuracy: scored.rows[0].perEpisode[k],
                          subsets: Dictionary(uniqueKeysWithValues: scored.rows.map { ($0.name, $0.perEpisode[k]) }),
                          trainingSeed: c.trainingSeed)
        }
        let result = try AblationRunResult(way: c.way, shot: c.shot, query: c.query, episodes: records.count,
                                           seed: c.seed, mode: mode, rows: scored.rows,
                                           kernels: [BLASRuntime.kernelISA])
            .withRows(from: records, source: "ablation")
        let header = EpisodeFileHeader(
            command: "ablate", manifest: manifest,
            settings: [EpisodeSetting(way: c.way, shot: c.shot, query: c.query, episodes: c.episodes)],
            shard: c.shard, seconds: scored.seconds, facts: [], report: result)
        try EpisodeFile(header: header, records: records).write(to: c.episodesPath)
        events(.wrote(path: c.episodesPath, what: c.shard.map { "per-episode results of shard \($0)" }
                      ?? "per-episode results"))
        // A shard's table covers only its episodes: `mml ablate merge` writes the run's table.
        if c.shard == nil { try result.writeFiles(into: c.out, events: events) }
        return result
    }

    /// Rows with their per-episode accuracies, each test episode's position and content hash, the checkpoints' hash
    /// and the test data's name.
    private typealias Scored = (rows: [AblationRow], episodes: [(position: Int, hash: String)], checkpointHash: String,
                                datasetName: String, seconds: Double)

    /// This run's share of the test episodes (all without a shard), with their positions and content hashes.
    private func testEpisodes(_ sampler: EpisodeSampler)
        -> (episodes: [Episode], ids: [(position: Int, hash: String)]) {
        let c = configuration
        let positions = (0..<c.episodes).filter { c.shard?.contains($0) ?? true }
        let episodes = positions.map(sampler.episode)
        let ids = zip(positions, episodes).map { p, e in
            (p, EpisodeRecord.contentHash(of: e, in: sampler.dataset, dataIdentity: c.dataset.episodeDataIdentity))
        }
        return (episodes, ids)
    }

    /// Every row's paired difference to the first (full) row.
    private static func withDifferences(_ rows: [AblationRow]) -> [AblationRow] {
        var rows = rows
        let full = rows[0].perEpisode
        for i in rows.indices { rows[i].differenceToFull = pairedDifference(rows[i].perEpisode, full) }
        return rows
    }

    /// One model: scores once, fusion re-fitted per subset on validation episodes.
    private func refitRows(checkpoint: String, testData: DatasetSource,
                           events: @escaping (RunEvent) -> Void) throws -> Scored {
        let c = configuration
        let start = Date()
        let model = try Checkpoint.load(checkpoint, threads: c.threads).model
        guard let mc = model.configuration.metric else {
            throw MMLError(.config, "\(checkpoint) has no metric head; ablate a model trained with mml train")
        }
        guard mc.levels.count == 3 else {
            throw MMLError(.config, "\(checkpoint) was trained with levels \(mc.levels.map(\.rawValue)); the ablation "
                           + "from one model needs all three (or use `retrain`)")
        }
        let image = model.configuration.image.forEvaluation
        var ids: [(position: Int, hash: String)] = [], testName = ""
        func scores(_ data: DatasetSource, seed: UInt64, count: Int, phase: String, test: Bool = false) throws
            -> [LevelScores] {
            let set = try data.open(image: image, events: events)
            let sampler = try EpisodeSampler(dataset: set, way: c.way, shot: c.shot, query: c.query, seed: seed,
                                             fields: .run)
            var episodes = sampler.episodes(count)
            if test { (episodes, ids) = testEpisodes(sampler); testName = set.name }
            return try collectLevelScores(model, loader: try EpisodeLoader(dataset: set, config: image),
                                          episodes: episodes, precision: c.precision) { [stop] done in
                events(.progress(phase: phase, done: done, total: episodes.count))
                if done < episodes.count { try stop?.check(done: done, total: episodes.count, phase: phase) }
            }
        }
        let test = try scores(testData, seed: c.seed, count: 0, phase: "test episodes", test: true)
        var rows: [AblationRow] = []
        func row(_ subset: [MetricLevel], _ name: String, _ acc: [Double], _ weights: [Float]) {
            rows.append(AblationRow(name: name, levels: subset, accuracy: AccuracySummary(acc),
                                    differenceToFull: AccuracySummary([]), perEpisode: acc, weights: weights))
        }
        if mc.fusion == .fixed {
            for subset in allLevelSubsets() {
                let w = subset.map { mc.resolvedFixedWeights[mc.levels.firstIndex(of: $0)!] }
                row(subset, AblationRow.name(subset), fusedAccuracies(test, levels: subset, fixed: FixedFusion(weights: w)), w)
            }
        } else {
            let val = try scores(c.dataset.with(split: c.refitSplit), seed: c.seed &+ 1, count: c.refitEpisodes,
                                 phase: "refit episodes")
            for subset in allLevelSubsets() {
                let f = try FusionRefit.fit(levels: subset, on: val, normalization: mc.fusionNormalization)
                row(subset, AblationRow.name(subset), fusedAccuracies(test, levels: subset, fusion: f), f.weights)
            }
            // The trained model's own fusion, for reference.
            let trained = model.metric!.fusion
            row(mc.levels, "all (trained fusion)", fusedAccuracies(test, levels: mc.levels, fusion: trained),
                trained.weights)
        }
        return (Self.withDifferences(rows), ids, try FNV1a64.ofFile(checkpoint), testName,
                Date().timeIntervalSince(start))
    }

    /// Whether the training run in `dir` has finished (its `last.safetensors` holds all its episodes); true when
    /// there is no `last` (a run written by a caller's `trainer`).
    static func isFinished(_ dir: String) -> Bool {
        let last = URL(fileURLWithPath: dir).appendingPathComponent("last.safetensors").path
        guard FileManager.default.fileExists(atPath: last) else { return true }
        guard let json = try? Safetensors.metadata(at: last)[Checkpoint.stateKey],
              let state = try? JSONDecoder().decode(EpisodicTrainingState.self, from: Data(json.utf8)) else {
            return false
        }
        return state.episodesDone >= state.training.totalEpisodes
    }

    /// One model per subset, each trained by `trainer` or an `EpisodicTrainingRun`, evaluated on identical test
    /// episodes.
    private func retrainRows(testData: DatasetSource, events: (RunEvent) -> Void) throws -> Scored {
        let c = configuration
        var rows: [AblationRow] = [], ids: [(position: Int, hash: String)] = [], testName = "", seconds = 0.0
        var checkpoints = FNV1a64()
        for subset in allLevelSubsets() {
            let dir = c.outputPath("retrain-" + AblationRow.name(subset))
            let best = URL(fileURLWithPath: dir).appendingPathComponent("best.safetensors").path
            let reused = FileManager.default.fileExists(atPath: best) && Self.isFinished(dir)
            events(.ablationSubsetStarted(levels: subset, directory: dir, reused: reused))
            if !reused {
                var mc = (c.retraining?.metric ?? MetricConfiguration()).with(levels: Set(subset))
                if mc.fusion == .fixed { mc.fixedWeights = nil }
                let resume = FileManager.default.fileExists(atPath: URL(fileURLWithPath: dir)
                    .appendingPathComponent("last.safetensors").path)
                let done: (episodes: Int, seconds: Double)
                if let trainer {
                    done = try trainer(mc, dir, resume)
                } else {
                    var run = c.retraining!
                    (run.metric, run.out, run.resume) = (mc, dir, resume)
                    let training = try EpisodicTrainingRun(run)
                    training.stop = stop
                    let result = try training.run(events: events)
                    if result.stopped {
                        throw RunStopped(done: result.state.episodesDone, total: result.totalEpisodes,
                                         phase: "training episodes of subset \(AblationRow.name(subset))",
                                         detail: "\(dir)/last.safetensors is saved; the same command again resumes "
                                             + "it (finished subsets are reused)")
                    }
                    done = (result.state.episodesDone, result.state.elapsedSeconds)
                }
                events(.ablationSubsetTrained(levels: subset, episodes: done.episodes, seconds: done.seconds))
            }
            let model = try Checkpoint.load(best, threads: c.threads).model
            checkpoints.add(AblationRow.name(subset) + "=" + (try FNV1a64.ofFile(best)) + ";")
            let image = model.configuration.image.forEvaluation
            let testSet = try testData.open(image: image, events: events)
            let sampler = try EpisodeSampler(dataset: testSet, way: c.way, shot: c.shot, query: c.query,
                                             seed: c.seed, fields: .run)
            let mine = testEpisodes(sampler)
            (ids, testName) = (mine.ids, testSet.name)
            let r = try evaluateModel(model, loader: try EpisodeLoader(dataset: testSet, config: image),
                                      episodes: mine.episodes, precision: c.precision) { [stop] done in
                if done < mine.episodes.count {
                    try stop?.check(done: done, total: mine.episodes.count,
                                    phase: "test episodes of subset \(AblationRow.name(subset))")
                }
            }
            seconds += r.seconds
            rows.append(AblationRow(name: AblationRow.name(subset), levels: subset, accuracy: r.fused,
                                    differenceToFull: AccuracySummary([]), perEpisode: r.fusedPerEpisode,
                                    weights: model.metric?.fixedFusion == nil ? model.metric?.fusion.weights : nil))
        }
        return (Self.withDifferences(rows), ids, "fnv1a64-of-subsets:" + checkpoints.hex, testName, seconds)
    }
}
