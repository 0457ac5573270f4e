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
/// - Throws: `MMLError` when the model has no metric or an episode cannot be loaded.
public func collectLevelScores(_ model: FewShotModel, loader: EpisodeLoader, episodes: [Episode],
                               progress: ((Int) -> Void)? = nil) throws -> [LevelScores] {
    var out: [LevelScores] = []
    out.reserveCapacity(episodes.count)
    for (k, e) in episodes.enumerated() {
        let b = try loader.batch(for: e)
        let (o, _) = try model.forward(support: b.support, labels: b.supportLabels, query: b.query, way: e.way,
                                       training: false)
        out.append(LevelScores(scores: o.levelScores, labels: b.queryLabels))
        progress?(k + 1)
    }
    return out
}

/// Re-fits a learned fusion over a subset of levels on cached per-level scores (validation episodes), with the
/// backbone and heads frozen: the normaliser's statistics are the mean and variance of each level's scores over all
/// the episodes (per level, or per class position), and the weights minimise the mean cross-entropy of the fused
/// logits, a convex problem in the weights once the scores are normalised, solved by full-batch gradient descent
/// with Adam steps from w = 1 (deterministic).
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
            throw MMLError(.invalidArgument, "fusion refit: no validation episodes; give --refit-episodes >= 1")
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
        // Normalised scores, fixed from here on.
        var xhat: [[[Double]]] = []  // [episode][level][q * way]
        for e in episodes {
            var per: [[Double]] = []
            for (li, l) in levels.enumerated() {
                let s = e.scores[l]!
                let w = s.shape[1]
                per.append((0..<s.count).map { i in
                    let k = normalization == .perLevel ? li : li * way + i % w
                    return (Double(s.data[i]) - Double(fusion.runningMean[k]))
                        / (Double(fusion.runningVar[k]) + Double(fusion.eps)).squareRoot()
                })
            }
            xhat.append(per)
        }
        var w = [Double](repeating: 1, count: levels.count)
        var m = [Double](repeating: 0, count: levels.count), v = m
        let b1 = 0.9, b2 = 0.999
        for t in 1...max(iterations, 1) {
            var grad = [Double](repeating: 0, count: levels.count)
            var count = 0.0
            for (ei, e) in episodes.enumerated() {
                let wy = e.scores[levels[0]]!.shape[1]
                for (qi, y) in e.labels.enumerated() {
                    var z = [Double](repeating: 0, count: wy)
                    for c in 0..<wy { for li in levels.indices { z[c] += w[li] * xhat[ei][li][qi * wy + c] } }
                    let mx = z.max()!
                    let ex = z.map { exp($0 - mx) }
                    let zs = ex.reduce(0, +)
                    for c in 0..<wy {
                        let d = ex[c] / zs - (c == y ? 1 : 0)
                        for li in levels.indices { grad[li] += d * xhat[ei][li][qi * wy + c] }
                    }
                    count += 1
                }
            }
            for li in levels.indices {
                let g = grad[li] / max(count, 1)
                m[li] = b1 * m[li] + (1 - b1) * g
                v[li] = b2 * v[li] + (1 - b2) * g * g
                let mh = m[li] / (1 - pow(b1, Double(t))), vh = v[li] / (1 - pow(b2, Double(t)))
                w[li] -= learningRate * mh / (vh.squareRoot() + 1e-8)
            }
        }
        fusion.weights = w.map { Float($0) }
        return fusion
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
public struct AblationRow: Sendable {
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
