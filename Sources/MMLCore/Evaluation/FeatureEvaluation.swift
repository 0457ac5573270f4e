import Foundation

/// Where the learned fusion takes the mean and variance it normalises each level's scores with.
public enum FusionStatistics: String, Sendable, Codable, CaseIterable {
    /// The fusion's running statistics (trained ones from a checkpoint; a fresh metric has mean 0 / variance 1,
    /// i.e. no normalisation).
    case stored
    /// Each level's own scores over the episode (batch statistics, as in training), with the fusion's weights.
    /// The honest choice for a metric without trained statistics: the levels' scales differ by orders of
    /// magnitude (pixel sums of cosines vs negated KL divergences), so an unnormalised sum is dominated by one.
    case episode
}

/// Per-level and fused scores of one episode.
public struct EpisodeScores: Sendable {
    /// The enabled levels, in canonical order (pixel, part, distribution).
    public var levels: [MetricLevel]
    /// Each level's scores (queries x way); higher means closer.
    public var levelScores: [MetricLevel: Tensor]
    /// The fused scores (queries x way): logits of the learned fusion or, for the fixed fusion, the log of the
    /// weighted sum of per-level softmax outputs.
    public var fused: Tensor

    /// The predicted class (argmax of the fused scores; ties: the first maximum) of every query.
    public var predictions: [Int] {
        let q = fused.shape[0], w = fused.shape[1]
        return (0..<q).map { i in
            var best = 0
            for c in 1..<w where fused.data[i * w + c] > fused.data[i * w + best] { best = c }
            return best
        }
    }

    /// Fused and per-level accuracy against `queryLabels` (in 0..<way).
    /// - Throws: `MMLError(.invalidArgument)` when the label count differs from the number of queries or a label is
    ///   outside 0..<way.
    public func accuracy(queryLabels: [Int]) throws -> (fused: Double, levels: [MetricLevel: Double]) {
        let q = fused.shape[0], w = fused.shape[1]
        guard queryLabels.count == q else {
            throw MMLError(.invalidArgument, "\(queryLabels.count) query labels for \(q) query feature maps; give one "
                           + "label per query")
        }
        if let i = queryLabels.firstIndex(where: { $0 < 0 || $0 >= w }) {
            throw MMLError(.invalidArgument, "query label \(queryLabels[i]) (query \(i)) is outside 0..<\(w)")
        }
        return (MMLCore.accuracy(of: fused, labels: queryLabels),
                levelScores.mapValues { MMLCore.accuracy(of: $0, labels: queryLabels) })
    }
}

/// Feature maps in the layout the metric heads take, from either of the two interchange layouts:
///
/// - `(N, C, H, W)` spatial feature maps (PyTorch's layout) are returned unchanged;
/// - `(N, M, C)` sets of M local descriptors of dimension C (channel-last, as ViT tokens or DN4 descriptor lists)
///   are transposed to channel-major `(N, C, 1, M)`: one row of M positions.
///
/// - Parameter role: names the tensor in errors ("support features", "query features").
/// - Throws: `MMLError(.invalidArgument)` for another rank or an empty dimension; `MMLError(.numerical)` naming the
///   first NaN/Inf element by its index in the given layout.
public func episodeFeatureMaps(_ t: Tensor, role: String) throws -> Tensor {
    guard t.rank == 4 || t.rank == 3 else {
        throw MMLError(.invalidArgument, "\(role) have shape \(t.shape) (rank \(t.rank)); give (N, C, H, W) feature "
                       + "maps or (N, M, C) descriptor sets")
    }
    guard !t.shape.contains(0) else {
        throw MMLError(.invalidArgument, "\(role) have shape \(t.shape) with an empty dimension; every dimension must be "
                       + "at least 1")
    }
    guard t.data.count == t.shape.reduce(1, *) else {
        throw MMLError(.invalidArgument, "\(role): \(t.data.count) values for shape \(t.shape)")
    }
    if let i = t.data.firstIndex(where: { !$0.isFinite }) {
        throw MMLError(.numerical, "\(role): element \(i) (\(NPY.indexString(i, shape: t.shape))) is \(t.data[i]); "
                       + "features must be finite (check the backbone's output)")
    }
    if t.rank == 4 { return t }
    let n = t.shape[0], m = t.shape[1], c = t.shape[2]
    var out = [Float](repeating: 0, count: t.count)
    for img in 0..<n {
        for p in 0..<m {
            let src = (img * m + p) * c
            for ch in 0..<c { out[(img * c + ch) * m + p] = t.data[src + ch] }
        }
    }
    return Tensor(shape: [n, c, 1, m], data: out)
}

/// Scores one episode of precomputed features: every enabled level's scores and the fused scores.
///
///     var config = MetricConfiguration(levels: [.pixel, .distribution])
///     let metric = try config.makeMetric()
///     let s = try scoreEpisode(metric: metric, support: supportMaps, labels: [0, 1, 2, 3, 4],
///                              query: queryMaps, way: 5, fusionStatistics: .episode)
///     print(s.levelScores[.pixel]!.shape, s.predictions)
///
/// - Parameters:
///   - metric: the metric (from `MetricConfiguration.makeMetric()` or a loaded checkpoint's `model.metric`).
///   - support: support features, `(N_s, C, H, W)` or `(N_s, M, C)` (see `episodeFeatureMaps`).
///   - labels: the class of each support item, in 0..<way; every class needs at least one.
///   - query: query features in the same layout with the same C (and H, W, or M).
///   - way: the number of classes.
///   - fusionStatistics: for the learned fusion, `.stored` (trained running statistics) or `.episode` (normalise
///     each level over this episode); ignored by the fixed fusion.
/// - Throws: `MMLError` for shapes, labels or values that do not fit (saying which), or from the heads (e.g. a
///   covariance that is not positive definite).
public func scoreEpisode(metric: MultiLevelMetric, support: Tensor, labels: [Int], query: Tensor, way: Int,
                         fusionStatistics: FusionStatistics = .stored) throws -> EpisodeScores {
    guard support.rank == query.rank else {
        throw MMLError(.invalidArgument, "support features have shape \(support.shape) but query features \(query.shape); "
                       + "give both as (N, C, H, W) or both as (N, M, C)")
    }
    let s = try episodeFeatureMaps(support, role: "support features")
    let q = try episodeFeatureMaps(query, role: "query features")
    let layout = support.rank == 4 ? "(N, C, H, W)" : "(N, M, C)"
    let cs = s.shape[1], cq = q.shape[1]
    guard cs == cq else {
        throw MMLError(.invalidArgument, "support features have C = \(cs) channels but query features C = \(cq) "
                       + "(layout \(layout), shapes \(support.shape) and \(query.shape)); extract both with the same backbone")
    }
    guard s.shape.dropFirst(2) == q.shape.dropFirst(2) else {
        let what = support.rank == 4 ? "spatial size (H, W)" : "descriptor count M"
        throw MMLError(.invalidArgument, "support and query features differ in \(what): shapes \(support.shape) and "
                       + "\(query.shape); resize the inputs to one size")
    }
    guard way >= 1 else { throw MMLError(.invalidArgument, "way must be at least 1, got \(way)") }
    guard labels.count == s.shape[0] else {
        throw MMLError(.invalidArgument, "\(labels.count) support labels for \(s.shape[0]) support feature maps; give "
                       + "one label per support item")
    }
    if let i = labels.firstIndex(where: { $0 < 0 || $0 >= way }) {
        throw MMLError(.invalidArgument, "support label \(labels[i]) (item \(i)) is outside 0..<\(way) for a "
                       + "\(way)-way episode")
    }
    if let c = (0..<way).first(where: { !labels.contains($0) }) {
        throw MMLError(.invalidArgument, "class \(c) of the \(way)-way episode has no support item; the support labels "
                       + "must cover 0..<\(way)")
    }
    if metric.levels.contains(.part), case .grid(let grids) = metric.part.form,
       let g = grids.max(), g > min(s.shape[2], s.shape[3]) {
        let why = support.rank == 3 ? "(N, M, C) descriptor sets have no spatial grid"
                                    : "the maps are only \(s.shape[2]) x \(s.shape[3])"
        throw MMLError(.invalidArgument, "the part level pools over grid sizes \(grids) but \(why); use channel parts "
                       + "(`partForm` channels), smaller grids, or disable the part level")
    }
    if metric.fixedFusion == nil, metric.fusion.normalization == .perPosition, metric.fusion.way != way {
        throw MMLError(.invalidArgument, "this metric's fusion has per-position statistics for \(metric.fusion.way)-way "
                       + "episodes and cannot score a \(way)-way episode; score \(metric.fusion.way)-way episodes")
    }
    var m = metric
    let (out, _) = try m.forward(support: s, labels: labels, query: q, way: way, training: false)
    for l in m.levels {
        let t = out.levelScores[l]!
        if let i = t.data.firstIndex(where: { !$0.isFinite }) {
            throw MMLError(.numerical, "the \(l.rawValue) level's score of query \(i / way), class \(i % way) is "
                           + "\(t.data[i]); the features are too large or degenerate for it (scale them down, raise the "
                           + "distribution eps, or disable the level)")
        }
    }
    var fused = out.logits
    if m.fixedFusion == nil && fusionStatistics == .episode {
        var fusion = metric.fusion.copy()  // its running statistics are not kept
        fused = fusion.forward(m.levels.map { out.levelScores[$0]! }, training: true).0
    }
    return EpisodeScores(levels: m.levels, levelScores: out.levelScores, fused: fused)
}

extension FewShotModel {
    /// The model's metric with its current fusion weights and running statistics (for `scoreEpisode` with
    /// `.stored` statistics after `Checkpoint.load`); nil for a model without a metric.
    public var scoringMetric: MultiLevelMetric? { metric }
}
