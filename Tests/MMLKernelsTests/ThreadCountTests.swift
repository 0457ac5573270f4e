import MMLKernels
import MMLTestSupport
import XCTest

/// Every kernel family that runs on common/'s parallel-for gives the same bits on 1, 2, 3 and all cores (and
/// more threads than tasks): a task's work depends only on its index, never on the thread that runs it.
/// (Top-K has its own check, TopKTests.testThreadCountDoesNotChangeResults.)
final class ThreadCountTests: XCTestCase {
    static let threadCounts: [Int32] = [1, 2, 3, 0, 9]

    /// Runs `body` for every thread count and asserts that each returns the bits of the single-threaded run.
    func assertSameForEveryThreadCount(_ what: String, file: StaticString = #filePath, line: UInt = #line,
                                       _ body: (Int32) -> [[Float]]) {
        let one = body(1)
        for t in Self.threadCounts.dropFirst() {
            let other = body(t)
            XCTAssertEqual(one.count, other.count, file: file, line: line)
            for (i, (a, b)) in zip(one, other).enumerated() {
                XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(what) output \(i), \(t) threads",
                               file: file, line: line)
            }
        }
    }

    func testGaussianKernels() {
        var rng = TestRNG(seed: 41)
        let (nImages, d, hw) = (7, 5, 6)
        let maps = rng.normals(nImages * d * hw)
        let offsets: [Int64] = [0, 1, 3, 4, 7]
        let ns = offsets.count - 1
        var mu = [Float](repeating: 0, count: ns * d), sigma = [Float](repeating: 0, count: ns * d * d)
        XCTAssertEqual(mml_gaussian_fit_maps_f32(&mu, &sigma, maps, Int64(nImages), Int64(d), Int64(hw), nil, offsets,
                                                 Int64(ns), 0.01, 1), Int32(MML_OK))
        let dmu = rng.floats(mu.count), dsigma = rng.floats(sigma.count)
        assertSameForEveryThreadCount("fit") { t in
            var m = [Float](repeating: 0, count: mu.count), s = [Float](repeating: 0, count: sigma.count)
            var dmaps = [Float](repeating: 0.5, count: maps.count)
            XCTAssertEqual(mml_gaussian_fit_maps_f32(&m, &s, maps, Int64(nImages), Int64(d), Int64(hw), nil, offsets,
                                                     Int64(ns), 0.01, t), Int32(MML_OK))
            XCTAssertEqual(mml_gaussian_fit_maps_backward_f32(&dmaps, dmu, dsigma, maps, mu, Int64(nImages), Int64(d),
                                                              Int64(hw), nil, offsets, Int64(ns), t), Int32(MML_OK))
            return [m, s, dmaps]
        }

        let (na, nb) = (7, 4)
        let muA = rng.floats(na * d), muB = rng.floats(nb * d)
        let sigA = randomSPD(count: na, d: d, condition: 10, &rng)
        let sigB = randomSPD(count: nb, d: d, condition: 10, &rng)
        let dout = rng.floats(na * nb)
        typealias Forward = (inout [Float], Int32) -> Int32
        typealias Backward = (inout [Float], inout [Float], inout [Float], inout [Float], Int32) -> Int32
        let kinds: [(String, Forward, Backward)] = [
            ("w2", { o, t in mml_gaussian_w2_f32(&o, muA, sigA, Int64(na), muB, sigB, Int64(nb), Int64(d), t) },
             { a, b, c, e, t in
                 mml_gaussian_w2_backward_f32(&a, &b, &c, &e, dout, muA, sigA, Int64(na), muB, sigB, Int64(nb),
                                              Int64(d), t)
             }),
            ("kl", { o, t in
                mml_gaussian_kl_f32(&o, muA, sigA, Int64(na), muB, sigB, Int64(nb), Int64(d), MML_KL_SYMMETRIC, t)
            }, { a, b, c, e, t in
                mml_gaussian_kl_backward_f32(&a, &b, &c, &e, dout, muA, sigA, Int64(na), muB, sigB, Int64(nb),
                                             Int64(d), MML_KL_SYMMETRIC, t)
            }),
            ("mmlv1", { o, t in mml_gaussian_mmlv1_f32(&o, muA, sigA, Int64(na), muB, sigB, Int64(nb), Int64(d), t) },
             { a, b, c, e, t in
                 mml_gaussian_mmlv1_backward_f32(&a, &b, &c, &e, dout, muA, sigA, Int64(na), muB, sigB, Int64(nb),
                                                 Int64(d), t)
             }),
        ]
        for (name, forward, backward) in kinds {
            assertSameForEveryThreadCount(name) { t in
                var out = [Float](repeating: 0, count: na * nb)
                XCTAssertEqual(forward(&out, t), Int32(MML_OK), name)
                var dma = [Float](repeating: 0, count: muA.count), dsa = [Float](repeating: 0, count: sigA.count)
                var dmb = [Float](repeating: 0, count: muB.count), dsb = [Float](repeating: 0, count: sigB.count)
                XCTAssertEqual(backward(&dma, &dsa, &dmb, &dsb, t), Int32(MML_OK), name)
                return [out, dma, dsa, dmb, dsb]
            }
        }
    }

    /// The KL backward in every direction and for each side's gradients alone (which decides which per-Gaussian
    /// precomputations, v = S^-1 mu and P = S + mu mu^T, run: they are split over the threads one Gaussian per
    /// task), on more Gaussians than threads.
    func testGaussianKLBackwardEveryDirectionAndSide() {
        var rng = TestRNG(seed: 43)
        let (na, nb, d) = (23, 5, 6)
        let muA = rng.floats(na * d), muB = rng.floats(nb * d)
        let sigA = randomSPD(count: na, d: d, condition: 10, &rng)
        let sigB = randomSPD(count: nb, d: d, condition: 10, &rng)
        let dout = rng.floats(na * nb)
        for direction in [MML_KL_QUERY_CLASS, MML_KL_CLASS_QUERY, MML_KL_SYMMETRIC] {
            for (sideA, sideB) in [(true, false), (false, true), (true, true)] {
                assertSameForEveryThreadCount("kl backward \(direction) a \(sideA) b \(sideB)") { t in
                    // a side not asked for gets NULL gradients (and stays 0 here)
                    var dma = [Float](repeating: 0, count: muA.count), dsa = [Float](repeating: 0, count: sigA.count)
                    var dmb = [Float](repeating: 0, count: muB.count), dsb = [Float](repeating: 0, count: sigB.count)
                    let st = dma.withUnsafeMutableBufferPointer { a in
                        dsa.withUnsafeMutableBufferPointer { b in
                            dmb.withUnsafeMutableBufferPointer { c in
                                dsb.withUnsafeMutableBufferPointer { e in
                                    mml_gaussian_kl_backward_f32(sideA ? a.baseAddress : nil,
                                                                 sideA ? b.baseAddress : nil,
                                                                 sideB ? c.baseAddress : nil,
                                                                 sideB ? e.baseAddress : nil, dout, muA, sigA,
                                                                 Int64(na), muB, sigB, Int64(nb), Int64(d), direction,
                                                                 t)
                                }
                            }
                        }
                    }
                    XCTAssertEqual(st, Int32(MML_OK))
                    return [dma, dsa, dmb, dsb]
                }
            }
        }
    }

    func testLayerKernels() {
        var rng = TestRNG(seed: 42)
        let (n, c, h, w) = (5, 6, 8, 10)
        let x = rng.floats(n * c * h * w), dy = rng.floats(x.count), dyPool = rng.floats(n * c * (h / 2) * (w / 2))
        let scale = rng.floats(c), shift = rng.floats(c), gamma = rng.floats(c)
        let invstd = (0..<c).map { _ in 1.5 + rng.float() }, mean = rng.floats(c)
        for portable in [false, true] {
            mml_layers_force_portable(portable ? 1 : 0)
            defer { mml_layers_force_portable(0) }
            assertSameForEveryThreadCount("layers portable=\(portable)") { t in
                var m = [Float](repeating: 0, count: c), v = [Float](repeating: 0, count: c)
                XCTAssertEqual(mml_batchnorm_stats_f32(&m, &v, x, Int64(n), Int64(c), Int64(h * w), t), 0)
                var y = [Float](repeating: 0, count: x.count)
                XCTAssertEqual(mml_channel_affine_f32(&y, x, scale, shift, Int64(n), Int64(c), Int64(h * w), 1, 0.1, t),
                               0)
                var dx = [Float](repeating: 0, count: x.count)
                var dg = [Float](repeating: 0, count: c), db = [Float](repeating: 0, count: c)
                XCTAssertEqual(mml_batchnorm_backward_f32(&dx, &dg, &db, dy, x, mean, invstd, gamma, Int64(n), Int64(c),
                                                          Int64(h * w), 1, t), 0)
                var pooled = [Float](repeating: 0, count: dyPool.count)
                var arg = [Int32](repeating: 0, count: dyPool.count)
                XCTAssertEqual(mml_maxpool2d_f32(&pooled, &arg, y, Int64(n * c), Int64(h), Int64(w), 2, 2, t), 0)
                var dz = [Float](repeating: 0, count: x.count)
                XCTAssertEqual(mml_maxpool2d_leaky_backward_f32(&dz, dyPool, arg, y, Int64(n * c), Int64(h), Int64(w),
                                                                Int64(h / 2), Int64(w / 2), 0.1, t), 0)
                var fused = [Float](repeating: 0, count: dyPool.count)
                var fusedArg = [Int32](repeating: 0, count: dyPool.count)
                XCTAssertEqual(mml_affine_leaky_maxpool2x2_f32(&fused, &fusedArg, x, scale, shift, Int64(n), Int64(c),
                                                               Int64(h), Int64(w), 0.1, t), 0)
                var dxf = [Float](repeating: 0, count: x.count)
                var dgf = [Float](repeating: 0, count: c), dbf = [Float](repeating: 0, count: c)
                XCTAssertEqual(mml_maxpool_leaky_batchnorm_backward_f32(&dxf, &dgf, &dbf, dyPool, fusedArg, fused, x,
                                                                        mean, invstd, gamma, Int64(n), Int64(c),
                                                                        Int64(h), Int64(w), 0.1, 1, t), 0)
                return [m, v, y, dx, dg, db, pooled, arg.map { Float($0) }, dz, fused, fusedArg.map { Float($0) },
                        dxf, dgf, dbf]
            }
        }
    }

    func testConvKernels() {
        var rng = TestRNG(seed: 43)
        let (n, c, h, w, co) = (5, 4, 9, 11, 6)
        let x = rng.floats(n * c * h * w), wt = rng.floats(co * c * 9), bias = rng.floats(co)
        let dy = rng.floats(n * co * h * w), scale = rng.floats(co), shift = rng.floats(co)
        for portable in [false, true] {
            mml_layers_force_portable(portable ? 1 : 0)
            defer { mml_layers_force_portable(0) }
            assertSameForEveryThreadCount("conv portable=\(portable)") { t in
                var outs: [[Float]] = []
                var y = [Float](repeating: 0, count: dy.count)
                XCTAssertEqual(mml_conv2d_forward_f32(&y, x, wt, bias, Int64(n), Int64(c), Int64(h), Int64(w),
                                                      Int64(co), 3, 3, 1, 1, nil, 0, t), 0)
                var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: wt.count)
                var db = [Float](repeating: 0, count: co)
                XCTAssertEqual(mml_conv2d_backward_f32(&dx, &dw, &db, dy, x, wt, Int64(n), Int64(c), Int64(h), Int64(w),
                                                       Int64(co), 3, 3, 1, 1, nil, 0, t), 0)
                outs += [y, dx, dw, db]
                for tile in [Int32(2), 4] {
                    var yw = [Float](repeating: 0, count: dy.count), dxw = [Float](repeating: 0, count: x.count)
                    XCTAssertEqual(mml_conv3x3_winograd_tile_forward_f32(&yw, x, wt, Int64(n), Int64(c), Int64(h),
                                                                         Int64(w), Int64(co), tile, nil, 0, t), 0)
                    XCTAssertEqual(mml_conv3x3_winograd_tile_backward_data_f32(&dxw, dy, wt, Int64(n), Int64(c),
                                                                               Int64(h), Int64(w), Int64(co), tile,
                                                                               nil, 0, t), 0)
                    outs += [yw, dxw]
                }
                var dww = [Float](repeating: 0, count: wt.count)
                XCTAssertEqual(mml_conv3x3_winograd_backward_weight_f32(&dww, dy, x, Int64(n), Int64(c), Int64(h),
                                                                        Int64(w), Int64(co), nil, 0, t), 0)
                outs.append(dww)
                for pool in [Int32(0), 1] {
                    var yb = [Float](repeating: 0, count: pool != 0 ? n * co * (h / 2) * (w / 2) : dy.count)
                    XCTAssertEqual(mml_conv_block_forward_f32(&yb, x, wt, scale, shift, Int64(n), Int64(c), Int64(h),
                                                              Int64(w), Int64(co), 3, 1, 0.1, pool, nil, 0, t), 0)
                    outs.append(yb)
                }
                return outs
            }
        }
    }
}
