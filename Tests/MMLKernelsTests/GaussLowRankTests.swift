import MMLKernels
import MMLTestSupport
import XCTest

/// The low-rank KL from descriptor sets (`mml_gaussian_kl_maps_lowrank_f32`) against the naive double fit + KL of
/// the same sets, in the three directions, on sets smaller and larger than the channel count; thread counts; the
/// cost rule; every error code.
final class GaussLowRankTests: XCTestCase {
    /// Naive reference: double fit, rounded to float as the KL references take it, then naive KL.
    func naiveKL(_ qm: [Float], _ qn: Int, _ qi: [Int64]?, _ qo: [Int64], _ cm: [Float], _ cn: Int, _ ci: [Int64]?,
                 _ co: [Int64], d: Int, hw: Int, eps: Float, _ dir: mml_kl_direction) -> [Double] {
        func fit(_ m: [Float], _ n: Int, _ i: [Int64]?, _ o: [Int64]) -> ([Float], [Float]) {
            let ns = o.count - 1
            var mu = [Double](repeating: 0, count: ns * d), sg = [Double](repeating: 0, count: ns * d * d)
            XCTAssertEqual(mml_gaussian_fit_maps_naive(&mu, &sg, m, Int64(n), Int64(d), Int64(hw), i, o, Int64(ns),
                                                       Double(eps)), Int32(MML_OK))
            return (mu.map(Float.init), sg.map(Float.init))
        }
        let (am, asg) = fit(qm, qn, qi, qo), (bm, bsg) = fit(cm, cn, ci, co)
        var out = [Double](repeating: 0, count: (qo.count - 1) * (co.count - 1))
        XCTAssertEqual(mml_gaussian_kl_naive(&out, am, asg, Int64(qo.count - 1), bm, bsg, Int64(co.count - 1),
                                             Int64(d), dir), Int32(MML_OK))
        return out
    }

    func lowRank(_ qm: [Float], _ qn: Int, _ qi: [Int64]?, _ qo: [Int64], _ cm: [Float], _ cn: Int, _ ci: [Int64]?,
                 _ co: [Int64], d: Int, hw: Int, eps: Float, _ dir: mml_kl_direction, threads: Int32) -> (Int32, [Float]) {
        var out = [Float](repeating: .nan, count: (qo.count - 1) * (co.count - 1))
        let st = mml_gaussian_kl_maps_lowrank_f32(&out, qm, Int64(qn), qi, qo, Int64(qo.count - 1), cm, Int64(cn), ci,
                                                  co, Int64(co.count - 1), Int64(d), Int64(hw), eps, dir, threads)
        return (st, out)
    }

    func testMatchesNaiveFitAndKLInEveryDirection() {
        var rng = TestRNG(seed: 91)
        // (d, hw, shots): few descriptors for many channels (the case it is for), about as many, and more.
        for (d, hw, shots) in [(96, 4, [1, 3]), (24, 4, [2, 1]), (8, 9, [1, 2]), (40, 25, [1])] {
            let nq = 6, nc = shots.reduce(0, +)
            // leaky-ReLU-like maps with channel scales from 1 to 5: covariances far from a multiple of I
            func maps(_ images: Int) -> [Float] {
                rng.normals(images * d * hw).enumerated().map { i, x in
                    (x > 0 ? x : 0.2 * x) * Float(1 + (i / hw) % 5) + 0.3
                }
            }
            let qm = maps(nq), cm = maps(nc)
            let qo = (0...nq).map(Int64.init)
            var co: [Int64] = [0]
            for s in shots { co.append(co.last! + Int64(s)) }
            let ci: [Int64] = (0..<nc).reversed().map(Int64.init)  // classes read their images through an index
            for dir in [MML_KL_QUERY_CLASS, MML_KL_CLASS_QUERY, MML_KL_SYMMETRIC] {
                let ref = naiveKL(qm, nq, nil, qo, cm, nc, ci, co, d: d, hw: hw, eps: 0.01, dir)
                let (st, got) = lowRank(qm, nq, nil, qo, cm, nc, ci, co, d: d, hw: hw, eps: 0.01, dir, threads: 1)
                XCTAssertEqual(st, Int32(MML_OK))
                for k in 0..<ref.count {
                    XCTAssertEqual(Double(got[k]), ref[k], accuracy: 1e-4 * max(1, abs(ref[k])),
                                   "d \(d) hw \(hw) dir \(dir.rawValue) pair \(k)")
                }
                // 1, 2, 3 and all threads: the same bits
                for t: Int32 in [2, 3, 0] {
                    let (st2, again) = lowRank(qm, nq, nil, qo, cm, nc, ci, co, d: d, hw: hw, eps: 0.01, dir, threads: t)
                    XCTAssertEqual(st2, Int32(MML_OK))
                    XCTAssertEqual(again.map(\.bitPattern), got.map(\.bitPattern), "threads \(t)")
                }
            }
        }
    }

    /// A Gaussian against itself: KL 0 (the trace term's d - |W|^2 + (|U|^2 - |W U|^2) / eps must come back to d).
    func testSelfDivergenceIsZero() {
        var rng = TestRNG(seed: 92)
        let d = 64, hw = 5
        let m = rng.normals(2 * d * hw).map { $0 * 3 }
        let (st, out) = lowRank(m, 2, nil, [0, 1, 2], m, 2, nil, [0, 1, 2], d: d, hw: hw, eps: 0.01, MML_KL_SYMMETRIC,
                                threads: 1)
        XCTAssertEqual(st, Int32(MML_OK))
        XCTAssertEqual(out[0], 0, accuracy: 1e-6)
        XCTAssertEqual(out[3], 0, accuracy: 1e-6)
        XCTAssertGreaterThan(out[1], 1)
    }

    func testCostRule() {
        XCTAssertEqual(mml_gaussian_kl_lowrank_preferred(640, 25), 1)   // ResNet-12 1-shot
        XCTAssertEqual(mml_gaussian_kl_lowrank_preferred(640, 125), 1)  // ResNet-12 5-shot
        XCTAssertEqual(mml_gaussian_kl_lowrank_preferred(640, 161), 0)
        XCTAssertEqual(mml_gaussian_kl_lowrank_preferred(64, 49), 0)    // Conv-64F at 28 px
        XCTAssertEqual(mml_gaussian_kl_lowrank_preferred(128, 49), 0)   // 128 channels at 28 px
        XCTAssertEqual(mml_gaussian_kl_lowrank_preferred(64, 16), 1)
        XCTAssertEqual(mml_gaussian_kl_lowrank_preferred(0, 1), 0)
        XCTAssertEqual(mml_gaussian_kl_lowrank_preferred(64, 0), 0)
    }

    func testErrorCodes() {
        let d = 4, hw = 3
        var m = [Float](repeating: 0, count: 2 * d * hw)
        for i in 0..<m.count { m[i] = Float(i % 7) }
        let ok: [Int64] = [0, 1, 2]
        var out = [Float](repeating: 0, count: 4)
        func run(_ maps: [Float], _ off: [Int64] = [0, 1, 2], eps: Float = 0.01, idx: [Int64]? = nil,
                 dir: mml_kl_direction = MML_KL_QUERY_CLASS, hw h: Int64 = 3) -> Int32 {
            out = [Float](repeating: 7, count: 4)
            return mml_gaussian_kl_maps_lowrank_f32(&out, maps, 2, idx, off, Int64(off.count - 1), m, 2, nil, ok, 2,
                                                    Int64(d), h, eps, dir, 1)
        }
        XCTAssertEqual(run(m), Int32(MML_OK))
        let arg = Int32(MML_ERR_ARGUMENT)
        XCTAssertEqual(run(m, eps: 0), arg)  // the low-rank form needs eps > 0
        XCTAssertEqual(run(m, eps: -1), arg)
        XCTAssertEqual(run(m, eps: .nan), arg)
        XCTAssertEqual(run(m, idx: [0, 2]), arg)  // image id out of range
        XCTAssertEqual(run(m, dir: mml_kl_direction(rawValue: 3)), arg)
        XCTAssertEqual(mml_gaussian_kl_maps_lowrank_f32(nil, m, 2, nil, ok, 2, m, 2, nil, ok, 2, Int64(d), 3, 0.01,
                                                        MML_KL_QUERY_CLASS, 1), arg)
        XCTAssertEqual(run(m, [0, 0, 2]), Int32(MML_ERR_EMPTY_GROUP))  // a set with no image
        XCTAssertEqual(run(m, hw: 1), Int32(MML_ERR_EMPTY_GROUP))  // one descriptor per set
        var bad = m
        bad[5] = .infinity
        XCTAssertEqual(run(bad), Int32(MML_ERR_NONFINITE))
        XCTAssertEqual(out, [0, 0, 0, 0])  // a failed call leaves zeros, not stale values
    }
}
