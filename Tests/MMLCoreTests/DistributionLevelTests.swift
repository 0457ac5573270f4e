import MMLCore
import MMLTestSupport
import XCTest

final class DistributionLevelTests: XCTestCase {
    /// Brute force in Double for the KL(query || class) score of one (query, class) pair, d = 2 in closed form.
    func gaussian(_ cols: [[Double]], eps: Double) -> ([Double], [[Double]]) {
        let n = Double(cols.count)
        let mu = [cols.map { $0[0] }.reduce(0, +) / n, cols.map { $0[1] }.reduce(0, +) / n]
        var s = [[0.0, 0.0], [0.0, 0.0]]
        for x in cols { for a in 0..<2 { for b in 0..<2 { s[a][b] += (x[a] - mu[a]) * (x[b] - mu[b]) / (n - 1) } } }
        s[0][0] += eps; s[1][1] += eps
        return (mu, s)
    }

    func testKLScoreMatchesClosedFormInTwoDimensions() throws {
        var rng = TestRNG(seed: 31)
        let support = rng.tensor([4, 2, 3, 3]), query = rng.tensor([3, 2, 3, 3])
        let labels = [0, 1, 1, 0]
        let head = DistributionLevel(distance: .kl(.queryClass), eps: 0.01, threads: 1)
        let (s, _) = try head.forward(support: support, labels: labels, query: query, way: 2)
        func cols(_ t: Tensor, _ images: [Int]) -> [[Double]] {
            images.flatMap { n in (0..<9).map { p in [Double(t.data[(n * 2) * 9 + p]), Double(t.data[(n * 2 + 1) * 9 + p])] } }
        }
        for qi in 0..<3 {
            for c in 0..<2 {
                let (m1, s1) = gaussian(cols(query, [qi]), eps: 0.01)
                let (m2, s2) = gaussian(cols(support, labels.indices.filter { labels[$0] == c }), eps: 0.01)
                let det2 = s2[0][0] * s2[1][1] - s2[0][1] * s2[1][0], det1 = s1[0][0] * s1[1][1] - s1[0][1] * s1[1][0]
                let inv2 = [[s2[1][1] / det2, -s2[0][1] / det2], [-s2[1][0] / det2, s2[0][0] / det2]]
                var tr = 0.0
                for a in 0..<2 { for b in 0..<2 { tr += inv2[a][b] * s1[b][a] } }
                let dm = [m2[0] - m1[0], m2[1] - m1[1]]
                var quad = 0.0
                for a in 0..<2 { for b in 0..<2 { quad += dm[a] * inv2[a][b] * dm[b] } }
                let kl = 0.5 * (tr + quad - 2 + log(det2) - log(det1))
                XCTAssertEqual(Double(s.data[qi * 2 + c]), -kl, accuracy: 1e-3 + 1e-4 * kl)
            }
        }
    }

    func testGradientsMatchFiniteDifferencesForEachDistance() throws {
        var rng = TestRNG(seed: 32)
        let support = rng.tensor([3, 3, 2, 2]), query = rng.tensor([2, 3, 2, 2])
        let labels = [0, 1, 0]
        let r = rng.tensor([2, 2])
        for dist: GaussianKernels.Distance in [.wasserstein2, .kl(.queryClass), .kl(.classQuery), .kl(.symmetric), .mmlv1] {
            let head = DistributionLevel(distance: dist, eps: 0.1, threads: 1)
            func loss(_ s: Tensor, _ q: Tensor) throws -> Double {
                let (sc, _) = try head.forward(support: s, labels: labels, query: q, way: 2)
                return zip(sc.data, r.data).reduce(0) { $0 + Double($1.0) * Double($1.1) }
            }
            let (_, cache) = try head.forward(support: support, labels: labels, query: query, way: 2, keepCache: true)
            let (ds, dq) = try head.backward(r, cache: cache!)
            let h: Float = 1e-2
            for (t, g, isSupport) in [(support, ds, true), (query, dq, false)] {
                for i in stride(from: 0, to: t.count, by: 3) {
                    var p = t, m = t
                    p.data[i] += h; m.data[i] -= h
                    let fd = isSupport ? (try loss(p, query) - loss(m, query)) / Double(2 * h)
                                       : (try loss(support, p) - loss(support, m)) / Double(2 * h)
                    XCTAssertEqual(Double(g.data[i]), fd, accuracy: 1e-2 + 3e-2 * abs(fd), "\(dist) \(isSupport) \(i)")
                }
            }
        }
    }

    func testDegenerateCovarianceIsAClearError() {
        // One query map of a single position: n = 1 descriptor cannot give a covariance.
        var rng = TestRNG(seed: 33)
        let s = rng.tensor([2, 3, 1, 1]), q = rng.tensor([1, 3, 1, 1])
        XCTAssertThrowsError(try DistributionLevel().forward(support: s, labels: [0, 1], query: q, way: 2)) {
            XCTAssertNotNil($0 as? MMLError, "\($0)")
        }
    }

    /// Scoring without a cache takes the low-rank KL when the sets hold few descriptors for their channels (here
    /// 2 x 2 positions, 1-2 images per class, 48 channels): the scores agree with the dense form's (kept for
    /// training, `keepCache: true`) in every direction, and the W2 distance, which has no low-rank form, is the same
    /// bits either way.
    /// Sets of few descriptors for their channels take the low-rank KL in evaluation and in training: the dense
    /// form's scores and gradients up to rounding, the same scores with and without a cache.
    func testLowRankKLGivesTheDenseScoresAndGradients() throws {
        var rng = TestRNG(seed: 33)
        let support = rng.tensor([3, 48, 2, 2]), query = rng.tensor([4, 48, 2, 2])
        let labels = [0, 1, 1], classSets = [[0], [1, 2]], querySets = (0..<4).map { [$0] }
        XCTAssertTrue(GaussianKernels.lowRankPreferred(channels: 48, descriptors: 8))
        let dScores = rng.tensor([4, 2])
        for dir: GaussianKernels.KLDirection in [.queryClass, .classQuery, .symmetric] {
            let head = DistributionLevel(distance: .kl(dir), eps: 0.01, threads: 1)
            let (evalScores, noCache) = try head.forward(support: support, labels: labels, query: query, way: 2)
            let (trainScores, cache) = try head.forward(support: support, labels: labels, query: query, way: 2,
                                                        keepCache: true)
            XCTAssertNil(noCache)
            XCTAssertTrue(try XCTUnwrap(cache).lowRank, "the low-rank form keeps no d x d covariances")
            XCTAssertEqual(evalScores.data.map(\.bitPattern), trainScores.data.map(\.bitPattern))
            let direct = try GaussianKernels.klLowRank(dir, queryMaps: query, querySets: querySets,
                                                       classMaps: support, classSets: classSets, eps: 0.01)
            XCTAssertEqual(direct.data.map { -$0 }, evalScores.data)
            // the dense form, by hand
            let g = try GaussianKernels.fit(maps: support, sets: classSets, eps: 0.01)
            let q = try GaussianKernels.fit(maps: query, sets: querySets, eps: 0.01)
            let dense = try GaussianKernels.distances(.kl(dir), queries: q, classes: g)
            for k in 0..<dense.count {
                XCTAssertEqual(-evalScores.data[k], dense.data[k], accuracy: 1e-4 * max(1, abs(dense.data[k])),
                               "\(dir) score \(k)")
            }
            let (ds, dq) = try head.backward(dScores, cache: XCTUnwrap(cache))
            var dDist = dScores
            for i in 0..<dDist.count { dDist.data[i] = -dDist.data[i] }
            let (gq, gc) = try GaussianKernels.distancesBackward(.kl(dir), outputGradient: dDist, queries: q, classes: g)
            var rs = Tensor(shape: support.shape), rq = Tensor(shape: query.shape)
            try GaussianKernels.fitBackward(maps: support, sets: classSets, fitted: g, meanGradient: gc.mean,
                                            covarianceGradient: gc.covariance, into: &rs)
            try GaussianKernels.fitBackward(maps: query, sets: querySets, fitted: q, meanGradient: gq.mean,
                                            covarianceGradient: gq.covariance, into: &rq)
            for (got, ref, what) in [(ds, rs, "support"), (dq, rq, "query")] {
                let scale = ref.data.map(abs).max()!
                XCTAssertGreaterThan(scale, 1e-3)
                for k in 0..<ref.count {
                    XCTAssertEqual(got.data[k], ref.data[k], accuracy: 2e-3 * scale, "\(dir) \(what) gradient \(k)")
                }
            }
        }
        // the backward's own refusals, through the Swift wrapper
        var gq = Tensor(shape: query.shape), gs = Tensor(shape: support.shape), wrong = Tensor(shape: [4, 48, 4])
        XCTAssertThrowsError(try GaussianKernels.klLowRankBackward(.queryClass, outputGradient: rng.tensor([4, 3]),
                                                                   queryMaps: query, querySets: querySets,
                                                                   classMaps: support, classSets: classSets,
                                                                   eps: 0.01, queryGradient: &gq, classGradient: &gs)) {
            XCTAssertTrue("\($0)".contains("the output gradient is [4, 3]"), "\($0)")
        }
        XCTAssertThrowsError(try GaussianKernels.klLowRankBackward(.queryClass, outputGradient: dScores,
                                                                   queryMaps: query, querySets: querySets,
                                                                   classMaps: support, classSets: classSets,
                                                                   eps: 0.01, queryGradient: &wrong, classGradient: &gs)) {
            XCTAssertTrue("\($0)".contains("must have the maps' shapes"), "\($0)")
        }
        var nanGradient = dScores
        nanGradient.data[1] = .nan
        XCTAssertThrowsError(try GaussianKernels.klLowRankBackward(.queryClass, outputGradient: nanGradient,
                                                                   queryMaps: query, querySets: querySets,
                                                                   classMaps: support, classSets: classSets,
                                                                   eps: 0.01, queryGradient: &gq, classGradient: &gs)) {
            XCTAssertTrue("\($0)".contains("the output gradient holds NaN/Inf"), "\($0)")
        }
        XCTAssertEqual(gq.data, [Float](repeating: 0, count: gq.count), "a refused call adds nothing")
        let w2 = DistributionLevel(distance: .wasserstein2, eps: 0.01, threads: 1)
        let (a, _) = try w2.forward(support: support, labels: labels, query: query, way: 2)
        let (b, _) = try w2.forward(support: support, labels: labels, query: query, way: 2, keepCache: true)
        XCTAssertEqual(a.data.map(\.bitPattern), b.data.map(\.bitPattern))
        // the low-rank form's own refusals, through the Swift wrapper
        XCTAssertThrowsError(try GaussianKernels.klLowRank(.queryClass, queryMaps: query, querySets: [[0]],
                                                           classMaps: support, classSets: [[0]], eps: 0)) {
            XCTAssertTrue("\($0)".contains("eps must be finite and > 0"), "\($0)")
        }
        XCTAssertThrowsError(try GaussianKernels.klLowRank(.queryClass, queryMaps: rng.tensor([2, 47, 2, 2]),
                                                           querySets: [[0]], classMaps: support, classSets: [[0]],
                                                           eps: 0.01)) {
            XCTAssertTrue("\($0)".contains("differ in channels or positions"), "\($0)")
        }
        var bad = query
        bad.data[5] = .nan
        let kl = DistributionLevel(distance: .kl(.queryClass), eps: 0.01, threads: 1)
        XCTAssertThrowsError(try kl.forward(support: support, labels: labels, query: bad, way: 2)) {
            XCTAssertTrue("\($0)".contains("NaN at image 0"), "\($0)")
        }
    }
}
