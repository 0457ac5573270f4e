import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// mml_group_topk_sim_backward_f32 against a brute-force accumulation and against central finite differences
/// of the naive forward pass (the top-k sum is piecewise linear: with the selection fixed it is linear).
final class TopKBackwardTests: XCTestCase {
    func testAgainstBruteForceAccumulation() {
        var rng = TestRNG(seed: 31)
        forEachISA { _ in
            for (m, n, d, sizes, k) in [(7, 50, 13, [20, 30], 3), (1, 1, 1, [1], 1), (19, 120, 64, [40, 40, 40], 40), (700, 9, 16, [3, 3, 3], 2)] {
                let g = sizes.count
                let q = rng.floats(m * d), r = rng.floats(n * d), dout = rng.floats(m * g)
                let group = makeGroups(sizes, shuffled: true, rng: &rng)
                let fwd = runTopK(q, m, r, n, d, group, g, k)
                XCTAssertEqual(fwd.status, 0)
                let dq0 = rng.floats(m * d), dr0 = rng.floats(n * d)  // backward accumulates into these
                var dq = dq0, dr = dr0
                XCTAssertEqual(mml_group_topk_sim_backward_f32(&dq, &dr, dout, fwd.idx, q, Int64(m), r, Int64(n),
                                                               Int64(d), Int32(g), Int32(k), 1), 0)
                // any thread count: the same bits (every row adds its terms in ascending (i, g, t) order)
                for threads in [2, 3, 0] {
                    var dqT = dq0, drT = dr0
                    XCTAssertEqual(mml_group_topk_sim_backward_f32(&dqT, &drT, dout, fwd.idx, q, Int64(m), r, Int64(n),
                                                                   Int64(d), Int32(g), Int32(k), Int32(threads)), 0)
                    XCTAssertEqual(dqT.map(\.bitPattern), dq.map(\.bitPattern), "dQ, \(threads) threads")
                    XCTAssertEqual(drT.map(\.bitPattern), dr.map(\.bitPattern), "dR, \(threads) threads")
                }
                var eq = dq0.map(Double.init), er = dr0.map(Double.init)
                for i in 0..<m {
                    for c in 0..<g {
                        for t in 0..<k {
                            let j = Int(fwd.idx[(i * g + c) * k + t])
                            for p in 0..<d {
                                eq[i * d + p] += Double(dout[i * g + c]) * Double(r[j * d + p])
                                er[j * d + p] += Double(dout[i * g + c]) * Double(q[i * d + p])
                            }
                        }
                    }
                }
                for i in 0..<(m * d) { XCTAssertTrue(isClose(Double(dq[i]), eq[i], atol: 1e-4, rtol: 1e-5), "dQ[\(i)]") }
                for i in 0..<(n * d) { XCTAssertTrue(isClose(Double(dr[i]), er[i], atol: 1e-4, rtol: 1e-5), "dR[\(i)]") }
                // NULL skips a gradient
                var dq2 = dq0
                XCTAssertEqual(mml_group_topk_sim_backward_f32(&dq2, nil, dout, fwd.idx, q, Int64(m), r, Int64(n),
                                                               Int64(d), Int32(g), Int32(k), 2), 0)
                XCTAssertEqual(dq2.map(\.bitPattern), dq.map(\.bitPattern))
            }
        }
    }

    func testAgainstFiniteDifferences() {
        var rng = TestRNG(seed: 32)
        let m = 4, n = 30, d = 5, sizes = [10, 20], g = 2, k = 3, h: Float = 1e-3
        let q = rng.floats(m * d), r = rng.floats(n * d), dout = rng.floats(m * g)
        let group = makeGroups(sizes, shuffled: true, rng: &rng)
        let fwd = runTopK(q, m, r, n, d, group, g, k)
        var dq = [Float](repeating: 0, count: m * d), dr = [Float](repeating: 0, count: n * d)
        XCTAssertEqual(mml_group_topk_sim_backward_f32(&dq, &dr, dout, fwd.idx, q, Int64(m), r, Int64(n), Int64(d),
                                                       Int32(g), Int32(k), 0), 0)
        func loss(_ q: [Float], _ r: [Float]) -> (Double, [Int32]) {
            let res = runNaive(q, m, r, n, d, group, g, k)
            return (zip(res.out, dout).map { $0 * Double($1) }.reduce(0, +), res.idx)
        }
        let base = loss(q, r).1
        var checked = 0, total = 0
        for (isQ, count) in [(true, m * d), (false, n * d)] {
            for e in 0..<count {
                total += 1
                var qp = q, qm = q, rp = r, rm = r
                if isQ { qp[e] += h; qm[e] -= h } else { rp[e] += h; rm[e] -= h }
                let (lp, ip) = loss(qp, rp), (lm, im) = loss(qm, rm)
                // only where the step keeps the selection (the function is linear there); the gaps of random
                // data make this nearly every coordinate
                guard ip == base, im == base else { continue }
                let hp = isQ ? Double(qp[e]) - Double(q[e]) : Double(rp[e]) - Double(r[e])
                let hm = isQ ? Double(q[e]) - Double(qm[e]) : Double(r[e]) - Double(rm[e])
                let fd = (lp - lm) / (hp + hm)
                let an = Double(isQ ? dq[e] : dr[e])
                XCTAssertTrue(isClose(an, fd, atol: 1e-4, rtol: 1e-3), "\(isQ ? "dQ" : "dR")[\(e)]: \(an) vs \(fd)")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, total * 9 / 10, "too few coordinates kept the selection")
    }

    func testBadSelectionIndex() {
        let q: [Float] = [1, 2], r: [Float] = [1, 2, 3, 4], dout: [Float] = [1]
        var dq = [Float](repeating: 0, count: 2)
        XCTAssertEqual(mml_group_topk_sim_backward_f32(&dq, nil, dout, [2], q, 1, r, 2, 2, 1, 1, 2), Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_group_topk_sim_backward_f32(&dq, nil, dout, [-1], q, 1, r, 2, 2, 1, 1, 2), Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_group_topk_sim_backward_f32(&dq, nil, dout, [0], q, 0, r, 2, 2, 1, 1, 2), Int32(MML_ERR_ARGUMENT))
    }
}
