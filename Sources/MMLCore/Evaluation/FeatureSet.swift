import Foundation

/// Precomputed features of a labelled image collection, seen as a few-shot dataset: class `k` is the k-th
/// smallest distinct label, and its items are the rows with that label in row order. An `EpisodeSampler` over a
/// feature set draws episodes exactly as over images; `evaluateEpisodes(features:...)` scores them.
///
///     let set = try FeatureSet(features: feats, labels: imageLabels)   // feats (N, C, H, W) or (N, M, C)
///     let sampler = try EpisodeSampler(dataset: set, way: 5, shot: 1, query: 15, seed: 1)
///     let result = try evaluateEpisodes(features: set, episodes: sampler.episodes(600), metric: metric,
///                                       fusionStatistics: .episode)
public struct FeatureSet: FewShotDataset {
    /// The features as given, `(N, C, H, W)` or `(N, M, C)`.
    public let features: Tensor
    /// The label of every row, as given.
    public let labels: [Int]
    /// The distinct labels in increasing order: class index -> label.
    public let classLabels: [Int]
    /// Row indices of every class, in row order.
    public let rows: [[Int]]
    public let name: String
    public var classNames: [String] { classLabels.map { "label \($0)" } }
    public var skippedFiles: [String] { [] }
    public var warnings: [String] { [] }

    /// - Throws: `MMLError` for a shape other than rank 3 or 4, NaN/Inf values (naming the index), or a label count
    ///   that differs from the number of rows.
    public init(features: Tensor, labels: [Int], name: String = "precomputed features") throws {
        _ = try episodeFeatureMaps(features, role: name)
        guard labels.count == features.shape[0] else {
            throw MMLError(.invalidArgument, "\(labels.count) labels for \(features.shape[0]) feature rows of \(name) "
                           + "(shape \(features.shape)); give one label per image")
        }
        self.features = features
        self.labels = labels
        self.name = name
        classLabels = Array(Set(labels)).sorted()
        let index = Dictionary(uniqueKeysWithValues: classLabels.enumerated().map { ($1, $0) })
        var rows = [[Int]](repeating: [], count: classLabels.count)
        for (r, l) in labels.enumerated() { rows[index[l]!].append(r) }
        self.rows = rows
    }

    public func itemCount(ofClass c: Int) -> Int { rows[c].count }
    public func itemPath(ofClass c: Int, item i: Int) -> String { "\(name)/row\(rows[c][i])" }
    public func loadImage(ofClass c: Int, item i: Int, channels: Int) throws -> PixelImage {
        throw MMLError(.invalidArgument, "\(name) holds features, not images; score its episodes with "
                       + "evaluateEpisodes(features:episodes:metric:)")
    }

    /// The features of the given rows, in the given order (same layout as `features`).
    public func rows(_ indices: [Int]) -> Tensor {
        let per = features.count / features.shape[0]
        var data = [Float]()
        data.reserveCapacity(indices.count * per)
        for r in indices { data += features.data[(r * per)..<((r + 1) * per)] }
        return Tensor(shape: [indices.count] + Array(features.shape.dropFirst()), data: data)
    }

    /// The support and query features and labels of an episode drawn over this set.
    /// - Throws: `MMLError` when the episode names a class or item this set does not have (an episode drawn over
    ///   another dataset, or a sampler built with `dropSmallClasses`).
    public func batch(for e: Episode) throws -> (support: Tensor, supportLabels: [Int], query: Tensor, queryLabels: [Int]) {
        func row(_ c: Int, _ i: Int) throws -> Int {
            guard c >= 0, c < rows.count, i >= 0, i < rows[c].count else {
                throw MMLError(.invalidArgument, "episode \(e.index) names item \(i) of class \(c), but \(name) has "
                               + "\(rows.count) classes with \(rows.map(\.count)) items; draw episodes with an "
                               + "EpisodeSampler over this feature set (without dropSmallClasses)")
            }
            return rows[c][i]
        }
        guard e.support.count == e.classes.count, e.query.count == e.classes.count else {
            throw MMLError(.invalidArgument, "episode \(e.index) has \(e.classes.count) classes but \(e.support.count) "
                           + "support and \(e.query.count) query lists")
        }
        var s: [Int] = [], q: [Int] = []
        for (j, c) in e.classes.enumerated() {
            for i in e.support[j] { s.append(try row(c, i)) }
            for i in e.query[j] { q.append(try row(c, i)) }
        }
        return (rows(s), e.supportLabels, rows(q), e.queryLabels)
    }
}

/// Accumulates per-episode accuracies into an `EpisodeEvaluation`.
struct EvaluationAccumulator {
    var fused: [Double] = []
    var perLevel: [MetricLevel: [Double]] = [:]
    let start = DispatchTime.now().uptimeNanoseconds

    mutating func add(_ scores: EpisodeScores, queryLabels: [Int]) throws {
        let acc = try scores.accuracy(queryLabels: queryLabels)
        fused.append(acc.fused)
        for (l, a) in acc.levels { perLevel[l, default: []].append(a) }
    }

    func result() -> EpisodeEvaluation {
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        return EpisodeEvaluation(fused: AccuracySummary(fused), levels: perLevel.mapValues { AccuracySummary($0) },
                                 fusedPerEpisode: fused, levelsPerEpisode: perLevel, seconds: seconds)
    }
}

/// Evaluates a metric on episodes of precomputed features (no backbone): fused and per-level accuracy with 95%
/// intervals.
/// - Parameters:
///   - features: the feature set the episodes were drawn over.
///   - episodes: episodes from an `EpisodeSampler` over `features` (or resolved from an episode list).
///   - fusionStatistics: see `scoreEpisode`.
///   - progress: called after each episode with the number done.
/// - Throws: `MMLError` for an empty episode list, an episode that does not fit the set, or a failing episode.
public func evaluateEpisodes(features: FeatureSet, episodes: [Episode], metric: MultiLevelMetric,
                             fusionStatistics: FusionStatistics = .stored,
                             progress: ((Int) throws -> Void)? = nil) throws -> EpisodeEvaluation {
    guard !episodes.isEmpty else { throw MMLError(.invalidArgument, "evaluate at least 1 episode, got none") }
    var acc = EvaluationAccumulator()
    for (k, e) in episodes.enumerated() {
        let b = try features.batch(for: e)
        let scores = try scoreEpisode(metric: metric, support: b.support, labels: b.supportLabels, query: b.query,
                                      way: e.way, fusionStatistics: fusionStatistics)
        try acc.add(scores, queryLabels: b.queryLabels)
        try progress?(k + 1)
    }
    return acc.result()
}

/// Evaluates a metric on `episodes` seeded n-way k-shot episodes drawn over precomputed features of a whole split
/// (`features` `(N, C, H, W)` or `(N, M, C)`, `labels` one integer per row): a `FeatureSet` and an `EpisodeSampler`
/// over it, then `evaluateEpisodes(features:episodes:metric:)`.
/// - Throws: `MMLError` for bad features or labels, classes with fewer than `shot + query` rows, or fewer than
///   `way` classes.
public func evaluateEpisodes(features: Tensor, labels: [Int], way: Int, shot: Int, query: Int, seed: UInt64,
                             episodes: Int, metric: MultiLevelMetric, fusionStatistics: FusionStatistics = .stored,
                             progress: ((Int) throws -> Void)? = nil) throws -> EpisodeEvaluation {
    let set = try FeatureSet(features: features, labels: labels)
    let sampler = try EpisodeSampler(dataset: set, way: way, shot: shot, query: query, seed: seed)
    guard episodes >= 1 else { throw MMLError(.invalidArgument, "evaluate at least 1 episode, got \(episodes)") }
    return try evaluateEpisodes(features: set, episodes: sampler.episodes(episodes), metric: metric,
                                fusionStatistics: fusionStatistics, progress: progress)
}

/// Evaluates a metric on image episodes with any backbone given as a closure (for instance one that calls into
/// another framework): `backbone` maps a batch of images `(N, C_in, H, W)` to features `(N, C, H', W')` or
/// `(N, M, C)`. Support and query images of an episode go through one call, support first.
/// - Throws: `MMLError` when `episodes < 1`, the closure's output does not have N rows of a supported shape, or
///   anything the closure, the loader or the metric throws.
public func evaluateEpisodes(backbone: (Tensor) throws -> Tensor, metric: MultiLevelMetric, loader: EpisodeLoader,
                             sampler: EpisodeSampler, episodes: Int, fusionStatistics: FusionStatistics = .stored,
                             progress: ((Int) throws -> Void)? = nil) throws -> EpisodeEvaluation {
    guard episodes >= 1 else { throw MMLError(.invalidArgument, "evaluate at least 1 episode, got \(episodes)") }
    var acc = EvaluationAccumulator()
    for e in 0..<episodes {
        let b = try loader.batch(for: sampler.episode(e))
        var x = b.support
        x.shape[0] += b.query.shape[0]
        x.data += b.query.data
        let f = try backbone(x)
        guard f.rank >= 1, f.shape[0] == x.shape[0], f.data.count == f.shape.reduce(1, *) else {
            throw MMLError(.invalidArgument, "the backbone closure returned shape \(f.shape) (\(f.data.count) values) "
                           + "for \(x.shape[0]) images; it must return one feature map per image, (N, C, H, W) or (N, M, C)")
        }
        let ns = b.support.shape[0], per = f.count / f.shape[0]
        let rest = Array(f.shape.dropFirst())
        let s = Tensor(shape: [ns] + rest, data: Array(f.data[0..<(ns * per)]))
        let q = Tensor(shape: [f.shape[0] - ns] + rest, data: Array(f.data[(ns * per)...]))
        let scores = try scoreEpisode(metric: metric, support: s, labels: b.supportLabels, query: q, way: sampler.way,
                                      fusionStatistics: fusionStatistics)
        try acc.add(scores, queryLabels: b.queryLabels)
        try progress?(e + 1)
    }
    return acc.result()
}
