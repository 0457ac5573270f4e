import Foundation

/// The distribution level (ADM, Li et al. IJCAI 2020; MML v1; METHOD.md 2.3).
///
/// A Gaussian is fitted to each query's M raw (not normalised) descriptors and to each class's k_shot * M support
/// descriptors, Sigma = (X - mu)(X - mu)^T / (n - 1) + eps I, and the score is the negated distance between them:
/// the closed-form squared 2-Wasserstein distance, a KL divergence in a chosen direction, or the MML v1 code's
/// distance. Scoring without a cache (evaluation) computes KL in low-rank form when the sets hold few descriptors
/// for their channels (`GaussianKernels.lowRankPreferred`), the same divergences up to rounding.
public struct DistributionLevel: Sendable {
    /// Which distance.
    public var distance: GaussianKernels.Distance
    /// Covariance ridge (METHOD.md: 0.01).
    public var eps: Float
    /// Threads for the kernels (0 = all cores).
    public var threads: Int

    public init(distance: GaussianKernels.Distance = .kl(.queryClass), eps: Float = 0.01, threads: Int = 0) {
        self.distance = distance
        self.eps = eps
        self.threads = threads
    }

    /// What `backward` needs.
    public struct Cache: Sendable {
        var support: Tensor, query: Tensor
        var classSets: [[Int]], querySets: [[Int]]
        var classes: GaussianKernels.Gaussians, queries: GaussianKernels.Gaussians
    }

    /// Scores (queries x way) = -D(query Gaussian, class Gaussian).
    /// - Throws: `MMLError` for non-finite features, too few descriptors, or a covariance that is not positive
    ///   definite (raise `eps`).
    public func forward(support: Tensor, labels: [Int], query: Tensor, way: Int,
                        keepCache: Bool = false) throws -> (scores: Tensor, cache: Cache?) {
        _ = try EpisodeShapes.check(support: support, labels: labels, query: query, way: way)
        let classSets = (0..<way).map { c in labels.indices.filter { labels[$0] == c } }
        let querySets = (0..<query.shape[0]).map { [$0] }
        // Without a backward to come, KL over sets of few descriptors against many channels (ResNet-12: 25 per
        // image, 640 channels) takes the low-rank form: the same divergences, without the d x d covariances.
        if !keepCache, case .kl(let direction) = distance, eps > 0 {
            let hw = support.shape[2...].reduce(1, *), most = (classSets.map(\.count).max() ?? 1) * hw
            if GaussianKernels.lowRankPreferred(channels: support.shape[1], descriptors: most) {
                var d = try GaussianKernels.klLowRank(direction, queryMaps: query, querySets: querySets,
                                                      classMaps: support, classSets: classSets, eps: eps,
                                                      threads: threads)
                for i in 0..<d.count { d.data[i] = -d.data[i] }
                return (d, nil)
            }
        }
        let g = try GaussianKernels.fit(maps: support, sets: classSets, eps: eps, threads: threads)
        let q = try GaussianKernels.fit(maps: query, sets: querySets, eps: eps, threads: threads)
        var d = try GaussianKernels.distances(distance, queries: q, classes: g, threads: threads)
        for i in 0..<d.count { d.data[i] = -d.data[i] }
        let cache = keepCache ? Cache(support: support, query: query, classSets: classSets, querySets: querySets,
                                      classes: g, queries: q) : nil
        return (d, cache)
    }

    /// Gradients with respect to the support and query feature maps given dL/dscores (queries x way).
    public func backward(_ dScores: Tensor, cache: Cache) throws -> (support: Tensor, query: Tensor) {
        var dDist = dScores
        for i in 0..<dDist.count { dDist.data[i] = -dDist.data[i] }
        let (gq, gc) = try GaussianKernels.distancesBackward(distance, outputGradient: dDist, queries: cache.queries,
                                                               classes: cache.classes, threads: threads)
        var ds = Tensor(shape: cache.support.shape), dq = Tensor(shape: cache.query.shape)
        try GaussianKernels.fitBackward(maps: cache.support, sets: cache.classSets, fitted: cache.classes,
                                        meanGradient: gc.mean, covarianceGradient: gc.covariance, into: &ds,
                                        threads: threads)
        try GaussianKernels.fitBackward(maps: cache.query, sets: cache.querySets, fitted: cache.queries,
                                        meanGradient: gq.mean, covarianceGradient: gq.covariance, into: &dq,
                                        threads: threads)
        return (ds, dq)
    }
}
