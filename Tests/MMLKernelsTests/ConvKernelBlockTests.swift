import MMLKernels
import MMLTestSupport
import XCTest

/// The fused inference block (conv -> per-channel affine -> leaky ReLU -> optional 2x2 max-pool) with K = 360 and
/// odd sizes (the pool floors), against the naive conv in double followed by the same steps.
extension ConvKernelTests {
    private func checkConvBlock(seed: UInt64, shape: (Int, Int, Int, Int, Int) = (2, 40, 37, 23, 4)) {
        var r = Rng(seed: seed)
        let (n, c, h, w, co) = shape
        let slope = Float(0.2)
        let x = r.floats(n * c * h * w), wt = r.floats(co * c * 9)
        let scale = r.floats(co), shift = r.floats(co)
        var z = [Double](repeating: 0, count: n * co * h * w)
        XCTAssertEqual(mml_conv2d_naive(&z, x, wt, nil, Int64(n), Int64(c), Int64(h), Int64(w), Int64(co), 3, 3, 1, 1), 0)
        for i in 0..<z.count {
            let o = (i / (h * w)) % co
            let v = Double(scale[o]) * z[i] + Double(shift[o])
            z[i] = v > 0 ? v : Double(slope) * v
        }
        for pool in [Int32(0), 1] {
            let ph = pool != 0 ? h / 2 : h, pw = pool != 0 ? w / 2 : w
            var ref = [Double](repeating: 0, count: n * co * ph * pw)
            for plane in 0..<(n * co) { for oy in 0..<ph { for ox in 0..<pw {
                if pool == 0 { ref[(plane * ph + oy) * pw + ox] = z[(plane * h + oy) * w + ox]; continue }
                var m = -Double.infinity
                for i in 0..<2 { for j in 0..<2 { m = max(m, z[(plane * h + 2 * oy + i) * w + 2 * ox + j]) } }
                ref[(plane * ph + oy) * pw + ox] = m
            } } }
            var bits: [[UInt32]] = []
            for threads in [Int32(1), 2] {
                var y = [Float](repeating: .nan, count: ref.count)
                XCTAssertEqual(mml_conv_block_forward_f32(&y, x, wt, scale, shift, Int64(n), Int64(c), Int64(h), Int64(w),
                                                          Int64(co), 3, 1, slope, pool, nil, 0, threads), 0)
                assertClose(y, ref, atol: 1e-3, rtol: 1e-4, "conv block \(shape) pool=\(pool) t=\(threads)")
                bits.append(y.map(\.bitPattern))
            }
            XCTAssertEqual(bits[0], bits[1], "conv block: 1 and 2 threads must give the same bits")
        }
    }

    func testConvBlockMatchesNaiveOnOddSizes() {
        checkConvBlock(seed: 41)
        // 64 x 84 outputs per row: bands of 12 output rows, the last band a single row (no pooled row of its own)
        checkConvBlock(seed: 43, shape: (2, 3, 37, 84, 64))
        // few input channels (the direct path on AVX-512): partial and several 64-channel groups, odd and narrow
        // widths (a tile past the last column), a height of 3 (one pooled row, one odd row left over)
        checkConvBlock(seed: 45, shape: (3, 1, 9, 5, 20))
        checkConvBlock(seed: 46, shape: (2, 3, 12, 33, 70))
        checkConvBlock(seed: 47, shape: (1, 8, 3, 16, 16))
        checkConvBlock(seed: 48, shape: (1, 2, 31, 301, 3)) // several bands, pooled and not
        mml_layers_force_portable(1)
        defer { mml_layers_force_portable(0) }
        checkConvBlock(seed: 42)
        checkConvBlock(seed: 44, shape: (1, 3, 26, 84, 64))
        checkConvBlock(seed: 49, shape: (2, 3, 12, 33, 70))
    }
}
