import Foundation

/// Which share of a run's episodes one process evaluates: shard `index` of `count` (0-based) takes the episodes
/// whose position in their setting satisfies `position % count == index` (round robin, so every shard gets a
/// similar mix). Episodes are a pure function of (seed, index), so the shards together evaluate exactly the
/// episodes of an unsharded run.
public struct ShardSpec: Codable, Sendable, Equatable, CustomStringConvertible {
    /// 0-based shard number, in `0..<count`.
    public var index: Int
    /// The number of shards.
    public var count: Int

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// "2/8".
    public var description: String { "\(index)/\(count)" }

    /// The default name of this shard's per-episode file: `episodes-shard-2-of-8.jsonl`.
    public var fileName: String { "episodes-shard-\(index)-of-\(count).jsonl" }

    /// Whether the episode at `position` of its setting belongs to this shard.
    public func contains(_ position: Int) -> Bool { position % count == index }

    /// Parses `i/n` (0-based i). - Throws: `MMLError(.invalidArgument)` naming `shard` for bad syntax or bounds.
    public static func parse(_ text: String) throws -> ShardSpec {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0].trimmingCharacters(in: .whitespaces)),
              let n = Int(parts[1].trimmingCharacters(in: .whitespaces)) else {
            throw MMLError(.invalidArgument, "`shard` '\(text)': give i/n, shard i (0-based) of n, e.g. 0/4 for the "
                           + "first of 4 shards")
        }
        let s = ShardSpec(index: i, count: n)
        try s.validate()
        return s
    }

    /// Checks `count >= 1` and `0 <= index < count`. - Throws: `MMLError(.invalidArgument)` naming `shard`.
    public func validate() throws {
        guard count >= 1 else {
            throw MMLError(.invalidArgument, "`shard` \(self): the number of shards must be >= 1")
        }
        guard (0..<count).contains(index) else {
            throw MMLError(.invalidArgument, "`shard` \(self): the shard index must be in 0..<\(count) (shards are "
                           + "0-based: 0/\(count) to \(count - 1)/\(count))")
        }
    }

    /// Checks that every shard gets at least one of `episodes` episodes.
    /// - Throws: `MMLError(.invalidArgument)` naming `shard` and `episodes`.
    public func validate(episodes: Int, setting: String) throws {
        guard count <= episodes else {
            throw MMLError(.invalidArgument, "`shard` \(self): \(count) shards for the \(episodes) `episodes` of "
                           + "\(setting); use at most \(episodes) shards")
        }
    }

    /// The shard of a SLURM job array task: `SLURM_ARRAY_TASK_ID` minus `SLURM_ARRAY_TASK_MIN` (0 when unset),
    /// divided by `SLURM_ARRAY_TASK_STEP` (1 when unset), of `SLURM_ARRAY_TASK_COUNT`; nil when the task id or the
    /// count is not set (not an array job).
    /// - Throws: `MMLError(.invalidArgument)` naming the variables when they are not integers or give a shard
    ///   outside `0..<count`.
    public static func fromSLURM(environment env: [String: String]) throws -> ShardSpec? {
        guard let idText = env["SLURM_ARRAY_TASK_ID"], let countText = env["SLURM_ARRAY_TASK_COUNT"] else {
            return nil
        }
        func integer(_ name: String, _ text: String?) throws -> Int? {
            guard let text else { return nil }
            guard let v = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw MMLError(.invalidArgument, "\(name)=\(text) is not an integer; give `shard` i/n explicitly")
            }
            return v
        }
        let id = try integer("SLURM_ARRAY_TASK_ID", idText)!, count = try integer("SLURM_ARRAY_TASK_COUNT", countText)!
        let min = try integer("SLURM_ARRAY_TASK_MIN", env["SLURM_ARRAY_TASK_MIN"]) ?? 0
        let step = max(try integer("SLURM_ARRAY_TASK_STEP", env["SLURM_ARRAY_TASK_STEP"]) ?? 1, 1)
        let s = ShardSpec(index: (id - min) / step, count: count)
        guard count >= 1, (id - min) % step == 0, (0..<count).contains(s.index) else {
            throw MMLError(.invalidArgument, "SLURM_ARRAY_TASK_ID=\(id) (SLURM_ARRAY_TASK_MIN=\(min), "
                           + "SLURM_ARRAY_TASK_STEP=\(step)) gives shard \(s), outside 0..<\(count) "
                           + "(SLURM_ARRAY_TASK_COUNT=\(count)); give `shard` i/n explicitly")
        }
        return s
    }
}

/// One (way, shot) setting of a per-episode file.
public struct EpisodeSetting: Codable, Sendable, Equatable, Hashable, CustomStringConvertible {
    public var way: Int
    public var shot: Int
    public var query: Int
    /// Episodes of the whole run (all shards).
    public var episodes: Int

    public init(way: Int, shot: Int, query: Int, episodes: Int) {
        self.way = way; self.shot = shot; self.query = query; self.episodes = episodes
    }

    /// "5-way 1-shot".
    public var name: String { "\(way)-way \(shot)-shot" }
    /// "5-way 1-shot, 15 queries, 600 episodes".
    public var description: String { "\(name), \(query) queries, \(episodes) episodes" }
}

/// One evaluated episode: which it is (setting, index, a hash of its content) and its accuracies.
public struct EpisodeRecord: Codable, Sendable, Equatable {
    public var way: Int
    public var shot: Int
    /// The episode's position in its setting, `0..<episodes` (the sampler's episode index; for an episode list,
    /// its position in the list).
    public var index: Int
    /// `EpisodeRecord.contentHash` of the episode.
    public var hash: String
    /// The fused accuracy (the metric protocol), the protocol's accuracy (frozen protocols), or the full set's
    /// accuracy (ablation).
    public var accuracy: Double
    /// Each level's own accuracy, by level name (metric protocol).
    public var levels: [String: Double]?
    /// Each ablation row's accuracy, by row name (`pixel+part`, ..., `all (trained fusion)`).
    public var subsets: [String: Double]?
    /// The training seed of the model that was evaluated, when the run evaluated one seed of a study (absent in
    /// other files and in files of older versions).
    public var trainingSeed: UInt64?
    /// Each query's predicted label (the argmax, in the episode's query order), by measure: `accuracy` (fused, or
    /// the frozen protocol's) and, for the metric protocol, each level's name; `mml compare` counts the queries
    /// whose prediction differs between two runs. Written by `mml eval`; absent in ablation files and in files of
    /// older versions.
    public var predictions: [String: [Int]]?

    public init(way: Int, shot: Int, index: Int, hash: String, accuracy: Double, levels: [String: Double]? = nil,
                subsets: [String: Double]? = nil, trainingSeed: UInt64? = nil, predictions: [String: [Int]]? = nil) {
        self.way = way; self.shot = shot; self.index = index; self.hash = hash; self.accuracy = accuracy
        self.levels = levels; self.subsets = subsets; self.trainingSeed = trainingSeed; self.predictions = predictions
    }

    /// A stable hash of what an episode is: way, shot, query, each class's name and episode label, its support and
    /// query items' names (file paths, or synthetic ids), the query labels, and `dataIdentity` (what the names do
    /// not say, e.g. the synthetic generator's seed). It does not depend on any computed number, threads or shards.
    /// - Parameter dataset: the dataset the episode's indices point into.
    public static func contentHash(of e: Episode, in dataset: any FewShotDataset, dataIdentity: String) -> String {
        var h = FNV1a64()
        h.add("mml-episode/1\u{1}\(dataIdentity)\u{1}way=\(e.way)\u{1}shot=\(e.support.first?.count ?? 0)"
              + "\u{1}query=\(e.query.first?.count ?? 0)\u{1}")
        for (j, c) in e.classes.enumerated() {
            h.add("class=\(dataset.classNames[c])\u{1}label=\(j)\u{1}support=")
            for i in e.support[j] { h.add(dataset.itemPath(ofClass: c, item: i)); h.add("\u{2}") }
            h.add("query=")
            for i in e.query[j] { h.add(dataset.itemPath(ofClass: c, item: i)); h.add("\u{2}") }
        }
        h.add("labels=" + e.queryLabels.map(String.init).joined(separator: ","))
        return h.hex
    }
}
