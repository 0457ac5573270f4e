import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// mml_group_topk_sim_bf16amx: the AMX path (TDPBF16PS tiles) and the portable path give the same bits over many
/// shapes, thread counts and input kinds; every selected value is bit for bit an independent Swift model of
/// TDPBF16PS's arithmetic (scripts/check-amx-bf16.c found it on the hardware), sums and selections match the double
/// naive twin on the bf16-rounded inputs; the arithmetic really is not bf16's (VDPBF16PS); ties go to the smaller
/// index. Thread counts and errors also run in TopKTests / TopKErrorTests (TopKPrecision.bf16amx).
final class TopKBF16AMXTests: XCTestCase {
    /// Whether the AMX path can run in this process, whatever MML_KERNELS_ISA says (the Makefile runs the kernel
    /// tests a second time with it set to portable).
    let hasAMX: Bool = {
        let saved = getenv("MML_KERNELS_ISA").map { String(cString: $0) }
        unsetenv("MML_KERNELS_ISA")
        defer { if let saved { setenv("MML_KERNELS_ISA", saved, 1) } }
        return mml_amx_status() == 1 && String(cString: mml_kernels_isa()) == "avx512"
    }()

    let amx: TopKKernel = mml_group_topk_sim_bf16amx

    /// Why the AMX path cannot run here (for XCTSkip), from mml_amx_status().
    var noAMXReason: String {
        switch mml_amx_status() {
        case 0: return "this CPU lacks AMX-BF16"
        case -1: return "the OS does not enable the AMX tile state"
        case -2: return "the OS refused this process the AMX tile data (arch_prctl)"
        default: return "this CPU's AVX-512 is not usable (the AMX path selects with AVX-512)"
        }
    }

    func bf(_ x: Float) -> Float { Float(bitPattern: UInt32(mml_bf16_from_f32(x)) << 16) }
    func ftz(_ x: Float) -> Float { abs(x) < Float.leastNormalMagnitude ? (x.sign == .minus ? -0.0 : 0.0) : x }

    /// One dot product with TDPBF16PS's arithmetic, written independently of the C code: the pairs padded with zero
    /// pairs to a multiple of 16; per block of 16 pairs, the even elements' products and the odd elements' in two
    /// chains from +0 (each step a fused multiply-add, `addingProduct`, flushed to a signed zero when denormal),
    /// then acc = FTZ(acc + FTZ(even + odd)).
    func modelDot(_ q: [Float], _ i: Int, _ r: [Float], _ j: Int, _ d: Int) -> Float {
        let pairs = (d + 1) / 2, padded = (pairs + 15) / 16 * 16
        func at(_ x: [Float], _ row: Int, _ p: Int) -> Float { p < d ? bf(x[row * d + p]) : 0 }
        var acc: Float = 0
        for block in stride(from: 0, to: padded, by: 16) {
            var even: Float = 0, odd: Float = 0
            for p in block..<(block + 16) {
                even = ftz(even.addingProduct(at(q, i, 2 * p), at(r, j, 2 * p)))
                odd = ftz(odd.addingProduct(at(q, i, 2 * p + 1), at(r, j, 2 * p + 1)))
            }
            acc = ftz(acc + ftz(even + odd))
        }
        return acc
    }

    /// The same dot product in VDPBF16PS's order (the bf16 kernel's): per pair, odd element first.
    func vdpDot(_ q: [Float], _ i: Int, _ r: [Float], _ j: Int, _ d: Int) -> Float {
        var acc: Float = 0
        for p in stride(from: 0, to: d, by: 2) {
            let a1: Float = p + 1 < d ? bf(q[i * d + p + 1]) : 0, b1: Float = p + 1 < d ? bf(r[j * d + p + 1]) : 0
            acc = ftz(acc.addingProduct(a1, b1))
            acc = ftz(acc.addingProduct(bf(q[i * d + p]), bf(r[j * d + p])))
        }
        return acc
    }

    /// Rows of `d` scaled to unit length (as the heads' descriptors are).
    func unitRows(_ x: [Float], _ d: Int) -> [Float] {
        var y = x
        for i in 0..<(x.count / d) {
            let s = (0..<d).reduce(Float(0)) { $0 + x[i * d + $1] * x[i * d + $1] }.squareRoot()
            for p in 0..<d { y[i * d + p] = x[i * d + p] / s }
        }
        return y
    }

    /// Shapes: m leaving every tail of the 16-row AMX slice (and of the portable path's 6-row one); d odd, below and
    /// above 32 (one 16-pair block), not a multiple of 32; tiny n and groups of one row; widths that are not
    /// multiples of 16 (partial strips) and groups of more than 512 columns (several chunks); k = 1, 3 and 40 (the
    /// heap); several groups, shuffled.
    let shapes: [(m: Int, sizes: [Int], d: Int, k: Int)] = [
        (1, [1], 1, 1), (2, [3, 4], 2, 1), (5, [1, 2, 1], 3, 1), (15, [17, 64, 65], 7, 3), (16, [100, 77], 17, 1),
        (17, [50, 17, 90, 3], 33, 3), (31, [129, 40], 63, 3), (33, [70, 33, 50, 31, 66], 64, 1),
        (13, [64, 16, 200], 65, 3), (40, [300, 211], 130, 3), (6, [513, 700], 31, 1), (20, [45, 60], 64, 40),
        (47, [441, 441, 441], 64, 3),
    ]

    /// The AMX path against the portable path, bit for bit (sums, indices, values), for every shape and input kind,
    /// on 1 and 2 threads.
    func testAMXAndPortablePathsGiveTheSameBits() throws {
        guard hasAMX else { throw XCTSkip("TopKBF16AMXTests: \(noAMXReason), so the AMX path cannot run here") }
        let saved = getenv("MML_KERNELS_ISA").map { String(cString: $0) }
        defer { if let saved { setenv("MML_KERNELS_ISA", saved, 1) } else { unsetenv("MML_KERNELS_ISA") } }
        var rng = TestRNG(seed: 61)
        var compared = 0
        for kind in 0..<4 {
            for s in shapes {
                let n = s.sizes.reduce(0, +)
                let (q, r) = bf16TestInputs(s.m, n, s.d, kind: kind, rng: &rng)
                let group = makeGroups(s.sizes, shuffled: kind % 2 == 1, rng: &rng)
                for threads in [1, 2] {
                    let (fast, portable) = fastAndPortable(isa: mml_group_topk_sim_bf16amx_isa, fastPath: "amx") {
                        runTopK(q, s.m, r, n, s.d, group, s.sizes.count, s.k, threads: threads, kernel: amx)
                    }
                    let what = "kind \(kind) m \(s.m) sizes \(s.sizes) d \(s.d) k \(s.k) threads \(threads)"
                    assertSameBits(fast, portable, what)
                    compared += fast.val.count
                }
            }
        }
        XCTAssertGreaterThan(compared, 10000)
    }

    /// Both paths (the AMX one where it runs) against the naive double twin on the bf16-rounded inputs (to fp32
    /// accumulation error), every selected value bit for bit against modelDot of its own (i, j), selections in the
    /// right group, distinct and descending, and each sum the double sum of its selected values.
    func testBothPathsMatchTheNaiveTwinAndTheModel() {
        var rng = TestRNG(seed: 62)
        forEachISA(avx2: false) { isa in
            for kind in 0..<4 {
                for s in shapes where s.m * s.sizes.reduce(0, +) <= 20000 {
                    let n = s.sizes.reduce(0, +)
                    let (q, r) = bf16TestInputs(s.m, n, s.d, kind: kind, rng: &rng)
                    let group = makeGroups(s.sizes, shuffled: true, rng: &rng)
                    let g = s.sizes.count, k = s.k
                    let f = runTopK(q, s.m, r, n, s.d, group, g, k, kernel: amx)
                    let ref = runNaive(q.map(bf), s.m, r.map(bf), n, s.d, group, g, k)
                    let what = "\(isa) kind \(kind) m \(s.m) sizes \(s.sizes) d \(s.d) k \(k)"
                    XCTAssertEqual(f.status, 0, what)
                    XCTAssertEqual(ref.status, 0, what)
                    guard f.status == 0, ref.status == 0 else { continue }
                    let atol = 2e-6 * Double(s.d * k), rtol = 1e-5
                    var bad = 0, notModel = 0
                    for i in 0..<s.m {
                        for c in 0..<g {
                            let slot = i * g + c
                            if !isClose(Double(f.out[slot]), ref.out[slot], atol: atol, rtol: rtol) { bad += 1 }
                            var seen = Set<Int32>(), sum = 0.0
                            for t in 0..<k {
                                let j = Int(f.idx[slot * k + t])
                                guard j >= 0, j < n else { bad += 1; continue }
                                if group[j] != Int32(c) || seen.contains(Int32(j)) { bad += 1 }
                                seen.insert(Int32(j))
                                let v = f.val[slot * k + t]
                                if v.bitPattern != modelDot(q, i, r, j, s.d).bitPattern { notModel += 1 }
                                if !isClose(Double(v), ref.val[slot * k + t], atol: atol / Double(k), rtol: rtol) {
                                    bad += 1
                                }
                                if t > 0 && v > f.val[slot * k + t - 1] { bad += 1 }
                                sum += Double(v)
                            }
                            if Float(sum).bitPattern != f.out[slot].bitPattern { bad += 1 }
                        }
                    }
                    XCTAssertEqual(bad, 0, "mismatches with the naive twin, \(what)")
                    XCTAssertEqual(notModel, 0, "selected values differing from the TDPBF16PS model, \(what)")
                }
            }
        }
    }

    /// bf16amx is not bf16 under another name: on ordinary unit descriptors (d = 64, 2 blocks of 16 pairs) some
    /// selected values differ from VDPBF16PS's order, and each bf16amx value is the AMX model's, each bf16 value
    /// the VDPBF16PS model's (so the two kernels implement the two arithmetics, on every path).
    func testArithmeticDiffersFromBF16() {
        var rng = TestRNG(seed: 63)
        let m = 30, d = 64, sizes = [100, 100], n = 200, k = 3
        let q = unitRows(rng.floats(m * d), d), r = unitRows(rng.floats(n * d), d)
        let group = makeGroups(sizes, shuffled: true, rng: &rng)
        forEachISA(avx2: false) { isa in
            let a = runTopK(q, m, r, n, d, group, 2, k, kernel: amx)
            let b = runTopK(q, m, r, n, d, group, 2, k, kernel: mml_group_topk_sim_bf16)
            XCTAssertEqual(a.status, 0)
            XCTAssertEqual(b.status, 0)
            var amxNotModel = 0, bf16NotModel = 0, modelsDiffer = 0
            for i in 0..<m {
                for c in 0..<2 {
                    for t in 0..<k {
                        let s = (i * 2 + c) * k + t
                        let ja = Int(a.idx[s]), jb = Int(b.idx[s])
                        if a.val[s].bitPattern != modelDot(q, i, r, ja, d).bitPattern { amxNotModel += 1 }
                        if b.val[s].bitPattern != vdpDot(q, i, r, jb, d).bitPattern { bf16NotModel += 1 }
                        let (x, y) = (modelDot(q, i, r, ja, d), vdpDot(q, i, r, ja, d))
                        if x.bitPattern != y.bitPattern { modelsDiffer += 1 }
                    }
                }
            }
            XCTAssertEqual(amxNotModel, 0, "\(isa): bf16amx values differing from the AMX model")
            XCTAssertEqual(bf16NotModel, 0, "\(isa): bf16 values differing from the VDPBF16PS model")
            XCTAssertGreaterThan(modelsDiffer, 0, "\(isa): the two arithmetics never differed on \(m * 2 * k) values")
        }
    }

    /// Equal products (duplicated reference rows) go to the smaller index, on both paths, and the paths agree.
    func testTiesGoToTheSmallerIndex() {
        var rng = TestRNG(seed: 64)
        let m = 21, d = 37, n = 90, k = 3
        var r = rng.floats(n * d)
        // rows 3t+1 and 3t+2 copy row 3t, so every value appears three times in a row
        for j in 0..<n where j % 3 != 0 { for p in 0..<d { r[j * d + p] = r[(j - j % 3) * d + p] } }
        let q = rng.floats(m * d)
        let group = [Int32](repeating: 0, count: n)
        var results: [TopKResult] = []
        forEachISA(avx2: false) { isa in
            let f = runTopK(q, m, r, n, d, group, 1, k, kernel: amx)
            XCTAssertEqual(f.status, 0)
            for i in 0..<m {
                // the best value is held by three rows 3t, 3t+1, 3t+2: all three are selected, in that order
                let best = (0..<(n / 3)).max { modelDot(q, i, r, 3 * $0, d) < modelDot(q, i, r, 3 * $1, d) }!
                XCTAssertEqual(Array(f.idx[(i * k)..<(i * k + k)]), [Int32(3 * best), Int32(3 * best + 1),
                                                                     Int32(3 * best + 2)], "\(isa) query \(i)")
            }
            results.append(f)
        }
        XCTAssertEqual(results[0].idx, results[1].idx)
        XCTAssertEqual(results[0].val.map(\.bitPattern), results[1].val.map(\.bitPattern))
    }

    /// The flush-to-zero rule really acts inside a chain: q = r = (2^-70, 2^-70) gives two denormal products
    /// (2^-140) in different chains, each flushed to +0; fp32 keeps them. And an fp32 denormal input reads as zero.
    func testTinyInputsAreFlushed() {
        let x = Float(sign: .plus, exponent: -70, significand: 1)
        forEachISA(avx2: false) { isa in
            let res = runTopK([x, x], 1, [x, x], 1, 2, [0], 1, 1, kernel: amx)
            XCTAssertEqual(res.status, 0)
            XCTAssertEqual(res.out[0].bitPattern, Float(0).bitPattern, isa)
            let den = Float(sign: .plus, exponent: -130, significand: 1)
            XCTAssertEqual(runTopK([den, 1], 1, [1, 1], 1, 2, [0], 1, 1, kernel: amx).out[0], 1, isa)
        }
        XCTAssertGreaterThan(runTopK([x, x], 1, [x, x], 1, 2, [0], 1, 1).out[0], 0)
    }

    /// On unit descriptors the bf16amx sums stay within the bf16 rounding bound of fp32's (as bf16's do).
    func testDifferenceFromF32IsBounded() {
        var rng = TestRNG(seed: 65)
        let m = 60, d = 64, sizes = [441, 441, 441], n = 1323, k = 3
        let q = unitRows(rng.floats(m * d), d), r = unitRows(rng.floats(n * d), d)
        let group = makeGroups(sizes, shuffled: true, rng: &rng)
        let a = runTopK(q, m, r, n, d, group, 3, k, kernel: amx), b = runTopK(q, m, r, n, d, group, 3, k)
        XCTAssertEqual(a.status, 0)
        var worst: Float = 0
        for s in 0..<(m * 3) { worst = max(worst, abs(a.out[s] - b.out[s])) }
        XCTAssertLessThanOrEqual(worst, Float(k) * (1.0 / 256 + 1e-5))
        XCTAssertGreaterThan(worst, 0)
    }
}
