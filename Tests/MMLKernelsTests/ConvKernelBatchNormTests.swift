import MMLKernels
import MMLTestSupport
import XCTest

/// BatchNorm statistics / backward (vectorised plane reductions in nn_reduce.c) against double-precision references,
/// on plane sizes around the 16- and 64-float vector blocks, on the AVX-512 and portable paths and on 1 vs 2 threads.
extension ConvKernelTests {
    private static let planeSizes = [(1, 1, 1), (2, 3, 15), (3, 2, 16), (2, 2, 17), (1, 3, 63), (2, 1, 64), (3, 2, 65),
                                     (2, 3, 130), (5, 2, 441)]

    /// dx, dgamma, dbeta of BatchNorm with batch statistics, in double.
    private func batchNormBackwardReference(dy: [Float], x: [Float], mean: [Float], invstd: [Float], gamma: [Float],
                                            n: Int, c: Int, hw: Int) -> (dx: [Double], dg: [Double], db: [Double]) {
        var dx = [Double](repeating: 0, count: dy.count), dg = [Double](repeating: 0, count: c), db = dg
        let count = Double(n * hw)
        for ch in 0..<c {
            var sdy = 0.0, sdyx = 0.0
            for b in 0..<n { for i in 0..<hw {
                let j = (b * c + ch) * hw + i
                let xh = (Double(x[j]) - Double(mean[ch])) * Double(invstd[ch])
                sdy += Double(dy[j]); sdyx += Double(dy[j]) * xh
            } }
            db[ch] = sdy; dg[ch] = sdyx
            for b in 0..<n { for i in 0..<hw {
                let j = (b * c + ch) * hw + i
                let xh = (Double(x[j]) - Double(mean[ch])) * Double(invstd[ch])
                dx[j] = Double(gamma[ch]) * Double(invstd[ch]) * (Double(dy[j]) - sdy / count - xh * sdyx / count)
            } }
        }
        return (dx, dg, db)
    }

    private func checkBatchNormKernels(seed: UInt64) {
        var r = Rng(seed: seed)
        for (n, c, hw) in Self.planeSizes {
            // offset and an extreme value at the last index of the last plane
            var x = r.floats(n * c * hw).map { $0 * 3 + 50 }
            x[x.count - 1] = 400
            var m = [Float](repeating: 0, count: c), v = m, m2 = m, v2 = m
            var mr = [Double](repeating: 0, count: c), vr = mr
            XCTAssertEqual(mml_batchnorm_stats_f32(&m, &v, x, Int64(n), Int64(c), Int64(hw), 1), 0)
            XCTAssertEqual(mml_batchnorm_stats_f32(&m2, &v2, x, Int64(n), Int64(c), Int64(hw), 2), 0)
            XCTAssertEqual(mml_batchnorm_stats_naive(&mr, &vr, x, Int64(n), Int64(c), Int64(hw)), 0)
            assertClose(m, mr, atol: 1e-5, rtol: 1e-5, "bn mean \(n)x\(c)x\(hw)")
            assertClose(v, vr, atol: 1e-3, rtol: 1e-3, "bn var \(n)x\(c)x\(hw)")
            XCTAssertEqual(m.map(\.bitPattern) + v.map(\.bitPattern), m2.map(\.bitPattern) + v2.map(\.bitPattern),
                           "bn stats differ between 1 and 2 threads")

            let dy = r.floats(n * c * hw), gamma = r.floats(c)
            let invstd = v.map { 1 / ($0 + 1e-5).squareRoot() }
            let ref = batchNormBackwardReference(dy: dy, x: x, mean: m, invstd: invstd, gamma: gamma, n: n, c: c, hw: hw)
            var dx = [Float](repeating: 0, count: dy.count), dg = [Float](repeating: 0, count: c), db = dg
            var dx2 = dx, dg2 = dg, db2 = db
            XCTAssertEqual(mml_batchnorm_backward_f32(&dx, &dg, &db, dy, x, m, invstd, gamma, Int64(n), Int64(c),
                                                      Int64(hw), 1, 1), 0)
            XCTAssertEqual(mml_batchnorm_backward_f32(&dx2, &dg2, &db2, dy, x, m, invstd, gamma, Int64(n), Int64(c),
                                                      Int64(hw), 1, 2), 0)
            assertClose(db, ref.db, atol: 1e-4, rtol: 1e-4, "bn dbeta \(n)x\(c)x\(hw)")
            assertClose(dg, ref.dg, atol: 1e-3, rtol: 1e-3, "bn dgamma \(n)x\(c)x\(hw)")
            assertClose(dx, ref.dx, atol: 1e-3, rtol: 1e-3, "bn dx \(n)x\(c)x\(hw)")
            XCTAssertEqual(dx.map(\.bitPattern) + dg.map(\.bitPattern), dx2.map(\.bitPattern) + dg2.map(\.bitPattern),
                           "bn backward differs between 1 and 2 threads")
        }
    }

    func testBatchNormKernelsMatchReferenceOnVectorTails() {
        checkBatchNormKernels(seed: 11)
        mml_layers_force_portable(1)
        defer { mml_layers_force_portable(0) }
        checkBatchNormKernels(seed: 12)
    }
}
