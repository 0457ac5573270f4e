import Foundation
import MMLCore
import XCTest

/// `KernelPaths.resumed`: what a resumed run records and when it warns, for every pair of paths.
final class KernelPathsTests: XCTestCase {
    func testSamePathKeepsTheRecordWithoutWarning() {
        for p in ["avx512", "avx2", "portable"] {
            let r = KernelPaths.resumed([p], current: p, best: "avx512")
            XCTAssertEqual(r.record, [p])
            XCTAssertNil(r.warning)
        }
        let r = KernelPaths.resumed(["avx2", "avx512"], current: "avx512", best: "avx512")
        XCTAssertEqual(r.record, ["avx2", "avx512"])
        XCTAssertNil(r.warning)
    }

    func testCheckpointWithoutRecordGetsUnrecordedThenThisPath() {
        let r = KernelPaths.resumed(nil, current: "avx2", best: "avx2")
        XCTAssertEqual(r.record, [KernelPaths.unrecorded, "avx2"])
        XCTAssertNil(r.warning, "nothing is known to have changed")
        XCTAssertEqual(KernelPaths.resumed(r.record, current: "avx2", best: "avx2").record, r.record)
    }

    func testAnotherPathWarnsAndSaysHowToStay() throws {
        // Capped below the run's path on a CPU that has it: unset (or set) MML_KERNELS_ISA.
        var r = KernelPaths.resumed(["avx512"], current: "avx2", best: "avx512")
        XCTAssertEqual(r.record, ["avx512", "avx2"])
        var w = try XCTUnwrap(r.warning)
        XCTAssertTrue(w.hasPrefix("this run trained on the avx512 kernel path and now continues on the avx2 one: "), w)
        XCTAssertTrue(w.hasSuffix("unset MML_KERNELS_ISA to continue on the same path"), w)
        r = KernelPaths.resumed(["avx2"], current: "portable", best: "avx512")
        w = try XCTUnwrap(r.warning)
        XCTAssertTrue(w.hasSuffix("set MML_KERNELS_ISA=avx2 to continue on the same path"), w)
        XCTAssertFalse(w.contains("unset"), w)
        // Above the run's path: cap it.
        r = KernelPaths.resumed(["portable"], current: "avx512", best: "avx512")
        w = try XCTUnwrap(r.warning)
        XCTAssertTrue(w.hasSuffix("set MML_KERNELS_ISA=portable to continue on the same path"), w)
        // The run's path is beyond this CPU: another machine.
        r = KernelPaths.resumed(["avx512"], current: "avx2", best: "avx2")
        w = try XCTUnwrap(r.warning)
        XCTAssertTrue(w.hasSuffix("resume it on a CPU with AVX-512 to continue on the same path"), w)
        r = KernelPaths.resumed(["avx512", "avx2"], current: "portable", best: "portable")
        XCTAssertEqual(r.record, ["avx512", "avx2", "portable"])
        w = try XCTUnwrap(r.warning)
        XCTAssertTrue(w.contains("trained on the avx2 kernel path"), w)
        XCTAssertTrue(w.hasSuffix("resume it on a CPU with AVX2 and FMA to continue on the same path"), w)
    }

    /// A fresh state records this process's path; a state without the field (an older checkpoint) still decodes.
    func testStateRecordsThePathAndOldStatesDecode() throws {
        let t = EpisodicTrainingConfiguration(way: 3, shot: 1, query: 2, episodesPerEpoch: 4, epochs: 1)
        let s = EpisodicTrainingState(training: t)
        XCTAssertEqual(s.kernelPaths, [BLASRuntime.kernelISA])
        let json = try s.jsonString()
        XCTAssertTrue(json.contains("\"kernelPaths\":[\"\(BLASRuntime.kernelISA)\"]"), json)
        let old = json.replacingOccurrences(of: "\"kernelPaths\":[\"\(BLASRuntime.kernelISA)\"],", with: "")
        XCTAssertNotEqual(old, json)
        XCTAssertNil(try EpisodicTrainingState(metadata: old).kernelPaths)
    }
}

/// `RuntimeFacts`, what `mml env`, `mml_environment` and `mml.environment()` report.
final class RuntimeFactsTests: XCTestCase {
    func testFactsNameThisProcesssKernelPathAndRoundTrip() throws {
        let f = RuntimeFacts.current()
        XCTAssertEqual(f.kernels, BLASRuntime.kernelISA)
        XCTAssertEqual(f.kernelsBest, BLASRuntime.bestKernelISA)
        XCTAssertTrue(["avx512", "avx2", "portable"].contains(f.kernelsBest), f.kernelsBest)
        XCTAssertGreaterThanOrEqual(f.cores, 1)
        XCTAssertFalse(f.blasCore.isEmpty)
        XCTAssertEqual(f.bf16SimilarityReason == nil, f.bf16Similarity == "avx512bf16")
        let json = try f.jsonString()
        XCTAssertEqual(try JSONDecoder().decode(RuntimeFacts.self, from: Data(json.utf8)), f)
        XCTAssertTrue(json.contains("\"kernels\":\"\(f.kernels)\""), json)
    }
}

/// `KernelPaths.union`: a merged report's paths.
final class KernelPathsUnionTests: XCTestCase {
    func testUnionKeepsFirstAppearanceOrderAndNilWhenNoneRecorded() {
        XCTAssertEqual(KernelPaths.union([["avx2"], nil, ["avx512", "avx2"], ["portable"]]),
                       ["avx2", "avx512", "portable"])
        XCTAssertEqual(KernelPaths.union([["avx2"], ["avx2"]]), ["avx2"])
        XCTAssertNil(KernelPaths.union([nil, nil]))
        XCTAssertNil(KernelPaths.union([]))
    }
}
