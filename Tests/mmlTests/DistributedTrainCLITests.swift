import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// `mpirun -np N mml train`: the weights, optimiser moments and running statistics after every step are the bits of
/// a run in one process, for N = 1, 2, 3 and across a resume with another N; and each error path of docs/DISTRIBUTED.md.
/// Needs Open MPI's `mpirun` (`openmpi-bin`, installed by scripts/install-deps.sh and .ci/run).
final class DistributedTrainCLITests: XCTestCase {
    let data = ["synthetic", "--synthetic-size", "20", "--synthetic-images", "12", "--widths", "8,8,8,8",
                "--threads", "1"]
    /// 2 epochs of 12 episodes, 6 per step (4 steps), validation on 5 episodes (split unevenly over 2 and 3 ranks).
    let small = ["--way", "3", "--shot", "1", "--query", "2", "--episodes-per-epoch", "12", "--epochs", "2",
                 "--episodes-per-step", "6", "--val-episodes", "5", "--val-query", "2", "--log-every", "2",
                 "--checkpoint-every", "6"]

    /// Runs `mpirun -np ranks mml arguments` (as root with --allow-run-as-root), with extra environment variables.
    func mpirun(_ ranks: Int, _ arguments: [String], environment: [String: String] = [:]) throws
        -> (Int32, String, String) {
        var launcher = ["--oversubscribe", "-np", String(ranks)]
        if getuid() == 0 { launcher.insert("--allow-run-as-root", at: 0) }
        for (k, v) in environment { launcher += ["-x", "\(k)=\(v)"] }
        return try runProcess("/usr/bin/env", ["mpirun"] + launcher + [mmlBinaryPath] + arguments)
    }

    override func setUpWithError() throws {
        let (code, _, err) = try mpirun(1, ["env"])
        XCTAssertEqual(code, 0, "mpirun does not start mml (install openmpi-bin: scripts/install-deps.sh): \(err)")
        if code != 0 { throw XCTSkip("no working mpirun") }
    }

    /// Every tensor of two checkpoints (weights, BatchNorm and fusion statistics, optimiser moments), bit for bit.
    func assertSameCheckpoint(_ a: String, _ b: String, optimizer: Bool = true, file: StaticString = #filePath,
                              line: UInt = #line) throws {
        let x = try Checkpoint.load(a, threads: 1), y = try Checkpoint.load(b, threads: 1)
        let px = x.model.namedParameters(), py = y.model.namedParameters()
        XCTAssertEqual(px.map(\.name), py.map(\.name), file: file, line: line)
        XCTAssertTrue(px.contains { $0.name.hasSuffix("running_var") }, file: file, line: line)
        for (p, q) in zip(px, py) {
            assertBitwiseEqual(p.parameter.value.data, q.parameter.value.data, "\(b): \(p.name)", file: file, line: line)
        }
        XCTAssertEqual(x.extra.map(\.name), y.extra.map(\.name), file: file, line: line)
        XCTAssertEqual(x.extra.contains { $0.name.hasPrefix("optimizer.v.") }, optimizer, file: file, line: line)
        for (p, q) in zip(x.extra, y.extra) {
            assertBitwiseEqual(p.tensor.data, q.tensor.data, "\(b): \(p.name)", file: file, line: line)
        }
    }

    /// log.jsonl without the timings.
    func logWithoutTimes(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            $0.replacingOccurrences(of: #""elapsed":[-0-9.e+]+"#, with: "", options: .regularExpression)
        }
    }

    func testOneTwoThreeRanksGiveTheBitsOfOneProcess() throws {
        let dir = try makeTempDir(self, prefix: "mml-mpi")
        // One process with 2 kernel threads against ranks with 1 thread each.
        let twoThreads = data.map { $0 == "1" ? "2" : $0 }
        XCTAssertEqual(twoThreads.suffix(2), ["--threads", "2"])
        var (code, _, err) = try runMML(["train"] + twoThreads + small + ["--out", dir + "/plain"])
        XCTAssertEqual(code, 0, err)
        // After the first step (a run stopped there) too, not only at the end.
        (code, _, err) = try runMML(["train"] + data + small + ["--out", dir + "/plain-1step", "--stop-after", "6"])
        XCTAssertEqual(code, 0, err)
        for n in [1, 2, 3] {
            let out = dir + "/np\(n)"
            let (code, stdout, err) = try mpirun(n, ["train"] + data + small + ["--out", out])
            XCTAssertEqual(code, 0, "np \(n): " + err)
            try assertSameCheckpoint(dir + "/plain/last.safetensors", out + "/last.safetensors")
            try assertSameCheckpoint(dir + "/plain/best.safetensors", out + "/best.safetensors", optimizer: false)
            XCTAssertEqual(try logWithoutTimes(out + "/log.jsonl"), try logWithoutTimes(dir + "/plain/log.jsonl"))
            // Rank 0 alone prints: one summary line.
            XCTAssertEqual(stdout.components(separatedBy: "trained     24 episodes").count, 2, stdout)
            if n > 1 { XCTAssertTrue(stdout.contains("exchange    4 steps"), stdout) }
            let one = dir + "/np\(n)-1step"
            XCTAssertEqual(try mpirun(n, ["train"] + data + small + ["--out", one, "--stop-after", "6"]).0, 0)
            try assertSameCheckpoint(dir + "/plain-1step/last.safetensors", one + "/last.safetensors")
        }
    }

    func testResumeWithAnotherProcessCount() throws {
        let dir = try makeTempDir(self, prefix: "mml-mpi")
        XCTAssertEqual(try runMML(["train"] + data + small + ["--out", dir + "/plain"]).0, 0)
        // 2 steps with 2 ranks, then the rest with 3 ranks; and 2 steps with 3 ranks, the rest in one process.
        var (code, _, err) = try mpirun(2, ["train"] + data + small + ["--out", dir + "/a", "--stop-after", "12"])
        XCTAssertEqual(code, 0, err)
        (code, _, err) = try mpirun(3, ["train"] + data + small + ["--out", dir + "/a", "--resume"])
        XCTAssertEqual(code, 0, err)
        try assertSameCheckpoint(dir + "/plain/last.safetensors", dir + "/a/last.safetensors")
        (code, _, err) = try mpirun(3, ["train"] + data + small + ["--out", dir + "/b", "--stop-after", "12"])
        XCTAssertEqual(code, 0, err)
        (code, _, err) = try runMML(["train"] + data + small + ["--out", dir + "/b", "--resume"])
        XCTAssertEqual(code, 0, err)
        try assertSameCheckpoint(dir + "/plain/last.safetensors", dir + "/b/last.safetensors")
        XCTAssertEqual(try logWithoutTimes(dir + "/b/log.jsonl"), try logWithoutTimes(dir + "/plain/log.jsonl"))
    }

    func testProcessCountMustDivideEpisodesPerStep() throws {
        let dir = try makeTempDir(self, prefix: "mml-mpi")
        let (code, _, err) = try mpirun(4, ["train"] + data + small + ["--out", dir + "/x"])
        XCTAssertNotEqual(code, 0)
        let message = "error: --episodes-per-step 6 cannot be split evenly over 4 processes: run with a process "
            + "count that divides it (1, 2, 3, 6) or set --episodes-per-step to a multiple of 4"
        XCTAssertEqual(err.components(separatedBy: message).count, 2, "exactly once: " + err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x/last.safetensors"))
    }

    /// Ranks on different kernel paths (rank 0 pinned to the portable one, rank 1 on this CPU's best): rank 0 warns
    /// once, naming each rank's path, and the checkpoint records both.
    func testRanksOnDifferentKernelPathsAreRecordedAndWarned() throws {
        let best = BLASRuntime.bestKernelISA
        guard best != "portable" else { throw XCTSkip("this CPU runs the portable path only: no other path to take") }
        let dir = try makeTempDir(self, prefix: "mml-mpi")
        let args = [mmlBinaryPath, "train"] + data + small + ["--out", dir + "/x", "--stop-after", "6"]
        var launcher = ["--oversubscribe"]
        if getuid() == 0 { launcher.insert("--allow-run-as-root", at: 0) }
        let (code, out, err) = try runProcess("/usr/bin/env", ["mpirun"] + launcher
            + ["-np", "1", "/usr/bin/env", "MML_KERNELS_ISA=portable"] + args
            + [":", "-np", "1", "/usr/bin/env", "-u", "MML_KERNELS_ISA"] + args)
        XCTAssertEqual(code, 0, err)
        let warning = "warning: the ranks take different kernel paths (rank 0 portable, rank 1 \(best))"
        XCTAssertEqual((out + err).components(separatedBy: warning).count, 2, "exactly once: " + out + err)
        let sidecar = try Data(contentsOf: URL(fileURLWithPath: dir + "/x/last.json"))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: sidecar) as? [String: Any])
        XCTAssertEqual((json["state"] as? [String: Any])?["kernelPaths"] as? [String], ["portable", best])
    }

    func testOtherCommandsAreRefusedUnderMPI() throws {
        let dir = try makeTempDir(self, prefix: "mml-mpi")
        var (code, _, err) = try mpirun(2, ["pretrain"] + data + ["--out", dir + "/p"])
        XCTAssertNotEqual(code, 0)
        XCTAssertEqual(err.components(separatedBy: "error: mml pretrain does not run under mpirun with 2 processes: "
                                      + "splitting its mini-batches").count, 2, err)
        XCTAssertTrue(err.contains("BatchNorm's batch statistics"), err)
        (code, _, err) = try mpirun(2, ["eval", "--checkpoint", dir + "/none.safetensors", "synthetic"])
        XCTAssertNotEqual(code, 0)
        XCTAssertTrue(err.contains("error: mml eval does not run under mpirun with 2 processes: it is not distributed"),
                      err)
    }

    /// A rank that fails (an error, or killed) ends the job naming the rank; the last checkpoint is whole, loads,
    /// and is the checkpoint of a run stopped there.
    func testAFailingRankEndsTheJobAndLeavesTheLastCheckpoint() throws {
        let dir = try makeTempDir(self, prefix: "mml-mpi")
        for n in [6, 12] {
            XCTAssertEqual(try runMML(["train"] + data + small + ["--out", dir + "/plain\(n)", "--stop-after", "\(n)"]).0, 0)
        }
        // Exchanges: steps 1 and 2, then the epoch's validation (3), then step 3 (4). Rank 0 writes the checkpoint
        // of episode 12 after exchange 3, while rank 1 goes on to fail: the job may end before or after that write,
        // so the last checkpoint is the one of episode 12 or, if the abort came first, of episode 6 -- whole either way.
        for (mode, expected) in [("", "rank 1: error: test fault: rank 1 fails at exchange 4"),
                                 (":kill", "process rank 1 with PID")] {
            let out = dir + "/fail\(mode.isEmpty ? "" : "-kill")"
            let (code, _, err) = try mpirun(2, ["train"] + data + small + ["--out", out],
                                            environment: ["MML_TEST_MPI_FAIL": "1:4" + mode])
            XCTAssertNotEqual(code, 0)
            XCTAssertTrue(err.contains(expected), err)
            if !mode.isEmpty { XCTAssertTrue(err.contains("signal 9"), err) }
            let state = try XCTUnwrap(Checkpoint.load(out + "/last.safetensors", threads: 1).state)
            let done = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(state.utf8)) as? [String: Any])?[
                "episodesDone"] as? Int)
            XCTAssertTrue(done == 6 || done == 12, state)
            try assertSameCheckpoint(dir + "/plain\(done)/last.safetensors", out + "/last.safetensors")
            // and the run resumes from it to the end.
            XCTAssertEqual(try mpirun(2, ["train"] + data + small + ["--out", out, "--resume"]).0, 0)
        }
    }
}
