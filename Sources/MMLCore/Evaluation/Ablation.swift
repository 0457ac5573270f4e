import Foundation

/// Each metric level's own scores on one episode, with the query labels: what an ablation needs to fuse any subset
/// of levels without running the backbone again.
public struct LevelScores: Sendable {
    /// (queries x way) scores per level.
    public var scores: [MetricLevel: Tensor]
    public var labels: [Int]
    public init(scores: [MetricLevel: Tensor], labels: [Int]) { self.scores = scores; self.labels = labels }
}

/// Runs a model on episodes and keeps every level's scores (inference mode).
/// - Parameter precision: the pixel and part levels' similarity arithmetic (`SimilarityPrecision`).
/// - Throws: `MMLError` when the model has no metric or an episode cannot be loaded.
public func collectLevelScores(_ model: FewShotModel, loader: EpisodeLoader, episodes: [Episode],
                               precision: SimilarityPrecision = .fp32,
                               progress: ((Int) throws -> Void)? = nil) throws -> [LevelScores] {
    var out: [LevelScores] = []
    out.reserveCapacity(episodes.count)
    for (k, e) in episodes.enumerated() {
        let b = try loader.batch(for: e)
        let (o, _) = try model.forward(support: b.support, labels: b.supportLabels, query: b.query, way: e.way,
                                       training: false, precision: precision)
        out.append(LevelScores(scores: o.levelScores, labels: b.queryLabels))
        try progress?(k + 1)
    }
    return out
}

/// Re-fits a learned fusion over a subset of levels on cached per-level scores (validation episodes), with the
/// backbone and heads frozen: the normaliser's statistics are the mean and variance of each level's scores over all
/// the episodes (per level, or per class position), and the weights minimise the mean cross-entropy
/// (`SoftmaxCrossEntropy`) over all queries of the fused logits (`LearnedFusion.forward` with those statistics), a
/// convex problem in the weights once the scores are normalised, solved by full-batch gradient descent
/// (`LearnedFusion.backward`) with `Adam` steps from w = 1 (deterministic).
public enum FusionRefit {
    /// - Parameters:
    ///   - levels: the subset (non-empty; every episode must hold scores for each).
    ///   - episodes: validation episodes' scores.
    ///   - iterations / learningRate: the optimiser's budget.
    /// - Throws: `MMLError` for an empty subset, no episodes, or missing scores.
    public static func fit(levels: [MetricLevel], on episodes: [LevelScores],
                           normalization: FusionNormalization = .perLevel, iterations: Int = 300,
                           learningRate: Double = 0.05) throws -> LearnedFusion {
        let levels = levels.sorted()
        guard !levels.isEmpty else { throw MMLError(.config, "fusion refit: no level given") }
        guard let first = episodes.first else {
            throw MMLError(.invalidArgument, "fusion refit: no validation episodes; give `refitEpisodes` >= 1")
        }
        for l in levels where first.scores[l] == nil {
            throw MMLError(.invalidArgument, "fusion refit: the episodes hold no \(l.rawValue)-level scores; the model "
                           + "must have been trained with that level")
        }
        let way = first.scores[levels[0]]!.shape[1]
        let fusion = LearnedFusion(levels: levels.count, normalization: normalization, way: way)
        // Statistics over every episode.
        for (li, l) in levels.enumerated() {
            let groups = normalization == .perLevel ? 1 : way
            for g in 0..<groups {
                var sum = 0.0, sq = 0.0, n = 0.0
                for e in episodes {
                    guard let s = e.scores[l] else { continue }
                    let w = s.shape[1]
                    if normalization == .perPosition && w != way {
                        throw MMLError(.invalidArgument, "per-position fusion refit needs one n-way; got \(w) and \(way)")
                    }
                    for i in 0..<s.count where normalization == .perLevel || i % w == g {
                        let v = Double(s.data[i]); sum += v; sq += v * v; n += 1
                    }
                }
                let mean = sum / max(n, 1)
                let variance = max(sq / max(n, 1) - mean * mean, 0) * n / max(n - 1, 1)
                fusion.runningMean[li * groups + g] = Float(mean)
                fusion.runningVar[li * groups + g] = Float(variance)
            }
        }
        // The episodes' scores stacked by n-way: the fusion scores each query on its own (inference statistics), so
        // one forward over a stack is the forward of each episode.
        var stacks: [(scores: [Tensor], labels: [Int])] = []
        for w in Set(episodes.map { $0.scores[levels[0]]!.shape[1] }).sorted() {
            let group = episodes.filter { $0.scores[levels[0]]!.shape[1] == w }
            let scores = levels.map { l in
                Tensor(shape: [group.reduce(0) { $0 + $1.scores[l]!.shape[0] }, w],
                       data: group.flatMap { $0.scores[l]!.data })
            }
            stacks.append((scores, group.flatMap(\.labels)))
        }
        let queries = Float(stacks.reduce(0) { $0 + $1.labels.count })
        let parameters = FusionParameters(fusion)
        let adam = try Adam(learningRate: Float(learningRate), beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
        var f = fusion
        for _ in 1...max(iterations, 1) {
            var grads = LearnedFusion.Gradients(levels: levels.count)
            for stack in stacks {
                let (logits, cache) = f.forward(stack.scores, training: false, keepCache: true)
                let ce = try SoftmaxCrossEntropy.forward(logits: logits, labels: stack.labels)
                // The mean over all queries: each stack's mean weighted by its share of the queries.
                let dLogits = SoftmaxCrossEntropy.backward(ce, scale: Float(stack.labels.count) / queries)
                _ = f.backward(dLogits, cache: cache!, grads: &grads)
            }
            fusion.weight.grad.data = grads.weights
            adam.step(parameters)
        }
        fusion.weight.grad.data = [Float](repeating: 0, count: levels.count)
        return fusion
    }

    /// The fusion's parameters as a container an optimiser steps.
    private final class FusionParameters: ParameterContainer {
        let fusion: LearnedFusion
        init(_ fusion: LearnedFusion) { self.fusion = fusion }
        func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {
            fusion.visitParameters(prefix: prefix, visit)
        }
    }
}

/// Fused accuracy of cached per-level scores under a given fusion (inference mode: running statistics).
public func fusedAccuracies(_ episodes: [LevelScores], levels: [MetricLevel], fusion: LearnedFusion) -> [Double] {
    var f = fusion
    return episodes.map { e in
        let (logits, _) = f.forward(levels.sorted().map { e.scores[$0]! }, training: false)
        return accuracy(of: logits, labels: e.labels)
    }
}

/// Fused accuracy of cached per-level scores under a fixed-weight fusion.
public func fusedAccuracies(_ episodes: [LevelScores], levels: [MetricLevel], fixed: FixedFusion) -> [Double] {
    episodes.map { e in accuracy(of: fixed.forward(levels.sorted().map { e.scores[$0]! }).0, labels: e.labels) }
}

/// Every non-empty subset of the three levels, in a fixed order: the full set first, then pairs, then singles.
public func allLevelSubsets() -> [[MetricLevel]] {
    [[.pixel, .part, .distribution], [.pixel, .part], [.pixel, .distribution], [.part, .distribution],
     [.pixel], [.part], [.distribution]]
}

/// One row of an ablation: a level subset's accuracy on the test episodes and its paired difference to the full model.
public struct AblationRow: Sendable, Codable {
    public var name: String
    public var levels: [MetricLevel]
    public var accuracy: AccuracySummary
    public var differenceToFull: AccuracySummary
    public var perEpisode: [Double]
    /// The fused weights used (learned fusion) or nil.
    public var weights: [Float]?

    public init(name: String, levels: [MetricLevel], accuracy: AccuracySummary, differenceToFull: AccuracySummary,
                perEpisode: [Double], weights: [Float]?) {
        self.name = name; self.levels = levels; self.accuracy = accuracy; self.differenceToFull = differenceToFull
        self.perEpisode = perEpisode; self.weights = weights
    }

    private enum CodingKeys: String, CodingKey {
        case name, levels, accuracy, weights
        case differenceToFull = "difference_to_full", perEpisode = "per_episode"
    }

    /// A summary as the ablation report gives it: mean, ci95 and std (the count is the row's episodes).
    private struct Summary: Codable {
        var mean, ci95, std: Double
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        levels = try c.decode([MetricLevel].self, forKey: .levels)
        perEpisode = try c.decode([Double].self, forKey: .perEpisode)
        let a = try c.decode(Summary.self, forKey: .accuracy), d = try c.decode(Summary.self, forKey: .differenceToFull)
        accuracy = AccuracySummary(count: perEpisode.count, mean: a.mean, std: a.std, ci95: a.ci95)
        differenceToFull = AccuracySummary(count: perEpisode.count, mean: d.mean, std: d.std, ci95: d.ci95)
        weights = try c.decodeIfPresent([Double].self, forKey: .weights)?.map { Float($0) }
    }

    /// Encodes the keys of `ablation.json`: `name`, `levels`, `accuracy` and `difference_to_full` (mean, ci95,
    /// std), `per_episode`, and `weights` when there are.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(levels, forKey: .levels)
        try c.encode(Summary(mean: accuracy.mean, ci95: accuracy.ci95, std: accuracy.std), forKey: .accuracy)
        try c.encode(Summary(mean: differenceToFull.mean, ci95: differenceToFull.ci95, std: differenceToFull.std),
                     forKey: .differenceToFull)
        try c.encode(perEpisode, forKey: .perEpisode)
        try c.encodeIfPresent(weights?.map(Double.init), forKey: .weights)
    }
}

extension AblationRow {
    /// A subset's row name: its levels joined by `+` (`pixel+part`).
    public static func name(_ levels: [MetricLevel]) -> String { levels.map(\.rawValue).joined(separator: "+") }
}

/// An ablation table as Markdown.
public func ablationMarkdown(_ rows: [AblationRow], title: String) -> String {
    var s = "### \(title)\n\n| levels | accuracy (%) | vs full (paired, %) | fusion weights |\n|---|---|---|---|\n"
    for r in rows {
        let d = r.differenceToFull
        let diff = d.mean == 0 && d.std == 0 ? "—" : String(format: "%+.2f +- %.2f", d.mean * 100, d.ci95 * 100)
        let w = r.weights.map { $0.map { String(format: "%.2f", $0) }.joined(separator: ", ") } ?? ""
        s += "| \(r.name) | \(r.accuracy.percentString) | \(diff) | \(w) |\n"
    }
    return s
}

/// What an ablation shows, in one sentence made from its rows (the first row is the full set; paired differences to
/// it): how much each level alone loses, how much the best pair loses and whether its paired 95% interval excludes
/// 0, and the verdict, e.g. "each level alone loses 4.1-9.3 points against all three (pixel -4.1, part -9.3,
/// distribution -6.0); the best pair (pixel+part) loses 1.2 +- 0.5 (paired 95% interval excludes 0): every level adds
/// something." Empty when the rows hold no single level or no pair (not a full three-level ablation).
public func ablationConclusion(_ rows: [AblationRow]) -> String {
    guard let full = rows.first else { return "" }
    let singles = rows.dropFirst().filter { $0.levels.count == 1 }
    let pairs = rows.dropFirst().filter { $0.levels.count == 2 }
    guard !singles.isEmpty, let best = pairs.max(by: { $0.differenceToFull.mean < $1.differenceToFull.mean })
    else { return "" }
    func points(_ x: Double) -> String { String(format: "%.1f", x * 100) }
    let losses = singles.map { -$0.differenceToFull.mean }
    let each = singles.map { "\($0.name) \(points($0.differenceToFull.mean))" }.joined(separator: ", ")
    let lo = losses.min()!, hi = losses.max()!
    let range = lo == hi ? points(lo) : "\(points(lo))-\(points(hi))"
    var s = lo >= 0 ? "each level alone loses \(range) points against all \(full.levels.count) (\(each))"
        : "each level alone against all \(full.levels.count), in points: \(each)"
    let d = best.differenceToFull
    let excludes = abs(d.mean) > d.ci95
    s += "; the best pair (\(best.name)) " + (d.mean <= 0 ? "loses \(points(-d.mean))" : "gains \(points(d.mean))")
        + " +- \(points(d.ci95)) (paired 95% interval \(excludes ? "excludes" : "includes") 0): "
    let redundant = singles.filter { $0.differenceToFull.mean + $0.differenceToFull.ci95 >= 0 }
    if let r = redundant.first {
        s += "\(r.name) alone does as well as all \(full.levels.count), the other levels add nothing measurable"
    } else if d.mean > 0 && excludes {
        s += "the third level, \(Set(full.levels).subtracting(best.levels).map(\.rawValue).sorted().joined()), "
            + "hurts when it is fused"
    } else if !excludes {
        s += "every level helps alone, but the third adds nothing measurable beyond the best pair"
    } else {
        s += "every level adds something"
    }
    return s + "."
}
