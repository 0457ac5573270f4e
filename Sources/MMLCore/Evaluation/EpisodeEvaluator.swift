import Foundation

/// The result of evaluating a model on a list of episodes: fused and per-level accuracy with 95% intervals,
/// and the per-episode accuracies (for paired comparisons on the very same episodes).
public struct EpisodeEvaluation: Sendable {
    public var fused: AccuracySummary
    public var levels: [MetricLevel: AccuracySummary]
    public var fusedPerEpisode: [Double]
    public var levelsPerEpisode: [MetricLevel: [Double]]
    /// Wall time of the whole evaluation.
    public var seconds: Double
    public var episodesPerSecond: Double { Double(fusedPerEpisode.count) / max(seconds, 1e-9) }
}

/// Fraction of rows of `scores` (queries x way) whose argmax equals the label (ties: the first maximum).
public func accuracy(of scores: Tensor, labels: [Int]) -> Double {
    let q = scores.shape[0], w = scores.shape[1]
    precondition(labels.count == q, "[accuracy] \(labels.count) labels for \(q) rows")
    var correct = 0
    for i in 0..<q {
        var best = 0
        for c in 1..<w where scores.data[i * w + c] > scores.data[i * w + best] { best = c }
        if best == labels[i] { correct += 1 }
    }
    return Double(correct) / Double(max(q, 1))
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
/// accuracy with their per-episode values.
func evaluateEpisodeList(_ episodes: [Episode], loader: EpisodeLoader, progress: ((Int) throws -> Void)?,
                         score: (EpisodeBatch, Int) throws -> MultiLevelMetric.Output) throws -> EpisodeEvaluation {
    guard !episodes.isEmpty else { throw MMLError(.invalidArgument, "evaluate at least 1 episode, got none") }
    let start = DispatchTime.now().uptimeNanoseconds
    var fused: [Double] = []
    var perLevel: [MetricLevel: [Double]] = [:]
    for (k, episode) in episodes.enumerated() {
        let b = try loader.batch(for: episode)
        let out = try score(b, episode.way)
        fused.append(accuracy(of: out.logits, labels: b.queryLabels))
        for (level, sc) in out.levelScores { perLevel[level, default: []].append(accuracy(of: sc, labels: b.queryLabels)) }
        try progress?(k + 1)
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    return EpisodeEvaluation(fused: AccuracySummary(fused), levels: perLevel.mapValues { AccuracySummary($0) },
                             fusedPerEpisode: fused, levelsPerEpisode: perLevel, seconds: seconds)
}
