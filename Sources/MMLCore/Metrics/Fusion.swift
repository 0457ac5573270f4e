import Foundation

/// How the per-level normaliser of the learned fusion pools its statistics (METHOD.md 2.4).
public enum FusionNormalization: String, Sendable, Codable, CaseIterable {
    /// One mean/variance per level over all (query, class) scores: a model trained at one n-way can be evaluated
    /// at another. The default.
    case perLevel = "per-level"
    /// One mean/variance per (level, class position), as the official MML v1 / ADM code's BatchNorm1d.
    /// Ties a trained model to its n-way.
    case perPosition = "per-position"
}

/// Learned fusion of per-level relation scores (ADM; MML v1): normalise each level's scores, then a learned
/// weight per level shared across classes,
///
///     logit[q, c] = sum_l w_l * BN_l(score_l[q, c])
///
/// BN_l normalises with batch statistics in training (and updates running statistics with `momentum`) and with the
/// running statistics in inference. There is no affine term: the weight is the scale and a shared shift does not
/// change a softmax. A disabled level is absent from the sum (construct the fusion over the enabled levels only).
///
/// The weight and the running statistics are `Parameter`s (`weight`, `running_mean`, `running_var` in
/// `visitParameters`), the only copy of them: a `FewShotModel` visits them as `fusion.*`, so its optimiser and its
/// checkpoints read and write them directly. Like a layer's parameters they are shared by copies of the fusion;
/// `copy()` gives an independent one.
public struct LearnedFusion: Codable, Equatable {
    /// Number of fused levels.
    public let levels: Int
    /// The normaliser's pooling.
    public let normalization: FusionNormalization
    /// One weight per level (trainable).
    public let weight: Parameter
    /// Running means (buffer): `levels` values (per-level) or `levels * way` (per-position).
    public let runningMeanParameter: Parameter
    /// Running variances (buffer), same layout as the means.
    public let runningVarParameter: Parameter
    /// The n-way the per-position statistics were made for (0 for per-level).
    public let way: Int
    /// Running-statistics momentum (PyTorch convention: new = (1 - m) * old + m * batch).
    public var momentum: Float = 0.1
    /// Variance epsilon.
    public var eps: Float = 1e-5

    /// - Parameters:
    ///   - levels: the number of enabled levels (>= 1).
    ///   - way: the n-way; only used by `.perPosition`.
    public init(levels: Int, normalization: FusionNormalization = .perLevel, way: Int = 0) {
        precondition(levels >= 1, "[fusion] needs at least one level, got \(levels)")
        precondition(normalization == .perLevel || way >= 1, "[fusion] per-position normalisation needs way >= 1")
        self.levels = levels
        self.normalization = normalization
        self.way = normalization == .perPosition ? way : 0
        weight = Parameter(Tensor(shape: [levels], data: [Float](repeating: 1, count: levels)))
        let stats = normalization == .perLevel ? levels : levels * way
        runningMeanParameter = Parameter(Tensor(shape: [stats]), trainable: false)
        runningVarParameter = Parameter(Tensor(shape: [stats], data: [Float](repeating: 1, count: stats)),
                                        trainable: false)
    }

    /// One weight per level (the values of `weight`).
    public var weights: [Float] {
        get { weight.value.data }
        nonmutating set { weight.value.data = newValue }
    }
    /// The running means (the values of `runningMeanParameter`).
    public var runningMean: [Float] {
        get { runningMeanParameter.value.data }
        nonmutating set { runningMeanParameter.value.data = newValue }
    }
    /// The running variances (the values of `runningVarParameter`).
    public var runningVar: [Float] {
        get { runningVarParameter.value.data }
        nonmutating set { runningVarParameter.value.data = newValue }
    }

    /// Visits `weight`, `running_mean` and `running_var` under `prefix`, in that order.
    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {
        visit(parameterName(prefix, "weight"), weight)
        visit(parameterName(prefix, "running_mean"), runningMeanParameter)
        visit(parameterName(prefix, "running_var"), runningVarParameter)
    }

    /// An independent fusion with the same configuration, values and weight gradient.
    public func copy() -> LearnedFusion {
        var f = LearnedFusion(levels: levels, normalization: normalization, way: max(way, 1))
        f.momentum = momentum
        f.eps = eps
        f.weights = weights
        f.weight.grad = weight.grad
        f.runningMean = runningMean
        f.runningVar = runningVar
        return f
    }

    private enum CodingKeys: String, CodingKey {
        case levels, normalization, weights, runningMean, runningVar, way, momentum, eps
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let levels = try c.decode(Int.self, forKey: .levels)
        let normalization = try c.decode(FusionNormalization.self, forKey: .normalization)
        let way = try c.decode(Int.self, forKey: .way)
        let weights = try c.decode([Float].self, forKey: .weights)
        let mean = try c.decode([Float].self, forKey: .runningMean), variance = try c.decode([Float].self, forKey: .runningVar)
        let stats = normalization == .perLevel ? levels : levels * way
        guard levels >= 1, normalization == .perLevel || way >= 1, weights.count == levels, mean.count == stats,
              variance.count == stats else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription:
                "learned fusion: \(weights.count) weights and \(mean.count)/\(variance.count) statistics do not fit "
                + "\(levels) level(s), \(normalization.rawValue), way \(way)"))
        }
        self.init(levels: levels, normalization: normalization, way: way)
        momentum = try c.decodeIfPresent(Float.self, forKey: .momentum) ?? 0.1
        eps = try c.decodeIfPresent(Float.self, forKey: .eps) ?? 1e-5
        self.weights = weights
        runningMean = mean
        runningVar = variance
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(levels, forKey: .levels)
        try c.encode(normalization, forKey: .normalization)
        try c.encode(weights, forKey: .weights)
        try c.encode(runningMean, forKey: .runningMean)
        try c.encode(runningVar, forKey: .runningVar)
        try c.encode(way, forKey: .way)
        try c.encode(momentum, forKey: .momentum)
        try c.encode(eps, forKey: .eps)
    }

    /// Equal configuration and values (whether or not the parameters are shared).
    public static func == (a: LearnedFusion, b: LearnedFusion) -> Bool {
        a.levels == b.levels && a.normalization == b.normalization && a.way == b.way && a.momentum == b.momentum
            && a.eps == b.eps && a.weights == b.weights && a.runningMean == b.runningMean && a.runningVar == b.runningVar
    }

    /// What `backward` needs from a training-mode forward.
    public struct Cache: Sendable {
        /// Normalised scores per level, each (queries x way).
        public var normalized: [[Float]]
        /// 1 / sqrt(var + eps) per statistic group, per level.
        public var invStd: [[Float]]
        public var queries: Int
        public var way: Int
    }

    /// Gradient with respect to the fusion's own parameters.
    public struct Gradients: Sendable, Equatable {
        public var weights: [Float]
        public init(levels: Int) { weights = [Float](repeating: 0, count: levels) }
    }

    /// Statistic groups: for per-level one group of all q*way entries; for per-position one group per column.
    private func groups(queries: Int, way: Int) -> [[Int]] {
        switch normalization {
        case .perLevel: return [Array(0..<(queries * way))]
        case .perPosition: return (0..<way).map { c in (0..<queries).map { $0 * way + c } }
        }
    }

    /// Fuse per-level scores (a training forward writes the running statistics).
    /// - Parameters:
    ///   - scores: one (queries x way) tensor per level, in the order the fusion was built for.
    ///   - training: batch statistics (and running-statistics update) when true.
    ///   - keepCache: return the cache in inference too (default: only in training), for the weights' gradient
    ///     under fixed statistics (`FusionRefit`): `backward`'s weight gradients are then exact, its score gradients
    ///     assume batch statistics and do not apply.
    /// - Returns: logits (queries x way) and the cache for `backward` (nil in inference unless `keepCache`).
    public mutating func forward(_ scores: [Tensor], training: Bool, keepCache: Bool? = nil) -> (Tensor, Cache?) {
        precondition(scores.count == levels, "[fusion] built for \(levels) levels, got \(scores.count)")
        let q = scores[0].shape[0], w = scores[0].shape[1]
        for s in scores {
            precondition(s.shape == [q, w], "[fusion] level scores \(s.shape) differ from \([q, w])")
        }
        if normalization == .perPosition {
            precondition(w == way, "[fusion] per-position statistics were made for \(way)-way, got \(w)-way")
        }
        let gs = groups(queries: q, way: w)
        let weights = self.weights
        let runningMean = self.runningMean, runningVar = self.runningVar
        // The batch statistics a training forward moves the running ones toward (one update per statistic).
        var meanTarget = runningMean, varTarget = runningVar
        var logits = [Float](repeating: 0, count: q * w)
        var normalized: [[Float]] = []
        var invStds: [[Float]] = []
        for l in 0..<levels {
            let s = scores[l].data
            var xhat = [Float](repeating: 0, count: q * w)
            var inv = [Float](repeating: 0, count: gs.count)
            for (gi, g) in gs.enumerated() {
                let statIndex = normalization == .perLevel ? l : l * way + gi
                var mean: Float, variance: Float
                if training {
                    var sum = 0.0
                    for i in g { sum += Double(s[i]) }
                    let m = sum / Double(g.count)
                    var ss = 0.0
                    for i in g { ss += (Double(s[i]) - m) * (Double(s[i]) - m) }
                    mean = Float(m)
                    variance = Float(ss / Double(g.count))
                    let unbiased = g.count > 1 ? Float(ss / Double(g.count - 1)) : variance
                    meanTarget[statIndex] = mean
                    varTarget[statIndex] = unbiased
                } else {
                    mean = runningMean[statIndex]
                    variance = runningVar[statIndex]
                }
                let r = 1 / (variance + eps).squareRoot()
                inv[gi] = r
                for i in g {
                    xhat[i] = (s[i] - mean) * r
                    logits[i] += weights[l] * xhat[i]
                }
            }
            normalized.append(xhat)
            invStds.append(inv)
        }
        if training {
            runningMeanParameter.movingAverage(toward: meanTarget, momentum: momentum)
            runningVarParameter.movingAverage(toward: varTarget, momentum: momentum)
        }
        let out = Tensor(shape: [q, w], data: logits)
        let cached = keepCache ?? training
        return (out, cached ? Cache(normalized: normalized, invStd: invStds, queries: q, way: w) : nil)
    }

    /// Backward of a training-mode forward.
    /// - Parameters:
    ///   - dLogits: dL/dlogits (queries x way).
    ///   - grads: the weights' gradients are accumulated (+=) here.
    /// - Returns: dL/dscore per level, each (queries x way).
    public func backward(_ dLogits: Tensor, cache: Cache, grads: inout Gradients) -> [Tensor] {
        let q = cache.queries, w = cache.way
        precondition(dLogits.shape == [q, w], "[fusion] dLogits \(dLogits.shape) vs \([q, w])")
        let gs = groups(queries: q, way: w)
        let weights = self.weights
        var result: [Tensor] = []
        for l in 0..<levels {
            let xhat = cache.normalized[l]
            // dw_l = sum dlogit * xhat_l
            var dw = 0.0
            for i in 0..<(q * w) { dw += Double(dLogits.data[i]) * Double(xhat[i]) }
            grads.weights[l] += Float(dw)
            // Batch-norm backward, per statistic group of size N:
            // ds = invstd / N * (N * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)), dxhat = w_l * dlogit.
            var ds = [Float](repeating: 0, count: q * w)
            for (gi, g) in gs.enumerated() {
                let n = Double(g.count)
                var sumD = 0.0, sumDX = 0.0
                for i in g {
                    let d = Double(weights[l]) * Double(dLogits.data[i])
                    sumD += d
                    sumDX += d * Double(xhat[i])
                }
                let r = Double(cache.invStd[l][gi])
                for i in g {
                    let d = Double(weights[l]) * Double(dLogits.data[i])
                    ds[i] = Float(r / n * (n * d - sumD - Double(xhat[i]) * sumDX))
                }
            }
            result.append(Tensor(shape: [q, w], data: ds))
        }
        return result
    }
}

/// Fixed-weight fusion (MML v4): the weighted sum of per-level softmax outputs. Its logits are the logarithm of that
/// mixture, so argmax and cross-entropy apply unchanged. Default weights (1, 0.5, 0.5).
public struct FixedFusion: Sendable, Codable, Equatable {
    /// One non-negative weight per level.
    public var weights: [Float]

    public init(weights: [Float]) {
        precondition(!weights.isEmpty && weights.allSatisfy { $0 >= 0 } && weights.contains { $0 > 0 },
                     "[fixed fusion] weights must be non-negative with at least one positive, got \(weights)")
        self.weights = weights
    }

    /// Softmax probabilities per level (rows of `scores`), kept for backward.
    public struct Cache: Sendable {
        public var probabilities: [[Float]]
        public var mixture: [Float]
        public var queries: Int
        public var way: Int
    }

    /// logits[q, c] = log(sum_l w_l softmax(score_l[q, :])[c]).
    public func forward(_ scores: [Tensor]) -> (Tensor, Cache) {
        precondition(scores.count == weights.count, "[fixed fusion] \(weights.count) weights, \(scores.count) levels")
        let q = scores[0].shape[0], w = scores[0].shape[1]
        var probs: [[Float]] = []
        var mix = [Float](repeating: 0, count: q * w)
        for (l, s) in scores.enumerated() {
            precondition(s.shape == [q, w], "[fixed fusion] level scores \(s.shape) differ from \([q, w])")
            var p = [Float](repeating: 0, count: q * w)
            for i in 0..<q {
                var mx = -Float.infinity
                for c in 0..<w { mx = max(mx, s.data[i * w + c]) }
                var z: Float = 0
                for c in 0..<w { p[i * w + c] = expf(s.data[i * w + c] - mx); z += p[i * w + c] }
                for c in 0..<w { p[i * w + c] /= z; mix[i * w + c] += weights[l] * p[i * w + c] }
            }
            probs.append(p)
        }
        let logits = mix.map { logf(max($0, Float.leastNormalMagnitude)) }
        return (Tensor(shape: [q, w], data: logits), Cache(probabilities: probs, mixture: mix, queries: q, way: w))
    }

    /// dL/dscore per level given dL/dlogits: through log, the mixture and each softmax's Jacobian.
    public func backward(_ dLogits: Tensor, cache: Cache) -> [Tensor] {
        let q = cache.queries, w = cache.way
        var out: [Tensor] = []
        for l in 0..<weights.count {
            let p = cache.probabilities[l]
            var ds = [Float](repeating: 0, count: q * w)
            for i in 0..<q {
                // g_c = dL/dp_c = w_l * dlogit_c / mix_c; softmax backward: ds_c = p_c (g_c - sum_k p_k g_k)
                var dot: Float = 0
                var g = [Float](repeating: 0, count: w)
                for c in 0..<w {
                    g[c] = weights[l] * dLogits.data[i * w + c] / max(cache.mixture[i * w + c], Float.leastNormalMagnitude)
                    dot += p[i * w + c] * g[c]
                }
                for c in 0..<w { ds[i * w + c] = p[i * w + c] * (g[c] - dot) }
            }
            out.append(Tensor(shape: [q, w], data: ds))
        }
        return out
    }
}
