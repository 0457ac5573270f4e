import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// The small-group ("lanes") path of mml_group_topk_sim_f32 (topk_lanes_avx512.c) against the panel path: the same
/// bits for sums, selected indices and values, on every shape the lanes path takes (MML_TOPK_LANES=on forces it
/// for any group size, off forces the panels), and the cases it must decline (overflowing products, NaN / Inf).
/// The other TopK tests run it too: with the default (auto) every group of <= 128 rows and k <= 4 takes it.
final class TopKLanesTests: XCTestCase {
    /// Runs the f32 kernel with MML_TOPK_LANES=mode (nil: unset), the environment restored after.
    func run(_ mode: String?, _ q: [Float], _ m: Int, _ r: [Float], _ n: Int, _ d: Int, _ group: [Int32], _ g: Int,
             _ k: Int, threads: Int = 0) -> TopKResult {
        if let mode { setenv("MML_TOPK_LANES", mode, 1) } else { unsetenv("MML_TOPK_LANES") }
        defer { unsetenv("MML_TOPK_LANES") }
        return runTopK(q, m, r, n, d, group, g, k, threads: threads)
    }

    func assertSameBits(_ a: TopKResult, _ b: TopKResult, _ what: String, file: StaticString = #filePath,
                        line: UInt = #line) {
        XCTAssertEqual(a.status, b.status, "status, " + what, file: file, line: line)
        XCTAssertEqual(a.out.map(\.bitPattern), b.out.map(\.bitPattern), "sums, " + what, file: file, line: line)
        XCTAssertEqual(a.idx, b.idx, "indices, " + what, file: file, line: line)
        XCTAssertEqual(a.val.map(\.bitPattern), b.val.map(\.bitPattern), "values, " + what, file: file, line: line)
    }

    /// Random inputs over shapes that cut every tile edge: rows not a multiple of 16 or 64, groups of 1..300 rows
    /// (not a multiple of the 6-column tile), shuffled groups, depths 1..130, k = 1..4.
    func testSameBitsAsThePanelPath() {
        var rng = TestRNG(seed: 71)
        let shapes: [(m: Int, sizes: [Int], d: Int)] = [
            (1, [1], 1), (5, [3, 4], 3), (49, [49, 49, 49, 49, 49], 64), (64, [6, 12, 7], 16), (65, [13], 130),
            (147, [49, 98, 25, 5], 64), (200, [128, 127, 129], 33), (300, [300, 17], 20), (17, [5, 5, 5, 5], 7),
        ]
        for (m, sizes, d) in shapes {
            let n = sizes.reduce(0, +)
            for k in 1...4 where k <= sizes.min()! {
                for shuffled in [false, true] {
                    let q = rng.floats(m * d), r = rng.floats(n * d)
                    let group = makeGroups(sizes, shuffled: shuffled, rng: &rng)
                    let lanes = run("on", q, m, r, n, d, group, sizes.count, k)
                    let panels = run("off", q, m, r, n, d, group, sizes.count, k)
                    XCTAssertEqual(lanes.status, 0)
                    assertSameBits(lanes, panels, "m \(m) groups \(sizes) d \(d) k \(k) shuffled \(shuffled)")
                }
            }
        }
    }

    /// Integer-valued inputs with duplicated reference rows: exact ties everywhere, which both paths give to the
    /// smaller index and order by ascending index among equal values.
    func testTiesAsThePanelPath() {
        var rng = TestRNG(seed: 72)
        for (m, n, d, g, k) in [(19, 120, 5, 3, 3), (70, 98, 3, 2, 4), (33, 60, 2, 12, 2), (10, 40, 1, 4, 4)] {
            let q = (0..<(m * d)).map { _ in Float(rng.int(5) - 2) }
            var r = (0..<(n * d)).map { _ in Float(rng.int(5) - 2) }
            for j in stride(from: 1, to: n, by: 3) { for p in 0..<d { r[j * d + p] = r[(j - 1) * d + p] } }
            var sizes = [Int](repeating: n / g, count: g)
            sizes[g - 1] += n - sizes.reduce(0, +)
            let group = makeGroups(sizes, shuffled: true, rng: &rng)
            assertSameBits(run("on", q, m, r, n, d, group, g, k), run("off", q, m, r, n, d, group, g, k),
                           "ties m \(m) n \(n) d \(d) k \(k)")
        }
        // all products equal: the k smallest indices of each group, in ascending order
        let res = run("on", [Float](repeating: 1, count: 12), 3, [Float](repeating: 0.5, count: 40), 10, 4,
                      [0, 1, 0, 1, 0, 1, 0, 1, 0, 1], 2, 3)
        XCTAssertEqual(res.status, 0)
        XCTAssertEqual(Array(res.idx[0..<6]), [0, 2, 4, 1, 3, 5])
    }

    /// The lanes path gives the same bits on 1, 2, 3 and all threads.
    func testThreadCountDoesNotChangeResults() {
        var rng = TestRNG(seed: 73)
        let m = 333, d = 64, sizes = [49, 49, 49, 49, 50], n = 246, k = 3
        let q = rng.floats(m * d), r = rng.floats(n * d)
        let group = makeGroups(sizes, shuffled: true, rng: &rng)
        let one = run(nil, q, m, r, n, d, group, sizes.count, k, threads: 1)
        XCTAssertEqual(one.status, 0)
        for t in [2, 3, 0] { assertSameBits(one, run(nil, q, m, r, n, d, group, sizes.count, k, threads: t), "threads \(t)") }
    }

    /// Inputs the lanes path must leave to the panel path: products that could overflow (the panel path reports
    /// MML_ERR_NONFINITE when one does, and is exact when none does), and NaN / Inf inputs.
    func testDeclinedInputsGiveThePanelPathsResult() {
        var rng = TestRNG(seed: 74)
        let m = 20, n = 30, d = 8, k = 2
        let group = makeGroups([10, 10, 10], shuffled: false, rng: &rng)
        // overflowing products: 1e20 x 1e20
        var q = rng.floats(m * d), r = rng.floats(n * d)
        q[5] = 1e20; r[13] = 1e20  // query 0 and reference 1 at depth 5
        let big = run("on", q, m, r, n, d, group, 3, k)
        XCTAssertEqual(big.status, Int32(MML_ERR_NONFINITE))
        assertSameBits(big, run("off", q, m, r, n, d, group, 3, k), "overflow")
        // large but safe for the panels (the lanes bound declines, the panels compute)
        q = rng.floats(m * d); r = rng.floats(n * d)
        q[0] = 1e19; r[8] = 1e18  // products up to 1e37: d max|q| max|r| > FLT_MAX / 16
        let large = run("on", q, m, r, n, d, group, 3, k)
        XCTAssertEqual(large.status, 0)
        assertSameBits(large, run("off", q, m, r, n, d, group, 3, k), "large")
        for bad in [Float.nan, .infinity, -.infinity] {
            var q2 = rng.floats(m * d)
            q2[17] = bad
            XCTAssertEqual(run("on", q2, m, r, n, d, group, 3, k).status, Int32(MML_ERR_NONFINITE), "\(bad) in Q")
            var r2 = rng.floats(n * d)
            r2[n * d - 1] = bad
            XCTAssertEqual(run("on", q, m, r2, n, d, group, 3, k).status, Int32(MML_ERR_NONFINITE), "\(bad) in R")
        }
    }

    /// The finiteness scan (topk_scan_finite_avx512) reads every element, whichever part of its loop holds it: the
    /// 32-wide body, a tail of under 16, and a tail of 16-31 (its second, masked half). Q has 21 x 8 = 168 values
    /// (5 x 32 + 8), R 31 x 8 = 248 (7 x 32 + 24). A huge value at the same places (past the lanes path's overflow
    /// bound, which the same scan measures) gives the panels' bits. Which path ran is not visible from outside, so
    /// this checks the results, not that the bound declined.
    func testDeclinesWhereverTheBadValueSits() {
        var rng = TestRNG(seed: 75)
        let m = 21, n = 31, d = 8, k = 2
        let group = makeGroups([10, 10, 11], shuffled: false, rng: &rng)
        let q = rng.floats(m * d), r = rng.floats(n * d)
        for at in [0, 31, 40, 160, 167] {
            var q2 = q
            q2[at] = .nan
            XCTAssertEqual(run("on", q2, m, r, n, d, group, 3, k).status, Int32(MML_ERR_NONFINITE), "NaN at Q[\(at)]")
            q2[at] = 1e19  // over the lanes bound with r's values: declined to the panels, which compute it
            let big = run("on", q2, m, r, n, d, group, 3, k)
            XCTAssertEqual(big.status, 0, "1e19 at Q[\(at)]")
            assertSameBits(big, run("off", q2, m, r, n, d, group, 3, k), "1e19 at Q[\(at)]")
        }
        for at in [0, 224, 239, 240, 247] {
            var r2 = r
            r2[at] = -.infinity
            XCTAssertEqual(run("on", q, m, r2, n, d, group, 3, k).status, Int32(MML_ERR_NONFINITE), "-Inf at R[\(at)]")
            r2[at] = -1e19
            let big = run("on", q, m, r2, n, d, group, 3, k)
            XCTAssertEqual(big.status, 0, "-1e19 at R[\(at)]")
            assertSameBits(big, run("off", q, m, r2, n, d, group, 3, k), "-1e19 at R[\(at)]")
        }
    }
}
