import Foundation

/// One episode's scores with the support labels it was given: score column j is class `classes[j]`.
public struct LabelledEpisodeScores: Sendable {
    /// The original support label of every score column (classes in order of first appearance in the support).
    public var classes: [Int]
    /// Per-level and fused scores (queries x classes.count).
    public var scores: EpisodeScores
    /// The predicted original label of every query.
    public var predictions: [Int] { scores.predictions.map { classes[$0] } }
}

/// Scores episodes of precomputed features whose support labels are any integers, with a metric from a
/// configuration or from a trained checkpoint: what `mml score`, the C ABI (`mml_score_episode`) and the Python
/// package's `Metric.score` share, so the three give the same numbers.
///
/// - From a configuration there are no trained fusion statistics: the learned fusion normalises each level over the
///   episode (`FusionStatistics.episode`); the fixed fusion has none.
/// - From a checkpoint the metric carries the trained fusion weights and statistics (`.stored`).
///
/// Scoring only reads the scorer, so one scorer may score from several threads at once.
public final class EpisodeScorer: @unchecked Sendable {
    /// The metric's configuration (a checkpoint's own, for a scorer made from one).
    public let metricConfiguration: MetricConfiguration
    /// The metric and its fusion, in words (the `metric` of `mml score --json`).
    public let description: String
    /// The trained metric of a checkpoint; nil: built from `metricConfiguration` for each episode's way.
    private let trained: MultiLevelMetric?
    private let threads: Int

    /// A scorer for `metric`. - Throws: `MMLError(.config)` naming an invalid field.
    /// - Parameter threads: kernel threads (0: all cores).
    public init(metric: MetricConfiguration = MetricConfiguration(), threads: Int = 0) throws {
        try metric.validate()
        metricConfiguration = metric
        trained = nil
        self.threads = threads
        let f = metric.fusion == .fixed
            ? "fixed fusion: log of the \(metric.resolvedFixedWeights)-weighted sum of per-level softmax outputs"
            : "learned fusion without trained statistics: each level normalised by its mean/std over this episode, "
                + "equal weights"
        description = metric.summary + "; " + f
    }

    /// The trained metric of a model (a loaded checkpoint's), with its fusion weights and statistics.
    /// - Parameter source: names the model in the error.
    /// - Throws: `MMLError(.invalidArgument)` for a model without a metric head.
    public init(model: FewShotModel, source: String) throws {
        guard let m = model.scoringMetric, let config = model.configuration.metric else {
            throw MMLError(.invalidArgument, "\(source) is a \(model.configuration.kind) model without a metric head; "
                           + "give metric settings (`levels`, ...) instead of `checkpoint`")
        }
        metricConfiguration = config
        trained = m
        threads = 0
        let f = m.fixedFusion != nil ? "fixed fusion \(config.resolvedFixedWeights)"
                                     : "learned fusion with the checkpoint's weights and statistics"
        description = config.summary + "; " + f
    }

    /// The trained metric of the checkpoint at `path`. - Throws: `MMLError` from `Checkpoint.load` or for a model
    /// without a metric head.
    public convenience init(checkpoint path: String, threads: Int = 0) throws {
        let loaded = try Checkpoint.load(path, threads: threads)
        try self.init(model: loaded.model, source: path)
    }

    /// Classes in order of first appearance in `labels`, and each label's column.
    public static func columns(of labels: [Int]) -> (classes: [Int], mapped: [Int]) {
        var classes: [Int] = []
        var column: [Int: Int] = [:]
        for l in labels where column[l] == nil { column[l] = classes.count; classes.append(l) }
        return (classes, labels.map { column[$0]! })
    }

    /// Scores one episode.
    /// - Parameters:
    ///   - support: `(N_s, C, H, W)` maps or `(N_s, M, C)` descriptor sets (see `scoreEpisode`).
    ///   - labels: one label per support item, any integers; column j of the scores is the j-th distinct label.
    ///   - query: the support's layout, C and H, W (or M).
    ///   - way: the expected number of classes (nil: any).
    /// - Throws: `MMLError` saying which input is wrong (label count, `way`, shapes, values) or from the heads.
    public func score(support: Tensor, labels: [Int], query: Tensor, way: Int? = nil) throws -> LabelledEpisodeScores {
        guard labels.count == support.shape.first ?? 0 else {
            throw MMLError(.invalidArgument, "\(labels.count) support labels for \(support.shape.first ?? 0) support "
                           + "items (shape \(support.shape)); give one label per support item")
        }
        let (classes, mapped) = Self.columns(of: labels)
        if let way, way != classes.count {
            throw MMLError(.invalidArgument, "the support labels have \(classes.count) distinct values \(classes) but "
                           + "`way` is \(way); give support items of exactly \(way) classes")
        }
        let metric: MultiLevelMetric
        if let trained {
            metric = trained
        } else {
            var config = metricConfiguration
            config.way = classes.count
            metric = try config.makeMetric(threads: threads)
        }
        let s = try scoreEpisode(metric: metric, support: support, labels: mapped, query: query, way: classes.count,
                                 fusionStatistics: trained == nil ? .episode : .stored)
        return LabelledEpisodeScores(classes: classes, scores: s)
    }

    /// The column of every query label. - Throws: `MMLError(.invalidArgument)` for a label no support item has.
    /// - Parameter source: names the labels in the error (a file, or "query labels").
    public static func queryColumns(_ labels: [Int], classes: [Int], source: String) throws -> [Int] {
        let column = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        return try labels.enumerated().map { i, l in
            guard let k = column[l] else {
                throw MMLError(.invalidArgument, "\(source): query \(i) has label \(l), which no support item has "
                               + "(support labels: \(classes)); every query class needs support items")
            }
            return k
        }
    }
}
