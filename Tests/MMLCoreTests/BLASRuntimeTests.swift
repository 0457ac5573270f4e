import MMLCore
import XCTest

final class BLASRuntimeTests: XCTestCase {
    let avx512: CPUFeatures = [.sse3, .avx, .avx2, .fma, .avx512f, .avx512bw, .avx512vl, .avx512dq, .osAVX, .osAVX512]

    func testBestCoreFollowsFeatures() {
        XCTAssertEqual(BLASRuntime.bestCore(for: avx512), "SkylakeX")
        XCTAssertEqual(BLASRuntime.bestCore(for: avx512.union(.avx512bf16)), "Cooperlake")
        // AVX-512 present in the CPU but not enabled by the OS: AVX2 kernels only.
        XCTAssertEqual(BLASRuntime.bestCore(for: avx512.subtracting(.osAVX512)), "Haswell")
        XCTAssertNil(BLASRuntime.bestCore(for: [.sse3]))
    }

    func testMisdetectedCoreIsReexecutedWithBestCore() {
        let d = BLASRuntime.decide(corename: "Prescott", features: avx512.union(.avx512bf16), environment: [:])
        XCTAssertEqual(d.action, .reexec(coretype: "Cooperlake"))
        XCTAssertNotNil(d.warning)
    }

    func testUserValueIsNeverOverridden() {
        let d = BLASRuntime.decide(corename: "Haswell", features: avx512,
                                   environment: ["OPENBLAS_CORETYPE": "Haswell"])
        XCTAssertEqual(d.action, .keep)
        XCTAssertTrue(d.warning?.contains("OPENBLAS_CORETYPE=Haswell is set") ?? false, d.warning ?? "nil")
        // An empty value is treated as unset (OpenBLAS itself ignores it).
        let e = BLASRuntime.decide(corename: "Prescott", features: avx512, environment: ["OPENBLAS_CORETYPE": ""])
        XCTAssertEqual(e.action, .reexec(coretype: "SkylakeX"))
    }

    func testNoLoopAndOptOut() {
        let again = BLASRuntime.decide(corename: "Prescott", features: avx512, environment: ["MML_BLAS_REEXEC": "1"])
        XCTAssertEqual(again.action, .keep)
        XCTAssertTrue(again.warning?.contains("ignored") ?? false)
        let opt = BLASRuntime.decide(corename: "Prescott", features: avx512, environment: ["MML_NO_BLAS_REEXEC": "1"])
        XCTAssertEqual(opt.action, .keep)
        XCTAssertNotNil(opt.warning)
    }

    func testGoodCoreIsKeptSilently() {
        for core in ["SkylakeX", "Cooperlake", "SapphireRapids"] {
            let d = BLASRuntime.decide(corename: core, features: avx512.union(.avx512bf16), environment: [:])
            XCTAssertEqual(d.action, .keep)
            XCTAssertNil(d.warning)
        }
        // An AVX2-only CPU on Haswell kernels is already at its best.
        let h = BLASRuntime.decide(corename: "Haswell", features: [.sse3, .avx, .avx2, .fma, .osAVX], environment: [:])
        XCTAssertEqual(h.action, .keep)
        XCTAssertNil(h.warning)
    }

    func testThisProcessFacts() {
        XCTAssertFalse(BLASRuntime.corename.isEmpty)
        XCTAssertTrue(BLASRuntime.config.contains("OpenBLAS"))
        XCTAssertGreaterThanOrEqual(BLASRuntime.threads, 1)
        XCTAssertTrue(["avx512", "avx2", "portable"].contains(BLASRuntime.kernelISA))
    }

    /// The library only plans the re-execution: the executable's own `execve` runs it.
    func testReexecPlanAddsTheCoreAndTheMarker() {
        let d = BLASRuntime.decide(corename: "Prescott", features: avx512, environment: [:])
        let plan = BLASRuntime.reexecPlan(for: d, arguments: ["mml", "eval", "--episodes", "5"],
                                          environment: ["PATH": "/usr/bin", "HOME": "/root"])
        XCTAssertEqual(plan, BLASReexecPlan(executable: "/proc/self/exe", arguments: ["mml", "eval", "--episodes", "5"],
                                            environment: ["HOME=/root", "MML_BLAS_REEXEC=1", "OPENBLAS_CORETYPE=SkylakeX",
                                                          "PATH=/usr/bin"]))
        let seen = plan!.withCStrings { path, argv, envp -> [String] in
            var out = [String(cString: path)]
            var i = 0
            while let a = argv[i] { out.append(String(cString: a)); i += 1 }
            i = 0
            while let e = envp[i] { out.append(String(cString: e)); i += 1 }
            return out
        }
        XCTAssertEqual(seen, ["/proc/self/exe", "mml", "eval", "--episodes", "5", "HOME=/root", "MML_BLAS_REEXEC=1",
                              "OPENBLAS_CORETYPE=SkylakeX", "PATH=/usr/bin"])
        let keep = BLASRuntime.decide(corename: "SkylakeX", features: avx512, environment: [:])
        XCTAssertNil(BLASRuntime.reexecPlan(for: keep, arguments: ["mml"], environment: [:]))
    }

    func testOnlyUnchosenSlowKernelsWarnAfterLaunch() {
        let user = BLASRuntime.decide(corename: "Haswell", features: avx512, environment: ["OPENBLAS_CORETYPE": "Haswell"])
        XCTAssertNil(BLASRuntime.warnIfUnchosen(user))
        XCTAssertNil(BLASRuntime.warnIfUnchosen(BLASRuntime.decide(corename: "SkylakeX", features: avx512,
                                                                   environment: [:])))
    }
}
