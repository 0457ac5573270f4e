import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// Every status code of the grouped top-K kernels, for every precision (mml_group_topk_sim_f32, _bf16 and _bf16amx)
/// on both paths; the naive twin's status on the same arguments too.
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

    /// The status of precision `p`'s kernel and of the naive twin on the same arguments (no selections asked).
    func status(_ p: TopKPrecision, _ q: [Float], _ r: [Float], _ group: [Int32], groups: Int = 2, k: Int = 2,
                m: Int? = nil, n: Int? = nil, d: Int? = nil) -> (kernel: Int32, naive: Int32) {
        let mm = m ?? self.m, nn = n ?? self.n, dd = d ?? self.d
        var out = [Float](repeating: 0, count: max(1, mm * groups))
        var outd = [Double](repeating: 0, count: max(1, mm * groups))
        let a = p.kernel(&out, nil, nil, q, Int64(mm), r, Int64(nn), Int64(dd), group, Int32(groups), Int32(k), 0)
        let b = mml_group_topk_sim_naive(&outd, nil, nil, q, Int64(mm), r, Int64(nn), Int64(dd), group,
                                         Int32(groups), Int32(k))
        return (a, b)
    }

    func assertStatus(_ got: (kernel: Int32, naive: Int32), _ want: Int32, _ p: TopKPrecision, _ what: String,
                      line: UInt = #line) {
        XCTAssertEqual(got.kernel, want, "\(p): \(what)", line: line)
        XCTAssertEqual(got.naive, want, "naive (\(p) run): \(what)", line: line)
    }

    func testArgumentErrors() {
        for p in TopKPrecision.allCases {
            forEachISA { isa in
                let arg = Int32(MML_ERR_ARGUMENT)
                assertStatus(status(p, q, r, group), 0, p, "valid arguments, \(isa)")
                assertStatus(status(p, q, r, group, m: 0), arg, p, "m = 0")
                assertStatus(status(p, q, r, group, n: 0), arg, p, "n = 0")
                assertStatus(status(p, q, r, group, d: 0), arg, p, "d = 0")
                assertStatus(status(p, q, r, group, m: -3), arg, p, "m < 0")
                assertStatus(status(p, q, r, group, groups: 0), arg, p, "no groups")
                assertStatus(status(p, q, r, group, k: 0), arg, p, "k = 0")
                var g = group
                g[7] = 2
                assertStatus(status(p, q, r, g), arg, p, "group id = n_groups")
                g[7] = -1
                assertStatus(status(p, q, r, g), arg, p, "negative group id")
                var out = [Float](repeating: 0, count: m * 2)
                let (mm, nn, dd) = (Int64(m), Int64(n), Int64(d))
                XCTAssertEqual(p.kernel(nil, nil, nil, q, mm, r, nn, dd, group, 2, 1, 0), arg, "\(p): out nil")
                XCTAssertEqual(p.kernel(&out, nil, nil, nil, mm, r, nn, dd, group, 2, 1, 0), arg, "\(p): Q nil")
                XCTAssertEqual(p.kernel(&out, nil, nil, q, mm, nil, nn, dd, group, 2, 1, 0), arg, "\(p): R nil")
                XCTAssertEqual(p.kernel(&out, nil, nil, q, mm, r, nn, dd, nil, 2, 1, 0), arg, "\(p): group nil")
                XCTAssertEqual(p.kernel(&out, nil, nil, q, mm, r, nn, dd, group, 2, 1, -1), arg, "\(p): threads < 0")
            }
        }
    }

    func testKTooLarge() {
        for p in TopKPrecision.allCases {
            forEachISA { _ in
                let big = Int32(MML_ERR_K_TOO_LARGE)
                assertStatus(status(p, q, r, group, k: 21), big, p, "k = 21 > group size 20")
                var rng = TestRNG(seed: 22)
                assertStatus(status(p, q, r, makeGroups([37, 3], shuffled: true, rng: &rng), k: 4), big, p,
                             "group of 3, k = 4")
                // group 2 exists (n_groups = 3) but no row belongs to it
                assertStatus(status(p, q, r, group, groups: 3, k: 1), big, p, "empty group")
            }
        }
    }

    func testNonFiniteInputs() {
        for p in TopKPrecision.allCases {
            forEachISA { _ in
                let nf = Int32(MML_ERR_NONFINITE)
                for pos in [0, 17, m * d - 1] {  // first, middle, last element (vector tails)
                    var bad = q
                    bad[pos] = .nan
                    assertStatus(status(p, bad, r, group), nf, p, "NaN in Q at \(pos)")
                    bad[pos] = .infinity
                    assertStatus(status(p, bad, r, group), nf, p, "Inf in Q at \(pos)")
                    if p != .f32 {  // finite, but rounds to bf16 Inf (the naive twin sees a finite value)
                        bad[pos] = 3.4e38
                        XCTAssertEqual(status(p, bad, r, group).kernel, nf, "\(p): Q value rounding to Inf at \(pos)")
                    }
                }
                for pos in [0, 101, n * d - 1] {
                    var bad = r
                    bad[pos] = .nan
                    assertStatus(status(p, q, bad, group), nf, p, "NaN in R at \(pos)")
                    bad[pos] = -.infinity
                    assertStatus(status(p, q, bad, group), nf, p, "-Inf in R at \(pos)")
                    if p != .f32 {
                        bad[pos] = -3.4e38
                        XCTAssertEqual(status(p, q, bad, group).kernel, nf, "\(p): R value rounding to -Inf at \(pos)")
                    }
                }
                // finite inputs whose products overflow Float (in double, the naive twin's, they do not)
                let hugeQ = [Float](repeating: 3e38, count: m * d), hugeR = [Float](repeating: 3e38, count: n * d)
                XCTAssertEqual(status(p, hugeQ, hugeR, group).kernel, nf, "\(p): overflowing products")
            }
        }
    }
}
