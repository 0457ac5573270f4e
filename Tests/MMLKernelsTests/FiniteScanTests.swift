import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// mml_scan_finite, the finite check of every kernel (common/finite_scan.c), on each code path against a naive
/// reference: the answer, the largest magnitude, wherever a bad value sits in the vector loops (body of 32, tails of
/// 1-15 and 16-31), for NaN, +-Inf, the largest finite float, subnormals and signed zeros. A path the CPU lacks runs
/// the best it has, so on an AVX2 machine level 2 checks the AVX2 path again.
final class FiniteScanTests: XCTestCase {
    private func naive(_ x: [Float]) -> (finite: Bool, amax: Float) {
        var amax: Float = 0
        for v in x {
            if !v.isFinite { return (false, 0) }
            amax = max(amax, abs(v))
        }
        return (true, amax)
    }

    private func scan(_ level: Int32, _ x: [Float]) -> (finite: Bool, amax: Float) {
        var amax: Float = -1
        let ok = x.withUnsafeBufferPointer { mml_scan_finite(level, $0.baseAddress, Int64(x.count), &amax) }
        return (ok == 1, amax)
    }

    func testEveryPathAgreesWithTheNaiveScan() {
        var rng = TestRNG(seed: 2026)
        let specials: [Float] = [.nan, .infinity, -.infinity, -Float.signalingNaN, .greatestFiniteMagnitude,
                                 -.greatestFiniteMagnitude, .leastNonzeroMagnitude, -0.0, 1e-40]
        var cases = 0
        for count in [1, 7, 15, 16, 17, 31, 32, 33, 47, 63, 64, 100, 257] {
            let base = (0 ..< count).map { _ in rng.float() * 3 }
            var inputs = [base, base.map { $0 * 1e-39 }, [Float](repeating: -0.0, count: count)]
            for at in Set([0, count / 2, count - 1, min(count - 1, 31), min(count - 1, 32)]) {
                for s in specials {
                    var x = base
                    x[at] = s
                    inputs.append(x)
                }
            }
            for x in inputs {
                let want = naive(x)
                for level: Int32 in [0, 1, 2] {
                    let got = scan(level, x)
                    XCTAssertEqual(got.finite, want.finite, "level \(level), count \(count)")
                    if want.finite {
                        XCTAssertEqual(got.amax.bitPattern, want.amax.bitPattern, "level \(level), count \(count)")
                    }
                    cases += 1
                }
            }
        }
        XCTAssertGreaterThan(cases, 1000)
    }

    func testEmptyInputIsFiniteWithZeroMagnitude() {
        for level: Int32 in [0, 1, 2] {
            var amax: Float = -1
            XCTAssertEqual(mml_scan_finite(level, nil, 0, &amax), 1)
            XCTAssertEqual(amax.bitPattern, Float(0).bitPattern)
            let one: [Float] = [.nan]
            XCTAssertEqual(one.withUnsafeBufferPointer { mml_scan_finite(level, $0.baseAddress, 0, nil) }, 1)
            XCTAssertEqual(one.withUnsafeBufferPointer { mml_scan_finite(level, $0.baseAddress, 1, nil) }, 0)
        }
    }

    /// The ISA level follows MML_KERNELS_ISA at every call, and the CPU features are read once (the same answer).
    func testKernelsISAFollowsTheEnvironment() {
        let features = mml_cpu_features()
        XCTAssertEqual(mml_cpu_features(), features)
        unsetenv("MML_KERNELS_ISA")
        let best = String(cString: mml_kernels_isa())
        defer { unsetenv("MML_KERNELS_ISA") }
        setenv("MML_KERNELS_ISA", "portable", 1)
        XCTAssertEqual(String(cString: mml_kernels_isa()), "portable")
        setenv("MML_KERNELS_ISA", "avx2", 1)
        XCTAssertEqual(String(cString: mml_kernels_isa()), best == "portable" ? "portable" : "avx2")
        setenv("MML_KERNELS_ISA", "anything-else", 1)
        XCTAssertEqual(String(cString: mml_kernels_isa()), best)
        func has(_ flags: [Int32]) -> Bool { flags.allSatisfy { features & UInt32($0) != 0 } }
        let want = has([MML_CPU_AVX512F, MML_CPU_AVX512BW, MML_CPU_AVX512VL, MML_CPU_AVX512DQ, MML_CPU_FMA,
                        MML_CPU_OS_AVX512].map { Int32($0) }) ? "avx512"
            : has([MML_CPU_AVX, MML_CPU_AVX2, MML_CPU_FMA, MML_CPU_OS_AVX].map { Int32($0) }) ? "avx2" : "portable"
        XCTAssertEqual(best, want)
    }
}
