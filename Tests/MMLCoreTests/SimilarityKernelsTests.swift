import Foundation
import MMLCore
import MMLKernels
import XCTest

/// The Swift wrappers: results against the naive C twin, and every user-facing error message.
final class SimilarityKernelsTests: XCTestCase {
    func floats(_ count: Int, seed: UInt64) -> [Float] {
        var s = seed
        return (0..<count).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(s >> 40) / Float(1 << 23) - 1
        }
    }

    func testGroupTopKMatchesNaive() throws {
        let m = 17, n = 90, d = 11, k = 3
        let q = floats(m * d, seed: 1), r = floats(n * d, seed: 2)
        let groups = (0..<n).map { Int32($0 % 3) }
        let res = try SimilarityKernels.groupTopK(queries: q, rows: m, references: r, referenceRows: n, dimension: d,
                                                  groups: groups, groupCount: 3, k: k, selections: true)
        var ref = [Double](repeating: 0, count: m * 3)
        XCTAssertEqual(mml_group_topk_sim_naive(&ref, nil, nil, q, Int64(m), r, Int64(n), Int64(d), groups, 3,
                                                Int32(k)), 0)
        for i in 0..<(m * 3) { XCTAssertLessThanOrEqual(abs(Double(res.sums[i]) - ref[i]), 1e-4 + 1e-5 * abs(ref[i])) }
        XCTAssertEqual(res.selectedIndices?.count, m * 3 * k)
        XCTAssertEqual(res.selectedValues?.count, m * 3 * k)
        let plain = try SimilarityKernels.groupTopK(queries: q, rows: m, references: r, referenceRows: n,
                                                    dimension: d, groups: groups, groupCount: 3, k: k)
        XCTAssertNil(plain.selectedIndices)
        XCTAssertNil(plain.selectedValues)

        // backward wrapper: dQ += sum dout * R_j (checked against a direct loop)
        let dout = floats(m * 3, seed: 3)
        var dq = [Float](repeating: 0, count: m * d), dr = [Float](repeating: 0, count: n * d)
        SimilarityKernels.groupTopKBackward(dQueries: &dq, dReferences: &dr, dSums: dout,
                                            selectedIndices: res.selectedIndices!, queries: q, rows: m,
                                            references: r, referenceRows: n, dimension: d, groupCount: 3, k: k)
        var eq = [Double](repeating: 0, count: m * d)
        for i in 0..<m { for c in 0..<3 { for t in 0..<k {
            let j = Int(res.selectedIndices![(i * 3 + c) * k + t])
            for p in 0..<d { eq[i * d + p] += Double(dout[i * 3 + c]) * Double(r[j * d + p]) }
        } } }
        for i in 0..<(m * d) { XCTAssertLessThanOrEqual(abs(Double(dq[i]) - eq[i]), 1e-5) }
    }

    /// precision: .bf16 calls mml_group_topk_sim_bf16 (same bits, selections included), which differs from
    /// .f32; a finite value that rounds to bf16 Inf is reported like an overflow.
    func testGroupTopKBF16Precision() throws {
        let m = 13, n = 60, d = 9, k = 2
        let q = floats(m * d, seed: 4), r = floats(n * d, seed: 5)
        let groups = (0..<n).map { Int32($0 % 3) }
        let res = try SimilarityKernels.groupTopK(queries: q, rows: m, references: r, referenceRows: n, dimension: d,
                                                  groups: groups, groupCount: 3, k: k, selections: true,
                                                  precision: .bf16)
        var out = [Float](repeating: 0, count: m * 3), idx = [Int32](repeating: 0, count: m * 3 * k)
        var val = [Float](repeating: 0, count: m * 3 * k)
        XCTAssertEqual(mml_group_topk_sim_bf16(&out, &idx, &val, q, Int64(m), r, Int64(n), Int64(d), groups, 3,
                                               Int32(k), 0), 0)
        XCTAssertEqual(res.sums.map(\.bitPattern), out.map(\.bitPattern))
        XCTAssertEqual(res.selectedIndices, idx)
        XCTAssertEqual(res.selectedValues?.map(\.bitPattern), val.map(\.bitPattern))
        let f32 = try SimilarityKernels.groupTopK(queries: q, rows: m, references: r, referenceRows: n,
                                                  dimension: d, groups: groups, groupCount: 3, k: k)
        XCTAssertNotEqual(f32.sums, res.sums)
        XCTAssertEqual(SimilarityKernels.bf16Bits(1 + 1.0 / 128 + 1.0 / 256), 0x3F82)  // tie to even, up
        XCTAssertTrue(["avx512bf16", "portable"].contains(SimilarityKernels.bf16Path))
        var big = q
        big[5] = 3.4e38
        assertThrows(.numerical, ["overflowed", "bf16"]) {
            _ = try SimilarityKernels.groupTopK(queries: big, rows: m, references: r, referenceRows: n, dimension: d,
                                                groups: groups, groupCount: 3, k: k, precision: .bf16)
        }
    }

    func assertThrows(_ expectedKind: MMLError.Kind, _ fragments: [String], line: UInt = #line,
                      _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("no error thrown", line: line)
        } catch let e as MMLError {
            XCTAssertEqual(e.kind, expectedKind, line: line)
            for f in fragments { XCTAssertTrue(e.message.contains(f), "'\(e.message)' lacks '\(f)'", line: line) }
        } catch {
            XCTFail("unexpected error \(error)", line: line)
        }
    }

    func testGroupTopKErrorMessages() {
        let d = 4
        let q = floats(2 * d, seed: 4), r = floats(10 * d, seed: 5)
        let groups: [Int32] = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
        func call(_ q: [Float], _ r: [Float], _ g: [Int32], groupCount: Int = 3, k: Int) throws {
            _ = try SimilarityKernels.groupTopK(queries: q, rows: q.count / d, references: r,
                                                referenceRows: r.count / d, dimension: d, groups: g,
                                                groupCount: groupCount, k: k)
        }
        assertThrows(.invalidArgument, ["k = 4 but group 0 has 3 reference rows",
                                        "give every class at least 4 descriptors"]) { try call(q, r, groups, k: 4) }
        assertThrows(.invalidArgument, ["group 3 has 0 reference rows"]) { try call(q, r, groups, groupCount: 4, k: 1) }
        var g = groups
        g[7] = 5
        assertThrows(.invalidArgument, ["reference row 7 has group id 5, outside 0..<3"]) { try call(q, r, g, k: 1) }
        assertThrows(.invalidArgument, ["k = 0"]) { try call(q, r, groups, k: 0) }
        assertThrows(.invalidArgument, ["0 query rows"]) { try call([], r, groups, k: 1) }
        var bq = q
        bq[6] = .nan
        assertThrows(.numerical, ["query row 1, column 2 is nan"]) { try call(bq, r, groups, k: 1) }
        var br = r
        br[37] = -.infinity
        assertThrows(.numerical, ["reference row 9, column 1 is -inf"]) { try call(q, br, groups, k: 1) }
        let huge = [Float](repeating: 3e38, count: 2 * d)
        assertThrows(.numerical, ["overflowed"]) { try call(huge, huge + huge + huge + huge + [3e38, 3e38, 3e38, 3e38, 3e38, 3e38, 3e38, 3e38], groups, k: 1) }
    }

    func testNormalizeWrappers() throws {
        let x = floats(6 * 5, seed: 6)
        let (y, norms) = try SimilarityKernels.l2NormalizeRows(x, rows: 6, dimension: 5)
        var ref = [Double](repeating: 0, count: 30)
        XCTAssertEqual(mml_l2_normalize_rows_naive(&ref, x, 6, 5, 1e-12), 0)
        for i in 0..<30 { XCTAssertLessThanOrEqual(abs(Double(y[i]) - ref[i]), 1e-6) }
        let dx = SimilarityKernels.l2NormalizeRowsBackward(dy: x, y: y, norms: norms, rows: 6, dimension: 5)
        // the gradient is orthogonal to y in each row: <dx_i, y_i> = 0
        for i in 0..<6 {
            let dot = (0..<5).map { Double(dx[i * 5 + $0]) * Double(y[i * 5 + $0]) }.reduce(0, +)
            XCTAssertLessThanOrEqual(abs(dot), 1e-5)
        }
        var bad = x
        bad[13] = .nan
        assertThrows(.numerical, ["row 2, column 3 is nan"]) { _ = try SimilarityKernels.l2NormalizeRows(bad, rows: 6, dimension: 5) }
        assertThrows(.invalidArgument, ["eps 0.0"]) { _ = try SimilarityKernels.l2NormalizeRows(x, rows: 6, dimension: 5, eps: 0) }

        let maps = floats(2 * 3 * 4, seed: 7)  // 2 images, d = 3, hw = 4
        let (rows, rowNorms) = try SimilarityKernels.mapsToRows(maps, count: 2, dimension: 3, positions: 4, normalize: false)
        XCTAssertEqual(rows[(1 * 4 + 2) * 3 + 1].bitPattern, maps[(1 * 3 + 1) * 4 + 2].bitPattern)
        XCTAssertEqual(rowNorms.count, 8)
        var badMaps = maps
        badMaps[1 * 12 + 2 * 4 + 3] = .infinity
        assertThrows(.numerical, ["feature map 1, channel 2, position 3 is inf"]) {
            _ = try SimilarityKernels.mapsToRows(badMaps, count: 2, dimension: 3, positions: 4, normalize: true)
        }
        assertThrows(.invalidArgument, ["positions 0"]) {
            _ = try SimilarityKernels.mapsToRows([], count: 2, dimension: 3, positions: 0, normalize: true)
        }
    }
}
