import Foundation

/// What `EpisodeScoringRun` scores: one episode of precomputed features (`.npy` files from any framework), with a
/// metric from a configuration or from a trained checkpoint.
public struct EpisodeScoringRunConfiguration: Codable, Sendable, Equatable {
    /// Support features (`.npy`): (N_s, C, H, W) feature maps or (N_s, M, C) descriptor sets.
    public var support: String
    /// Support labels (`.npy`, 1-D int32/int64, any integers: classes are numbered in order of first appearance).
    public var supportLabels: String
    /// Query features (`.npy`), the support's layout and C.
    public var query: String
    /// Query labels (`.npy`); when given, accuracy is reported.
    public var queryLabels: String?
    /// Expected number of classes (nil: any).
    public var way: Int?
    /// The metric (nil: `MetricConfiguration()`, or the checkpoint's); its `way` is set to the episode's.
    public var metric: MetricConfiguration?
    /// A trained episodic checkpoint: the metric, its fusion weights and statistics come from it.
    public var checkpoint: String?
    /// Write the fused scores here (`.npy`), per level `<stem>.<level>.npy`, the classes `<stem>.classes.npy`.
    public var out: String?
    /// Kernel threads (0: all cores).
    public var threads: Int

    public init(support: String, supportLabels: String, query: String, queryLabels: String? = nil, way: Int? = nil,
                metric: MetricConfiguration? = nil, checkpoint: String? = nil, out: String? = nil, threads: Int = 0) {
        self.support = support; self.supportLabels = supportLabels; self.query = query; self.queryLabels = queryLabels
        self.way = way; self.metric = metric; self.checkpoint = checkpoint; self.out = out; self.threads = threads
    }

    /// - Throws: `MMLError` naming the field: a metric together with a checkpoint, an invalid metric.
    public func validate() throws {
        if checkpoint != nil && metric != nil {
            throw MMLError(.invalidArgument, "`metric` cannot be combined with `checkpoint`: the metric comes from the "
                           + "checkpoint; drop one of them")
        }
        if let way, way < 1 { throw MMLError(.invalidArgument, "`way` \(way) must be at least 1") }
        try Limits.check(way, "way", in: Limits.way, "classes")
        try Limits.check(threads, "threads", in: Limits.threads, "kernel threads (0: all cores)")
        try metric?.validate()
    }
}

/// The scores of one episode; encoded (sorted keys) it is the JSON `mml score --json` prints.
public struct EpisodeScoringRunResult: Codable, Sendable {
    /// The number of classes (score columns).
    public var way: Int
    /// Support items.
    public var support: Int
    /// Query items.
    public var query: Int
    /// The support label of each score column.
    public var classes: [Int]
    /// The enabled levels' names, in canonical order.
    public var levels: [String]
    /// The metric and its fusion, in words.
    public var metric: String
    /// Each level's scores (queries x way), by level name.
    public var scores: [String: [[Double]]]
    /// The fused scores (queries x way).
    public var fused: [[Double]]
    /// The predicted support label of every query.
    public var predictions: [Int]
    /// With query labels: the fused (`fused`) and each level's accuracy.
    public var accuracy: [String: Double]?

    /// The result as compact JSON with sorted keys.
    public func jsonText() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: try enc.encode(self), as: UTF8.self)
    }
}

/// Scores one episode of precomputed features with the multi-level metric: per-level and fused scores, the class
/// mapping, predictions and (with query labels) accuracy; writes the scores as `.npy` files when `out` is set.
///
/// Events: `wrote` for each file written.
public final class EpisodeScoringRun: ConfiguredRun<EpisodeScoringRunConfiguration> {
    /// Reads the inputs, scores the episode and writes the scores. - Throws: `MMLError` saying which input is wrong.
    public func run(events: (RunEvent) -> Void = { _ in }) throws -> EpisodeScoringRunResult {
        let c = configuration
        if let out = c.out { try OutputCheck.prepare(file: out, field: "out") }  // checks before work
        let s = try Self.readFeatures(c.support, role: "support")
        let q = try Self.readFeatures(c.query, role: "query")
        guard s.rank == q.rank else {
            throw MMLError(.invalidArgument, "\(c.support) has shape \(s.shape) but \(c.query) has \(q.shape); give both "
                           + "as (N, C, H, W) or both as (N, M, C)")
        }
        let channelAxis = s.rank == 4 ? 1 : 2
        guard s.shape[channelAxis] == q.shape[channelAxis] else {
            throw MMLError(.invalidArgument, "support features \(c.support) have C = \(s.shape[channelAxis]) channels "
                           + "but query features \(c.query) have C = \(q.shape[channelAxis]); extract both with the same "
                           + "backbone")
        }
        let rawSupport = try Self.readLabels(c.supportLabels, count: s.shape[0], of: c.support, role: "support")
        let classes = EpisodeScorer.columns(of: rawSupport).classes
        if let way = c.way, way != classes.count {
            throw MMLError(.invalidArgument, "\(c.supportLabels) has \(classes.count) distinct labels \(classes) but "
                           + "`way` is \(way); give support items of exactly \(way) classes")
        }
        let scorer = try c.checkpoint.map { try EpisodeScorer(checkpoint: $0, threads: c.threads) }
            ?? EpisodeScorer(metric: c.metric ?? MetricConfiguration(), threads: c.threads)
        var mappedQuery: [Int]?
        if let path = c.queryLabels {
            let raw = try Self.readLabels(path, count: q.shape[0], of: c.query, role: "query")
            mappedQuery = try EpisodeScorer.queryColumns(raw, classes: classes, source: path)
        }
        let scores = try scorer.score(support: s, labels: rawSupport, query: q).scores
        let accuracy = try mappedQuery.map { try scores.accuracy(queryLabels: $0) }
        if let out = c.out {
            let stem = out.hasSuffix(".npy") ? String(out.dropLast(4)) : out
            for l in scores.levels {
                try NPY.write(scores.levelScores[l]!, to: "\(stem).\(l.rawValue).npy")
                events(.wrote(path: "\(stem).\(l.rawValue).npy", what: "\(l.rawValue) scores"))
            }
            try NPY.write(ints: classes, shape: [classes.count], to: "\(stem).classes.npy")
            events(.wrote(path: "\(stem).classes.npy", what: "classes"))
            try NPY.write(scores.fused, to: stem + ".npy")
            events(.wrote(path: stem + ".npy", what: "fused scores"))
        }
        func rows(_ t: Tensor) -> [[Double]] {
            (0..<t.shape[0]).map { i in (0..<t.shape[1]).map { Double(t.data[i * t.shape[1] + $0]) } }
        }
        return EpisodeScoringRunResult(
            way: classes.count, support: s.shape[0], query: q.shape[0], classes: classes,
            levels: scores.levels.map(\.rawValue), metric: scorer.description,
            scores: Dictionary(uniqueKeysWithValues: scores.levels.map { ($0.rawValue, rows(scores.levelScores[$0]!)) }),
            fused: rows(scores.fused), predictions: scores.predictions.map { classes[$0] },
            accuracy: accuracy.map { a in
                var out = ["fused": a.fused]
                for (l, v) in a.levels { out[l.rawValue] = v }
                return out
            })
    }

    /// Reads a 1-D integer label file with `count` entries.
    static func readLabels(_ path: String, count: Int, of features: String, role: String) throws -> [Int] {
        let a = try NPY.read(path)
        guard a.dtype == .int32 || a.dtype == .int64 else {
            throw MMLError(.unsupportedFormat, "\(path): \(role) labels have dtype \(a.dtype.rawValue); labels must be "
                           + "int32 or int64 (save arr.astype(np.int64))")
        }
        guard a.shape.count == 1 else {
            throw MMLError(.invalidArgument, "\(path): \(role) labels have shape \(a.shape); give a 1-D array with one "
                           + "label per item")
        }
        guard a.shape[0] == count else {
            throw MMLError(.invalidArgument, "\(path) has \(a.shape[0]) \(role) labels but \(features) has \(count) "
                           + "\(role) items; give one label per item")
        }
        return try a.ints(source: path)
    }

    /// Reads a rank-3 or rank-4 feature file.
    static func readFeatures(_ path: String, role: String) throws -> Tensor {
        let t = try NPY.readTensor(path)
        guard t.rank == 3 || t.rank == 4, !t.shape.contains(0) else {
            throw MMLError(.invalidArgument, "\(path): \(role) features have shape \(t.shape); give (N, C, H, W) feature "
                           + "maps or (N, M, C) descriptor sets with no empty dimension")
        }
        return t
    }
}
