import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// mml_group_topk_sim_bf16: the AVX512-BF16 path and the portable path give the same bits; both against the
/// double-precision naive twin run on the bf16-rounded inputs, and every selected value against an independent
/// Swift model of VDPBF16PS's arithmetic; and the rounding helper mml_bf16_from_f32. Thread counts and errors: the
/// f32 tests run for both precisions (TopKTests.testThreadCountDoesNotChangeResults, TopKErrorTests).
final class TopKBF16Tests: XCTestCase {
    /// The CPU has the fast path (then the "auto" runs below must take it, or the comparison proves nothing).
    /// Whether the fast path exists on this CPU, whatever MML_KERNELS_ISA says (the Makefile runs the kernel tests a
    /// second time with it set to portable).
    let hasBF16: Bool = {
        let saved = getenv("MML_KERNELS_ISA").map { String(cString: $0) }
        unsetenv("MML_KERNELS_ISA")
        defer { if let saved { setenv("MML_KERNELS_ISA", saved, 1) } }
        return (mml_cpu_features() & UInt32(MML_CPU_AVX512BF16)) != 0 && String(cString: mml_kernels_isa()) == "avx512"
    }()

    /// The kernel under test (runTopK's `kernel`).
    let bf16: TopKKernel = mml_group_topk_sim_bf16

    /// x rounded to bf16 as the kernel rounds it, back as a Float.
    func bf(_ x: Float) -> Float { Float(bitPattern: UInt32(mml_bf16_from_f32(x)) << 16) }

    /// One dot product with VDPBF16PS's arithmetic, written independently of the C code: per pair, odd element
    /// first, each step a fused multiply-add (`addingProduct`, one rounding) with a denormal result flushed to
    /// a zero of its sign.
    func modelDot(_ q: [Float], _ i: Int, _ r: [Float], _ j: Int, _ d: Int) -> Float {
        func ftz(_ x: Float) -> Float { abs(x) < Float.leastNormalMagnitude ? (x.sign == .minus ? -0.0 : 0.0) : x }
        var acc: Float = 0
        for p in stride(from: 0, to: d, by: 2) {
            let a0 = bf(q[i * d + p]), b0 = bf(r[j * d + p])
            let a1: Float = p + 1 < d ? bf(q[i * d + p + 1]) : 0, b1: Float = p + 1 < d ? bf(r[j * d + p + 1]) : 0
            acc = ftz(acc.addingProduct(a1, b1))
            acc = ftz(acc.addingProduct(a0, b0))
        }
        return acc
    }

    /// Against the naive double twin on the bf16-rounded inputs (sums and selected values to fp32 accumulation
    /// error), and each selected value bit for bit against modelDot of its own (i, j); selections are in the
    /// right group, distinct and descending; the sum is the selected values' sum.
    func checkAgainstReferences(_ q: [Float], _ m: Int, _ r: [Float], _ n: Int, _ d: Int, _ group: [Int32],
                                _ g: Int, _ k: Int, threads: Int = 0, line: UInt = #line) {
        let f = runTopK(q, m, r, n, d, group, g, k, threads: threads, kernel: bf16)
        let ref = runNaive(q.map(bf), m, r.map(bf), n, d, group, g, k)
        XCTAssertEqual(f.status, 0, "status", line: line)
        XCTAssertEqual(ref.status, 0, "naive status", line: line)
        guard f.status == 0, ref.status == 0 else { return }
        let atol = 2e-6 * Double(d * k), rtol = 1e-5
        var bad = 0, notModel = 0
        for i in 0..<m {
            for c in 0..<g {
                let s = i * g + c
                if !isClose(Double(f.out[s]), ref.out[s], atol: atol, rtol: rtol) { bad += 1 }
                var seen = Set<Int32>(), sum = 0.0
                for t in 0..<k {
                    let j = Int(f.idx[s * k + t])
                    guard j >= 0, j < n else { bad += 1; continue }
                    if group[j] != Int32(c) || seen.contains(Int32(j)) { bad += 1 }
                    seen.insert(Int32(j))
                    if f.val[s * k + t].bitPattern != modelDot(q, i, r, j, d).bitPattern { notModel += 1 }
                    if !isClose(Double(f.val[s * k + t]), ref.val[s * k + t], atol: atol / Double(k), rtol: rtol) {
                        bad += 1
                    }
                    if t > 0 && f.val[s * k + t] > f.val[s * k + t - 1] { bad += 1 }
                    sum += Double(f.val[s * k + t])
                }
                if Float(sum).bitPattern != f.out[s].bitPattern { bad += 1 }
            }
        }
        XCTAssertEqual(bad, 0, "mismatches with the naive twin for m \(m) n \(n) d \(d) groups \(g) k \(k)", line: line)
        XCTAssertEqual(notModel, 0, "selected values differing from the VDPBF16PS model, m \(m) n \(n) d \(d)",
                       line: line)
    }

    /// Shapes: d odd, below / above / not a multiple of 32 pairs; unequal and shuffled groups (partial panels and
    /// strips); k = 1 and 3; query counts leaving every tail of the 6-row block.
    let shapes: [(m: Int, sizes: [Int], d: Int, k: Int)] = [
        (1, [5], 1, 1), (2, [3, 4], 2, 1), (7, [17, 64, 65], 7, 3), (8, [100, 77], 17, 1), (9, [50, 17, 90, 3], 33, 3),
        (10, [129, 40], 63, 3), (11, [70, 33, 50, 31, 66], 64, 1), (13, [64, 16, 200], 65, 3),
        (37, [300, 211], 130, 3), (6, [513, 700], 31, 1),
    ]

    func inputs(_ m: Int, _ n: Int, _ d: Int, kind: Int, rng: inout TestRNG) -> ([Float], [Float]) {
        bf16TestInputs(m, n, d, kind: kind, rng: &rng)
    }

    func testFastAndPortablePathsGiveTheSameBits() {
        let saved = getenv("MML_KERNELS_ISA").map { String(cString: $0) }
        defer { if let saved { setenv("MML_KERNELS_ISA", saved, 1) } else { unsetenv("MML_KERNELS_ISA") } }
        if !hasBF16 { print("TopKBF16Tests: no AVX512-BF16 here; both runs take the portable path") }
        var rng = TestRNG(seed: 41)
        var compared = 0
        for kind in 0..<4 {
            for s in shapes {
                let n = s.sizes.reduce(0, +)
                let (q, r) = inputs(s.m, n, s.d, kind: kind, rng: &rng)
                let group = makeGroups(s.sizes, shuffled: kind % 2 == 1, rng: &rng)
                let (fast, portable) = fastAndPortable(isa: mml_group_topk_sim_bf16_isa,
                                                       fastPath: hasBF16 ? "avx512bf16" : "portable") {
                    runTopK(q, s.m, r, n, s.d, group, s.sizes.count, s.k, kernel: bf16)
                }
                let what = "kind \(kind) m \(s.m) sizes \(s.sizes) d \(s.d) k \(s.k)"
                assertSameBits(fast, portable, what)
                compared += fast.val.count
            }
        }
        XCTAssertGreaterThan(compared, 1000)
    }

    func testBothPathsMatchTheNaiveTwinAndTheModel() {
        var rng = TestRNG(seed: 42)
        forEachISA(avx2: false) { _ in
            for kind in [0, 1, 2, 3] {
                for s in shapes {
                    let n = s.sizes.reduce(0, +)
                    let (q, r) = inputs(s.m, n, s.d, kind: kind, rng: &rng)
                    checkAgainstReferences(q, s.m, r, n, s.d, makeGroups(s.sizes, shuffled: true, rng: &rng),
                                           s.sizes.count, s.k)
                }
            }
        }
    }

    /// The tiny inputs really reach the flush-to-zero rule (else the tiny case above would test nothing new).
    func testTinyInputsAreFlushed() {
        // q = r = (2^-70, 2^-70): each product 2^-140 is a denormal, flushed to +0 at each step; fp32 would keep it.
        let x = Float(sign: .plus, exponent: -70, significand: 1)
        let res = runTopK([x, x], 1, [x, x], 1, 2, [0], 1, 1, kernel: bf16)
        XCTAssertEqual(res.status, 0)
        XCTAssertEqual(res.out[0].bitPattern, Float(0).bitPattern)
        let f32 = runTopK([x, x], 1, [x, x], 1, 2, [0], 1, 1)
        XCTAssertGreaterThan(f32.out[0], 0)
        // an fp32 denormal input is read as zero: 2^-130 * 1 + 1 * 1 = 1 exactly
        let den = Float(sign: .plus, exponent: -130, significand: 1)
        XCTAssertEqual(runTopK([den, 1], 1, [1, 1], 1, 2, [0], 1, 1, kernel: bf16).out[0], 1)
    }

    /// On unit-length descriptors each product moves by at most ~2^-8 from fp32 (two relative roundings of 2^-9),
    /// so a sum of k selected products by at most k (2^-8 + accumulation): the top-k sum is 1-Lipschitz per term.
    func testDifferenceFromF32IsBounded() {
        var rng = TestRNG(seed: 44)
        let m = 60, d = 64, sizes = [441, 441, 441], n = 1323, k = 3
        func unit(_ x: [Float]) -> [Float] {
            var y = x
            for i in 0..<(x.count / d) {
                let s = sqrt((0..<d).reduce(Float(0)) { $0 + x[i * d + $1] * x[i * d + $1] })
                for p in 0..<d { y[i * d + p] = x[i * d + p] / s }
            }
            return y
        }
        let q = unit(rng.floats(m * d)), r = unit(rng.floats(n * d))
        let group = makeGroups(sizes, shuffled: true, rng: &rng)
        let a = runTopK(q, m, r, n, d, group, 3, k, kernel: bf16), b = runTopK(q, m, r, n, d, group, 3, k)
        XCTAssertEqual(a.status, 0)
        var worst: Float = 0
        for s in 0..<(m * 3) { worst = max(worst, abs(a.out[s] - b.out[s])) }
        XCTAssertLessThanOrEqual(worst, Float(k) * (1.0 / 256 + 1e-5))
        XCTAssertGreaterThan(worst, 0)  // the bf16 path is really in use
    }

    /// mml_bf16_from_f32 on hand-computed cases (bits in, bits out).
    func testRoundingHelper() {
        let cases: [(UInt32, UInt16, String)] = [
            (0x3F80_0000, 0x3F80, "1 exact"),
            (0xBFC0_0000, 0xBFC0, "-1.5 exact"),
            (0x3F80_7FFF, 0x3F80, "just below half an ulp: down"),
            (0x3F80_8000, 0x3F80, "tie, even (0x3F80) kept: down"),
            (0x3F81_8000, 0x3F82, "tie, odd (0x3F81): up to even"),
            (0x3F80_8001, 0x3F81, "just above half: up"),
            (0xBF81_8000, 0xBF82, "negative tie rounds away to even"),
            (0x3EAA_AAAB, 0x3EAB, "1/3: up"),
            (0x3F7F_FFFF, 0x3F80, "carry into the exponent"),
            (0x7F7F_7FFF, 0x7F7F, "largest value that stays finite"),
            (0x7F7F_8000, 0x7F80, "tie at the top: to even = Inf"),
            (0x7F7F_FFFF, 0x7F80, "FLT_MAX: Inf"),
            (0xFF7F_FFFF, 0xFF80, "-FLT_MAX: -Inf"),
            (0x7F80_0000, 0x7F80, "Inf"),
            (0xFF80_0000, 0xFF80, "-Inf"),
            (0x7FC0_0000, 0x7FC0, "quiet NaN"),
            (0x7F80_0001, 0x7FC0, "signalling NaN, payload only in the low bits: quietened"),
            (0xFF81_2345, 0xFFC1, "negative signalling NaN: upper payload kept, quietened"),
            (0x7FFF_FFFF, 0x7FFF, "NaN, all payload bits: not rounded into Inf or wrapped"),
            (0x0000_0000, 0x0000, "+0"),
            (0x8000_0000, 0x8000, "-0"),
            (0x0000_0001, 0x0000, "smallest denormal: +0"),
            (0x807F_FFFF, 0x8000, "largest negative denormal: -0 (not rounded up to a normal)"),
            (0x0080_0000, 0x0080, "FLT_MIN"),
            (0x0080_8000, 0x0080, "tie just above FLT_MIN: even"),
            (0x0080_C000, 0x0081, "above the tie: up"),
        ]
        for (x, want, what) in cases {
            let got = mml_bf16_from_f32(Float(bitPattern: x))
            XCTAssertEqual(got, want, "\(String(x, radix: 16)) -> \(String(got, radix: 16)), want \(String(want, radix: 16)): \(what)")
        }
    }
}
