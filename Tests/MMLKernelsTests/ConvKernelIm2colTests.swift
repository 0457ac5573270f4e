import MMLKernels
import XCTest

/// im2col / col2im (with and without the AVX-512 flag set) against the index definition, and
/// col2im as the exact adjoint: <im2col(x), c> == <x, col2im(c)>.
extension ConvKernelTests {
    private func checkIm2col(seed: UInt64) {
        var r = Rng(seed: seed)
        // (c, h, w, k, stride, pad): widths around 16-lane chunks, k > w with padding, stride 2
        let shapes = [(1, 1, 1, 1, 1, 0), (2, 5, 3, 3, 1, 1), (3, 7, 17, 3, 1, 1), (2, 6, 33, 5, 1, 2),
                      (1, 4, 16, 3, 1, 0), (2, 3, 2, 3, 1, 2), (2, 9, 21, 3, 2, 1), (1, 2, 40, 1, 1, 0)]
        for (c, h, w, k, st, pad) in shapes {
            let oh = (h + 2 * pad - k) / st + 1, ow = (w + 2 * pad - k) / st + 1
            let x = r.floats(c * h * w)
            var col = [Float](repeating: .nan, count: c * k * k * oh * ow)
            mml_im2col_f32(&col, x, Int64(c), Int64(h), Int64(w), Int64(k), Int64(k), Int64(st), Int64(pad))
            var worst = 0.0
            for ch in 0..<c { for i in 0..<k { for j in 0..<k { for oy in 0..<oh { for ox in 0..<ow {
                let iy = oy * st - pad + i, ix = ox * st - pad + j
                let want = iy < 0 || iy >= h || ix < 0 || ix >= w ? 0 : Double(x[(ch * h + iy) * w + ix])
                let got = Double(col[(((ch * k + i) * k + j) * oh + oy) * ow + ox])
                worst = max(worst, got.isNaN ? .infinity : abs(got - want))
            } } } } }
            XCTAssertLessThanOrEqual(worst, 0, "im2col c\(c) \(h)x\(w) k\(k) s\(st) p\(pad)")
            // adjoint identity in double
            let g = r.floats(col.count)
            var dx = [Float](repeating: .nan, count: x.count)
            mml_col2im_f32(&dx, g, Int64(c), Int64(h), Int64(w), Int64(k), Int64(k), Int64(st), Int64(pad))
            var lhs = 0.0, rhs = 0.0, scale = 0.0
            for i in 0..<col.count { lhs += Double(col[i]) * Double(g[i]); scale += abs(Double(col[i]) * Double(g[i])) }
            for i in 0..<x.count { rhs += Double(x[i]) * Double(dx[i]) }
            XCTAssertLessThanOrEqual(abs(lhs - rhs), 1e-5 * (scale + 1), "col2im adjoint c\(c) \(h)x\(w) k\(k)")
        }
    }

    func testIm2colAndCol2imMatchDefinitionOnBothPaths() {
        checkIm2col(seed: 21)
        mml_layers_force_portable(1)
        defer { mml_layers_force_portable(0) }
        checkIm2col(seed: 22)
    }
}
