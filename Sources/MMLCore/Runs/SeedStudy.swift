import Foundation

/// The training seeds of a study: parsing a seed list and the study directory's layout (`OUT/seed-<s>/`, the summary
/// `OUT/seeds.json`), shared by `SeedTrainingRun` and the evaluations over seeds (docs/STATISTICS.md).
public enum SeedStudy {
    /// The summary file in a study directory.
    public static let summaryFileName = "seeds.json"

    /// The directory of seed `seed` in `study`: `study/seed-<s>`.
    public static func directory(of seed: UInt64, in study: String) -> String {
        URL(fileURLWithPath: study).appendingPathComponent("seed-\(seed)").path
    }

    /// Parses a comma-separated list of training seeds (`1,2,3`), naming `field` in errors.
    /// - Throws: `MMLError(.invalidArgument)` for an empty list or entry, a word that is not a number, a negative
    ///   number, or a seed listed twice.
    public static func parse(_ text: String, field: String = "seeds") throws -> [UInt64] {
        let example = "give a comma-separated list of training seeds, e.g. 1,2,3"
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw MMLError(.invalidArgument, "`\(field)` is empty: \(example)")
        }
        var seeds: [UInt64] = []
        for p in parts {
            guard !p.isEmpty else {
                throw MMLError(.invalidArgument, "`\(field)` '\(text)' has an empty entry: \(example)")
            }
            if let v = Int(p), v < 0 {
                throw MMLError(.invalidArgument, "`\(field)` '\(text)': \(v) is negative; seeds are integers from 0 "
                               + "to \(UInt64.max)")
            }
            guard let s = UInt64(p) else {
                throw MMLError(.invalidArgument, "`\(field)` '\(text)': '\(p)' is not a seed; \(example) (integers "
                               + "from 0 to \(UInt64.max))")
            }
            if seeds.contains(s) {
                throw MMLError(.invalidArgument, "`\(field)` '\(text)': seed \(s) is listed twice; each seed trains "
                               + "one model, list it once")
            }
            seeds.append(s)
        }
        return seeds
    }

    /// Checks a list of seeds as `parse` does (for configurations built in code).
    /// - Throws: `MMLError(.invalidArgument)` naming `field` for an empty list or a duplicate.
    public static func validate(_ seeds: [UInt64], field: String = "seeds") throws {
        guard !seeds.isEmpty else {
            throw MMLError(.invalidArgument, "`\(field)` is empty: give at least one training seed, e.g. 1,2,3")
        }
        var seen = Set<UInt64>()
        for s in seeds where !seen.insert(s).inserted {
            throw MMLError(.invalidArgument, "`\(field)` \(seeds): seed \(s) is listed twice; each seed trains one "
                           + "model, list it once")
        }
    }

    /// The seed of a SLURM job array task: the task's index (`ShardSpec.fromSLURM`) into `seeds`; nil outside an
    /// array job. - Throws: `MMLError(.invalidArgument)` when the array's task count is not the number of seeds.
    public static func indexFromSLURM(environment env: [String: String], seeds: [UInt64]) throws -> Int? {
        guard let task = try ShardSpec.fromSLURM(environment: env) else { return nil }
        guard task.count == seeds.count else {
            throw MMLError(.invalidArgument, "the SLURM job array has \(task.count) tasks (SLURM_ARRAY_TASK_COUNT) "
                           + "but `seeds` lists \(seeds.count); submit with --array=0-\(seeds.count - 1), or give "
                           + "`seedIndex`")
        }
        return task.index
    }

    /// How far the run in `directory` is, from its `last.json` sidecar: nil when there is no run there.
    /// - Throws: `MMLError(.corruptFile)` when the sidecar cannot be read as a training state.
    public static func progress(ofRunIn directory: String) throws -> (episodesDone: Int, totalEpisodes: Int)? {
        let last = URL(fileURLWithPath: directory).appendingPathComponent("last.safetensors").path
        guard FileManager.default.fileExists(atPath: last) else { return nil }
        struct Sidecar: Decodable {
            struct State: Decodable { var episodesDone: Int; var training: EpisodicTrainingConfiguration }
            var state: State
        }
        let path = Checkpoint.sidecarPath(last)
        guard let data = FileManager.default.contents(atPath: path),
              let s = try? JSONDecoder().decode(Sidecar.self, from: data) else {
            throw MMLError(.corruptFile, "\(path) is missing or not the state of an episodic training run; the run in "
                           + "\(directory) cannot be resumed or skipped (move it away to train that seed again)")
        }
        return (s.state.episodesDone, s.state.training.totalEpisodes)
    }
}

/// The summary of a study directory (`OUT/seeds.json`): the seeds and each one's run, with paths relative to the
/// study directory (so it can be moved). Written by `SeedTrainingRun` after each seed; the status fields are a
/// snapshot (tasks of a job array write it concurrently), the evaluations read each seed's own files.
public struct SeedStudySummary: Codable, Sendable, Equatable {
    /// One seed's run.
    public struct Entry: Codable, Sendable, Equatable {
        public var seed: UInt64
        /// `seed-<s>`.
        public var directory: String
        /// `seed-<s>/last.safetensors` and `seed-<s>/best.safetensors` (the one the evaluations use).
        public var last: String
        public var best: String
        /// Training episodes done and in all (0 before the seed started).
        public var episodesDone: Int
        public var totalEpisodes: Int
        public var finished: Bool
    }

    /// The training seeds, in order.
    public var seeds: [UInt64]
    public var runs: [Entry]
    /// Whether each seed also seeded the initial weights (else every seed starts from the same `initSeed`).
    public var seedInitialWeights: Bool
    /// The training run every seed ran (its `out` the study directory, its `training.seed` replaced by each seed).
    public var configuration: EpisodicTrainingRunConfiguration

    /// Reads `directory/seeds.json`.
    /// - Throws: `MMLError(.fileNotFound)` when there is none, `MMLError(.corruptFile)` when it is not a summary.
    public static func read(directory: String) throws -> SeedStudySummary {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(SeedStudy.summaryFileName).path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MMLError(.fileNotFound, "\(directory) is a directory but holds no \(SeedStudy.summaryFileName): give "
                           + "a checkpoint (.safetensors) or the `out` of mml train --seeds")
        }
        do { return try JSONDecoder().decode(SeedStudySummary.self, from: data) } catch {
            throw MMLError(.corruptFile, "\(path) is not the summary of mml train --seeds (\(error)); the file is "
                           + "damaged: run mml train --seeds ... --resume again to rewrite it")
        }
    }

    /// Whether `path` is a directory (a study directory when given as a checkpoint).
    public static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// The seeds' `best.safetensors`, absolute, for evaluation.
    /// - Throws: `MMLError` when a seed has not finished training, naming the seed and how far it is.
    public func checkpoints(in directory: String) throws -> [(seed: UInt64, path: String)] {
        try runs.map { e in
            let dir = URL(fileURLWithPath: directory).appendingPathComponent(e.directory).path
            let best = URL(fileURLWithPath: directory).appendingPathComponent(e.best).path
            let p = try SeedStudy.progress(ofRunIn: dir)
            guard let p, p.episodesDone >= p.totalEpisodes, FileManager.default.fileExists(atPath: best) else {
                let how = p.map { "at episode \($0.episodesDone) of \($0.totalEpisodes)" } ?? "not started"
                throw MMLError(.invalidArgument, "seed \(e.seed) of the study \(directory) has not finished training "
                               + "(\(how)); finish it with mml train --seeds ... --out \(directory) --resume, or "
                               + "evaluate the finished seeds' checkpoints with repeated `checkpoint`")
            }
            return (e.seed, best)
        }
    }
}
