import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// The AVX2 + FMA paths (CPUs without AVX-512) where they are written to give the AVX-512 paths' bits: the grouped
/// top-K similarity (panel and lanes paths) and its backward, and the layers' GEMM micro-kernel. On a CPU with
/// AVX-512 both paths run in one process (MML_KERNELS_ISA=avx2 and mml_layers_force_avx2 cap the choice at AVX2)
/// and must agree bit for bit; elsewhere these comparisons are skipped (the other kernel tests then run the AVX2
/// path as the dispatched one, against the naive references and across thread counts).
final class AVX2PathTests: XCTestCase {
    /// What mml_kernels_isa() answers with MML_KERNELS_ISA unset.
    func dispatchedISA() -> String {
        let saved = getenv("MML_KERNELS_ISA").map { String(cString: $0) }
        unsetenv("MML_KERNELS_ISA")
        defer { if let saved { setenv("MML_KERNELS_ISA", saved, 1) } }
        return String(cString: mml_kernels_isa())
    }

    func requireAVX512() throws {
        let isa = dispatchedISA()
        try XCTSkipUnless(isa == "avx512",
                          "this CPU's kernels are \(isa): no AVX-512 path to compare the AVX2 one with")
    }

    /// Runs `body` with MML_KERNELS_ISA set to `isa` (nil: unset) and MML_TOPK_LANES to `lanes`, both restored.
    func with<T>(isa: String?, lanes: String, _ body: () -> T) -> T {
        if let isa { setenv("MML_KERNELS_ISA", isa, 1) } else { unsetenv("MML_KERNELS_ISA") }
        setenv("MML_TOPK_LANES", lanes, 1)
        defer { unsetenv("MML_KERNELS_ISA"); unsetenv("MML_TOPK_LANES") }
        return body()
    }

    /// Forward (sums, indices, values) and backward (dQ, dR) of the fp32 top-K on both paths, with the panels and
    /// with the lanes path, over shapes that cut the 6-row, 16-column, 64-column and 16-row tiles.
    func testTopKGivesTheAVX512Bits() throws {
        try requireAVX512()
        var rng = TestRNG(seed: 91)
        let shapes: [(m: Int, sizes: [Int], d: Int)] = [
            (1, [1], 1), (7, [3, 9], 5), (49, [49, 49, 49, 49, 49], 64), (65, [13, 70], 130), (100, [200, 64, 31], 33),
            (147, [49, 98, 25, 5], 128), (13, [600], 17),
        ]
        for (m, sizes, d) in shapes {
            let n = sizes.reduce(0, +)
            for k in [1, 3, 4] where k <= sizes.min()! {
                let q = rng.floats(m * d), r = rng.floats(n * d)
                let group = makeGroups(sizes, shuffled: true, rng: &rng)
                let dout = rng.floats(m * sizes.count)
                for lanes in ["off", "on"] {
                    let what = "m \(m) groups \(sizes) d \(d) k \(k) lanes \(lanes)"
                    let a = with(isa: nil, lanes: lanes) { runTopK(q, m, r, n, d, group, sizes.count, k) }
                    let b = with(isa: "avx2", lanes: lanes) { runTopK(q, m, r, n, d, group, sizes.count, k) }
                    XCTAssertEqual(a.status, 0, what)
                    XCTAssertEqual(b.status, 0, what)
                    XCTAssertEqual(a.out.map(\.bitPattern), b.out.map(\.bitPattern), "sums, " + what)
                    XCTAssertEqual(a.idx, b.idx, "indices, " + what)
                    XCTAssertEqual(a.val.map(\.bitPattern), b.val.map(\.bitPattern), "values, " + what)
                    func backward(_ isa: String?) -> ([Float], [Float]) {
                        with(isa: isa, lanes: lanes) {
                            var dq = [Float](repeating: 0.25, count: m * d), dr = [Float](repeating: -0.5, count: n * d)
                            XCTAssertEqual(mml_group_topk_sim_backward_f32(&dq, &dr, dout, a.idx, q, Int64(m), r,
                                                                           Int64(n), Int64(d), Int32(sizes.count),
                                                                           Int32(k), 0), 0, what)
                            return (dq, dr)
                        }
                    }
                    let (dqA, drA) = backward(nil), (dqB, drB) = backward("avx2")
                    XCTAssertEqual(dqA.map(\.bitPattern), dqB.map(\.bitPattern), "dQ, " + what)
                    XCTAssertEqual(drA.map(\.bitPattern), drB.map(\.bitPattern), "dR, " + what)
                }
            }
        }
    }

    /// C = 0.5 op(A) op(B) + beta C on both micro-kernels, full and partial 8 x 32 tiles, beta 0 and not.
    func testSGEMMGivesTheAVX512Bits() throws {
        try requireAVX512()
        var rng = TestRNG(seed: 92)
        for (m, n, k) in [(1, 1, 1), (8, 32, 256), (13, 70, 300), (64, 1764, 27), (129, 65, 513), (9, 33, 1)] {
            for (ta, tb) in [(Int32(0), Int32(0)), (1, 0), (0, 1), (1, 1)] {
                for beta: Float in [0, 1.5] {
                    let a = rng.floats(m * k), b = rng.floats(k * n), c0 = rng.floats(m * n)
                    let lda = ta != 0 ? m : k, ldb = tb != 0 ? k : n
                    func run(_ avx2: Bool) -> [Float] {
                        mml_layers_force_avx2(avx2 ? 1 : 0)
                        defer { mml_layers_force_avx2(0) }
                        var c = c0
                        XCTAssertEqual(mml_sgemm_f32(ta, tb, Int64(m), Int64(n), Int64(k), 0.5, a, Int64(lda), b,
                                                     Int64(ldb), beta, &c, Int64(n)), 0)
                        return c
                    }
                    XCTAssertEqual(run(false).map(\.bitPattern), run(true).map(\.bitPattern),
                                   "sgemm \(m)x\(n)x\(k) ta=\(ta) tb=\(tb) beta=\(beta)")
                }
            }
        }
    }

    /// The dispatch itself: MML_KERNELS_ISA=avx2 caps the choice at "avx2" on CPUs with AVX-512 (and leaves a CPU
    /// without it as it is), =portable forces "portable", and the FMA probe follows the kernels.
    func testISAChoiceFollowsTheEnvironment() {
        let isa = dispatchedISA()
        XCTAssertTrue(["avx512", "avx2", "portable"].contains(isa), isa)
        let capped = with(isa: "avx2", lanes: "auto") { String(cString: mml_kernels_isa()) }
        XCTAssertEqual(capped, isa == "avx512" ? "avx2" : isa)
        let portable = with(isa: "portable", lanes: "auto") { String(cString: mml_kernels_isa()) }
        XCTAssertEqual(portable, "portable")
        let probe = with(isa: "avx2", lanes: "auto") { String(cString: mml_fp32_fma_probe_isa()) }
        XCTAssertEqual(probe, capped)
    }
}
