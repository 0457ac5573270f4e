import Foundation

/// The result of evaluating a model on a list of episodes: fused and per-level accuracy with 95% intervals,
/// and the per-episode accuracies (for paired comparisons on the very same episodes).
public struct EpisodeEvaluation: Sendable {
    public var fused: AccuracySummary
    public var levels: [MetricLevel: AccuracySummary]
    public var fusedPerEpisode: [Double]
    public var levelsPerEpisode: [MetricLevel: [Double]]
    /// Per episode, each query's predicted label from the fused logits (`predictions(of:)`, queries in the
    /// episode's order); empty where the evaluator does not keep them.
    public var fusedPredictions: [[Int]] = []
    /// Per level, per episode, each query's predicted label from that level's own scores.
    public var levelPredictions: [MetricLevel: [[Int]]] = [:]
    /// Wall time of the whole evaluation.
    public var seconds: Double
    public var episodesPerSecond: Double { Double(fusedPerEpisode.count) / max(seconds, 1e-9) }
}

/// Fraction of rows of `scores` (queries x way) whose argmax equals the label (ties: the first maximum).
public func accuracy(of scores: Tensor, labels: [Int]) -> Double {
    let q = scores.shape[0]
    precondition(labels.count == q, "[accuracy] \(labels.count) labels for \(q) rows")
    return accuracy(predictions: predictions(of: scores), labels: labels)
}

/// The argmax of each row of `scores` (queries x way), the first maximum on ties: each query's predicted label.
public func predictions(of scores: Tensor) -> [Int] {
    let q = scores.shape[0], w = scores.shape[1]
    return (0..<q).map { i in
        var best = 0
        for c in 1..<w where scores.data[i * w + c] > scores.data[i * w + best] { best = c }
        return best
    }
}

/// Fraction of `predictions` equal to `labels`.
func accuracy(predictions: [Int], labels: [Int]) -> Double {
    Double(zip(predictions, labels).filter { $0 == $1 }.count) / Double(max(labels.count, 1))
}

/// Evaluate a backbone and a multi-level metric on episodes `0..<episodes` of `sampler` (inference mode).
/// - Parameter progress: called after each episode with the number done.
public func evaluateEpisodes(backbone: any Backbone, metric: MultiLevelMetric, loader: EpisodeLoader,
                             sampler: EpisodeSampler, episodes: Int,
                             progress: ((Int) throws -> Void)? = nil) throws -> EpisodeEvaluation {
    guard episodes >= 1 else { throw MMLError(.invalidArgument, "evaluate at least 1 episode, got \(episodes)") }
    var metric = metric
    return try evaluateEpisodeList(sampler.episodes(episodes), loader: loader, progress: progress) { b, way in
        // One forward over support and query images together.
        var x = b.support
        x.shape[0] += b.query.shape[0]
        x.data += b.query.data
        let f = backbone.forward(x, training: false).output
        let ns = b.support.shape[0], per = f.count / f.shape[0]
        let rest = Array(f.shape.dropFirst())
        let s = Tensor(shape: [ns] + rest, data: Array(f.data[0..<(ns * per)]))
        let q = Tensor(shape: [f.shape[0] - ns] + rest, data: Array(f.data[(ns * per)...]))
        return try metric.forward(support: s, labels: b.supportLabels, query: q, way: way, training: false).0
    }
}

/// The loop shared by the evaluators: load each episode, score it with `score`, and summarise fused and per-level
/// accuracy with their per-episode values and each query's predictions.
func evaluateEpisodeList(_ episodes: [Episode], loader: EpisodeLoader, profile: PhaseProfile? = nil,
                         progress: ((Int) throws -> Void)?,
                         score: (EpisodeBatch, Int) throws -> MultiLevelMetric.Output) throws -> EpisodeEvaluation {
    guard !episodes.isEmpty else { throw MMLError(.invalidArgument, "evaluate at least 1 episode, got none") }
    let start = DispatchTime.now().uptimeNanoseconds
    var fused: [Double] = [], fusedPredictions: [[Int]] = []
    var perLevel: [MetricLevel: [Double]] = [:], levelPredictions: [MetricLevel: [[Int]]] = [:]
    for (k, episode) in episodes.enumerated() {
        let b = try measured(profile, .data) { try loader.batch(for: episode) }
        let out = try score(b, episode.way)
        profile?.episodeDone()
        let p = predictions(of: out.logits)
        fused.append(accuracy(predictions: p, labels: b.queryLabels))
        fusedPredictions.append(p)
        for (level, sc) in out.levelScores {
            let lp = predictions(of: sc)
            perLevel[level, default: []].append(accuracy(predictions: lp, labels: b.queryLabels))
            levelPredictions[level, default: []].append(lp)
        }
        try progress?(k + 1)
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    return EpisodeEvaluation(fused: AccuracySummary(fused), levels: perLevel.mapValues { AccuracySummary($0) },
                             fusedPerEpisode: fused, levelsPerEpisode: perLevel, fusedPredictions: fusedPredictions,
                             levelPredictions: levelPredictions, seconds: seconds)
}
