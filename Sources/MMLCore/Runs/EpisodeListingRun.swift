import Foundation

/// What `EpisodeListingRun` lists: `episodes` episodes of a dataset split, episode i a pure function of (seed, i).
public struct EpisodeListingConfiguration: Codable, Sendable, Equatable {
    /// The data (a nil split is the dataset's default).
    public var dataset: DatasetSource
    /// Classes per episode (n-way).
    public var way: Int
    /// Support images per class (k-shot).
    public var shot: Int
    /// Query images per class.
    public var query: Int
    /// Number of episodes.
    public var episodes: Int
    /// Episode seed.
    public var seed: UInt64
    /// Drop classes with fewer than shot + query images (with a warning) instead of failing.
    public var dropSmallClasses: Bool
    /// Write the list (JSON) here, atomically; nil: only return it.
    public var out: String?

    public init(dataset: DatasetSource = DatasetSource(), way: Int = 5, shot: Int = 1, query: Int = 15,
                episodes: Int = 600, seed: UInt64 = 0, dropSmallClasses: Bool = false, out: String? = nil) {
        self.dataset = dataset; self.way = way; self.shot = shot; self.query = query; self.episodes = episodes
        self.seed = seed; self.dropSmallClasses = dropSmallClasses; self.out = out
    }

    /// - Throws: `MMLError` naming the field: fewer than one episode (way, shot and query are checked by the
    ///   sampler against the dataset).
    public func validate() throws {
        guard episodes >= 1 else { throw MMLError(.invalidArgument, "`episodes` must be >= 1, got \(episodes)") }
        try dataset.validate()
        try Limits.check(way, "way", in: Limits.way, "classes per episode")
        try Limits.check(shot, "shot", in: Limits.shot, "support images per class")
        try Limits.check(query, "query", in: 0...Limits.query.upperBound, "query images per class")
        try Limits.check(episodes, "episodes", in: Limits.episodes, "episodes")
        let images = try Limits.imagesPerEpisode(way: way, wayField: "way", shot: shot, shotField: "shot",
                                                 query: query, queryField: "query")
        // The list is sampled whole, then written as JSON (a few times the indices, with the file paths).
        var m = MemoryEstimate()
        m.addEpisodes(episodes, imagesPerEpisode: images, way: way, what: "episodes")
        m.add("their JSON text", bytes: Double(episodes) * Double(images) * 64)
        try m.check(lower: ["episodes", "way", "shot", "query"])
    }
}

extension EpisodeListingConfiguration: RunConfiguration {}

/// Samples an episode list (`mml data episodes`, `mml.episodes` in Python): class names and item paths per
/// episode, so another harness or another mml run evaluates on the very same episodes.
///
/// Events: `warning` for each dropped class, `wrote` for the file.
public final class EpisodeListingRun: ConfiguredRun<EpisodeListingConfiguration> {
    /// Opens the dataset, samples the episodes and writes the list when `out` is set.
    /// - Throws: `MMLError` from the dataset or the sampler (too few classes or images, naming both numbers).
    public func run(events: (RunEvent) -> Void = { _ in }) throws -> EpisodeList {
        let c = configuration
        if let out = c.out { try OutputCheck.prepare(file: out, field: "out") }  // checks before work
        let ds = try c.dataset.open()
        let sampler = try EpisodeSampler(dataset: ds, way: c.way, shot: c.shot, query: c.query, seed: c.seed,
                                         dropSmallClasses: c.dropSmallClasses)
        for w in sampler.warnings { events(.warning(w)) }
        let list = EpisodeList(episodes: sampler.episodes(c.episodes), sampler: sampler, split: c.dataset.split)
        if let out = c.out {
            try list.write(to: out)
            events(.wrote(path: out, what: "\(c.episodes) episodes (\(c.way)-way \(c.shot)-shot, \(c.query) queries, "
                          + "seed \(c.seed)) of \(ds.name)"))
        }
        return list
    }
}
