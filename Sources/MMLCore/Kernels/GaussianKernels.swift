import Foundation
import MMLKernels

/// Gaussian statistics of descriptor sets and the distances between Gaussians (METHOD.md 2.3): thin wrappers over
/// the C kernels that check shapes, call C and turn a bad status into an `MMLError` that names the culprit.
public enum GaussianKernels {
    /// A batch of Gaussians: `mean` (n, d) and `covariance` (n, d, d), symmetric positive definite.
    public struct Gaussians: Sendable, Equatable {
        public var mean: Tensor
        public var covariance: Tensor
        /// Pairs a mean (n, d) with covariances (n, d, d).
        public init(mean: Tensor, covariance: Tensor) {
            precondition(mean.rank == 2 && covariance.shape == [mean.shape[0], mean.shape[1], mean.shape[1]],
                         "[gaussians] mean \(mean.shape) and covariance \(covariance.shape) do not match")
            self.mean = mean
            self.covariance = covariance
        }
        /// The number of Gaussians.
        public var count: Int { mean.shape[0] }
        /// The dimension d.
        public var dimension: Int { mean.shape[1] }
    }

    /// Which distance between Gaussians.
    public enum Distance: Sendable, Equatable {
        /// Squared 2-Wasserstein distance.
        case wasserstein2
        /// Kullback-Leibler divergence in a direction.
        case kl(KLDirection)
        /// The MML v1 code's ||dmu|| / d + ||dS||_F / d^2.
        case mmlv1
    }

    /// KL direction; the first side of `distances` is the query side.
    public enum KLDirection: Sendable, Equatable {
        case queryClass, classQuery, symmetric
        var c: mml_kl_direction {
            switch self {
            case .queryClass: return MML_KL_QUERY_CLASS
            case .classQuery: return MML_KL_CLASS_QUERY
            case .symmetric: return MML_KL_SYMMETRIC
            }
        }
    }

    /// Fits one Gaussian per set of images: mu = mean of the set's descriptors (columns of the maps) and
    /// Sigma = (X - mu)(X - mu)^T / (n - 1) + eps I.
    /// - Parameters:
    ///   - maps: (N, C, H, W) or (N, C, HW) channel-major feature maps.
    ///   - sets: for each set, the indices of its images in `maps` (an image may be used by several sets).
    ///   - eps: the ridge added to the diagonal (>= 0; METHOD.md uses 0.01).
    ///   - threads: 0 = all cores.
    /// - Returns: Gaussians with mean (sets, C) and covariance (sets, C, C).
    /// - Throws: `MMLError` when a set has fewer than 2 descriptors, an index is out of range, eps is negative or
    ///   the maps hold NaN/Inf.
    public static func fit(maps: Tensor, sets: [[Int]], eps: Float, threads: Int = 0) throws -> Gaussians {
        let (n, d, hw) = try mapShape(maps)
        let (index, offsets) = try flatten(sets: sets, images: n, hw: hw)
        guard eps >= 0, eps.isFinite else {
            throw MMLError(.invalidArgument, "Gaussian fit: eps must be finite and >= 0, got \(eps); use e.g. 0.01")
        }
        var mu = Tensor(shape: [sets.count, d]), sigma = Tensor(shape: [sets.count, d, d])
        let st = mml_gaussian_fit_maps_f32(&mu.data, &sigma.data, maps.data, Int64(n), Int64(d), Int64(hw), index,
                                           offsets, Int64(sets.count), eps, Int32(threads))
        if st == MML_ERR_NONFINITE { throw nonfiniteMaps(maps, d: d, hw: hw) }
        try check(st, "Gaussian fit")
        return Gaussians(mean: mu, covariance: sigma)
    }

    /// Backward of `fit`: adds dL/dmaps into `mapsGradient` (same shape as `maps`) given dL/dmean and
    /// dL/dcovariance (either may be nil) and the fitted means.
    public static func fitBackward(maps: Tensor, sets: [[Int]], fitted: Gaussians, meanGradient: Tensor?,
                                   covarianceGradient: Tensor?, into mapsGradient: inout Tensor,
                                   threads: Int = 0) throws {
        let (n, d, hw) = try mapShape(maps)
        let (index, offsets) = try flatten(sets: sets, images: n, hw: hw)
        precondition(mapsGradient.shape == maps.shape, "[gaussian fit backward] gradient \(mapsGradient.shape) vs maps \(maps.shape)")
        precondition(fitted.mean.shape == [sets.count, d], "[gaussian fit backward] mean \(fitted.mean.shape)")
        if let g = meanGradient { precondition(g.shape == [sets.count, d], "[gaussian fit backward] dmean \(g.shape)") }
        if let g = covarianceGradient {
            precondition(g.shape == [sets.count, d, d], "[gaussian fit backward] dcovariance \(g.shape)")
        }
        let st = mml_gaussian_fit_maps_backward_f32(&mapsGradient.data, meanGradient?.data, covarianceGradient?.data,
                                                    maps.data, fitted.mean.data, Int64(n), Int64(d), Int64(hw), index,
                                                    offsets, Int64(sets.count), Int32(threads))
        try check(st, "Gaussian fit backward")
    }

    /// Pairwise distances: out[i, j] = D(queries_i, classes_j).
    /// - Returns: (queries.count, classes.count).
    /// - Throws: `MMLError` (.numerical) naming the query or class whose mean/covariance holds NaN/Inf or whose
    ///   covariance is not positive definite.
    public static func distances(_ kind: Distance, queries: Gaussians, classes: Gaussians,
                                 threads: Int = 0) throws -> Tensor {
        precondition(queries.dimension == classes.dimension,
                     "[gaussian distance] query d=\(queries.dimension) vs class d=\(classes.dimension)")
        let (na, nb, d) = (Int64(queries.count), Int64(classes.count), Int64(queries.dimension))
        var out = Tensor(shape: [queries.count, classes.count])
        let (qm, qs, cm, cs) = (queries.mean.data, queries.covariance.data, classes.mean.data, classes.covariance.data)
        let st: Int32
        switch kind {
        case .wasserstein2: st = mml_gaussian_w2_f32(&out.data, qm, qs, na, cm, cs, nb, d, Int32(threads))
        case .kl(let dir): st = mml_gaussian_kl_f32(&out.data, qm, qs, na, cm, cs, nb, d, dir.c, Int32(threads))
        case .mmlv1: st = mml_gaussian_mmlv1_f32(&out.data, qm, qs, na, cm, cs, nb, d, Int32(threads))
        }
        try checkDistance(st, kind, queries, classes)
        return out
    }

    /// KL divergences straight from the descriptor sets, in low-rank form (`mml_gaussian_kl_maps_lowrank_f32`):
    /// out[i, j] = KL(direction) between the Gaussians `fit` would give query set i and class set j with this eps,
    /// computed in double through n x n matrices (n descriptors per set), never forming the d x d covariances. The
    /// same divergences as `fit` + `distances(.kl(direction))` up to rounding, and much cheaper when n is well under
    /// d (`lowRankPreferred`). Its backward is `klLowRankBackward`.
    /// - Throws: `MMLError` as `fit` does for bad sets and non-finite maps; eps must be > 0.
    public static func klLowRank(_ direction: KLDirection, queryMaps: Tensor, querySets: [[Int]], classMaps: Tensor,
                                 classSets: [[Int]], eps: Float, threads: Int = 0) throws -> Tensor {
        let a = try lowRankArguments("KL divergence (low-rank)", queryMaps: queryMaps, querySets: querySets,
                                     classMaps: classMaps, classSets: classSets, eps: eps)
        var out = Tensor(shape: [querySets.count, classSets.count])
        let st = mml_gaussian_kl_maps_lowrank_f32(&out.data, queryMaps.data, Int64(a.nq), a.qi, a.qo,
                                                  Int64(querySets.count), classMaps.data, Int64(a.nc), a.ci, a.co,
                                                  Int64(classSets.count), Int64(a.d), Int64(a.hw), eps, direction.c,
                                                  Int32(threads))
        if st == MML_ERR_NONFINITE {
            let bad = queryMaps.data.contains { !$0.isFinite } ? queryMaps : classMaps
            throw nonfiniteMaps(bad, d: a.d, hw: a.hw)
        }
        try check(st, "KL divergence (low-rank)")
        return out
    }

    /// Backward of `klLowRank` (`mml_gaussian_kl_maps_lowrank_backward_f32`): adds dL/dqueryMaps and dL/dclassMaps
    /// into the two gradients (shaped as the maps) given dL/dout (querySets.count, classSets.count), through the same
    /// low-rank form: the gradients of `fit` + `distances(.kl(direction))` + their backward passes up to rounding, at
    /// O(d n^2) per set and O(d n_q n_c) per pair. Nothing is added when it throws.
    /// - Throws: `MMLError` as `klLowRank` does, for a gradient whose shape is not its maps' and for NaN/Inf in the
    ///   output gradient.
    public static func klLowRankBackward(_ direction: KLDirection, outputGradient: Tensor, queryMaps: Tensor,
                                         querySets: [[Int]], classMaps: Tensor, classSets: [[Int]], eps: Float,
                                         queryGradient: inout Tensor, classGradient: inout Tensor,
                                         threads: Int = 0) throws {
        let what = "KL divergence backward (low-rank)"
        let a = try lowRankArguments(what, queryMaps: queryMaps, querySets: querySets, classMaps: classMaps,
                                     classSets: classSets, eps: eps)
        guard outputGradient.shape == [querySets.count, classSets.count] else {
            throw MMLError(.invalidArgument, "\(what): the output gradient is \(outputGradient.shape), the divergences "
                           + "are [\(querySets.count), \(classSets.count)] (query sets x class sets)")
        }
        guard queryGradient.shape == queryMaps.shape, classGradient.shape == classMaps.shape else {
            throw MMLError(.invalidArgument, "\(what): gradients \(queryGradient.shape) and \(classGradient.shape) must "
                           + "have the maps' shapes \(queryMaps.shape) and \(classMaps.shape)")
        }
        let st = mml_gaussian_kl_maps_lowrank_backward_f32(&queryGradient.data, &classGradient.data,
                                                           outputGradient.data, queryMaps.data, Int64(a.nq), a.qi,
                                                           a.qo, Int64(querySets.count), classMaps.data, Int64(a.nc),
                                                           a.ci, a.co, Int64(classSets.count), Int64(a.d),
                                                           Int64(a.hw), eps, direction.c, Int32(threads))
        if st == MML_ERR_NONFINITE {
            if !outputGradient.data.allSatisfy({ $0.isFinite }) {
                throw MMLError(.numerical, "\(what): the output gradient holds NaN/Inf; check the loss and the "
                               + "learning rate")
            }
            let bad = queryMaps.data.contains { !$0.isFinite } ? queryMaps : classMaps
            throw nonfiniteMaps(bad, d: a.d, hw: a.hw)
        }
        try check(st, what)
    }

    /// The checks shared by `klLowRank` and its backward, and the flattened sets.
    private static func lowRankArguments(_ what: String, queryMaps: Tensor, querySets: [[Int]], classMaps: Tensor,
                                         classSets: [[Int]], eps: Float) throws
        -> (nq: Int, nc: Int, d: Int, hw: Int, qi: [Int64], qo: [Int64], ci: [Int64], co: [Int64]) {
        let (nq, d, hw) = try mapShape(queryMaps), (nc, dc, hwc) = try mapShape(classMaps)
        guard d == dc, hw == hwc else {
            throw MMLError(.invalidArgument, "\(what): query maps \(queryMaps.shape) and class maps "
                           + "\(classMaps.shape) differ in channels or positions; give both from the same backbone")
        }
        guard eps > 0, eps.isFinite else {
            throw MMLError(.invalidArgument, "\(what): eps must be finite and > 0, got \(eps); use e.g. 0.01")
        }
        let (qi, qo) = try flatten(sets: querySets, images: nq, hw: hw)
        let (ci, co) = try flatten(sets: classSets, images: nc, hw: hw)
        return (nq, nc, d, hw, qi, qo, ci, co)
    }

    /// Whether `klLowRank` is the cheaper form for sets of at most `descriptors` descriptors of `channels` channels
    /// (`mml_gaussian_kl_lowrank_preferred`: 4 n <= d).
    public static func lowRankPreferred(channels: Int, descriptors: Int) -> Bool {
        mml_gaussian_kl_lowrank_preferred(Int64(channels), Int64(descriptors)) != 0
    }

    /// Backward of `distances`: the gradients with respect to the queries' and the classes' means and covariances
    /// (covariance gradients symmetrised), given dL/dout (queries.count, classes.count).
    public static func distancesBackward(_ kind: Distance, outputGradient: Tensor, queries: Gaussians,
                                         classes: Gaussians, threads: Int = 0) throws
        -> (queries: Gaussians, classes: Gaussians) {
        precondition(outputGradient.shape == [queries.count, classes.count],
                     "[gaussian distance backward] dout \(outputGradient.shape)")
        precondition(queries.dimension == classes.dimension, "[gaussian distance backward] dimensions differ")
        let (na, nb, d) = (Int64(queries.count), Int64(classes.count), Int64(queries.dimension))
        var dqm = Tensor(shape: queries.mean.shape), dqs = Tensor(shape: queries.covariance.shape)
        var dcm = Tensor(shape: classes.mean.shape), dcs = Tensor(shape: classes.covariance.shape)
        let (qm, qs, cm, cs) = (queries.mean.data, queries.covariance.data, classes.mean.data, classes.covariance.data)
        let g = outputGradient.data
        let st: Int32
        switch kind {
        case .wasserstein2:
            st = mml_gaussian_w2_backward_f32(&dqm.data, &dqs.data, &dcm.data, &dcs.data, g, qm, qs, na, cm, cs, nb,
                                              d, Int32(threads))
        case .kl(let dir):
            st = mml_gaussian_kl_backward_f32(&dqm.data, &dqs.data, &dcm.data, &dcs.data, g, qm, qs, na, cm, cs, nb,
                                              d, dir.c, Int32(threads))
        case .mmlv1:
            st = mml_gaussian_mmlv1_backward_f32(&dqm.data, &dqs.data, &dcm.data, &dcs.data, g, qm, qs, na, cm, cs,
                                                 nb, d, Int32(threads))
        }
        if st == MML_ERR_NONFINITE, !outputGradient.data.allSatisfy({ $0.isFinite }) {
            throw MMLError(.numerical, "Gaussian distance backward: the output gradient holds NaN/Inf; "
                           + "check the loss and the learning rate")
        }
        try checkDistance(st, kind, queries, classes)
        return (Gaussians(mean: dqm, covariance: dqs), Gaussians(mean: dcm, covariance: dcs))
    }

    // MARK: - shape checks and error messages

    private static func mapShape(_ maps: Tensor) throws -> (Int, Int, Int) {
        precondition(maps.rank == 3 || maps.rank == 4, "[gaussian fit] maps must be (N, C, HW) or (N, C, H, W), got \(maps.shape)")
        let hw = maps.shape[2...].reduce(1, *)
        guard maps.shape[0] > 0, maps.shape[1] > 0, hw > 0 else {
            throw MMLError(.invalidArgument, "Gaussian fit: feature maps \(maps.shape) are empty")
        }
        return (maps.shape[0], maps.shape[1], hw)
    }

    private static func flatten(sets: [[Int]], images: Int, hw: Int) throws -> ([Int64], [Int64]) {
        guard !sets.isEmpty else { throw MMLError(.invalidArgument, "Gaussian fit: no sets given") }
        var index: [Int64] = [], offsets: [Int64] = [0]
        for (s, set) in sets.enumerated() {
            if set.count * hw < 2 {
                throw MMLError(.datasetTooSmall, "Gaussian fit: set \(s) has \(set.count) image(s) x \(hw) "
                               + "position(s) = \(set.count * hw) descriptor(s); a covariance needs at least 2 "
                               + "(use more images per set or larger feature maps)")
            }
            for im in set where im < 0 || im >= images {
                throw MMLError(.invalidArgument, "Gaussian fit: set \(s) refers to image \(im) but the maps hold "
                               + "\(images) images (valid 0..<\(images))")
            }
            index += set.map(Int64.init)
            offsets.append(Int64(index.count))
        }
        return (index, offsets)
    }

    private static func nonfiniteMaps(_ maps: Tensor, d: Int, hw: Int) -> MMLError {
        let k = maps.data.firstIndex { !$0.isFinite } ?? 0
        let v = maps.data[k]
        return MMLError(.numerical, "Gaussian fit: feature maps hold \(v.isNaN ? "NaN" : "Inf") at image \(k / (d * hw)), "
                        + "channel \((k / hw) % d), position \(k % hw); check the backbone's input and learning rate")
    }

    private static func check(_ st: Int32, _ what: String) throws {
        if st == MML_OK { return }
        let text = String(cString: mml_status_string(st))
        switch st {
        case Int32(MML_ERR_NOMEM): throw MMLError(.kernel, "\(what): \(text); reduce the batch or free memory")
        case Int32(MML_ERR_EMPTY_GROUP): throw MMLError(.datasetTooSmall, "\(what): \(text)")
        case Int32(MML_ERR_NONFINITE), Int32(MML_ERR_LAPACK): throw MMLError(.numerical, "\(what): \(text)")
        default: throw MMLError(.invalidArgument, "\(what): \(text)")
        }
    }

    private static func name(_ kind: Distance) -> String {
        switch kind {
        case .wasserstein2: return "W2 distance"
        case .kl: return "KL divergence"
        case .mmlv1: return "mmlv1 distance"
        }
    }

    /// On a numerical failure, asks the C diagnosis which Gaussian is at fault and says so.
    private static func checkDistance(_ st: Int32, _ kind: Distance, _ q: Gaussians, _ c: Gaussians) throws {
        guard st == MML_ERR_NONFINITE || st == MML_ERR_LAPACK else { return try check(st, name(kind)) }
        let d = q.dimension
        for (side, g) in [("query", q), ("class", c)] {
            var idx: Int64 = -1, detail: Int64 = -1
            let r = mml_gaussian_diagnose_f32(&idx, &detail, g.mean.data, g.covariance.data, Int64(g.count), Int64(d))
            if r == MML_ERR_NONFINITE {
                let where_ = detail < 0 ? "mean of \(side) \(idx)"
                    : "covariance of \(side) \(idx) at (\(Int(detail) / d), \(Int(detail) % d))"
                throw MMLError(.numerical, "\(name(kind)): \(where_) holds NaN/Inf; check the features that were fitted")
            }
            if r == MML_ERR_LAPACK {
                throw MMLError(.numerical, "\(name(kind)): covariance of \(side) \(idx) is not positive definite "
                               + "(Cholesky failed at column \(detail)); raise eps")
            }
        }
        try check(st, name(kind))
    }
}
