import MMLKernels
import XCTest

/// Convolutions large enough that im2col runs in several row bands (K x band columns kept within L2), with uneven
/// bands and stride 2, against the naive twins; 1 and 2 threads must give the same bits. Both ISA paths.
extension ConvKernelTests {
    private func checkBandedConv(seed: UInt64) {
        var r = Rng(s: seed)
        // (n, c, h, w, cout, k, stride, pad): K = 360, 37 rows -> bands of 19 + 18; K = 576 at stride 2 -> 16 + 15
        let cases = [(2, 40, 37, 23, 5, 3, 1, 1), (3, 64, 61, 45, 3, 3, 2, 1)]
        for (n, c, h, w, co, k, s, p) in cases {
            let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
            let x = r.floats(n * c * h * w), wt = r.floats(co * c * k * k)
            var yr = [Double](repeating: 0, count: n * co * oh * ow)
            XCTAssertEqual(mml_conv2d_naive(&yr, x, wt, nil, Int64(n), Int64(c), Int64(h), Int64(w), Int64(co),
                                            Int64(k), Int64(k), Int64(s), Int64(p)), 0)
            let dy = r.floats(yr.count)
            var dxr = [Double](repeating: 0, count: x.count), dwr = [Double](repeating: 0, count: wt.count)
            XCTAssertEqual(mml_conv2d_backward_naive(&dxr, &dwr, nil, dy, x, wt, Int64(n), Int64(c), Int64(h), Int64(w),
                                                     Int64(co), Int64(k), Int64(k), Int64(s), Int64(p)), 0)
            var bits: [[UInt32]] = []
            for threads in [Int32(1), 2] {
                var y = [Float](repeating: .nan, count: yr.count)
                XCTAssertEqual(mml_conv2d_forward_f32(&y, x, wt, nil, Int64(n), Int64(c), Int64(h), Int64(w), Int64(co),
                                                      Int64(k), Int64(k), Int64(s), Int64(p), nil, 0, threads), 0)
                assertClose(y, yr, atol: 1e-3, rtol: 1e-4, "banded conv fwd \((n, c, h, w, co, k, s, p)) t=\(threads)")
                var dx = [Float](repeating: .nan, count: x.count), dw = [Float](repeating: 0, count: wt.count)
                XCTAssertEqual(mml_conv2d_backward_f32(&dx, &dw, nil, dy, x, wt, Int64(n), Int64(c), Int64(h), Int64(w),
                                                       Int64(co), Int64(k), Int64(k), Int64(s), Int64(p), nil, 0,
                                                       threads), 0)
                assertClose(dx, dxr, atol: 1e-3, rtol: 1e-4, "banded conv dx \((n, c, h, w, co, k, s, p))")
                assertClose(dw, dwr, atol: 1e-3, rtol: 1e-4, "banded conv dw \((n, c, h, w, co, k, s, p))")
                bits.append((y + dx + dw).map(\.bitPattern))
            }
            XCTAssertEqual(bits[0], bits[1], "banded conv: 1 and 2 threads must give the same bits")
        }
    }

    func testBandedConvMatchesNaiveOnBothPaths() {
        checkBandedConv(seed: 31)
        mml_layers_force_portable(1)
        defer { mml_layers_force_portable(0) }
        checkBandedConv(seed: 32)
    }
}
