import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// Every status code of the grouped top-K kernels, on both paths.
final class TopKErrorTests: XCTestCase {
    let m = 5, n = 40, d = 6
    var q: [Float] = []
    var r: [Float] = []
    var group: [Int32] = []

    override func setUp() {
        var rng = TestRNG(seed: 21)
        q = rng.floats(m * d)
        r = rng.floats(n * d)
        group = makeGroups([20, 20], shuffled: false, rng: &rng)
    }

    func status(_ q: [Float], _ r: [Float], _ group: [Int32], groups: Int = 2, k: Int = 2, m: Int? = nil,
                n: Int? = nil, d: Int? = nil) -> (Int32, Int32) {
        let mm = m ?? self.m, nn = n ?? self.n, dd = d ?? self.d
        var out = [Float](repeating: 0, count: max(1, mm * groups))
        var outd = [Double](repeating: 0, count: max(1, mm * groups))
        let a = mml_group_topk_sim_f32(&out, nil, nil, q, Int64(mm), r, Int64(nn), Int64(dd), group, Int32(groups),
                                       Int32(k), 0)
        let b = mml_group_topk_sim_naive(&outd, nil, nil, q, Int64(mm), r, Int64(nn), Int64(dd), group,
                                         Int32(groups), Int32(k))
        return (a, b)
    }

    func assertStatus(_ got: (Int32, Int32), _ want: Int32, _ what: String, line: UInt = #line) {
        XCTAssertEqual(got.0, want, "f32: \(what)", line: line)
        XCTAssertEqual(got.1, want, "naive: \(what)", line: line)
    }

    func testArgumentErrors() {
        forEachISA { _ in
            let arg = Int32(MML_ERR_ARGUMENT)
            assertStatus(status(q, r, group, m: 0), arg, "m = 0")
            assertStatus(status(q, r, group, n: 0), arg, "n = 0")
            assertStatus(status(q, r, group, d: 0), arg, "d = 0")
            assertStatus(status(q, r, group, m: -3), arg, "m < 0")
            assertStatus(status(q, r, group, groups: 0), arg, "no groups")
            assertStatus(status(q, r, group, k: 0), arg, "k = 0")
            var g = group
            g[7] = 2
            assertStatus(status(q, r, g), arg, "group id = n_groups")
            g[7] = -1
            assertStatus(status(q, r, g), arg, "negative group id")
            var out = [Float](repeating: 0, count: m * 2)
            XCTAssertEqual(mml_group_topk_sim_f32(nil, nil, nil, q, Int64(m), r, Int64(n), Int64(d), group, 2, 1, 0), arg)
            XCTAssertEqual(mml_group_topk_sim_f32(&out, nil, nil, nil, Int64(m), r, Int64(n), Int64(d), group, 2, 1, 0), arg)
            XCTAssertEqual(mml_group_topk_sim_f32(&out, nil, nil, q, Int64(m), nil, Int64(n), Int64(d), group, 2, 1, 0), arg)
            XCTAssertEqual(mml_group_topk_sim_f32(&out, nil, nil, q, Int64(m), r, Int64(n), Int64(d), nil, 2, 1, 0), arg)
            XCTAssertEqual(mml_group_topk_sim_f32(&out, nil, nil, q, Int64(m), r, Int64(n), Int64(d), group, 2, 1, -1), arg)
        }
    }

    func testKTooLarge() {
        forEachISA { _ in
            let big = Int32(MML_ERR_K_TOO_LARGE)
            assertStatus(status(q, r, group, k: 21), big, "k = 21 > group size 20")
            var rng = TestRNG(seed: 22)
            assertStatus(status(q, r, makeGroups([37, 3], shuffled: true, rng: &rng), k: 4), big, "group of 3, k = 4")
            // group 2 exists (n_groups = 3) but no row belongs to it
            assertStatus(status(q, r, group, groups: 3, k: 1), big, "empty group")
        }
    }

    func testNonFiniteInputs() {
        forEachISA { _ in
            let nf = Int32(MML_ERR_NONFINITE)
            for pos in [0, 17, m * d - 1] {  // first, middle, last element (vector tails)
                var bad = q
                bad[pos] = .nan
                assertStatus(status(bad, r, group), nf, "NaN in Q at \(pos)")
                bad[pos] = .infinity
                assertStatus(status(bad, r, group), nf, "Inf in Q at \(pos)")
            }
            for pos in [0, 101, n * d - 1] {
                var bad = r
                bad[pos] = .nan
                assertStatus(status(q, bad, group), nf, "NaN in R at \(pos)")
                bad[pos] = -.infinity
                assertStatus(status(q, bad, group), nf, "-Inf in R at \(pos)")
            }
            // finite inputs whose products overflow Float
            let hugeQ = [Float](repeating: 3e38, count: m * d), hugeR = [Float](repeating: 3e38, count: n * d)
            var out = [Float](repeating: 0, count: m * 2)
            XCTAssertEqual(mml_group_topk_sim_f32(&out, nil, nil, hugeQ, Int64(m), hugeR, Int64(n), Int64(d), group,
                                                  2, 2, 0), nf, "overflowing products")
        }
    }
}
