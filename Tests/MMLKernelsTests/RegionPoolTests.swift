import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// mml_region_pool_f32 / _backward_f32 (the part level's pooled regions) against a naive Swift twin that sums in
/// the documented order (so the bits must agree), the backward as the forward's adjoint, any thread count giving
/// the same bits, and the argument errors.
final class RegionPoolTests: XCTestCase {
    static func bounds(_ i: Int, _ g: Int, _ n: Int) -> Range<Int> { (i * n / g)..<(((i + 1) * n + g - 1) / g) }

    /// Calls body(region, rows, columns, 1 / cells) for the regions in kernel order.
    static func regions(_ grids: [Int], h: Int, w: Int, _ body: (Int, Range<Int>, Range<Int>, Float) -> Void) {
        var region = 0
        for g in grids {
            for gy in 0..<g {
                for gx in 0..<g {
                    let ys = bounds(gy, g, h), xs = bounds(gx, g, w)
                    body(region, ys, xs, 1 / Float(ys.count * xs.count))
                    region += 1
                }
            }
        }
    }

    static func naive(_ maps: [Float], n: Int, c: Int, h: Int, w: Int, grids: [Int]) -> [Float] {
        let per = grids.reduce(0) { $0 + $1 * $1 }
        var out = [Float](repeating: 0, count: n * per * c)
        for img in 0..<n {
            regions(grids, h: h, w: w) { region, ys, xs, inv in
                for ch in 0..<c {
                    var s: Float = 0
                    for y in ys { for x in xs { s += maps[((img * c + ch) * h + y) * w + x] } }
                    out[(img * per + region) * c + ch] = s * inv
                }
            }
        }
        return out
    }

    static func naiveBackward(_ dr: [Float], n: Int, c: Int, h: Int, w: Int, grids: [Int]) -> [Float] {
        let per = grids.reduce(0) { $0 + $1 * $1 }
        var out = [Float](repeating: 0, count: n * c * h * w)
        for img in 0..<n {
            regions(grids, h: h, w: w) { region, ys, xs, inv in
                for ch in 0..<c {
                    let v = dr[(img * per + region) * c + ch] * inv
                    for y in ys { for x in xs { out[((img * c + ch) * h + y) * w + x] += v } }
                }
            }
        }
        return out
    }

    func testMatchesNaiveBitwiseAndIsItsOwnAdjoint() {
        var rng = TestRNG(seed: 71)
        for (n, c, h, w, grids) in [(3, 5, 7, 7, [3, 2]), (2, 4, 5, 9, [1, 2, 5]), (1, 1, 1, 1, [1]), (4, 64, 10, 10, [3, 2])] {
            let per = grids.reduce(0) { $0 + $1 * $1 }
            let maps = rng.floats(n * c * h * w), dr = rng.floats(n * per * c)
            let g = grids.map { Int32($0) }
            let want = Self.naive(maps, n: n, c: c, h: h, w: w, grids: grids)
            let wantBack = Self.naiveBackward(dr, n: n, c: c, h: h, w: w, grids: grids)
            for threads: Int32 in [1, 2, 0] {
                var out = [Float](repeating: .nan, count: n * per * c)
                XCTAssertEqual(mml_region_pool_f32(&out, maps, Int64(n), Int64(c), Int64(h), Int64(w), g, Int32(g.count),
                                                   threads), 0)
                XCTAssertEqual(out.map(\.bitPattern), want.map(\.bitPattern), "\(grids) \(threads) threads")
                var back = [Float](repeating: .nan, count: maps.count)
                XCTAssertEqual(mml_region_pool_backward_f32(&back, dr, Int64(n), Int64(c), Int64(h), Int64(w), g,
                                                            Int32(g.count), threads), 0)
                XCTAssertEqual(back.map(\.bitPattern), wantBack.map(\.bitPattern), "backward \(grids) \(threads) threads")
                // adjoint: <pool(x), r> == <x, pool^T(r)>
                let lhs = zip(out, dr).map { Double($0) * Double($1) }.reduce(0, +)
                let rhs = zip(maps, back).map { Double($0) * Double($1) }.reduce(0, +)
                XCTAssertTrue(isClose(lhs, rhs, atol: 1e-4, rtol: 1e-4), "\(lhs) vs \(rhs)")
            }
        }
    }

    func testArgumentErrors() {
        var out = [Float](repeating: 0, count: 64), maps = [Float](repeating: 1, count: 64)
        XCTAssertEqual(mml_region_pool_f32(&out, maps, 1, 1, 4, 4, [5], 1, 1), Int32(MML_ERR_ARGUMENT), "grid > side")
        XCTAssertEqual(mml_region_pool_f32(&out, maps, 1, 1, 4, 4, [0], 1, 1), Int32(MML_ERR_ARGUMENT), "grid 0")
        XCTAssertEqual(mml_region_pool_f32(&out, maps, 1, 1, 4, 4, [2], 0, 1), Int32(MML_ERR_ARGUMENT), "no grids")
        XCTAssertEqual(mml_region_pool_f32(&out, maps, 0, 1, 4, 4, [2], 1, 1), Int32(MML_ERR_ARGUMENT), "no images")
        XCTAssertEqual(mml_region_pool_backward_f32(&maps, out, 1, 1, 4, 2, [3], 1, 1), Int32(MML_ERR_ARGUMENT),
                       "grid > width")
    }
}
