import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// mml_group_topk_sim_f32 against its double-precision naive twin, on both kernel paths.
final class TopKTests: XCTestCase {
    /// Compares sums, and checks the selections: each selected index is in the right group, distinct, its
    /// value is its own inner product, values descend, and the t-th value matches the naive t-th value.
    /// With `exactIndices` (integer-valued inputs, where float and double agree exactly) the indices must equal
    /// the naive ones, which tests the tie rule.
    func check(_ q: [Float], _ m: Int, _ r: [Float], _ n: Int, _ d: Int, _ group: [Int32], _ g: Int, _ k: Int,
               threads: Int = 0, exactIndices: Bool = false, file: StaticString = #filePath, line: UInt = #line) {
        let f = runTopK(q, m, r, n, d, group, g, k, threads: threads)
        let ref = runNaive(q, m, r, n, d, group, g, k)
        XCTAssertEqual(f.status, 0, "status", file: file, line: line)
        XCTAssertEqual(ref.status, 0, "naive status", file: file, line: line)
        guard f.status == 0, ref.status == 0 else { return }
        let atol = 1e-5 * Double(d * k), rtol = 1e-5
        var bad = 0
        for i in 0..<m {
            for c in 0..<g {
                let s = i * g + c
                if !isClose(Double(f.out[s]), ref.out[s], atol: atol, rtol: rtol) { bad += 1 }
                var seen = Set<Int32>()
                for t in 0..<k {
                    let j = Int(f.idx[s * k + t])
                    guard j >= 0, j < n else { bad += 1; continue }
                    if group[j] != Int32(c) || seen.contains(Int32(j)) { bad += 1 }
                    seen.insert(Int32(j))
                    let own = dotDouble(q, i, r, j, d)
                    if !isClose(Double(f.val[s * k + t]), own, atol: atol / Double(k), rtol: rtol) { bad += 1 }
                    if !isClose(Double(f.val[s * k + t]), ref.val[s * k + t], atol: atol / Double(k), rtol: rtol) {
                        bad += 1
                    }
                    if t > 0 && f.val[s * k + t] > f.val[s * k + t - 1] { bad += 1 }
                    if exactIndices && f.idx[s * k + t] != ref.idx[s * k + t] { bad += 1 }
                }
            }
        }
        XCTAssertEqual(bad, 0, "mismatches for m \(m) n \(n) d \(d) groups \(g) k \(k)", file: file, line: line)
    }

    func testSizeOne() {
        forEachISA { _ in check([0.5], 1, [-2], 1, 1, [0], 1, 1) }
    }

    func testPrimeShapes() {
        var rng = TestRNG(seed: 11)
        forEachISA { _ in
            for (m, n, d, g, k) in [(37, 101, 7, 3, 1), (37, 101, 7, 3, 3), (13, 211, 17, 5, 2), (41, 97, 130, 1, 5),
                                    (7, 300, 65, 4, 3), (61, 1031, 64, 5, 3),
                                    (29, 1201, 23, 2, 3), (13, 1543, 64, 1, 2)] {
                let q = rng.floats(m * d), r = rng.floats(n * d)
                var sizes = [Int](repeating: n / g, count: g)
                sizes[g - 1] += n - sizes.reduce(0, +)
                check(q, m, r, n, d, makeGroups(sizes, shuffled: false, rng: &rng), g, k)
            }
        }
    }

    func testKEqualsGroupSize() {
        var rng = TestRNG(seed: 12)
        forEachISA { _ in
            // small k (sorted buffer), k > 32 (heap), k = 1 group of 1, and uneven groups where the smallest sets k.
            for (sizes, k, d) in [([3, 3, 3], 3, 5), ([40, 40], 40, 9), ([1, 1, 1, 1], 1, 3), ([70, 33, 50], 33, 16),
                                  ([300], 300, 8)] {
                let n = sizes.reduce(0, +), m = 11
                let q = rng.floats(m * d), r = rng.floats(n * d)
                check(q, m, r, n, d, makeGroups(sizes, shuffled: false, rng: &rng), sizes.count, k)
            }
        }
    }

    func testNonContiguousGroups() {
        var rng = TestRNG(seed: 13)
        forEachISA { _ in
            for (sizes, k) in [([50, 17, 90, 3], 3), ([200, 150], 40), ([5, 5, 5, 5, 5], 5), ([700, 650], 40),
                               ([1100, 513], 3)] {
                let n = sizes.reduce(0, +), m = 23, d = 19
                let q = rng.floats(m * d), r = rng.floats(n * d)
                check(q, m, r, n, d, makeGroups(sizes, shuffled: true, rng: &rng), sizes.count, k)
            }
        }
    }

    /// Integer-valued inputs and duplicated reference rows: many exact ties, which must go to the smaller index.
    func testTiesGoToTheSmallerIndex() {
        var rng = TestRNG(seed: 14)
        forEachISA { _ in
            for (m, n, d, g, k, shuffled) in [(19, 120, 5, 3, 3, false), (9, 257, 3, 2, 7, true), (5, 90, 2, 3, 30, true), (5, 120, 2, 3, 40, true)] {
                let q = (0..<(m * d)).map { _ in Float(rng.int(5) - 2) }
                var r = (0..<(n * d)).map { _ in Float(rng.int(5) - 2) }
                for j in stride(from: 1, to: n, by: 3) {  // duplicate rows
                    for p in 0..<d { r[j * d + p] = r[(j - 1) * d + p] }
                }
                var sizes = [Int](repeating: n / g, count: g)
                sizes[g - 1] += n - sizes.reduce(0, +)
                check(q, m, r, n, d, makeGroups(sizes, shuffled: shuffled, rng: &rng), g, k, exactIndices: true)
            }
            // all-equal products: the selection must be the k smallest indices of each group
            let n = 100, d = 4, m = 3
            let res = runTopK([Float](repeating: 1, count: m * d), m, [Float](repeating: 0.5, count: n * d), n, d,
                              makeGroups([50, 50], shuffled: false, rng: &rng), 2, 4)
            XCTAssertEqual(res.status, 0)
            XCTAssertEqual(Array(res.idx[0..<8]), [0, 1, 2, 3, 50, 51, 52, 53])
        }
    }

    /// The largest product sits at the first, then at the last index of a group (panel and strip edges).
    func testMaximumAtFirstAndLastIndex() {
        var rng = TestRNG(seed: 15)
        forEachISA { _ in
            for (sizes, d) in [([100, 77], 64), ([16, 64, 65], 7), ([1000], 33)] {
                let n = sizes.reduce(0, +), m = 8
                var q = rng.floats(m * d)
                for i in 0..<(m * d) { q[i] = abs(q[i]) + 0.1 }  // every query has positive entries
                var r = rng.floats(n * d).map { $0 * 0.1 }
                let group = makeGroups(sizes, shuffled: false, rng: &rng)
                var first = 0
                for (c, s) in sizes.enumerated() {
                    let hot = c % 2 == 0 ? first : first + s - 1
                    for p in 0..<d { r[hot * d + p] = 1 }  // beats every other row of the group for every query
                    first += s
                }
                check(q, m, r, n, d, group, sizes.count, 1)
                let res = runTopK(q, m, r, n, d, group, sizes.count, 1)
                first = 0
                for (c, s) in sizes.enumerated() {
                    let hot = Int32(c % 2 == 0 ? first : first + s - 1)
                    for i in 0..<m { XCTAssertEqual(res.idx[i * sizes.count + c], hot, "group \(c) query \(i)") }
                    first += s
                }
            }
        }
    }

    /// Every thread count gives the same bits (each product is computed the same way whichever thread owns it), for
    /// every precision (mml_group_topk_sim_f32 at d = 64, mml_group_topk_sim_bf16 at d = 50, _bf16amx at d = 50:
    /// 25 pairs, padded to 32) on both paths.
    func testThreadCountDoesNotChangeResults() {
        for p in TopKPrecision.allCases {
            let (seed, d): (UInt64, Int) = p == .f32 ? (16, 64) : p == .bf16 ? (43, 50) : (45, 50)
            var rng = TestRNG(seed: seed)
            forEachISA { isa in
                let m = 301, n = 777, g = 5, k = 3
                let q = rng.floats(m * d), r = rng.floats(n * d)
                let group = makeGroups([155, 155, 155, 155, 157], shuffled: true, rng: &rng)
                let one = runTopK(q, m, r, n, d, group, g, k, threads: 1, kernel: p.kernel)
                XCTAssertEqual(one.status, 0, "\(p) \(isa), 1 thread")
                for t in [2, 3, 0] {
                    let other = runTopK(q, m, r, n, d, group, g, k, threads: t, kernel: p.kernel)
                    let what = "\(p) \(isa), threads \(t)"
                    XCTAssertEqual(other.status, 0, what)
                    XCTAssertEqual(one.out.map(\.bitPattern), other.out.map(\.bitPattern), what)
                    XCTAssertEqual(one.idx, other.idx, what)
                    XCTAssertEqual(one.val.map(\.bitPattern), other.val.map(\.bitPattern), what)
                }
            }
        }
    }

    /// The two paths agree with each other to rounding.
    func testPathsAgree() {
        var rng = TestRNG(seed: 17)
        let m = 50, n = 500, d = 40, g = 4, k = 3
        let q = rng.floats(m * d), r = rng.floats(n * d)
        let group = makeGroups([125, 125, 125, 125], shuffled: false, rng: &rng)
        unsetenv("MML_KERNELS_ISA")
        let a = runTopK(q, m, r, n, d, group, g, k)
        setenv("MML_KERNELS_ISA", "portable", 1)
        let b = runTopK(q, m, r, n, d, group, g, k)
        unsetenv("MML_KERNELS_ISA")
        XCTAssertEqual(a.status, 0)
        XCTAssertEqual(b.status, 0)
        for s in 0..<(m * g) { XCTAssertTrue(isClose(Double(a.out[s]), Double(b.out[s]), atol: 1e-4, rtol: 1e-5)) }
    }

    func testSelectionsAreOptional() {
        var rng = TestRNG(seed: 18)
        let m = 9, n = 60, d = 8, g = 3, k = 2
        let q = rng.floats(m * d), r = rng.floats(n * d)
        let group = makeGroups([20, 20, 20], shuffled: false, rng: &rng)
        var out = [Float](repeating: 0, count: m * g)
        XCTAssertEqual(mml_group_topk_sim_f32(&out, nil, nil, q, Int64(m), r, Int64(n), Int64(d), group, 3, 2, 1), 0)
        let full = runTopK(q, m, r, n, d, group, g, k)
        XCTAssertEqual(out.map(\.bitPattern), full.out.map(\.bitPattern))
    }
}
