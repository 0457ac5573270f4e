import MMLKernels
import MMLTestSupport
import XCTest

/// The low-rank KL backward (`mml_gaussian_kl_maps_lowrank_backward_f32`) against the dense path's gradients (fit,
/// KL, and their backward passes, each tested against finite differences elsewhere) and against central finite
/// differences of the low-rank forward itself, in the three directions; an image shared by two sets; thread counts;
/// every error code, with nothing written on error.
final class GaussLowRankBackwardTests: XCTestCase {
    typealias Sets = (maps: [Float], images: Int, index: [Int64]?, offsets: [Int64])

    func lowRankBackward(_ a: Sets, _ b: Sets, dout: [Float], d: Int, hw: Int, eps: Float, _ dir: mml_kl_direction,
                         threads: Int32) -> (Int32, [Float], [Float]) {
        var ga = [Float](repeating: 0, count: a.maps.count), gb = [Float](repeating: 0, count: b.maps.count)
        let st = mml_gaussian_kl_maps_lowrank_backward_f32(
            &ga, &gb, dout, a.maps, Int64(a.images), a.index, a.offsets, Int64(a.offsets.count - 1), b.maps,
            Int64(b.images), b.index, b.offsets, Int64(b.offsets.count - 1), Int64(d), Int64(hw), eps, dir, threads)
        return (st, ga, gb)
    }

    /// Dense reference: float fit, KL backward on the fitted Gaussians, fit backward.
    func denseBackward(_ a: Sets, _ b: Sets, dout: [Float], d: Int, hw: Int, eps: Float,
                       _ dir: mml_kl_direction) -> ([Float], [Float]) {
        func fit(_ s: Sets) -> ([Float], [Float]) {
            let ns = s.offsets.count - 1
            var mu = [Float](repeating: 0, count: ns * d), sg = [Float](repeating: 0, count: ns * d * d)
            XCTAssertEqual(mml_gaussian_fit_maps_f32(&mu, &sg, s.maps, Int64(s.images), Int64(d), Int64(hw), s.index,
                                                     s.offsets, Int64(ns), eps, 1), Int32(MML_OK))
            return (mu, sg)
        }
        let (am, asg) = fit(a), (bm, bsg) = fit(b)
        let na = a.offsets.count - 1, nb = b.offsets.count - 1
        var dam = [Float](repeating: 0, count: am.count), das = [Float](repeating: 0, count: asg.count)
        var dbm = [Float](repeating: 0, count: bm.count), dbs = [Float](repeating: 0, count: bsg.count)
        XCTAssertEqual(mml_gaussian_kl_backward_f32(&dam, &das, &dbm, &dbs, dout, am, asg, Int64(na), bm, bsg,
                                                    Int64(nb), Int64(d), dir, 1), Int32(MML_OK))
        var ga = [Float](repeating: 0, count: a.maps.count), gb = [Float](repeating: 0, count: b.maps.count)
        XCTAssertEqual(mml_gaussian_fit_maps_backward_f32(&ga, dam, das, a.maps, am, Int64(a.images), Int64(d),
                                                          Int64(hw), a.index, a.offsets, Int64(na), 1), Int32(MML_OK))
        XCTAssertEqual(mml_gaussian_fit_maps_backward_f32(&gb, dbm, dbs, b.maps, bm, Int64(b.images), Int64(d),
                                                          Int64(hw), b.index, b.offsets, Int64(nb), 1), Int32(MML_OK))
        return (ga, gb)
    }

    func maps(_ rng: inout TestRNG, images: Int, d: Int, hw: Int) -> [Float] {
        rng.normals(images * d * hw).enumerated().map { i, x in (x > 0 ? x : 0.2 * x) * Float(1 + (i / hw) % 5) + 0.3 }
    }

    func assertClose(_ got: [Float], _ ref: [Float], rel: Float, _ what: String) {
        XCTAssertEqual(got.count, ref.count)
        let scale = max(ref.map { abs($0) }.max() ?? 0, 1e-6)
        var worst: Float = 0
        for k in 0..<ref.count { worst = max(worst, abs(got[k] - ref[k])) }
        XCTAssertLessThanOrEqual(worst, rel * scale, "\(what): largest difference \(worst), gradient scale \(scale)")
        XCTAssertGreaterThan(scale, 1e-3, "\(what): a gradient that vanishes tests nothing")
    }

    func testMatchesTheDensePathInEveryDirection() {
        var rng = TestRNG(seed: 191)
        // (d, hw, shots): few descriptors for many channels (ResNet-12's case), about as many, more
        for (d, hw, shots) in [(96, 4, [1, 3, 2]), (24, 4, [2, 1]), (8, 9, [1, 2])] {
            let nq = 5, nc = shots.reduce(0, +)
            let q: Sets = (maps(&rng, images: nq, d: d, hw: hw), nq, nil, (0...nq).map(Int64.init))
            var co: [Int64] = [0]
            for s in shots { co.append(co.last! + Int64(s)) }
            let c: Sets = (maps(&rng, images: nc, d: d, hw: hw), nc, (0..<nc).reversed().map(Int64.init), co)
            let dout = rng.normals(nq * shots.count)
            for dir in [MML_KL_QUERY_CLASS, MML_KL_CLASS_QUERY, MML_KL_SYMMETRIC] {
                let (st, ga, gb) = lowRankBackward(q, c, dout: dout, d: d, hw: hw, eps: 0.01, dir, threads: 1)
                XCTAssertEqual(st, Int32(MML_OK))
                let (ra, rb) = denseBackward(q, c, dout: dout, d: d, hw: hw, eps: 0.01, dir)
                assertClose(ga, ra, rel: 2e-3, "queries d \(d) dir \(dir.rawValue)")
                assertClose(gb, rb, rel: 2e-3, "classes d \(d) dir \(dir.rawValue)")
                for t: Int32 in [2, 3, 0] {  // the same bits on any thread count
                    let (st2, ga2, gb2) = lowRankBackward(q, c, dout: dout, d: d, hw: hw, eps: 0.01, dir, threads: t)
                    XCTAssertEqual(st2, Int32(MML_OK))
                    XCTAssertEqual(ga2.map(\.bitPattern), ga.map(\.bitPattern), "threads \(t)")
                    XCTAssertEqual(gb2.map(\.bitPattern), gb.map(\.bitPattern), "threads \(t)")
                }
            }
        }
    }

    /// Central differences of sum dout * KL through the low-rank forward, coordinate by coordinate.
    func testMatchesFiniteDifferencesOfTheForward() {
        var rng = TestRNG(seed: 192)
        let d = 16, hw = 3, eps: Float = 0.5
        let q: Sets = (rng.normals(3 * d * hw), 3, nil, [0, 1, 2, 3])
        let c: Sets = (rng.normals(3 * d * hw), 3, nil, [0, 1, 3])
        let dout = rng.normals(6)
        func loss(_ qm: [Float], _ cm: [Float], _ dir: mml_kl_direction) -> Double {
            var out = [Float](repeating: 0, count: 6)
            XCTAssertEqual(mml_gaussian_kl_maps_lowrank_f32(&out, qm, 3, nil, q.offsets, 3, cm, 3, nil, c.offsets, 2,
                                                            Int64(d), Int64(hw), eps, dir, 1), Int32(MML_OK))
            return zip(out, dout).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        let h: Float = 1e-2
        for dir in [MML_KL_QUERY_CLASS, MML_KL_CLASS_QUERY, MML_KL_SYMMETRIC] {
            let (st, ga, gb) = lowRankBackward(q, c, dout: dout, d: d, hw: hw, eps: eps, dir, threads: 1)
            XCTAssertEqual(st, Int32(MML_OK))
            let scale = max(ga.map(abs).max()!, gb.map(abs).max()!)
            for k in stride(from: 0, to: q.maps.count, by: 7) {
                var p = q.maps, m = q.maps
                p[k] += h
                m[k] -= h
                let fd = (loss(p, c.maps, dir) - loss(m, c.maps, dir)) / Double(2 * h)
                XCTAssertEqual(Double(ga[k]), fd, accuracy: 3e-3 * Double(scale), "query coordinate \(k) dir \(dir.rawValue)")
            }
            for k in stride(from: 0, to: c.maps.count, by: 5) {
                var p = c.maps, m = c.maps
                p[k] += h
                m[k] -= h
                let fd = (loss(q.maps, p, dir) - loss(q.maps, m, dir)) / Double(2 * h)
                XCTAssertEqual(Double(gb[k]), fd, accuracy: 3e-3 * Double(scale), "class coordinate \(k) dir \(dir.rawValue)")
            }
        }
    }

    /// An image in two sets gets both sets' gradients; a NULL gradient is skipped (the other side's bits unchanged);
    /// gradients are added, not set.
    func testSharedImagesAndAccumulation() {
        var rng = TestRNG(seed: 193)
        let d = 32, hw = 4
        let q: Sets = (maps(&rng, images: 2, d: d, hw: hw), 2, nil, [0, 1, 2])
        let shared: Sets = (maps(&rng, images: 3, d: d, hw: hw), 3, [0, 1, 1, 2], [0, 2, 4])  // image 1 in both sets
        let dout = rng.normals(4)
        let (st, ga, gb) = lowRankBackward(q, shared, dout: dout, d: d, hw: hw, eps: 0.01, MML_KL_SYMMETRIC, threads: 1)
        XCTAssertEqual(st, Int32(MML_OK))
        let (ra, rb) = denseBackward(q, shared, dout: dout, d: d, hw: hw, eps: 0.01, MML_KL_SYMMETRIC)
        assertClose(ga, ra, rel: 2e-3, "queries")
        assertClose(gb, rb, rel: 2e-3, "classes with a shared image")
        // only the class side asked for, onto a gradient that already holds 1s
        var gb2 = [Float](repeating: 1, count: shared.maps.count)
        XCTAssertEqual(mml_gaussian_kl_maps_lowrank_backward_f32(
            nil, &gb2, dout, q.maps, 2, nil, q.offsets, 2, shared.maps, 3, shared.index, shared.offsets, 2, Int64(d),
            Int64(hw), 0.01, MML_KL_SYMMETRIC, 1), Int32(MML_OK))
        // added to what was there (the shared image's two terms round in another order: to 1e-5 there, exact elsewhere)
        for k in 0..<gb.count {
            let shared = k / (d * hw) == 1
            XCTAssertEqual(gb2[k], 1 + gb[k], accuracy: shared ? 1e-5 * max(1, abs(gb[k])) : 0, "element \(k)")
        }
        // only the query side asked for: the same bits as the run that computed both sides
        var ga2 = [Float](repeating: 0, count: q.maps.count)
        XCTAssertEqual(mml_gaussian_kl_maps_lowrank_backward_f32(
            &ga2, nil, dout, q.maps, 2, nil, q.offsets, 2, shared.maps, 3, shared.index, shared.offsets, 2, Int64(d),
            Int64(hw), 0.01, MML_KL_SYMMETRIC, 1), Int32(MML_OK))
        XCTAssertEqual(ga2, ga, "query side alone")
    }

    func testErrorCodesWriteNothing() {
        let d = 4, hw = 3
        var m = [Float](repeating: 0, count: 2 * d * hw)
        for i in 0..<m.count { m[i] = Float(i % 7) }
        let ok: [Int64] = [0, 1, 2]
        var ga = [Float](repeating: 0, count: m.count), gb = ga
        func run(_ maps: [Float], _ off: [Int64] = [0, 1, 2], eps: Float = 0.01, idx: [Int64]? = nil,
                 dir: mml_kl_direction = MML_KL_QUERY_CLASS, dout: [Float] = [1, 2, 3, 4], hw h: Int64 = 3) -> Int32 {
            ga = [Float](repeating: 7, count: m.count)
            gb = ga
            return mml_gaussian_kl_maps_lowrank_backward_f32(&ga, &gb, dout, maps, 2, idx, off, Int64(off.count - 1),
                                                             m, 2, nil, ok, 2, Int64(d), h, eps, dir, 1)
        }
        XCTAssertEqual(run(m), Int32(MML_OK))
        XCTAssertNotEqual(ga, [Float](repeating: 7, count: m.count))
        let arg = Int32(MML_ERR_ARGUMENT), untouched = [Float](repeating: 7, count: m.count)
        for (st, what) in [(run(m, eps: 0), "eps 0"), (run(m, eps: -1), "eps < 0"), (run(m, eps: .nan), "eps NaN"),
                           (run(m, idx: [0, 2]), "image id out of range"),
                           (run(m, dir: mml_kl_direction(rawValue: 3)), "direction 3")] {
            XCTAssertEqual(st, arg, what)
            XCTAssertEqual(ga, untouched, what)
            XCTAssertEqual(gb, untouched, what)
        }
        XCTAssertEqual(mml_gaussian_kl_maps_lowrank_backward_f32(&ga, &gb, nil, m, 2, nil, ok, 2, m, 2, nil, ok, 2,
                                                                 Int64(d), 3, 0.01, MML_KL_QUERY_CLASS, 1), arg)
        XCTAssertEqual(run(m, [0, 0, 2]), Int32(MML_ERR_EMPTY_GROUP))
        XCTAssertEqual(run(m, hw: 1), Int32(MML_ERR_EMPTY_GROUP))
        var bad = m
        bad[5] = .infinity
        XCTAssertEqual(run(bad), Int32(MML_ERR_NONFINITE))
        XCTAssertEqual(ga, untouched)
        XCTAssertEqual(run(m, dout: [1, .nan, 3, 4]), Int32(MML_ERR_NONFINITE))
        XCTAssertEqual(gb, untouched)
    }
}
