import Foundation

/// What `SeedTrainingRun` trains: one episodic model per training seed, each the run `mml train --seed s` would be
/// (same configuration, `training.seed` = s, `out` = `study/seed-<s>`), in sequence or one seed per process.
public struct SeedTrainingRunConfiguration: Codable, Sendable, Equatable {
    /// The run every seed runs: its `out` is the study directory, its `resume` continues unfinished seeds and skips
    /// finished ones, its `training.seed` is replaced by each seed.
    public var run: EpisodicTrainingRunConfiguration
    /// The training seeds (non-empty, distinct).
    public var seeds: [UInt64]
    /// Train only `seeds[seedIndex]` (one process or job-array task per seed); nil: every seed in sequence.
    public var seedIndex: Int?
    /// Also seed the initial weights with each seed (`backbone.seed` = s); off: every seed starts from the same
    /// weights (`backbone.seed`, the `initSeed`), exactly as `mml train --seed s`.
    public var seedInitialWeights: Bool

    public init(run: EpisodicTrainingRunConfiguration, seeds: [UInt64], seedIndex: Int? = nil,
                seedInitialWeights: Bool = false) {
        self.run = run; self.seeds = seeds; self.seedIndex = seedIndex; self.seedInitialWeights = seedInitialWeights
    }

    /// The study directory.
    public var study: String { run.out }

    /// The seeds this process trains: all, or the one `seedIndex` picks.
    public var selectedSeeds: [UInt64] { seedIndex.map { [seeds[$0]] } ?? seeds }

    /// The run of seed `seed`: `run` with `training.seed` = seed (and `backbone.seed` with `seedInitialWeights`)
    /// into `study/seed-<s>`.
    public func configuration(seed: UInt64) -> EpisodicTrainingRunConfiguration {
        var c = run
        c.training.seed = seed
        if seedInitialWeights { c.backbone.seed = seed }
        c.out = SeedStudy.directory(of: seed, in: study)
        return c
    }

    /// - Throws: `MMLError` naming the field: no or duplicate seeds, `seedIndex` out of range, a bad training run.
    public func validate() throws {
        try SeedStudy.validate(seeds)
        if let seedIndex, !seeds.indices.contains(seedIndex) {
            throw MMLError(.invalidArgument, "`seedIndex` \(seedIndex): the \(seeds.count) `seeds` \(seeds) have "
                           + "indices 0..<\(seeds.count) (0-based)")
        }
        try run.validate()
    }
}

extension SeedTrainingRunConfiguration: RunConfiguration {}

/// What a `SeedTrainingRun` did: per seed trained or skipped, and the summary it wrote.
public struct SeedTrainingRunResult: Codable, Sendable {
    /// One seed of this process.
    public struct SeedRun: Codable, Sendable {
        public var seed: UInt64
        /// The seed's run directory.
        public var directory: String
        /// Whether the seed had finished before this run (it was skipped).
        public var skipped: Bool
        /// The training result (nil when skipped).
        public var result: EpisodicTrainingRunResult?
    }

    public var seeds: [SeedRun]
    /// `study/seeds.json`.
    public var summary: String
    /// Whether a stop request ended the last seed's run early (its `last` holds every finished step; the seeds after
    /// it were not started).
    public var stopped: Bool { seeds.last?.result?.stopped ?? false }
}

/// Trains one model per training seed into `study/seed-<s>/` (each seed's usual files) and keeps `study/seeds.json`
/// listing the seeds and their checkpoints. With `run.resume`, finished seeds are skipped and unfinished ones
/// continue; the result of each seed is the one `mml train --seed s` gives, bit for bit, however the seeds are
/// split over processes.
///
/// Events: per seed a `.note` ("seed s (i of n): ..."), then the seed's `EpisodicTrainingRun` events; `.wrote` for
/// the summary.
public final class SeedTrainingRun: ConfiguredRun<SeedTrainingRunConfiguration> {
    /// The processes training each seed together (`EpisodicTrainingRun.group`); rank 0 writes the summary.
    public var group: any ProcessGroup = SingleProcessGroup()
    /// Passed to each seed's `EpisodicTrainingRun`: a request stops the current seed at a step boundary and the
    /// study there.
    public var stop: StopRequest?

    /// Trains the selected seeds. - Throws: `MMLError` from a seed's run (naming its directory) or the summary.
    public func run(events: (RunEvent) -> Void = { _ in }) throws -> SeedTrainingRunResult {
        let c = configuration
        if group.rank == 0 {
            try FileManager.default.createDirectory(atPath: c.study, withIntermediateDirectories: true)
            try writeSummary()
        }
        var done: [SeedTrainingRunResult.SeedRun] = []
        for seed in c.selectedSeeds {
            var run = c.configuration(seed: seed)
            let position = "seed \(seed) (\((c.seeds.firstIndex(of: seed) ?? 0) + 1) of \(c.seeds.count))"
            let progress = try SeedStudy.progress(ofRunIn: run.out)
            if c.run.resume, let p = progress, p.episodesDone >= p.totalEpisodes {
                events(.note("\(position): finished (\(p.episodesDone) episodes) in \(run.out); skipped"))
                done.append(.init(seed: seed, directory: run.out, skipped: true, result: nil))
                continue
            }
            // `resume` continues a started seed; a seed not started yet starts fresh.
            if c.run.resume { run.resume = progress != nil }
            events(.note("\(position): " + (run.resume ? "resuming" : "training") + " into \(run.out)"))
            let r = try EpisodicTrainingRun(run)
            r.group = group
            r.stop = stop
            let result = try r.run(events: events)
            done.append(.init(seed: seed, directory: run.out, skipped: false, result: result))
            if group.rank == 0 { try writeSummary() }
            if result.stopped { break }
        }
        let path = URL(fileURLWithPath: c.study).appendingPathComponent(SeedStudy.summaryFileName).path
        if group.rank == 0 { events(.wrote(path: path, what: "the study's seeds and checkpoints")) }
        return SeedTrainingRunResult(seeds: done, summary: path)
    }

    /// Writes `study/seeds.json` from what each seed's directory holds now.
    private func writeSummary() throws {
        let c = configuration
        let runs = try c.seeds.map { seed -> SeedStudySummary.Entry in
            let p = try SeedStudy.progress(ofRunIn: SeedStudy.directory(of: seed, in: c.study))
            let total = p?.totalEpisodes ?? c.run.effectiveTraining.totalEpisodes
            return .init(seed: seed, directory: "seed-\(seed)", last: "seed-\(seed)/last.safetensors",
                         best: "seed-\(seed)/best.safetensors", episodesDone: p?.episodesDone ?? 0,
                         totalEpisodes: total, finished: (p?.episodesDone ?? 0) >= total)
        }
        var template = c.run
        template.resume = false
        template.stopAfter = nil
        let summary = SeedStudySummary(seeds: c.seeds, runs: runs, seedInitialWeights: c.seedInitialWeights,
                                       configuration: template)
        let path = URL(fileURLWithPath: c.study).appendingPathComponent(SeedStudy.summaryFileName).path
        try AtomicFile.write(try ConfigurationJSON.text(summary) + "\n", to: path)
    }
}
