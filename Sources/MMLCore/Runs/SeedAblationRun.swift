import Foundation

/// What `SeedAblationRun` compares: the level subsets of every training seed's model, each seed's ablation on the
/// same test episodes, combined across seeds.
public struct SeedAblationRunConfiguration: Codable, Sendable, Equatable {
    /// The ablation of each checkpoint: its `checkpoint` and `trainingSeed` are set per seed, its `out` is the
    /// directory of the combined table and gets one subdirectory per seed (`seed-<s>/`, that seed's own ablation
    /// files); a given `episodesOut` directory likewise. Not `retrain`.
    public var ablation: AblationRunConfiguration
    /// One checkpoint per training seed (at least one).
    public var checkpoints: [SeedCheckpoint]

    public init(ablation: AblationRunConfiguration, checkpoints: [SeedCheckpoint]) {
        self.ablation = ablation
        self.checkpoints = checkpoints
    }

    /// The ablation of the checkpoint at `position`.
    public func configuration(at position: Int) -> AblationRunConfiguration {
        var c = ablation
        let k = checkpoints[position], name = k.directoryName(position: position)
        c.checkpoint = k.path
        c.trainingSeed = k.seed
        c.out = ablation.outputPath(name)
        c.episodesOut = ablation.episodesOut.map { URL(fileURLWithPath: $0).appendingPathComponent(name).path + "/" }
        return c
    }

    /// - Throws: `MMLError` naming the field.
    public func validate() throws {
        guard !checkpoints.isEmpty else {
            throw MMLError(.invalidArgument, "`checkpoint`: give at least one checkpoint (one per training seed)")
        }
        if ablation.retrain {
            throw MMLError(.invalidArgument, "`retrain` trains its own models: it takes no `checkpoint` per seed (run "
                           + "one ablation with `retrain` per `seed` instead)")
        }
        for k in checkpoints.indices { try configuration(at: k).validate() }
    }
}

extension SeedAblationRunConfiguration: RunConfiguration {}

/// An ablation over training seeds; encoded (sorted keys) it is the study's `ablation.json`.
public struct SeedAblationRunResult: Codable, Sendable {
    /// One seed's model and its ablation.
    public struct Seed: Codable, Sendable {
        public var seed: UInt64?
        /// The seed's checkpoint (after `SeedAblationRun.merge`: the seed's directory of shard files).
        public var checkpoint: String
        public var report: AblationRunResult

        public init(seed: UInt64?, checkpoint: String, report: AblationRunResult) {
            self.seed = seed; self.checkpoint = checkpoint; self.report = report
        }
    }

    /// One subset over the seeds.
    public struct Row: Codable, Sendable {
        public var name: String
        public var levels: [MetricLevel]
        /// Each seed's mean accuracy over the test episodes, their mean and the t interval across seeds.
        public var accuracy: SeedSummary
        /// Every (seed, episode) accuracy as one sample (1.96 std / sqrt(seeds x episodes)).
        public var pooled: AccuracySummary
        /// Per seed the mean of the per-episode paired differences to the full set (this row - full), combined
        /// across seeds: their mean with a t interval across seeds.
        public var differenceToFull: SeedSummary
        /// Every (seed, episode) paired difference as one sample.
        public var pooledDifference: AccuracySummary

        enum CodingKeys: String, CodingKey {
            case name, levels, accuracy, pooled
            case differenceToFull = "difference_to_full", pooledDifference = "pooled_difference"
        }
    }

    public var way: Int
    public var shot: Int
    public var query: Int
    /// Test episodes per seed (the same for every seed).
    public var episodes: Int
    /// Seed of the test episodes.
    public var seed: UInt64
    public var seeds: [Seed]
    public var rows: [Row]

    enum CodingKeys: String, CodingKey {
        case way, shot, query, episodes, seed, rows
        case seeds = "per_seed"
    }

    /// Combines per-seed ablations of the same test episodes.
    /// - Throws: `MMLError(.invalidArgument)` when the seeds' ablations differ in episodes or rows.
    public init(seeds: [Seed]) throws {
        guard let first = seeds.first?.report else {
            throw MMLError(.invalidArgument, "no seed to combine: give at least one checkpoint")
        }
        let names = first.rows.map(\.name)
        for s in seeds.dropFirst() {
            let r = s.report
            guard r.way == first.way, r.shot == first.shot, r.query == first.query, r.episodes == first.episodes,
                  r.seed == first.seed, r.rows.map(\.name) == names else {
                throw MMLError(.invalidArgument, "\(s.checkpoint)'s ablation is not on the episodes of "
                               + "\(seeds[0].checkpoint)'s (\(r.title) with rows \(r.rows.map(\.name)) vs "
                               + "\(first.title) with rows \(names)); every seed must be ablated on the same episodes")
            }
        }
        (way, shot, query, episodes, seed) = (first.way, first.shot, first.query, first.episodes, first.seed)
        self.seeds = seeds
        rows = names.indices.map { i in
            let per = seeds.map { $0.report.rows[i] }, full = seeds.map { $0.report.rows[0].perEpisode }
            let differences = zip(per, full).map { r, f in zip(r.perEpisode, f).map { $0 - $1 } }
            return Row(name: per[0].name, levels: per[0].levels, accuracy: SeedSummary(per.map(\.accuracy.mean)),
                       pooled: AccuracySummary.pooled(per.map(\.accuracy)),
                       differenceToFull: pairedDifferenceAcrossSeeds(per.map(\.perEpisode), full),
                       pooledDifference: AccuracySummary.pooled(differences.map { AccuracySummary($0) }))
        }
    }

    /// The table's title.
    public var title: String {
        "Ablation over \(seeds.count) training seed(s): \(way)-way \(shot)-shot, \(query) queries, \(episodes) "
            + "episodes per seed (seed \(seed))"
    }

    /// The table as Markdown: per row the mean over seeds +- the t interval across seeds, the seeds' values, the
    /// pooled per-episode figure, and the paired difference to the full set both ways.
    public var markdown: String {
        var s = "### \(title)\n\n| levels | accuracy, seeds (%) | per seed (%) | pooled episodes (%) | "
            + "vs full, seeds (paired, %) | vs full, pooled (paired, %) |\n|---|---|---|---|---|---|\n"
        for (i, r) in rows.enumerated() {
            let d = r.differenceToFull
            let seedsDiff = i == 0 ? "—" : d.ci95.map { String(format: "%+.2f +- %.2f", d.mean * 100, $0 * 100) }
                ?? String(format: "%+.2f (1 seed: no interval)", d.mean * 100)
            let pooledDiff = i == 0 ? "—" : String(format: "%+.2f +- %.2f", r.pooledDifference.mean * 100,
                                                   r.pooledDifference.ci95 * 100)
            s += "| \(r.name) | \(r.accuracy.percentString) | \(r.accuracy.perSeedPercentString) | "
                + "\(r.pooled.percentString) | \(seedsDiff) | \(pooledDiff) |\n"
        }
        s += "\nSeeds: " + seeds.enumerated().map { SeedCheckpoint(seed: $1.seed, path: $1.checkpoint)
            .label(position: $0) }.joined(separator: ", ") + ". Intervals across seeds: mean +- t(0.975, n-1) s / "
            + "sqrt(n) over the n seeds' values; pooled: 1.96 std / sqrt(all episodes) (docs/STATISTICS.md).\n"
        return s
    }

    /// The table as pretty-printed JSON with sorted keys.
    public func jsonText() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: try enc.encode(self), as: UTF8.self)
    }

    /// Each row's seeds as dots, their mean and its interval across seeds.
    public var svg: String {
        SVGChart.seedSpread(title: "\(way)-way \(shot)-shot accuracy by level subset over \(seeds.count) seed(s)",
                            yLabel: "accuracy (%)", groups: rows.map { $0.accuracy.chartGroup($0.name) })
    }

    /// Writes `ablation.md`, `ablation.json` and `ablation.svg` into `directory`, reporting each to `events`.
    public func writeFiles(into directory: String, events: (RunEvent) -> Void) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try AblationRunResult.writeFiles(markdown: markdown, json: try jsonText(), svg: svg, into: directory,
                                         what: ("ablation over seeds (Markdown)", "ablation over seeds (JSON)",
                                                "ablation over seeds (chart)"), events: events)
    }
}

/// Ablates every training seed's checkpoint (`AblationRun` into `out/seed-<s>/`, one after the other) on the same
/// test episodes and combines: per subset the mean over seeds with a t interval across seeds next to the pooled
/// per-episode interval, and the paired differences to the full set per seed, combined across seeds
/// (docs/STATISTICS.md). Writes the combined `ablation.md`, `.json`, `.svg` into `out` (not for a shard: `mml
/// ablate merge` makes them).
///
/// Events: per seed a `.note` naming it, then its `AblationRun`'s events; `.wrote` for each file.
public final class SeedAblationRun: ConfiguredRun<SeedAblationRunConfiguration> {
    /// Polled between episodes by every seed's ablation: a request ends the run with `RunStopped`.
    public var stop: StopRequest?
    private let naming: (String) -> String

    /// - Parameter naming: how the result's words name a configuration field (the CLI: its flag).
    public init(_ configuration: SeedAblationRunConfiguration, naming: @escaping (String) -> String = { $0 }) throws {
        self.naming = naming
        try super.init(configuration)
    }

    /// Ablates each seed and combines. - Throws: `MMLError` from a seed's ablation (naming its checkpoint).
    public func run(events: (RunEvent) -> Void = { _ in }) throws -> SeedAblationRunResult {
        let c = configuration
        for d in try SeedCheckpoint.recipeDifferences(c.checkpoints) { events(.warning(d)) }
        var seeds: [SeedAblationRunResult.Seed] = []
        for (k, checkpoint) in c.checkpoints.enumerated() {
            events(.note("\(checkpoint.label(position: k)) (\(k + 1) of \(c.checkpoints.count)): \(checkpoint.path)"))
            let a = c.configuration(at: k)
            if let dir = a.episodesOut {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            }
            let run = try AblationRun(a, naming: naming)
            run.stop = stop
            let report = try run.run(events: events)
            seeds.append(.init(seed: checkpoint.seed, checkpoint: checkpoint.path, report: report))
        }
        let result = try SeedAblationRunResult(seeds: seeds)
        if c.ablation.shard == nil { try result.writeFiles(into: c.ablation.out, events: events) }
        return result
    }

    /// The table of a sharded ablation over seeds (`mml ablate merge DIR`): each `DIR/seed-<s>/` merged as
    /// `AblationRunResult.merged` merges one run (its table and merged `episodes.jsonl` written into that
    /// directory), then combined and written into `out`.
    /// - Throws: `MMLError` from a seed's merge, or when a seed's records carry another training seed.
    public static func merge(_ directory: String, out: String,
                             events: (RunEvent) -> Void = { _ in }) throws -> SeedAblationRunResult {
        let seeds = try SeedEpisodeDirectories.list(directory).map { d -> SeedAblationRunResult.Seed in
            let (report, file) = try AblationRunResult.merged([d.path])
            try SeedEpisodeDirectories.check(file.records, seed: d.seed, path: d.path)
            try report.writeFiles(into: d.path, events: events)
            let merged = URL(fileURLWithPath: d.path).appendingPathComponent("episodes.jsonl").path
            try file.write(to: merged)
            events(.wrote(path: merged, what: "merged per-episode results"))
            return .init(seed: d.seed, checkpoint: d.path, report: report)
        }
        let result = try SeedAblationRunResult(seeds: seeds)
        try result.writeFiles(into: out, events: events)
        return result
    }
}
