#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Margin-based embedding losses on a batch of P classes x K embeddings (METHOD.md section 4).
public enum EmbeddingLossKind: String, Sendable, Codable, CaseIterable {
    /// `max(0, d(a, p) - d(a, n) + alpha)`.
    case triplet
    /// Wu et al. 2017: `max(0, alpha + d(a, p) - beta) + max(0, alpha - (d(a, n) - beta))`, beta learnable.
    case margin
}

/// How each anchor picks its positive among the other samples of its class in the batch.
public enum PositiveSelection: String, Sendable, Codable, CaseIterable {
    /// Uniformly at random (seeded).
    case random
    /// The farthest same-class sample (ties: the smaller index).
    case hardest
    /// Easy positive sampling (EPS, Levi et al. 2021): the nearest same-class sample (ties: the smaller index).
    case easy
}

/// How each anchor picks its negative among the samples of other classes in the batch.
public enum NegativeSelection: String, Sendable, Codable, CaseIterable {
    /// The nearest negative farther than the anchor's positive, `d(a, n) > d(a, p)`; when there is none, the
    /// farthest negative (the least violating one). Ties: the smaller index. Deterministic.
    case semiHard = "semi-hard"
    /// Wu et al. 2017: a negative drawn with probability proportional to `q(d)^-1`, where
    /// `q(d) ~ d^(n-2) (1 - d^2/4)^((n-3)/2)` is the density of distances between points uniform on the unit
    /// sphere in n dimensions (n = embedding size); d is clipped below at `cutoff` (0.5) and negatives with
    /// `d >= nonzeroLossCutoff` (1.4) get weight 0 (uniform over all negatives when every weight is 0). Seeded.
    case distanceWeighted = "distance-weighted"
}

/// The settings of an `EmbeddingLoss`.
public struct EmbeddingLossConfiguration: Sendable, Codable, Equatable {
    public var loss: EmbeddingLossKind
    public var positives: PositiveSelection
    public var negatives: NegativeSelection
    /// The margin alpha.
    public var margin: Float
    /// Distance-weighted sampling: lower clip of the distance (Wu et al.: 0.5).
    public var cutoff: Float
    /// Distance-weighted sampling: negatives at or beyond this distance are not drawn (Wu et al.: 1.4).
    public var nonzeroLossCutoff: Float

    public init(loss: EmbeddingLossKind = .triplet, positives: PositiveSelection = .easy,
                negatives: NegativeSelection = .semiHard, margin: Float = 0.2, cutoff: Float = 0.5,
                nonzeroLossCutoff: Float = 1.4) {
        self.loss = loss; self.positives = positives; self.negatives = negatives; self.margin = margin
        self.cutoff = cutoff; self.nonzeroLossCutoff = nonzeroLossCutoff
    }
}

/// One (anchor, positive, negative) index triple of a batch.
public struct EmbeddingTuple: Sendable, Equatable {
    public var anchor: Int
    public var positive: Int
    public var negative: Int
    public init(anchor: Int, positive: Int, negative: Int) {
        self.anchor = anchor
        self.positive = positive
        self.negative = negative
    }
}

/// The result of an embedding loss on a batch.
public struct EmbeddingLossOutput {
    /// Mean loss over the tuples (0 when there is none).
    public let loss: Double
    /// dL/dembeddings `(N, D)` (zeros when there is no tuple).
    public let gradient: Tensor
    /// One tuple per anchor that has both a positive and a negative.
    public let tuples: [EmbeddingTuple]
    /// Tuples with a non-zero loss.
    public let activeTuples: Int
}

/// A triplet or margin loss with positive and negative selection inside the batch.
///
/// Distances are Euclidean, `d(a, b) = sqrt(|e_a - e_b|^2 + 1e-12)` (the 1e-12 keeps the gradient finite for
/// coincident points), computed in Double on the embeddings as given: the callers pass **L2-normalised**
/// embeddings (`L2Normalize`), so d lies in [0, 2] as distance-weighted sampling assumes. Every sample of the
/// batch is an anchor; an anchor without a same-class sample or without a sample of another class is skipped,
/// and a batch without any tuple has loss 0 and a zero gradient (no NaN). The loss is the mean over tuples.
/// For the margin loss, beta is a `Parameter` (`beta`, shape [1]) whose gradient accumulates like any other
/// (no beta regulariser, nu = 0).
public final class EmbeddingLoss: ParameterContainer {
    public let configuration: EmbeddingLossConfiguration
    /// The learnable boundary beta of the margin loss (visited only for `.margin`).
    public let beta: Parameter
    /// The constant added under the square root of every distance.
    public static let distanceEpsilon = 1e-12

    /// - Throws: `MMLError(.config)` for a negative or non-finite margin, bad cut-offs or a non-finite beta0.
    public init(_ configuration: EmbeddingLossConfiguration, beta0: Float = 1.2) throws {
        let c = configuration
        guard c.margin.isFinite, c.margin >= 0 else {
            throw MMLError(.config, "embedding loss: margin alpha must be >= 0, got \(c.margin)")
        }
        guard c.cutoff.isFinite, c.cutoff >= 0, c.nonzeroLossCutoff.isFinite, c.nonzeroLossCutoff > c.cutoff else {
            throw MMLError(.config, "embedding loss: need 0 <= cutoff < nonzeroLossCutoff, got \(c.cutoff) and "
                           + "\(c.nonzeroLossCutoff)")
        }
        guard beta0.isFinite else { throw MMLError(.config, "embedding loss: beta0 must be finite, got \(beta0)") }
        self.configuration = configuration
        beta = Parameter(Tensor(shape: [1], data: [beta0]))
    }

    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {
        if configuration.loss == .margin { visit(parameterName(prefix, "beta"), beta) }
    }

    /// The `(N * N)` matrix of Euclidean distances between the rows of `(N, D)` embeddings, row-major.
    public static func distances(_ e: Tensor) -> [Double] {
        let n = e.shape[0], d = e.shape[1]
        var out = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in (i + 1)..<n {
                var s = 0.0
                for c in 0..<d {
                    let t = Double(e.data[i * d + c]) - Double(e.data[j * d + c])
                    s += t * t
                }
                let v = (s + distanceEpsilon).squareRoot()
                out[i * n + j] = v
                out[j * n + i] = v
            }
            out[i * n + i] = distanceEpsilon.squareRoot()
        }
        return out
    }

    /// The tuples of a batch: for each anchor in order, its positive and negative under the configured selection.
    /// Random choices for anchor a come from `SeededRNG(seed: seed, path: [a, 0])` (positive) and `[a, 1]`
    /// (negative). - Parameter dimension: the embedding size n (distance-weighted sampling).
    public func selectTuples(distances dist: [Double], labels: [Int], dimension: Int, seed: UInt64) -> [EmbeddingTuple] {
        let n = labels.count
        var out: [EmbeddingTuple] = []
        for a in 0..<n {
            let pos = (0..<n).filter { $0 != a && labels[$0] == labels[a] }
            let neg = (0..<n).filter { labels[$0] != labels[a] }
            guard !pos.isEmpty, !neg.isEmpty else { continue }
            let row = a * n
            var p = pos[0]
            switch configuration.positives {
            case .random:
                var rng = SeededRNG(seed: seed, path: [UInt64(a), 0])
                p = pos[rng.nextInt(below: pos.count)]
            case .hardest:
                for j in pos where dist[row + j] > dist[row + p] { p = j }
            case .easy:
                for j in pos where dist[row + j] < dist[row + p] { p = j }
            }
            let dap = dist[row + p]
            var m = neg[0]
            switch configuration.negatives {
            case .semiHard:
                let farther = neg.filter { dist[row + $0] > dap }
                if let first = farther.first {
                    m = first
                    for j in farther where dist[row + j] < dist[row + m] { m = j }
                } else {
                    for j in neg where dist[row + j] > dist[row + m] { m = j }
                }
            case .distanceWeighted:
                var rng = SeededRNG(seed: seed, path: [UInt64(a), 1])
                m = distanceWeightedDraw(neg.map { dist[row + $0] }, dimension: dimension, rng: &rng)
                    .map { neg[$0] } ?? neg[0]
            }
            out.append(EmbeddingTuple(anchor: a, positive: p, negative: m))
        }
        return out
    }

    /// The normalised sampling weights `q(d)^-1` of distance-weighted sampling for distances `d` to the candidate
    /// negatives (all zero when no candidate is below the non-zero-loss cut-off).
    public func distanceWeights(_ d: [Double], dimension: Int) -> [Double] {
        let nDim = Double(max(dimension, 2))
        let lo = Double(configuration.cutoff), hi = Double(configuration.nonzeroLossCutoff)
        var logW = [Double](repeating: -.infinity, count: d.count)
        for (i, v) in d.enumerated() where v < hi {
            let c = max(v, lo)
            let inner = max(1 - 0.25 * c * c, 1e-8)
            logW[i] = -((nDim - 2) * log(c) + ((nDim - 3) / 2) * log(inner))
        }
        guard let top = logW.max(), top > -.infinity else { return [Double](repeating: 0, count: d.count) }
        let w = logW.map { $0 == -.infinity ? 0 : exp($0 - top) }
        let s = w.reduce(0, +)
        return w.map { $0 / s }
    }

    /// Index of a candidate drawn with the distance weights (uniform when they are all 0); nil for no candidate.
    func distanceWeightedDraw(_ d: [Double], dimension: Int, rng: inout SeededRNG) -> Int? {
        guard !d.isEmpty else { return nil }
        let w = distanceWeights(d, dimension: dimension)
        if w.allSatisfy({ $0 == 0 }) { return rng.nextInt(below: d.count) }
        let u = rng.nextDouble()
        var acc = 0.0
        for (i, x) in w.enumerated() {
            acc += x
            if u < acc { return i }
        }
        return w.lastIndex(where: { $0 > 0 })
    }

    /// The loss on `(N, D)` embeddings with class `labels`; tuples selected with `seed`. Adds dL/dbeta into
    /// `beta.grad` for the margin loss. - Throws: `MMLError(.invalidArgument)` for a shape or count mismatch and
    /// `MMLError(.numerical)` for non-finite embeddings.
    public func compute(_ embeddings: Tensor, labels: [Int], seed: UInt64) throws -> EmbeddingLossOutput {
        guard embeddings.rank == 2, embeddings.shape[0] == labels.count else {
            throw MMLError(.invalidArgument, "embedding loss: embeddings must be (N, D) with N = \(labels.count) "
                           + "labels, got \(embeddings.shape)")
        }
        guard embeddings.isFinite else {
            throw MMLError(.numerical, "embedding loss: the embeddings hold NaN or Inf (diverged training? lower the "
                           + "learning rate)")
        }
        let n = labels.count, dim = embeddings.shape[1]
        let dist = EmbeddingLoss.distances(embeddings)
        let tuples = selectTuples(distances: dist, labels: labels, dimension: dim, seed: seed)
        var grad = [Double](repeating: 0, count: n * dim)
        guard !tuples.isEmpty else {
            return EmbeddingLossOutput(loss: 0, gradient: Tensor(shape: embeddings.shape), tuples: [], activeTuples: 0)
        }
        let alpha = Double(configuration.margin), b = Double(beta.value.data[0])
        let scale = 1 / Double(tuples.count)
        var total = 0.0, dBeta = 0.0, active = 0
        // d d(i, j) / d e_i = (e_i - e_j) / d(i, j); adds c * that to i and its negative to j.
        func addDistanceGradient(_ i: Int, _ j: Int, _ c: Double) {
            let dij = dist[i * n + j]
            for k in 0..<dim {
                let g = c * (Double(embeddings.data[i * dim + k]) - Double(embeddings.data[j * dim + k])) / dij
                grad[i * dim + k] += g
                grad[j * dim + k] -= g
            }
        }
        for t in tuples {
            let dap = dist[t.anchor * n + t.positive], dan = dist[t.anchor * n + t.negative]
            var hit = false
            switch configuration.loss {
            case .triplet:
                let v = dap - dan + alpha
                if v > 0 {
                    total += v
                    hit = true
                    addDistanceGradient(t.anchor, t.positive, scale)
                    addDistanceGradient(t.anchor, t.negative, -scale)
                }
            case .margin:
                let vp = alpha + dap - b, vn = alpha - (dan - b)
                if vp > 0 {
                    total += vp
                    hit = true
                    addDistanceGradient(t.anchor, t.positive, scale)
                    dBeta -= scale
                }
                if vn > 0 {
                    total += vn
                    hit = true
                    addDistanceGradient(t.anchor, t.negative, -scale)
                    dBeta += scale
                }
            }
            if hit { active += 1 }
        }
        if configuration.loss == .margin { beta.grad.data[0] += Float(dBeta) }
        return EmbeddingLossOutput(loss: total * scale, gradient: Tensor(shape: embeddings.shape, data: grad.map(Float.init)),
                                   tuples: tuples, activeTuples: active)
    }
}
