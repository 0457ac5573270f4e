/// One few-shot episode: `way` classes, `shot` support and `query` query items per class, as dataset indices.
///
/// Position j in `classes` is episode label j. Items are drawn without replacement, so no image is both
/// support and query, and no class appears twice.
public struct Episode: Sendable, Equatable, Codable {
    /// The episode's index in its sampler (its stream number).
    public var index: Int
    /// Dataset class indices, one per episode label.
    public var classes: [Int]
    /// Support item indices per episode label: `support[j]` has `shot` items of class `classes[j]`.
    public var support: [[Int]]
    /// Query item indices per episode label: `query[j]` has `query` items of class `classes[j]`.
    public var query: [[Int]]

    public init(index: Int, classes: [Int], support: [[Int]], query: [[Int]]) {
        self.index = index
        self.classes = classes
        self.support = support
        self.query = query
    }

    /// n-way.
    public var way: Int { classes.count }
    /// Support labels in tensor order (class-major): [0 x shot, 1 x shot, ...].
    public var supportLabels: [Int] { support.enumerated().flatMap { j, s in Array(repeating: j, count: s.count) } }
    /// Query labels in tensor order (class-major).
    public var queryLabels: [Int] { query.enumerated().flatMap { j, q in Array(repeating: j, count: q.count) } }
}

/// Draws n-way k-shot episodes with q queries per class: episode i is a pure function of (seed, i)
/// (`SeededRNG(seed:stream: i)`), so any harness, thread or order gets the same episodes.
public struct EpisodeSampler: Sendable {
    public let way: Int
    public let shot: Int
    public let query: Int
    public let seed: UInt64
    /// Items per class of the dataset the sampler was built for.
    public let itemCounts: [Int]
    /// Warnings from validation (classes dropped as too small).
    public let warnings: [String]
    /// The dataset episodes index into (a `ClassSubset` when small classes were dropped).
    public let dataset: any FewShotDataset

    /// A sampler over `dataset`, validated up front.
    /// - Parameters:
    ///   - dropSmallClasses: drop classes with fewer than `shot + query` items (listed in `warnings`).
    ///   - fields: the configuration fields the errors tell the user to change (default: this initialiser's
    ///     parameters; a run passes its own, e.g. `EpisodeFields.validation(split:)`).
    /// - Throws: `MMLError(.invalidArgument)` for way/shot < 1 or query < 0; `MMLError(.datasetTooSmall)` when a
    ///   class has fewer than shot + query images or fewer than `way` classes remain (names and numbers given).
    public init(dataset: any FewShotDataset, way: Int, shot: Int, query: Int, seed: UInt64,
                dropSmallClasses: Bool = false, fields: EpisodeFields = .sampler) throws {
        guard way >= 1, shot >= 1, query >= 0 else {
            throw MMLError(.invalidArgument, "episodes need way >= 1, shot >= 1 and query >= 0; got way \(way), "
                           + "shot \(shot), query \(query)")
        }
        let ds = try validateForEpisodes(dataset, way: way, perClass: shot + query, shot: shot, query: query,
                                         dropSmallClasses: dropSmallClasses, fields: fields)
        self.dataset = ds
        self.way = way
        self.shot = shot
        self.query = query
        self.seed = seed
        self.itemCounts = ds.itemCounts
        self.warnings = ds.warnings
    }

    /// Episode `index`: `way` distinct classes, then `shot + query` distinct items of each, the first `shot`
    /// support. Depends only on (seed, index).
    public func episode(_ index: Int) -> Episode {
        var rng = SeededRNG(seed: seed, stream: UInt64(index))
        let classes = rng.sample(way, from: itemCounts.count)
        var support: [[Int]] = [], query: [[Int]] = []
        for c in classes {
            let items = rng.sample(shot + self.query, from: itemCounts[c])
            support.append(Array(items[0..<shot]))
            query.append(Array(items[shot...]))
        }
        return Episode(index: index, classes: classes, support: support, query: query)
    }

    /// Episodes `0..<count`.
    public func episodes(_ count: Int) -> [Episode] { (0..<count).map(episode) }
}
