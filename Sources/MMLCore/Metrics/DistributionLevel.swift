import Foundation

/// The distribution level (ADM, Li et al. IJCAI 2020; MML v1; METHOD.md 2.3).
///
/// A Gaussian is fitted to each query's M raw (not normalised) descriptors and to each class's k_shot * M support
/// descriptors, Sigma = (X - mu)(X - mu)^T / (n - 1) + eps I, and the score is the negated distance between them:
/// the closed-form squared 2-Wasserstein distance, a KL divergence in a chosen direction, or the MML v1 code's
/// distance. KL over sets of few descriptors for their channels (`GaussianKernels.lowRankPreferred`: ResNet-12's 25
/// per image against 640 channels) is computed in low-rank form, in evaluation and training alike (forward and
/// backward): the same divergences and gradients as the dense form up to rounding, without d x d covariances.
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
        /// How the scores were computed: the dense form keeps its fitted Gaussians; the low-rank KL keeps its
        /// direction and eps (its backward refits in n x n form).
        enum Form {
            case dense(classes: GaussianKernels.Gaussians, queries: GaussianKernels.Gaussians)
            case lowRankKL(direction: GaussianKernels.KLDirection, eps: Float)
        }
        var form: Form
        /// Whether the scores came from the low-rank KL (no d x d covariances kept).
        public var lowRank: Bool {
            if case .lowRankKL = form { return true }
            return false
        }
    }

    /// The KL direction when the low-rank form applies to these sets (KL, eps > 0, 4 n <= d), else nil.
    func lowRankDirection(support: Tensor, classSets: [[Int]]) -> GaussianKernels.KLDirection? {
        guard case .kl(let direction) = distance, eps > 0 else { return nil }
        let hw = support.shape[2...].reduce(1, *), most = (classSets.map(\.count).max() ?? 1) * hw
        return GaussianKernels.lowRankPreferred(channels: support.shape[1], descriptors: most) ? direction : nil
    }

    /// Scores (queries x way) = -D(query Gaussian, class Gaussian).
    /// - Throws: `MMLError` for non-finite features, too few descriptors, or a covariance that is not positive
    ///   definite (raise `eps`).
    public func forward(support: Tensor, labels: [Int], query: Tensor, way: Int,
                        keepCache: Bool = false) throws -> (scores: Tensor, cache: Cache?) {
        _ = try EpisodeShapes.check(support: support, labels: labels, query: query, way: way)
        let classSets = (0..<way).map { c in labels.indices.filter { labels[$0] == c } }
        let querySets = (0..<query.shape[0]).map { [$0] }
        // KL over sets of few descriptors against many channels (ResNet-12: 25 per image, 640 channels) takes the
        // low-rank form: the same divergences, without the d x d covariances.
        if let direction = lowRankDirection(support: support, classSets: classSets) {
            var d = try GaussianKernels.klLowRank(direction, queryMaps: query, querySets: querySets,
                                                  classMaps: support, classSets: classSets, eps: eps, threads: threads)
            for i in 0..<d.count { d.data[i] = -d.data[i] }
            let cache = keepCache ? Cache(support: support, query: query, classSets: classSets, querySets: querySets,
                                          form: .lowRankKL(direction: direction, eps: eps)) : nil
            return (d, cache)
        }
        let g = try GaussianKernels.fit(maps: support, sets: classSets, eps: eps, threads: threads)
        let q = try GaussianKernels.fit(maps: query, sets: querySets, eps: eps, threads: threads)
        var d = try GaussianKernels.distances(distance, queries: q, classes: g, threads: threads)
        for i in 0..<d.count { d.data[i] = -d.data[i] }
        let cache = keepCache ? Cache(support: support, query: query, classSets: classSets, querySets: querySets,
                                      form: .dense(classes: g, queries: q)) : nil
        return (d, cache)
    }

    /// Gradients with respect to the support and query feature maps given dL/dscores (queries x way).
    public func backward(_ dScores: Tensor, cache: Cache) throws -> (support: Tensor, query: Tensor) {
        var dDist = dScores
        for i in 0..<dDist.count { dDist.data[i] = -dDist.data[i] }
        var ds = Tensor(shape: cache.support.shape), dq = Tensor(shape: cache.query.shape)
        switch cache.form {
        case .lowRankKL(let direction, let eps):
            try GaussianKernels.klLowRankBackward(direction, outputGradient: dDist, queryMaps: cache.query,
                                                  querySets: cache.querySets, classMaps: cache.support,
                                                  classSets: cache.classSets, eps: eps, queryGradient: &dq,
                                                  classGradient: &ds, threads: threads)
        case .dense(let classes, let queries):
            let (gq, gc) = try GaussianKernels.distancesBackward(distance, outputGradient: dDist, queries: queries,
                                                                   classes: classes, threads: threads)
            try GaussianKernels.fitBackward(maps: cache.support, sets: cache.classSets, fitted: classes,
                                            meanGradient: gc.mean, covarianceGradient: gc.covariance, into: &ds,
                                            threads: threads)
            try GaussianKernels.fitBackward(maps: cache.query, sets: cache.querySets, fitted: queries,
                                            meanGradient: gq.mean, covarianceGradient: gq.covariance, into: &dq,
                                            threads: threads)
        }
        return (ds, dq)
    }
}
