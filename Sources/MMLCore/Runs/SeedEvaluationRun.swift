import Foundation

/// One training seed's model: its checkpoint and, when known, the seed it was trained with.
public struct SeedCheckpoint: Codable, Sendable, Equatable {
    /// The training seed (from the checkpoint's training state; nil for a checkpoint without one).
    public var seed: UInt64?
    public var path: String

    public init(seed: UInt64?, path: String) {
        self.seed = seed
        self.path = path
    }

    /// "seed 3", or "checkpoint 2" (1-based position) when the seed is unknown.
    public func label(position: Int) -> String { seed.map { "seed \($0)" } ?? "checkpoint \(position + 1)" }

    /// The directory name of this seed's per-episode files: `seed-3`, or `checkpoint-2`.
    public func directoryName(position: Int) -> String { seed.map { "seed-\($0)" } ?? "checkpoint-\(position + 1)" }

    /// The checkpoints `inputs` name: each a checkpoint file, or a study directory (`mml train --seeds`, its seeds'
    /// `best.safetensors`). Each file's training seed comes from its training state.
    /// - Throws: `MMLError` for an unfinished study seed, an unreadable checkpoint, or two checkpoints of one
    ///   training seed (the same model twice would shrink the interval).
    public static func resolve(_ inputs: [String]) throws -> [SeedCheckpoint] {
        var out: [SeedCheckpoint] = []
        for input in inputs {
            if SeedStudySummary.isDirectory(input) {
                out += try SeedStudySummary.read(directory: input).checkpoints(in: input)
                    .map { SeedCheckpoint(seed: $0.seed, path: $0.path) }
            } else {
                out.append(SeedCheckpoint(seed: try trainingSeed(ofCheckpoint: input), path: input))
            }
        }
        if let (i, j) = firstRepeatedSeed(out.map(\.seed)) {
            throw MMLError(.invalidArgument, "`checkpoint` \(out[i].path) and \(out[j].path) were both trained with "
                           + "seed \(out[j].seed!); give one checkpoint per training seed")
        }
        return out
    }

    /// The first pair of positions (earlier, later) holding the same known seed: the same model twice would shrink
    /// the interval across seeds.
    static func firstRepeatedSeed(_ seeds: [UInt64?]) -> (Int, Int)? {
        for (j, a) in seeds.enumerated() {
            if let i = seeds[..<j].firstIndex(where: { $0 != nil && $0 == a }) { return (i, j) }
        }
        return nil
    }

    /// What differs between the checkpoints' models (besides the initial weights' seed) and training recipes
    /// (besides the training seed), one line per checkpoint that differs from the first: seeds of a study should be
    /// runs of one recipe. Empty when they agree or when a checkpoint has no training state to compare.
    /// - Throws: `MMLError` when a file is not an mml checkpoint.
    public static func recipeDifferences(_ checkpoints: [SeedCheckpoint]) throws -> [String] {
        guard let first = checkpoints.first else { return [] }
        struct Sidecar: Decodable {
            struct State: Decodable { var training: EpisodicTrainingConfiguration }
            var state: State?
        }
        func recipe(_ k: SeedCheckpoint) throws -> (model: ModelConfiguration, training: EpisodicTrainingConfiguration?) {
            var model = try Checkpoint.configuration(at: k.path)
            model.seed = 0
            let data = FileManager.default.contents(atPath: Checkpoint.sidecarPath(k.path))
            let training = data.flatMap { try? JSONDecoder().decode(Sidecar.self, from: $0) }?.state?.training
            return (model, training)
        }
        let reference = try recipe(first)
        return try checkpoints.dropFirst().compactMap { k in
            let r = try recipe(k)
            var what: [String] = []
            if r.model != reference.model { what.append("the model configuration") }
            if let a = r.training, let b = reference.training {
                what += a.differences(from: b).filter { $0.field != "seed" }.map { "\($0.field) \($0.this) vs \($0.other)" }
            }
            return what.isEmpty ? nil : "\(k.path) differs from \(first.path) in " + what.joined(separator: ", ")
                + ": the seeds should be training runs of one recipe"
        }
    }

    /// The training seed recorded in a checkpoint's training state (nil when it has none, e.g. an imported model).
    /// - Throws: `MMLError` when the file is not an mml checkpoint.
    public static func trainingSeed(ofCheckpoint path: String) throws -> UInt64? {
        let sidecar = Checkpoint.sidecarPath(path)
        struct Sidecar: Decodable { var state: SeedState? }
        if let data = FileManager.default.contents(atPath: sidecar),
           let s = try? JSONDecoder().decode(Sidecar.self, from: data) {
            return s.state?.training.seed
        }
        // No sidecar: the checkpoint's own metadata.
        let contents = try Safetensors.read(contentsOf: path)
        return contents.metadata[Checkpoint.stateKey].flatMap(trainingSeed(ofState:))
    }

    /// The training seed in a checkpoint's training-state JSON (`Checkpoint.Loaded.state`), nil when it has none.
    public static func trainingSeed(ofState state: String) -> UInt64? {
        (try? JSONDecoder().decode(SeedState.self, from: Data(state.utf8)))?.training.seed
    }

    /// The part of a training state that names its seed.
    private struct SeedState: Decodable { struct Training: Decodable { var seed: UInt64 }; var training: Training }
}

/// What `SeedEvaluationRun` evaluates: every training seed's checkpoint with one evaluation, on the same episodes.
public struct SeedEvaluationRunConfiguration: Codable, Sendable, Equatable {
    /// The evaluation of each checkpoint (its `checkpoint` and `trainingSeed` are set per seed; its `episodesOut`,
    /// if given, is a directory that gets one subdirectory per seed, `seed-<s>/`).
    public var evaluation: EvaluationRunConfiguration
    /// One checkpoint per training seed (at least one).
    public var checkpoints: [SeedCheckpoint]

    public init(evaluation: EvaluationRunConfiguration, checkpoints: [SeedCheckpoint]) {
        self.evaluation = evaluation
        self.checkpoints = checkpoints
    }

    /// The evaluation of the checkpoint at `position`.
    public func configuration(at position: Int) -> EvaluationRunConfiguration {
        var c = evaluation
        let k = checkpoints[position]
        c.checkpoint = k.path
        c.trainingSeed = k.seed
        c.episodesOut = evaluation.episodesOut.map {
            URL(fileURLWithPath: $0).appendingPathComponent(k.directoryName(position: position)).path + "/"
        }
        return c
    }

    /// - Throws: `MMLError` naming the field.
    public func validate() throws {
        guard !checkpoints.isEmpty else {
            throw MMLError(.invalidArgument, "`checkpoint`: give at least one checkpoint (one per training seed)")
        }
        try evaluation.validate()
    }
}

extension SeedEvaluationRunConfiguration: RunConfiguration {}

/// The evaluation of several training seeds' models on the same episodes; encoded (sorted keys) it is the report of
/// `mml eval --json` over seeds: every seed's report and, per setting, the figures combined across seeds.
public struct SeedEvaluationRunResult: Codable, Sendable {
    /// One seed's model and its report.
    public struct Seed: Codable, Sendable {
        public var seed: UInt64?
        public var checkpoint: String
        public var report: EvaluationRunResult

        public init(seed: UInt64?, checkpoint: String, report: EvaluationRunResult) {
            self.seed = seed; self.checkpoint = checkpoint; self.report = report
        }
    }

    /// One (way, shot) setting over the seeds.
    public struct Setting: Codable, Sendable {
        public var way: Int
        public var shot: Int
        public var query: Int
        /// Episodes per seed (the same episodes for every seed).
        public var episodes: Int
        /// Seed of the evaluation episodes (fixed across training seeds).
        public var seed: UInt64
        public var evaluationProtocol: EvaluationProtocol
        /// Each seed's mean accuracy over the episodes, their mean and the t interval across seeds.
        public var accuracy: SeedSummary
        /// Every (seed, episode) accuracy as one sample: mean and 1.96 std / sqrt(seeds x episodes).
        public var pooled: EvaluationRunResult.Summary
        /// Metric protocol: each level's accuracy across seeds and pooled, by level name.
        public var levels: [String: SeedSummary]?
        public var pooledLevels: [String: EvaluationRunResult.Summary]?

        enum CodingKeys: String, CodingKey {
            case way, shot, query, episodes, seed, accuracy, pooled, levels
            case evaluationProtocol = "protocol", pooledLevels = "pooled_levels"
        }

        /// The levels in canonical order (pixel, part, distribution).
        public var orderedLevels: [(level: MetricLevel, acrossSeeds: SeedSummary, pooled: EvaluationRunResult.Summary)] {
            MetricLevel.allCases.compactMap { l in
                guard let a = levels?[l.rawValue], let p = pooledLevels?[l.rawValue] else { return nil }
                return (l, a, p)
            }
        }
    }

    /// The training seeds in order (nil where a checkpoint has none).
    public var seeds: [Seed]
    /// The combined figures per setting, in the seeds' setting order.
    public var results: [Setting]

    enum CodingKeys: String, CodingKey {
        case results
        case seeds = "per_seed"
    }

    /// Combines per-seed reports of the same evaluation.
    /// - Throws: `MMLError(.invalidArgument)` when the reports are not of the same episodes (settings, episode
    ///   seed, data or protocol differ), naming both.
    public init(seeds: [Seed]) throws {
        guard let first = seeds.first else {
            throw MMLError(.invalidArgument, "no seed to combine: give at least one checkpoint")
        }
        func key(_ s: EvaluationRunResult.Setting) -> String {
            "\(s.way)-way \(s.shot)-shot, \(s.query) queries, \(s.episodes) episodes, seed \(s.seed), "
                + "protocol \(s.evaluationProtocol.rawValue)"
        }
        let reference = first.report.results.map(key)
        for s in seeds.dropFirst() {
            let here = s.report.results.map(key)
            guard here == reference, s.report.dataset == first.report.dataset, s.report.split == first.report.split
            else {
                throw MMLError(.invalidArgument, "\(s.checkpoint) was evaluated on other episodes than "
                               + "\(first.checkpoint) (\(s.report.dataset) \(s.report.split): \(here) vs "
                               + "\(first.report.dataset) \(first.report.split): \(reference)); every seed must be "
                               + "evaluated on the same episodes")
            }
        }
        self.seeds = seeds
        results = first.report.results.indices.map { k in
            let per = seeds.map { $0.report.results[k] }
            let s0 = per[0]
            func summary(_ s: EvaluationRunResult.Summary) -> AccuracySummary {
                AccuracySummary(count: s.episodes, mean: s.mean, std: s.std, ci95: s.ci95)
            }
            var levels: [String: SeedSummary]?, pooledLevels: [String: EvaluationRunResult.Summary]?
            if let names = s0.levels?.keys, s0.evaluationProtocol == .metric {
                levels = [:]; pooledLevels = [:]
                for name in names {
                    let values = per.compactMap { $0.levels?[name] }
                    guard values.count == per.count else { continue }
                    levels![name] = SeedSummary(values.map(\.mean))
                    pooledLevels![name] = EvaluationRunResult.Summary(AccuracySummary.pooled(values.map(summary)))
                }
            }
            return Setting(way: s0.way, shot: s0.shot, query: s0.query, episodes: s0.episodes, seed: s0.seed,
                           evaluationProtocol: s0.evaluationProtocol, accuracy: SeedSummary(per.map(\.accuracy.mean)),
                           pooled: EvaluationRunResult.Summary(AccuracySummary.pooled(per.map { summary($0.accuracy) })),
                           levels: levels, pooledLevels: pooledLevels)
        }
    }

    /// Combines report files of `mml eval --report` / `--json` written anywhere (one process, array task or day per
    /// training seed): each file is a one-checkpoint report (its `training_seed` names the seed) or a report over
    /// seeds (each of its seeds is taken). The reports must be of the same episodes (`init(seeds:)`), each training
    /// seed given once.
    /// - Throws: `MMLError(.invalidArgument)` naming the file that cannot be read or is not such a report, the two
    ///   files holding one training seed, or a report of other episodes; `.io` for an unreadable file.
    public init(reports paths: [String]) throws {
        var seeds: [Seed] = [], from: [String] = []
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw MMLError(.io, "cannot read the report \(path): give the file mml eval --report wrote")
            }
            struct Probe: Decodable { var per_seed: [Seed]? }
            if let over = (try? JSONDecoder().decode(Probe.self, from: data))?.per_seed {
                seeds += over
                from += over.map { _ in path }
            } else if let one = try? JSONDecoder().decode(EvaluationRunResult.self, from: data) {
                seeds.append(Seed(seed: one.trainingSeed, checkpoint: one.checkpoint, report: one))
                from.append(path)
            } else {
                throw MMLError(.invalidArgument, "\(path) is not a report of mml eval (the JSON of --report or "
                               + "--json); give one report file per training seed, or reports over seeds")
            }
        }
        if let (i, j) = SeedCheckpoint.firstRepeatedSeed(seeds.map(\.seed)) {
            throw MMLError(.invalidArgument, "\(from[i]) and \(from[j]) both hold training seed \(seeds[j].seed!) "
                           + "(\(seeds[i].checkpoint), \(seeds[j].checkpoint)); give each training seed's report once")
        }
        try self.init(seeds: seeds)
    }

    /// The report as pretty-printed JSON with sorted keys (what `mml eval --json` prints over seeds).
    public func jsonText() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: try enc.encode(self), as: UTF8.self)
    }

    /// The seeds' labels ("seed 3", or "checkpoint 2").
    public var labels: [String] {
        seeds.enumerated().map { SeedCheckpoint(seed: $1.seed, path: $1.checkpoint).label(position: $0) }
    }

    /// When the seeds' reports were computed on different kernel paths (their `kernels`), a line that says which
    /// path each seed's figures come from; nil when they agree or none is recorded.
    public var kernelPathNote: String? {
        guard let all = KernelPaths.union(seeds.map(\.report.kernels)), all.count > 1 else { return nil }
        let each = zip(labels, seeds).map { "\($0) \($1.report.kernels?.joined(separator: "+") ?? "unrecorded")" }
        return "kernel paths: " + each.joined(separator: ", ") + " (the Gaussian kernels round differently on each: "
            + "every seed's figures are those of its own path)"
    }

    /// A chart per setting of the fused (or protocol) accuracy and of each level: one point per seed and the mean
    /// across seeds with its 95% interval (`SVGChart.seedSpread`).
    public var svg: String {
        let charts = results.map { s -> String in
            var groups = [(s.evaluationProtocol == .metric ? "fused" : s.evaluationProtocol.rawValue, s.accuracy)]
            groups += s.orderedLevels.map { ($0.level.rawValue, $0.acrossSeeds) }
            return SVGChart.seedSpread(title: "\(s.way)-way \(s.shot)-shot over \(seeds.count) training seed(s)",
                                       yLabel: "accuracy (%)", groups: groups.map { $0.1.chartGroup($0.0) })
        }
        return charts.count == 1 ? charts[0] : SVGChart.stack(charts, width: 640, height: 380)
    }
}

/// Evaluates every training seed's checkpoint (`EvaluationRun`, one after the other; the figures do not depend on
/// the order or on how the seeds are split over processes) on the same episodes and combines the reports: per
/// setting the mean over seeds with a t interval across seeds, next to the pooled per-episode interval
/// (docs/STATISTICS.md).
///
/// Events: per seed a `.note` naming it, then its `EvaluationRun`'s events.
public final class SeedEvaluationRun: ConfiguredRun<SeedEvaluationRunConfiguration> {
    /// Polled between episodes by every seed's evaluation: a request ends the run with `RunStopped`.
    public var stop: StopRequest?

    /// Evaluates each seed and combines. - Throws: `MMLError` from a seed's evaluation (naming its checkpoint).
    public func run(events: (RunEvent) -> Void = { _ in }) throws -> SeedEvaluationRunResult {
        let c = configuration
        for d in try SeedCheckpoint.recipeDifferences(c.checkpoints) { events(.warning(d)) }
        var seeds: [SeedEvaluationRunResult.Seed] = []
        for (k, checkpoint) in c.checkpoints.enumerated() {
            events(.note("\(checkpoint.label(position: k)) (\(k + 1) of \(c.checkpoints.count)): \(checkpoint.path)"))
            let e = c.configuration(at: k)
            if let dir = e.episodesOut {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            }
            let run = try EvaluationRun(e)
            run.stop = stop
            let report = try run.run(events: events)
            seeds.append(.init(seed: checkpoint.seed, checkpoint: checkpoint.path, report: report))
        }
        return try SeedEvaluationRunResult(seeds: seeds)
    }

    /// The report of a sharded evaluation over seeds (`mml eval merge DIR`): each `DIR/seed-<s>/` merged as
    /// `EvaluationRunResult.merged` merges one run, then combined.
    /// - Throws: `MMLError` from a seed's merge, or when a seed's records carry another training seed.
    public static func merged(_ directory: String) throws -> SeedEvaluationRunResult {
        let seeds = try SeedEpisodeDirectories.list(directory).map { d -> SeedEvaluationRunResult.Seed in
            let (report, file) = try EvaluationRunResult.merged([d.path])
            try SeedEpisodeDirectories.check(file.records, seed: d.seed, path: d.path)
            return .init(seed: d.seed, checkpoint: report.checkpoint, report: report)
        }
        return try SeedEvaluationRunResult(seeds: seeds)
    }
}

/// The per-seed subdirectories (`seed-<s>/`, `checkpoint-<k>/`) of a directory of per-episode files over seeds.
public enum SeedEpisodeDirectories {
    /// The subdirectories of `directory` named `seed-<s>` or `checkpoint-<k>`, in the order of s (then k); empty
    /// when there are none.
    public static func list(_ directory: String) throws -> [(seed: UInt64?, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var seeded: [(UInt64, String)] = [], unseeded: [(Int, String)] = []
        for name in names {
            let path = URL(fileURLWithPath: directory).appendingPathComponent(name).path
            guard SeedStudySummary.isDirectory(path) else { continue }
            if name.hasPrefix("seed-"), let s = UInt64(name.dropFirst(5)) { seeded.append((s, path)) }
            if name.hasPrefix("checkpoint-"), let k = Int(name.dropFirst(11)) { unseeded.append((k, path)) }
        }
        return seeded.sorted { $0.0 < $1.0 }.map { ($0.0, $0.1) } + unseeded.sorted { $0.0 < $1.0 }.map { (nil, $0.1) }
    }

    /// Whether `directory` holds per-seed subdirectories.
    public static func holdsSeeds(_ directory: String) -> Bool { !((try? list(directory)) ?? []).isEmpty }

    /// Checks that the records of `path` carry `seed` (or none, as files of older versions).
    /// - Throws: `MMLError(.invalidArgument)` naming the file and both seeds.
    static func check(_ records: [EpisodeRecord], seed: UInt64?, path: String) throws {
        if let r = records.first(where: { $0.trainingSeed != nil && $0.trainingSeed != seed }) {
            throw MMLError(.invalidArgument, "\(path) holds episodes of training seed \(r.trainingSeed!) but its "
                           + "directory is for " + (seed.map { "seed \($0)" } ?? "a checkpoint without a seed")
                           + "; put each seed's files in its own seed-<s> directory")
        }
    }
}
