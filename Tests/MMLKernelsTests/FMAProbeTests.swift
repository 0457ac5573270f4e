import Foundation
import MMLKernels
import XCTest

/// `mml_fp32_fma_probe` (`mml-bench peak`): it does the work it reports (the FLOP count, the threads, and the chains'
/// sum against a reference computed here), on the dispatched path (AVX-512, AVX2 or portable) and the portable one,
/// and refuses bad arguments.
final class FMAProbeTests: XCTestCase {
    /// The chains' sum as the probe computes it: chain i starts at i and runs acc = fma(acc, 0.999999, 1e-6); the
    /// chains are added in order, then over the lanes (identical, so a tree of doublings: exact) and the threads.
    func reference(iterations: Int, lanes: Int, threads: Int) -> Float {
        var s: Float = 0
        for i in 0..<24 {
            var acc = Float(i)
            for _ in 0..<iterations { acc = Float(1e-6).addingProduct(acc, Float(0.999999)) }
            s = i == 0 ? acc : s + acc
        }
        let perThread = s * Float(lanes)
        var total: Float = 0
        for _ in 0..<threads { total += perThread }
        return total
    }

    func probe(_ iterations: Int64, _ threads: Int32, file: StaticString = #filePath, line: UInt = #line)
        -> (flops: Double, used: Int32, checksum: Float) {
        var flops = 0.0, used: Int32 = 0, checksum: Float = 0
        XCTAssertEqual(mml_fp32_fma_probe(iterations, threads, &flops, &used, &checksum), Int32(MML_OK),
                       file: file, line: line)
        return (flops, used, checksum)
    }

    func checkPath(lanes: Int) {
        for t: Int32 in [1, 2, 3] {
            let r = probe(50, t)
            XCTAssertEqual(r.used, t)
            XCTAssertEqual(r.flops, 2.0 * 24 * Double(lanes) * 50 * Double(t))
            let want = reference(iterations: 50, lanes: lanes, threads: Int(t))
            XCTAssertEqual(r.checksum, want, accuracy: abs(want) * 1e-6, "\(t) threads")
        }
        // 0 threads: all cores (at most 64)
        let all = probe(10, 0)
        let cores = Int32(min(ProcessInfo.processInfo.activeProcessorCount, 64))
        XCTAssertEqual(all.used, cores)
        XCTAssertEqual(all.flops, 2.0 * 24 * Double(lanes) * 10 * Double(cores))
    }

    func testNativePath() throws {
        let saved = getenv("MML_KERNELS_ISA").map { String(cString: $0) }
        unsetenv("MML_KERNELS_ISA")
        defer { if let saved { setenv("MML_KERNELS_ISA", saved, 1) } }
        let isa = String(cString: mml_fp32_fma_probe_isa())
        XCTAssertEqual(isa, String(cString: mml_kernels_isa()))
        checkPath(lanes: isa == "avx512" ? 16 : isa == "avx2" ? 8 : 1)
    }

    func testPortablePath() {
        let saved = getenv("MML_KERNELS_ISA").map { String(cString: $0) }
        setenv("MML_KERNELS_ISA", "portable", 1)
        defer { if let saved { setenv("MML_KERNELS_ISA", saved, 1) } else { unsetenv("MML_KERNELS_ISA") } }
        XCTAssertEqual(String(cString: mml_fp32_fma_probe_isa()), "portable")
        checkPath(lanes: 1)
    }

    func testBadArgumentsAreRefused() {
        var flops = 0.0, used: Int32 = 0, checksum: Float = 0
        XCTAssertEqual(mml_fp32_fma_probe(0, 1, &flops, &used, &checksum), Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_fp32_fma_probe(-5, 1, &flops, &used, &checksum), Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_fp32_fma_probe(10, -1, &flops, &used, &checksum), Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_fp32_fma_probe(10, 1, nil, &used, &checksum), Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_fp32_fma_probe(10, 1, &flops, nil, &checksum), Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_fp32_fma_probe(10, 1, &flops, &used, nil), Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(used, 0, "a refused call writes nothing")
    }
}
