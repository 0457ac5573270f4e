import MMLKernels
import MMLTestSupport
import XCTest

/// The layer kernels (GEMM, conv, BatchNorm statistics, pooling) against their naive double-precision twins.
final class ConvKernelTests: XCTestCase {
    /// The target's seeded generator (TestSupport.swift).
    typealias Rng = TestRNG

    func testSGEMMMatchesNaiveOnOddShapes() {
        checkSGEMM()
        mml_layers_force_avx2(1)
        checkSGEMM()
        mml_layers_force_avx2(0)
        mml_layers_force_portable(1)
        defer { mml_layers_force_portable(0) }
        checkSGEMM()
    }

    func testConvMatchesNaiveOnPortablePath() {
        mml_layers_force_portable(1)
        defer { mml_layers_force_portable(0) }
        testConvForwardBackwardMatchNaive()
    }

    func checkSGEMM() {
        var r = Rng(seed: 1)
        let shapes = [(1, 1, 1), (7, 33, 5), (8, 32, 256), (13, 70, 300), (64, 1764, 27), (129, 65, 513), (3, 2049, 2)]
        for (m, n, k) in shapes {
            for ta in [Int32(0), 1] {
                for tb in [Int32(0), 1] {
                    let a = r.floats(m * k), b = r.floats(k * n)
                    var c = r.floats(m * n)
                    var ref = c.map(Double.init)
                    let lda = ta != 0 ? m : k, ldb = tb != 0 ? k : n
                    XCTAssertEqual(mml_sgemm_naive(ta, tb, Int64(m), Int64(n), Int64(k), 0.5, a, Int64(lda), b,
                                                   Int64(ldb), 1.5, &ref, Int64(n)), 0)
                    XCTAssertEqual(mml_sgemm_f32(ta, tb, Int64(m), Int64(n), Int64(k), 0.5, a, Int64(lda), b,
                                                 Int64(ldb), 1.5, &c, Int64(n)), 0)
                    assertClose(c, ref, atol: 1e-4, rtol: 1e-4, "sgemm \(m)x\(n)x\(k) ta=\(ta) tb=\(tb)")
                }
            }
        }
        var c = [Float](repeating: 0, count: 4)
        XCTAssertEqual(mml_sgemm_f32(0, 0, 0, 2, 2, 1, c, 2, c, 2, 0, &c, 2), Int32(MML_ERR_ARGUMENT))
    }

    func testConvForwardBackwardMatchNaive() {
        var r = Rng(seed: 2)
        // (n, c, h, w, cout, k, stride, pad)
        let cases = [(1, 1, 1, 1, 1, 1, 1, 0), (2, 3, 7, 5, 4, 3, 1, 1), (3, 2, 9, 11, 5, 3, 2, 1), (2, 5, 6, 6, 7, 1, 1, 0),
                     (5, 4, 13, 13, 9, 3, 1, 0), (1, 3, 8, 8, 2, 5, 2, 2), (4, 17, 10, 10, 33, 3, 1, 1),
                     // K = 288 and P = 400 exceed the GEMM's 256-deep blocks (implicit im2col packing across blocks)
                     (2, 32, 20, 20, 40, 3, 1, 1), (2, 30, 23, 17, 9, 3, 2, 0)]
        for portable in [false, true] {
        mml_layers_force_portable(portable ? 1 : 0)
        defer { mml_layers_force_portable(0) }
        for (n, c, h, w, co, k, s, p) in cases {
            let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
            let x = r.floats(n * c * h * w), wt = r.floats(co * c * k * k), b = r.floats(co)
            var y = [Float](repeating: 0, count: n * co * oh * ow), yr = [Double](repeating: 0, count: y.count)
            XCTAssertEqual(mml_conv2d_naive(&yr, x, wt, b, Int64(n), Int64(c), Int64(h), Int64(w), Int64(co),
                                            Int64(k), Int64(k), Int64(s), Int64(p)), 0)
            for threads in [Int32(1), 2] {
                XCTAssertEqual(mml_conv2d_forward_f32(&y, x, wt, b, Int64(n), Int64(c), Int64(h), Int64(w), Int64(co),
                                                      Int64(k), Int64(k), Int64(s), Int64(p), nil, 0, threads), 0)
                assertClose(y, yr, atol: 1e-4, rtol: 1e-4, "conv fwd \((n, c, h, w, co, k, s, p)) t=\(threads)")
            }
            let dy = r.floats(y.count)
            var dxr = [Double](repeating: 0, count: x.count), dwr = [Double](repeating: 0, count: wt.count)
            var dbr = [Double](repeating: 0, count: co)
            XCTAssertEqual(mml_conv2d_backward_naive(&dxr, &dwr, &dbr, dy, x, wt, Int64(n), Int64(c), Int64(h), Int64(w),
                                                     Int64(co), Int64(k), Int64(k), Int64(s), Int64(p)), 0)
            // dW and db accumulate: start from 1 and expect 1 + reference.
            var dx = [Float](repeating: 9, count: x.count), dw = [Float](repeating: 1, count: wt.count)
            var db = [Float](repeating: 1, count: co)
            XCTAssertEqual(mml_conv2d_backward_f32(&dx, &dw, &db, dy, x, wt, Int64(n), Int64(c), Int64(h), Int64(w),
                                                   Int64(co), Int64(k), Int64(k), Int64(s), Int64(p), nil, 0, 2), 0)
            assertClose(dx, dxr, atol: 1e-4, rtol: 1e-4, "conv dx \((n, c, h, w, co, k, s, p))")
            assertClose(dw, dwr.map { $0 + 1 }, atol: 1e-4, rtol: 1e-4, "conv dw \((n, c, h, w, co, k, s, p))")
            assertClose(db, dbr.map { $0 + 1 }, atol: 1e-4, rtol: 1e-4, "conv db")
        }
        }
    }

    func testConvBackwardIdenticalOnOneAndTwoThreads() {
        var r = Rng(seed: 3)
        let (n, c, h, w, co) = (7, 5, 12, 12, 6)
        let x = r.floats(n * c * h * w), wt = r.floats(co * c * 9), dy = r.floats(n * co * h * w)
        var outs: [[Float]] = []
        for t in [Int32(1), 2] {
            var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: wt.count)
            XCTAssertEqual(mml_conv2d_backward_f32(&dx, &dw, nil, dy, x, wt, Int64(n), Int64(c), Int64(h), Int64(w),
                                                   Int64(co), 3, 3, 1, 1, nil, 0, t), 0)
            outs.append(dx + dw)
            // dL/dx alone (no dW: its GEMM is skipped) has the same bits
            var dxAlone = [Float](repeating: 0, count: x.count)
            XCTAssertEqual(mml_conv2d_backward_f32(&dxAlone, nil, nil, dy, x, wt, Int64(n), Int64(c), Int64(h),
                                                   Int64(w), Int64(co), 3, 3, 1, 1, nil, 0, t), 0)
            XCTAssertEqual(dxAlone, dx, "dx without dW, \(t) thread(s)")
        }
        let diff = zip(outs[0], outs[1]).map { abs($0 - $1) }.max() ?? 1
        XCTAssertLessThanOrEqual(diff, 0, "1 and 2 threads must give the same bits (fixed chunking)")
    }

    func testConvRejectsBadSizesAndShortWorkspace() {
        var y = [Float](repeating: 0, count: 16)
        let x = [Float](repeating: 0, count: 16)
        var ws = [Float](repeating: 0, count: 1)
        XCTAssertEqual(mml_conv2d_forward_f32(&y, x, x, nil, 1, 1, 2, 2, 1, 5, 5, 1, 0, nil, 0, 1), Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_conv2d_forward_f32(&y, x, x, nil, 1, 1, 4, 4, 1, 3, 3, 1, 1, &ws, 1, 1), Int32(MML_ERR_ARGUMENT))
        XCTAssertLessThan(mml_conv2d_workspace_floats(0, 1, 4, 4, 1, 3, 3, 1, 1, 1), 0)
    }

    func testBatchNormStatisticsMatchNaive() {
        var r = Rng(seed: 4)
        for (n, c, hw) in [(1, 1, 1), (3, 5, 7), (4, 2, 441)] {
            // a large common offset checks the two-pass variance
            let x = r.floats(n * c * hw).map { $0 + 100 }
            var m = [Float](repeating: 0, count: c), v = m
            var mr = [Double](repeating: 0, count: c), vr = mr
            XCTAssertEqual(mml_batchnorm_stats_f32(&m, &v, x, Int64(n), Int64(c), Int64(hw), 2), 0)
            XCTAssertEqual(mml_batchnorm_stats_naive(&mr, &vr, x, Int64(n), Int64(c), Int64(hw)), 0)
            assertClose(m, mr, atol: 1e-5, rtol: 1e-6, "bn mean")
            assertClose(v, vr, atol: 1e-4, rtol: 1e-3, "bn var")
        }
    }

    func testMaxPoolPicksFirstOfTiesAndExtremes() {
        // plane 3x4, k 2, stride 2 -> 1x2; ties in the first window, the maximum at the last index of the second
        let x: [Float] = [5, 5, 0, 1,
                          5, 1, 2, 9,
                          7, 7, 7, 7]
        var y = [Float](repeating: 0, count: 2), arg = [Int32](repeating: -1, count: 2)
        XCTAssertEqual(mml_maxpool2d_f32(&y, &arg, x, 1, 3, 4, 2, 2, 1), 0)
        XCTAssertEqual(arg, [0, 7])
        XCTAssertEqual(y[0], 5, accuracy: 0)
        XCTAssertEqual(y[1], 9, accuracy: 0)
        XCTAssertEqual(mml_maxpool2d_f32(&y, &arg, x, 1, 1, 4, 2, 2, 1), Int32(MML_ERR_ARGUMENT))
    }

    /// The 2x2 stride-2 fast paths (AVX-512 and portable) against a plain scan of each window: values from a small
    /// set (many ties) with NaNs, widths that hit the 16-wide blocks and the scalar tail, odd heights and widths.
    func testMaxPool2x2FastPathsMatchWindowScan() {
        var r = Rng(seed: 17)
        for portable in [false, true] {
            mml_layers_force_portable(portable ? 1 : 0)
            defer { mml_layers_force_portable(0) }
            for (h, w) in [(2, 2), (3, 5), (4, 33), (5, 64), (7, 70), (84, 84), (42, 42)] {
                let planes = 3
                var x = (0..<(planes * h * w)).map { _ in Float(r.next() % 4) }
                for _ in 0..<(planes * h * w / 17) { x[Int(r.next() % UInt64(x.count))] = .nan }
                let oh = h / 2, ow = w / 2
                var y = [Float](repeating: 0, count: planes * oh * ow), arg = [Int32](repeating: -1, count: y.count)
                XCTAssertEqual(mml_maxpool2d_f32(&y, &arg, x, Int64(planes), Int64(h), Int64(w), 2, 2, 2), 0)
                for p in 0..<planes {
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            var best = x[p * h * w + 2 * oy * w + 2 * ox], bi = 2 * oy * w + 2 * ox
                            for (i, j) in [(0, 1), (1, 0), (1, 1)] {
                                let idx = (2 * oy + i) * w + 2 * ox + j, v = x[p * h * w + idx]
                                if v > best || (v.isNaN && !best.isNaN) { best = v; bi = idx }
                            }
                            let o = p * oh * ow + oy * ow + ox
                            XCTAssertEqual(arg[o], Int32(bi), "portable \(portable) \(h)x\(w) plane \(p) (\(oy), \(ox))")
                            XCTAssertTrue(y[o] == best || (y[o].isNaN && best.isNaN), "value at \(o)")
                        }
                    }
                }
            }
        }
    }

    /// Random x (n, c, h, w) and dy (n, co, h, w), the naive double dL/dW of a 3x3 pad-1 conv, and its scale.
    func naiveWeightGradient(_ n: Int, _ c: Int, _ h: Int, _ w: Int, _ co: Int, _ r: inout Rng)
        -> (x: [Float], dy: [Float], dw: [Double], scale: Double) {
        let x = r.floats(n * c * h * w), wt = r.floats(co * c * 9), dy = r.floats(n * co * h * w)
        var dwr = [Double](repeating: 0, count: wt.count)
        XCTAssertEqual(mml_conv2d_backward_naive(nil, &dwr, nil, dy, x, wt, Int64(n), Int64(c), Int64(h), Int64(w),
                                                 Int64(co), 3, 3, 1, 1), 0)
        return (x, dy, dwr, max(1, dwr.map { abs($0) }.max() ?? 1))
    }

    /// A 3x3 weight-gradient kernel's C signature (dW, dy, x, n, c, h, w, cout, workspace, its floats, threads).
    typealias WeightGradientKernel = (UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?,
                                      Int64, Int64, Int64, Int64, Int64, UnsafeMutablePointer<Float>?, Int64,
                                      Int32) -> Int32

    /// Runs `kernel` on each case (n, c, h, w, cout) on the default path (AVX-512 or AVX2, what the CPU has), the
    /// AVX2 path (forced; where the CPU lacks AVX2 the portable one) and the portable path with 1 and 2 threads, dW
    /// starting from 0.5 (it accumulates), against 0.5 + the naive double gradient; 1 and 2 threads must give the
    /// same bits on each path, and with `sameBitsOnEveryPath` every path the default path's too. Then a 1x1
    /// map exactly, and the refusals of bad arguments and of a too-small workspace.
    func checkWeightGradient(_ name: String, _ kernel: WeightGradientKernel, cases: [(Int, Int, Int, Int, Int)],
                             seed: UInt64, sameBitsOnEveryPath: Bool,
                             workspaceFloats: (Int64, Int64, Int64, Int64, Int64, Int32) -> Int64) {
        var r = Rng(seed: seed)
        for (n, c, h, w, co) in cases {
            let (x, dy, dwr, scale) = naiveWeightGradient(n, c, h, w, co, &r)
            var oneThread: [Float] = []
            for path in ["default", "avx2", "portable"] {
                mml_layers_force_portable(path == "portable" ? 1 : 0)
                mml_layers_force_avx2(path == "avx2" ? 1 : 0)
                defer { mml_layers_force_portable(0); mml_layers_force_avx2(0) }
                for threads in [Int32(1), 2] {
                    let what = "\(name) dW \((n, c, h, w, co)) path \(path) t=\(threads)"
                    var dw = [Float](repeating: 0.5, count: dwr.count)
                    XCTAssertEqual(kernel(&dw, dy, x, Int64(n), Int64(c), Int64(h), Int64(w), Int64(co), nil, 0,
                                          threads), 0, what)
                    assertClose(dw, dwr.map { $0 + 0.5 }, atol: 2e-6 * scale, rtol: 1e-5, what)
                    if threads == 1 && (oneThread.isEmpty || !sameBitsOnEveryPath) {
                        oneThread = dw
                    } else {
                        XCTAssertEqual(dw, oneThread, what + ": differs from "
                                       + (threads == 1 ? "the default path" : "1 thread on this path"))
                    }
                }
            }
        }
        // A 1x1 map in a workspace of the size asked for; bad arguments and a too-small workspace are refused.
        let need = workspaceFloats(1, 1, 1, 1, 1, 1)
        XCTAssertGreaterThan(need, 0, name)
        var dw = [Float](repeating: 0, count: 9), ws = [Float](repeating: 0, count: Int(need))
        let one: [Float] = [1]
        XCTAssertEqual(kernel(&dw, one, one, 1, 1, 1, 1, 1, &ws, need, 1), 0, name)
        XCTAssertEqual(dw[4], 1, "\(name): the centre tap of a 1x1 map is x * dy")
        XCTAssertEqual(dw.filter { $0 != 0 }.count, 1, "\(name): the other taps fall in the padding")
        let refused = Int32(MML_ERR_ARGUMENT)
        XCTAssertEqual(kernel(&dw, one, one, 1, 1, 1, 1, 1, &ws, need - 1, 1), refused, "\(name): short workspace")
        XCTAssertEqual(kernel(&dw, one, one, 0, 1, 1, 1, 1, nil, 0, 1), refused, "\(name): no images")
        XCTAssertEqual(kernel(nil, one, one, 1, 1, 1, 1, 1, nil, 0, 1), refused, "\(name): no dW")
        XCTAssertEqual(kernel(&dw, one, one, 1, 1, 1, 1, 1, nil, 0, -1), refused, "\(name): negative thread count")
        XCTAssertEqual(workspaceFloats(1, 0, 1, 1, 1, 1), Int64(refused), "\(name): no channels")
        XCTAssertEqual(workspaceFloats(1, 1, 1, 1, 1, -1), Int64(refused), "\(name): negative thread count")
    }

    /// Winograd F(2x2,3x3) weight gradient against the naive double backward, on the AVX-512 and portable paths,
    /// odd and even sizes (partial edge tiles), 16-tile blocks and their tails; accumulation into dW; thread counts;
    /// bad arguments refused. Measured worst excess over the bound: 0 (errors ~1e-6 relative to the gradient's scale).
    func testWinogradWeightGradientMatchesNaive() {
        // (n, c, h, w, cout)
        checkWeightGradient("winograd", mml_conv3x3_winograd_backward_weight_f32,
                            cases: [(1, 1, 1, 1, 1), (2, 3, 2, 2, 4), (3, 2, 3, 5, 3), (2, 4, 7, 6, 5),
                                    (1, 5, 21, 21, 7), (5, 8, 42, 42, 6), (2, 3, 9, 70, 2), (6, 64, 11, 11, 64)],
                            seed: 41, sameBitsOnEveryPath: false,
                            workspaceFloats: mml_conv3x3_wgrad_workspace_floats)
    }

    /// The direct small-channel weight gradient against the naive double backward: widths below, at and past 16
    /// (masked tail strips), odd kernel-row counts (3c odd), output channels not a multiple of 4, fewer images
    /// than chunks; accumulation into dW; the AVX-512 and portable paths give the same bits, and so do 1 and 2
    /// threads; bad arguments and a too-small workspace are refused.
    func testDirectWeightGradientMatchesNaiveWithTheSameBitsOnEveryPath() {
        // (n, c, h, w, cout)
        checkWeightGradient("direct", mml_conv3x3_direct_backward_weight_f32,
                            cases: [(1, 1, 1, 1, 1), (2, 3, 2, 2, 4), (3, 1, 5, 17, 3), (5, 3, 9, 33, 6),
                                    (2, 2, 4, 16, 5), (6, 3, 28, 28, 64), (4, 8, 7, 20, 9), (2, 3, 84, 84, 7)],
                            seed: 43, sameBitsOnEveryPath: true,
                            workspaceFloats: mml_conv3x3_direct_wgrad_workspace_floats)
    }

    /// The fused BN-affine + leaky ReLU + 2x2 max-pool forward and its backward against the unfused kernels
    /// (affine, max-pool, max-pool+leaky backward, BatchNorm backward), with batch and fixed statistics, odd sizes,
    /// on the default (AVX-512 or AVX2), AVX2 and portable paths (the fused backward: the same bits on all); a corrupt
    /// argmax is refused.
    func testFusedBatchNormLeakyMaxPoolMatchesUnfused() {
        var fusedBackward: [String: [Float]] = [:]
        for path in ["default", "avx2", "portable"] {
            var r = Rng(seed: 77)
            let portable = path == "portable"
            mml_layers_force_portable(portable ? 1 : 0)
            mml_layers_force_avx2(path == "avx2" ? 1 : 0)
            defer { mml_layers_force_portable(0); mml_layers_force_avx2(0) }
            for (n, c, h, w) in [(1, 1, 2, 2), (2, 3, 5, 7), (3, 4, 42, 42), (2, 2, 21, 70)] {
                let hw = h * w, oh = h / 2, ow = w / 2
                let x = r.floats(n * c * hw).map { $0 * 3 + 0.2 }
                let scale = r.floats(c), shift = r.floats(c), gamma = r.floats(c)
                let mean = r.floats(c), invstd = r.floats(c).map { abs($0) + 0.5 }
                let slope: Float = 0.2
                var a = [Float](repeating: 0, count: x.count)
                XCTAssertEqual(mml_channel_affine_f32(&a, x, scale, shift, Int64(n), Int64(c), Int64(hw), 1, slope, 1), 0)
                var pr = [Float](repeating: 0, count: n * c * oh * ow), ar = [Int32](repeating: 0, count: pr.count)
                XCTAssertEqual(mml_maxpool2d_f32(&pr, &ar, a, Int64(n * c), Int64(h), Int64(w), 2, 2, 1), 0)
                var p = [Float](repeating: 0, count: pr.count), arg = [Int32](repeating: -1, count: pr.count)
                XCTAssertEqual(mml_affine_leaky_maxpool2x2_f32(&p, &arg, x, scale, shift, Int64(n), Int64(c), Int64(h),
                                                               Int64(w), slope, 2), 0)
                XCTAssertEqual(p, pr, "pooled \((n, c, h, w)) path \(path)")
                XCTAssertEqual(arg, ar, "argmax \((n, c, h, w))")
                let dy = r.floats(p.count)
                for batchStats in [Int32(1), 0] {
                    var dz = [Float](repeating: 0, count: x.count)
                    XCTAssertEqual(mml_maxpool2d_leaky_backward_f32(&dz, dy, ar, a, Int64(n * c), Int64(h), Int64(w),
                                                                    Int64(oh), Int64(ow), slope, 1), 0)
                    var dxr = [Float](repeating: 0, count: x.count), dgr = [Float](repeating: 1, count: c), dbr = dgr
                    XCTAssertEqual(mml_batchnorm_backward_f32(&dxr, &dgr, &dbr, dz, x, mean, invstd, gamma, Int64(n),
                                                              Int64(c), Int64(hw), batchStats, 1), 0)
                    var dx = [Float](repeating: 9, count: x.count), dg = [Float](repeating: 1, count: c), db = dg
                    XCTAssertEqual(mml_maxpool_leaky_batchnorm_backward_f32(&dx, &dg, &db, dy, arg, p, x, mean, invstd,
                                                                            gamma, Int64(n), Int64(c), Int64(h),
                                                                            Int64(w), slope, batchStats, 2), 0)
                    assertClose(dx, dxr.map(Double.init), atol: 1e-5, rtol: 1e-4, "dx \((n, c, h, w)) stats \(batchStats)")
                    assertClose(dg, dgr.map(Double.init), atol: 1e-4, rtol: 1e-4, "dgamma")
                    assertClose(db, dbr.map(Double.init), atol: 1e-4, rtol: 1e-4, "dbeta")
                    let key = "\((n, c, h, w)) stats \(batchStats)"
                    if let avx = fusedBackward[key] {
                        XCTAssertEqual(dx + dg + db, avx,
                                       "fused backward \(key): path \(path) differs from the default")
                    } else {
                        fusedBackward[key] = dx + dg + db
                    }
                }
                for badValue in [Int32(hw), -1] {
                    var bad = arg
                    bad[bad.count - 1] = badValue
                    var dx = [Float](repeating: 0, count: x.count)
                    XCTAssertEqual(mml_maxpool_leaky_batchnorm_backward_f32(&dx, nil, nil, dy, bad, p, x, mean, invstd,
                                                                            gamma, Int64(n), Int64(c), Int64(h), Int64(w),
                                                                            slope, 1, 1),
                                   Int32(MML_ERR_ARGUMENT), "argmax \(badValue) refused, portable \(portable)")
                }
            }
        }
    }

    /// The Winograd forward with the folded block tail equals the Winograd forward followed by the separate tail
    /// kernels, bit for bit (same arithmetic, same tie rule), pooled and not, odd sizes, both ISA paths, both tiles
    /// (F(4x4): pool windows inside a 4x4 tile, tiles cut by the border, more than 16 tiles per row).
    func testWinogradForwardWithFoldedTailMatchesSeparateTail() {
        var r = Rng(seed: 91)
        for path in ["default", "avx2", "portable"] { for tile in [Int32(2), 4] {
            let portable = path == "portable"
            mml_layers_force_portable(portable ? 1 : 0)
            mml_layers_force_avx2(path == "avx2" ? 1 : 0)
            defer { mml_layers_force_portable(0); mml_layers_force_avx2(0) }
            for (n, c, h, w, co) in [(2, 16, 7, 9, 5), (3, 20, 42, 42, 8), (1, 16, 2, 3, 3), (2, 17, 21, 21, 4),
                                     (1, 16, 11, 70, 3), (1, 16, 6, 5, 2)] {
                let x = r.floats(n * c * h * w), wt = r.floats(co * c * 9)
                let scale = r.floats(co), shift = r.floats(co)
                var z = [Float](repeating: 0, count: n * co * h * w)
                XCTAssertEqual(mml_conv3x3_winograd_tile_forward_f32(&z, x, wt, Int64(n), Int64(c), Int64(h), Int64(w),
                                                                     Int64(co), tile, nil, 0, 2), 0)
                for pool in [Int32(1), 0] {
                    let count = pool == 1 ? n * co * (h / 2) * (w / 2) : z.count
                    var expect = [Float](repeating: 0, count: count), got = [Float](repeating: .nan, count: count)
                    if pool == 1 {
                        XCTAssertEqual(mml_affine_leaky_maxpool2x2_f32(&expect, nil, z, scale, shift, Int64(n), Int64(co),
                                                                       Int64(h), Int64(w), 0.2, 1), 0)
                    } else {
                        XCTAssertEqual(mml_channel_affine_f32(&expect, z, scale, shift, Int64(n), Int64(co), Int64(h * w),
                                                              1, 0.2, 1), 0)
                    }
                    XCTAssertEqual(mml_conv3x3_winograd_tile_forward_affine_leaky_f32(
                        &got, x, wt, scale, shift, 0.2, pool, Int64(n), Int64(c), Int64(h), Int64(w), Int64(co), tile,
                        nil, 0, 2), 0)
                    XCTAssertEqual(got, expect, "\((n, c, h, w, co)) pool \(pool) portable \(portable) tile \(tile)")
                    if tile == 2 {
                        var plain = [Float](repeating: .nan, count: count)
                        XCTAssertEqual(mml_conv3x3_winograd_forward_affine_leaky_f32(
                            &plain, x, wt, scale, shift, 0.2, pool, Int64(n), Int64(c), Int64(h), Int64(w), Int64(co),
                            nil, 0, 2), 0)
                        XCTAssertEqual(plain, got, "the tile-2 entry point is the F(2x2) kernel")
                    }
                }
            }
        } }
        XCTAssertEqual(mml_conv3x3_winograd_preferred_tile(42, 42), 4)
        XCTAssertEqual(mml_conv3x3_winograd_preferred_tile(84, 84), 4)
        XCTAssertEqual(mml_conv3x3_winograd_preferred_tile(21, 21), 2)
        XCTAssertEqual(mml_conv3x3_winograd_preferred_tile(10, 10), 2)
        var y = [Float](repeating: 0, count: 4)
        let one: [Float] = [Float](repeating: 1, count: 16)
        XCTAssertEqual(mml_conv3x3_winograd_forward_affine_leaky_f32(&y, one, one, nil, one, 0.2, 0, 1, 1, 2, 2, 1, nil,
                                                                     0, 1), Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_conv3x3_winograd_forward_affine_leaky_f32(&y, one, one, one, one, 0.2, 1, 1, 1, 1, 2, 1, nil,
                                                                     0, 1), Int32(MML_ERR_ARGUMENT), "pooling a 1-row map")
    }
}
