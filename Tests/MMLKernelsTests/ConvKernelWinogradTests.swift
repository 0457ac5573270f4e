import MMLKernels
import XCTest

/// The Winograd F(2x2, 3x3) 3x3 stride-1 pad-1 convolution (forward and backward data) against the naive
/// double-precision convolution.
///
/// Tolerance: max |winograd - naive| <= 1e-6 * S, with S = max |input| * (largest sum of |weight| over the 9 x c
/// taps feeding one output channel) — a bound on any output's magnitude and the scale of the transforms' rounding
/// (the transformed weights mix all nine taps, so a small output does not mean small errors). Measured max error / S
/// over the shapes of testForwardAndBackwardDataMatchNaive (both code paths): 1.6e-7 forward, 1.4e-7 backward data.
/// F(4x4, 3x3) (tile 4) rounds worse: tolerance 1e-5 * S, measured 2.7e-6 forward and 2.9e-6 backward data over
/// the shapes of testTile4MatchesNaiveOnBothPaths.
final class ConvKernelWinogradTests: XCTestCase {
    typealias Rng = ConvKernelTests.Rng

    static let tolerance = 1e-6
    static let tolerance4 = 1e-5
    static let spatial = [(1, 1), (2, 2), (3, 5), (7, 6), (21, 21), (42, 42)]

    /// Max |a - b| / scale; infinity when an entry of a is not finite (the outputs start as NaN, so an entry the
    /// kernel never wrote shows up here).
    func scaledError(_ a: [Float], _ b: [Double], scale: Double) -> Double {
        var worst = 0.0
        for i in 0..<a.count {
            guard a[i].isFinite else { return .infinity }
            worst = max(worst, abs(Double(a[i]) - b[i]))
        }
        return worst / scale
    }

    /// max |input| times the largest sum of |weight| over the taps feeding one output channel: a bound on any
    /// output's magnitude, and the scale of the rounding errors of the transforms (which mix all nine taps).
    /// transposed: the output channels are the weight's second axis (backward data).
    func outputScale(_ input: [Float], _ wt: [Float], c: Int, cout: Int, transposed: Bool) -> Double {
        let xmax = input.map { Double(abs($0)) }.max() ?? 0
        var wmax = 0.0
        for out in 0..<(transposed ? c : cout) {
            var s = 0.0
            for other in 0..<(transposed ? cout : c) {
                let (o, ch) = transposed ? (other, out) : (out, other)
                for k in 0..<9 { s += Double(abs(wt[(o * c + ch) * 9 + k])) }
            }
            wmax = max(wmax, s)
        }
        return xmax * wmax
    }

    /// Runs forward and backward data for (n, c, h, w, cout) and returns both scaled errors.
    func errors(_ n: Int, _ c: Int, _ h: Int, _ w: Int, _ co: Int, threads: Int32, tile: Int32 = 2, rng r: inout Rng,
                file: StaticString = #filePath, line: UInt = #line) -> (Double, Double) {
        let x = r.floats(n * c * h * w), wt = r.floats(co * c * 9), dy = r.floats(n * co * h * w)
        let (N, C, H, W, CO) = (Int64(n), Int64(c), Int64(h), Int64(w), Int64(co))
        var y = [Float](repeating: .nan, count: n * co * h * w)
        var yr = [Double](repeating: 0, count: y.count)
        XCTAssertEqual(mml_conv2d_naive(&yr, x, wt, nil, N, C, H, W, CO, 3, 3, 1, 1), 0, file: file, line: line)
        if tile == 2 {
            XCTAssertEqual(mml_conv3x3_winograd_forward_f32(&y, x, wt, N, C, H, W, CO, nil, 0, threads), 0,
                           file: file, line: line)
        } else {
            XCTAssertEqual(mml_conv3x3_winograd_tile_forward_f32(&y, x, wt, N, C, H, W, CO, tile, nil, 0, threads), 0,
                           file: file, line: line)
        }
        var dx = [Float](repeating: .nan, count: x.count)
        var dxr = [Double](repeating: 0, count: x.count)
        XCTAssertEqual(mml_conv2d_backward_naive(&dxr, nil, nil, dy, x, wt, N, C, H, W, CO, 3, 3, 1, 1), 0,
                       file: file, line: line)
        if tile == 2 {
            XCTAssertEqual(mml_conv3x3_winograd_backward_data_f32(&dx, dy, wt, N, C, H, W, CO, nil, 0, threads), 0,
                           file: file, line: line)
        } else {
            XCTAssertEqual(mml_conv3x3_winograd_tile_backward_data_f32(&dx, dy, wt, N, C, H, W, CO, tile, nil, 0,
                                                                       threads), 0, file: file, line: line)
        }
        return (scaledError(y, yr, scale: outputScale(x, wt, c: c, cout: co, transposed: false)),
                scaledError(dx, dxr, scale: outputScale(dy, wt, c: c, cout: co, transposed: true)))
    }

    func checkAgainstNaive(channels: [Int], seed: UInt64, tile: Int32 = 2, tolerance: Double = tolerance) {
        var r = Rng(seed: seed)
        var index = 0
        for c in channels {
            for co in [1, 64] {
                for (h, w) in Self.spatial {
                    let n = 1 + index % 3
                    index += 1
                    let (ef, eb) = errors(n, c, h, w, co, threads: 2, tile: tile, rng: &r)
                    XCTAssertLessThanOrEqual(ef, tolerance, "tile \(tile) forward n=\(n) c=\(c) \(h)x\(w) cout=\(co)")
                    XCTAssertLessThanOrEqual(eb, tolerance,
                                             "tile \(tile) backward data n=\(n) c=\(c) \(h)x\(w) cout=\(co)")
                }
            }
        }
    }

    func testForwardAndBackwardDataMatchNaive() {
        checkAgainstNaive(channels: [1, 3, 64], seed: 11)
    }

    func testPortablePathMatchesNaive() {
        mml_layers_force_portable(1)
        defer { mml_layers_force_portable(0) }
        checkAgainstNaive(channels: [1, 3, 64], seed: 12)
    }

    func testTile4MatchesNaiveOnBothPaths() {
        checkAgainstNaive(channels: [1, 3, 64], seed: 15, tile: 4, tolerance: Self.tolerance4)
        // more than 16 tiles per row (the AVX-512 row split loops) and a partial last tile
        var r = Rng(seed: 17)
        for (h, w) in [(9, 70), (5, 130)] {
            let (ef, eb) = errors(1, 3, h, w, 5, threads: 2, tile: 4, rng: &r)
            XCTAssertLessThanOrEqual(ef, Self.tolerance4, "tile 4 forward \(h)x\(w)")
            XCTAssertLessThanOrEqual(eb, Self.tolerance4, "tile 4 backward data \(h)x\(w)")
        }
        mml_layers_force_portable(1)
        defer { mml_layers_force_portable(0) }
        checkAgainstNaive(channels: [1, 64], seed: 16, tile: 4, tolerance: Self.tolerance4)
    }

    /// Tile 2 through the tile-parameter entry points is the plain F(2x2, 3x3) kernel, bit for bit; tile 4 gives the
    /// same bits on 1 and 2 threads; other tiles are refused.
    func testTileParameter() {
        var r = Rng(seed: 17)
        let (n, c, h, w, co) = (3, 5, 9, 10, 7)
        let (N, C, H, W, CO) = (Int64(n), Int64(c), Int64(h), Int64(w), Int64(co))
        let x = r.floats(n * c * h * w), wt = r.floats(co * c * 9), dy = r.floats(n * co * h * w)
        var y2 = [Float](repeating: 0, count: dy.count), y2t = y2
        var dx2 = [Float](repeating: 0, count: x.count), dx2t = dx2
        XCTAssertEqual(mml_conv3x3_winograd_forward_f32(&y2, x, wt, N, C, H, W, CO, nil, 0, 1), 0)
        XCTAssertEqual(mml_conv3x3_winograd_tile_forward_f32(&y2t, x, wt, N, C, H, W, CO, 2, nil, 0, 1), 0)
        XCTAssertEqual(mml_conv3x3_winograd_backward_data_f32(&dx2, dy, wt, N, C, H, W, CO, nil, 0, 1), 0)
        XCTAssertEqual(mml_conv3x3_winograd_tile_backward_data_f32(&dx2t, dy, wt, N, C, H, W, CO, 2, nil, 0, 1), 0)
        XCTAssertEqual(y2, y2t)
        XCTAssertEqual(dx2, dx2t)
        XCTAssertEqual(mml_conv3x3_winograd_tile_workspace_floats(N, C, H, W, CO, 2, 2),
                       mml_conv3x3_winograd_workspace_floats(N, C, H, W, CO, 2))
        var outs: [[Float]] = []
        for t in [Int32(1), 2] {
            var y = [Float](repeating: 0, count: dy.count), dx = [Float](repeating: 0, count: x.count)
            XCTAssertEqual(mml_conv3x3_winograd_tile_forward_f32(&y, x, wt, N, C, H, W, CO, 4, nil, 0, t), 0)
            XCTAssertEqual(mml_conv3x3_winograd_tile_backward_data_f32(&dx, dy, wt, N, C, H, W, CO, 4, nil, 0, t), 0)
            outs.append(y + dx)
        }
        XCTAssertEqual(outs[0], outs[1], "tile 4: 1 and 2 threads must give the same bits")
        let bad = Int32(MML_ERR_ARGUMENT)
        for tile in [Int32(0), 1, 3, 6] {
            XCTAssertEqual(mml_conv3x3_winograd_tile_workspace_floats(N, C, H, W, CO, tile, 1), Int64(bad))
            XCTAssertEqual(mml_conv3x3_winograd_tile_forward_f32(&y2, x, wt, N, C, H, W, CO, tile, nil, 0, 1), bad)
            XCTAssertEqual(mml_conv3x3_winograd_tile_backward_data_f32(&dx2, dy, wt, N, C, H, W, CO, tile, nil, 0, 1),
                           bad)
        }
        // the tile-4 workspace differs from the tile-2 one; one float short is refused
        let need4 = mml_conv3x3_winograd_tile_workspace_floats(N, C, H, W, CO, 4, 1)
        var ws = [Float](repeating: 0, count: Int(need4))
        XCTAssertEqual(mml_conv3x3_winograd_tile_forward_f32(&y2, x, wt, N, C, H, W, CO, 4, &ws, need4, 1), 0)
        XCTAssertEqual(mml_conv3x3_winograd_tile_forward_f32(&y2, x, wt, N, C, H, W, CO, 4, &ws, need4 - 1, 1), bad)
    }

    /// Odd sizes with more rows / columns than one tile block, c != cout in both directions, and more than 256
    /// channels (the GEMM's k blocking).
    func testOddShapesAndUnequalChannels() {
        var r = Rng(seed: 13)
        for (n, c, h, w, co) in [(2, 5, 9, 1, 7), (1, 64, 1, 45, 3), (3, 17, 13, 11, 40), (1, 2, 33, 31, 130),
                                 (2, 300, 6, 5, 9)] {
            let (ef, eb) = errors(n, c, h, w, co, threads: 2, rng: &r)
            XCTAssertLessThanOrEqual(ef, Self.tolerance, "forward \((n, c, h, w, co))")
            XCTAssertLessThanOrEqual(eb, Self.tolerance, "backward data \((n, c, h, w, co))")
        }
    }

    /// A hand-checkable case: a single 3x3 image of ones and a kernel with one non-zero tap gives the shifted
    /// image, and backward data shifts the other way.
    func testSingleTapShifts() {
        var wt = [Float](repeating: 0, count: 9)
        wt[0] = 2 // tap (0, 0): y[i][j] = 2 x[i-1][j-1]
        let x: [Float] = [1, 2, 3,
                          4, 5, 6,
                          7, 8, 9]
        var y = [Float](repeating: .nan, count: 9)
        XCTAssertEqual(mml_conv3x3_winograd_forward_f32(&y, x, wt, 1, 1, 3, 3, 1, nil, 0, 1), 0)
        XCTAssertEqual(y, [0, 0, 0, 0, 2, 4, 0, 8, 10])
        var dx = [Float](repeating: .nan, count: 9)
        XCTAssertEqual(mml_conv3x3_winograd_backward_data_f32(&dx, x, wt, 1, 1, 3, 3, 1, nil, 0, 1), 0)
        XCTAssertEqual(dx, [10, 12, 0, 16, 18, 0, 0, 0, 0])
    }

    func testOneAndTwoThreadsGiveIdenticalBits() {
        var r = Rng(seed: 14)
        for (n, c, h, w, co) in [(3, 64, 21, 21, 64), (5, 3, 7, 6, 64), (4, 64, 42, 42, 1)] {
            let (N, C, H, W, CO) = (Int64(n), Int64(c), Int64(h), Int64(w), Int64(co))
            let x = r.floats(n * c * h * w), wt = r.floats(co * c * 9), dy = r.floats(n * co * h * w)
            var outs: [[Float]] = []
            for t in [Int32(1), 2] {
                var y = [Float](repeating: 0, count: dy.count), dx = [Float](repeating: 0, count: x.count)
                XCTAssertEqual(mml_conv3x3_winograd_forward_f32(&y, x, wt, N, C, H, W, CO, nil, 0, t), 0)
                XCTAssertEqual(mml_conv3x3_winograd_backward_data_f32(&dx, dy, wt, N, C, H, W, CO, nil, 0, t), 0)
                outs.append(y + dx)
                // a caller's workspace gives the same bits as the internal one
                let need = mml_conv3x3_winograd_workspace_floats(N, C, H, W, CO, t)
                XCTAssertGreaterThan(need, 0)
                var ws = [Float](repeating: .nan, count: Int(need))
                var y2 = [Float](repeating: 0, count: dy.count), dx2 = [Float](repeating: 0, count: x.count)
                XCTAssertEqual(mml_conv3x3_winograd_forward_f32(&y2, x, wt, N, C, H, W, CO, &ws, need, t), 0)
                XCTAssertEqual(mml_conv3x3_winograd_backward_data_f32(&dx2, dy, wt, N, C, H, W, CO, &ws, need, t), 0)
                XCTAssertEqual(y2, y, "workspace reuse \((n, c, h, w, co)) t=\(t)")
                XCTAssertEqual(dx2, dx, "workspace reuse \((n, c, h, w, co)) t=\(t)")
            }
            XCTAssertEqual(outs[0], outs[1], "1 and 2 threads must give the same bits \((n, c, h, w, co))")
        }
    }

    func testRejectsBadArgumentsAndShortWorkspace() {
        let bad = Int32(MML_ERR_ARGUMENT)
        let x = [Float](repeating: 1, count: 3 * 4 * 4), wt = [Float](repeating: 1, count: 2 * 3 * 9)
        var y = [Float](repeating: 0, count: 2 * 4 * 4)
        // (n, c, h, w, cout, nthreads) with one bad entry each
        let cases: [(Int64, Int64, Int64, Int64, Int64, Int32)] = [(0, 3, 4, 4, 2, 1), (1, 0, 4, 4, 2, 1),
                                                                   (1, 3, 0, 4, 2, 1), (1, 3, 4, -1, 2, 1),
                                                                   (1, 3, 4, 4, 0, 1), (1, 3, 4, 4, 2, -1)]
        for (n, c, h, w, co, t) in cases {
            XCTAssertEqual(mml_conv3x3_winograd_workspace_floats(n, c, h, w, co, t), Int64(bad))
            XCTAssertEqual(mml_conv3x3_winograd_forward_f32(&y, x, wt, n, c, h, w, co, nil, 0, t), bad)
            XCTAssertEqual(mml_conv3x3_winograd_backward_data_f32(&y, x, wt, n, c, h, w, co, nil, 0, t), bad)
        }
        XCTAssertEqual(mml_conv3x3_winograd_forward_f32(nil, x, wt, 1, 3, 4, 4, 2, nil, 0, 1), bad)
        XCTAssertEqual(mml_conv3x3_winograd_forward_f32(&y, nil, wt, 1, 3, 4, 4, 2, nil, 0, 1), bad)
        XCTAssertEqual(mml_conv3x3_winograd_forward_f32(&y, x, nil, 1, 3, 4, 4, 2, nil, 0, 1), bad)
        var dx = [Float](repeating: 0, count: x.count)
        XCTAssertEqual(mml_conv3x3_winograd_backward_data_f32(nil, y, wt, 1, 3, 4, 4, 2, nil, 0, 1), bad)
        XCTAssertEqual(mml_conv3x3_winograd_backward_data_f32(&dx, nil, wt, 1, 3, 4, 4, 2, nil, 0, 1), bad)
        XCTAssertEqual(mml_conv3x3_winograd_backward_data_f32(&dx, y, nil, 1, 3, 4, 4, 2, nil, 0, 1), bad)
        // c != cout: one workspace size serves both directions; one float less is refused by both
        let need = mml_conv3x3_winograd_workspace_floats(1, 3, 4, 4, 2, 1)
        var ws = [Float](repeating: 0, count: Int(need))
        XCTAssertEqual(mml_conv3x3_winograd_forward_f32(&y, x, wt, 1, 3, 4, 4, 2, &ws, need, 1), 0)
        XCTAssertEqual(mml_conv3x3_winograd_backward_data_f32(&dx, y, wt, 1, 3, 4, 4, 2, &ws, need, 1), 0)
        XCTAssertEqual(mml_conv3x3_winograd_forward_f32(&y, x, wt, 1, 3, 4, 4, 2, &ws, need - 1, 1), bad)
        XCTAssertEqual(mml_conv3x3_winograd_backward_data_f32(&dx, y, wt, 1, 3, 4, 4, 2, &ws, need - 1, 1), bad)
        // more threads need more workspace (per-thread buffers); the 1-thread size is refused for 2 threads
        let need2 = mml_conv3x3_winograd_workspace_floats(2, 3, 4, 4, 2, 2)
        XCTAssertGreaterThan(need2, need)
        var y2 = [Float](repeating: 0, count: 2 * y.count)
        let x2 = x + x
        XCTAssertEqual(mml_conv3x3_winograd_forward_f32(&y2, x2, wt, 2, 3, 4, 4, 2, &ws, need, 2), bad)
    }
}
