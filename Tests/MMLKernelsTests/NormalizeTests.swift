import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// Row L2 normalisation, its backward, and CHW maps to rows, against plain double loops.
final class NormalizeTests: XCTestCase {
    func testForwardMatchesNaive() {
        var rng = TestRNG(seed: 41)
        for (rows, d) in [(1, 1), (37, 7), (5, 64), (3, 131)] {
            var x = rng.floats(rows * d)
            for p in 0..<d { x[p] = 0 }  // a zero row: norm 0 < eps, y = x / eps = 0
            var y = [Float](repeating: .nan, count: rows * d), norms = [Float](repeating: .nan, count: rows)
            var ref = [Double](repeating: .nan, count: rows * d)
            XCTAssertEqual(mml_l2_normalize_rows_f32(&y, &norms, x, Int64(rows), Int64(d), 1e-6), 0)
            XCTAssertEqual(mml_l2_normalize_rows_naive(&ref, x, Int64(rows), Int64(d), 1e-6), 0)
            for i in 0..<(rows * d) { XCTAssertTrue(isClose(Double(y[i]), ref[i], atol: 1e-6, rtol: 1e-5), "y[\(i)]") }
            for i in 0..<rows {
                let n = (0..<d).map { Double(x[i * d + $0]) * Double(x[i * d + $0]) }.reduce(0, +).squareRoot()
                XCTAssertTrue(isClose(Double(norms[i]), n, atol: 1e-7, rtol: 1e-6), "norm[\(i)]")
            }
            // in place gives the same bits
            var z = x
            XCTAssertEqual(z.withUnsafeMutableBufferPointer {
                mml_l2_normalize_rows_f32($0.baseAddress, nil, $0.baseAddress, Int64(rows), Int64(d), 1e-6)
            }, 0)
            XCTAssertEqual(z.map(\.bitPattern), y.map(\.bitPattern))
        }
    }

    func testSmallNormsAreClampedToEps() {
        let x: [Float] = [3e-4, 4e-4]  // norm 5e-4 < eps 1e-3
        var y = [Float](repeating: 0, count: 2), ref = [Double](repeating: 0, count: 2)
        XCTAssertEqual(mml_l2_normalize_rows_f32(&y, nil, x, 1, 2, 1e-3), 0)
        XCTAssertEqual(mml_l2_normalize_rows_naive(&ref, x, 1, 2, 1e-3), 0)
        XCTAssertTrue(isClose(Double(y[0]), ref[0], atol: 1e-7, rtol: 1e-5))
        XCTAssertTrue(isClose(ref[0], 0.3, atol: 1e-6, rtol: 0))  // 3e-4 / 1e-3, not 3/5
    }

    func testBackwardMatchesFiniteDifferences() {
        var rng = TestRNG(seed: 42)
        let eps: Float = 1e-3
        for (rows, d) in [(1, 1), (6, 7), (2, 64)] {
            var x = rng.floats(rows * d)
            if rows > 1 { for p in 0..<d { x[d + p] *= 1e-4 } }  // row 1 below eps: the linear branch
            let dy = rng.floats(rows * d)
            var y = [Float](repeating: 0, count: rows * d), norms = [Float](repeating: 0, count: rows)
            XCTAssertEqual(mml_l2_normalize_rows_f32(&y, &norms, x, Int64(rows), Int64(d), eps), 0)
            var dx = [Float](repeating: .nan, count: rows * d)
            XCTAssertEqual(mml_l2_normalize_rows_backward_f32(&dx, dy, y, norms, Int64(rows), Int64(d), eps, 2), 0)
            var dx1 = [Float](repeating: .nan, count: rows * d)
            XCTAssertEqual(mml_l2_normalize_rows_backward_f32(&dx1, dy, y, norms, Int64(rows), Int64(d), eps, 1), 0)
            XCTAssertEqual(dx1.map(\.bitPattern), dx.map(\.bitPattern), "1 and 2 threads")
            func loss(_ x: [Float]) -> Double {
                var yy = [Double](repeating: 0, count: rows * d)
                XCTAssertEqual(mml_l2_normalize_rows_naive(&yy, x, Int64(rows), Int64(d), Double(eps)), 0)
                return zip(yy, dy).map { $0 * Double($1) }.reduce(0, +)
            }
            for e in 0..<(rows * d) {
                let h: Float = abs(x[e]) < 1e-3 ? 1e-7 : 1e-3
                var xp = x, xm = x
                xp[e] += h
                xm[e] -= h
                let fd = (loss(xp) - loss(xm)) / (Double(xp[e]) - Double(xm[e]))
                XCTAssertTrue(isClose(Double(dx[e]), fd, atol: 2e-3, rtol: 2e-3), "dx[\(e)] \(dx[e]) vs \(fd)")
            }
        }
    }

    func testErrors() {
        var y = [Float](repeating: 0, count: 4)
        var yd = [Double](repeating: 0, count: 4)
        var x: [Float] = [1, 2, 3, 4]
        XCTAssertEqual(mml_l2_normalize_rows_f32(&y, nil, x, 0, 2, 1e-6), Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_l2_normalize_rows_f32(&y, nil, x, 2, 0, 1e-6), Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_l2_normalize_rows_f32(&y, nil, x, 2, 2, 0), Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_l2_normalize_rows_f32(nil, nil, x, 2, 2, 1e-6), Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_l2_normalize_rows_naive(&yd, x, 2, 2, -1), Int32(MML_ERR_ARGUMENT))
        x[3] = .nan
        XCTAssertEqual(mml_l2_normalize_rows_f32(&y, nil, x, 2, 2, 1e-6), Int32(MML_ERR_NONFINITE))
        XCTAssertEqual(mml_l2_normalize_rows_naive(&yd, x, 2, 2, 1e-6), Int32(MML_ERR_NONFINITE))
        x[3] = .infinity
        XCTAssertEqual(mml_l2_normalize_rows_f32(&y, nil, x, 2, 2, 1e-6), Int32(MML_ERR_NONFINITE))
        XCTAssertEqual(mml_l2_normalize_rows_backward_f32(&y, x, x, nil, 2, 2, 1e-6, 1), Int32(MML_ERR_ARGUMENT))
        var out = [Float](repeating: 0, count: 4)
        XCTAssertEqual(mml_maps_to_rows_f32(&out, nil, x, 1, 2, 2, 1, 1e-6, 1), Int32(MML_ERR_NONFINITE))
        XCTAssertEqual(mml_maps_to_rows_f32(&out, nil, x, 1, 0, 2, 1, 1e-6, 1), Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_maps_to_rows_f32(&out, nil, [1, 2, 3, 4], 1, 2, 2, 1, 0, 1), Int32(MML_ERR_ARGUMENT))
        // a NaN in the second of three images is found with any thread count
        var three = [Float](repeating: 1, count: 12)
        three[6] = .nan
        var out3 = [Float](repeating: 0, count: 12)
        XCTAssertEqual(mml_maps_to_rows_f32(&out3, nil, three, 3, 2, 2, 1, 1e-6, 2), Int32(MML_ERR_NONFINITE))
        XCTAssertEqual(mml_rows_to_maps_f32(&out3, three, 3, 0, 2, 1), Int32(MML_ERR_ARGUMENT))
    }

    func testMapsToRows() {
        var rng = TestRNG(seed: 43)
        for (count, d, hw) in [(1, 1, 1), (3, 7, 13), (2, 64, 441), (1, 5, 17)] {
            let maps = rng.floats(count * d * hw)
            var raw = [Float](repeating: .nan, count: count * hw * d), normed = raw
            var norms = [Float](repeating: .nan, count: count * hw)
            XCTAssertEqual(mml_maps_to_rows_f32(&raw, nil, maps, Int64(count), Int64(d), Int64(hw), 0, 1e-6, 1), 0)
            XCTAssertEqual(mml_maps_to_rows_f32(&normed, &norms, maps, Int64(count), Int64(d), Int64(hw), 1, 1e-6, 1), 0)
            var t = [Float](repeating: 0, count: count * hw * d)
            for i in 0..<count { for c in 0..<d { for s in 0..<hw { t[(i * hw + s) * d + c] = maps[(i * d + c) * hw + s] } } }
            XCTAssertEqual(raw.map(\.bitPattern), t.map(\.bitPattern), "a plain transpose copies exactly")
            // more threads: the same bits; rows_to_maps undoes the transpose exactly
            for threads: Int32 in [2, 0] {
                var normedT = [Float](repeating: .nan, count: raw.count), normsT = norms
                XCTAssertEqual(mml_maps_to_rows_f32(&normedT, &normsT, maps, Int64(count), Int64(d), Int64(hw), 1, 1e-6,
                                                    threads), 0)
                XCTAssertEqual(normedT.map(\.bitPattern), normed.map(\.bitPattern))
                XCTAssertEqual(normsT.map(\.bitPattern), norms.map(\.bitPattern))
                var back = [Float](repeating: .nan, count: maps.count)
                XCTAssertEqual(mml_rows_to_maps_f32(&back, raw, Int64(count), Int64(d), Int64(hw), threads), 0)
                XCTAssertEqual(back.map(\.bitPattern), maps.map(\.bitPattern))
            }
            var ref = [Double](repeating: 0, count: t.count)
            XCTAssertEqual(mml_l2_normalize_rows_naive(&ref, t, Int64(count * hw), Int64(d), 1e-6), 0)
            for i in 0..<t.count { XCTAssertTrue(isClose(Double(normed[i]), ref[i], atol: 1e-6, rtol: 1e-5)) }
            for row in 0..<(count * hw) {
                let n = (0..<d).map { Double(t[row * d + $0]) * Double(t[row * d + $0]) }.reduce(0, +).squareRoot()
                XCTAssertTrue(isClose(Double(norms[row]), n, atol: 1e-7, rtol: 1e-6))
            }
        }
    }
}
