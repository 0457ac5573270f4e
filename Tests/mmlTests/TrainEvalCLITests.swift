import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// `mml train`, `mml eval` and `mml ablate` end to end on small generated data: exit codes, files, output shapes,
/// resume through the CLI, and the user-facing errors.
final class TrainEvalCLITests: XCTestCase {
    /// Small synthetic data and a narrow backbone: a few seconds per command.
    let data = ["synthetic", "--synthetic-size", "20", "--synthetic-images", "12", "--widths", "8,8,8,8",
                "--threads", "1"]
    let small = ["--way", "3", "--shot", "1", "--query", "2", "--episodes-per-epoch", "6", "--epochs", "2",
                 "--episodes-per-step", "2", "--val-episodes", "2", "--val-query", "2", "--log-every", "2"]

    func testTrainEvalAblateEndToEnd() throws {
        let dir = try makeTempDir(self, prefix: "mml-train")
        let run = dir + "/run"
        var (code, out, err) = try runMML(["train"] + data + small + ["--out", run, "--plot", dir + "/curves.svg"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("trained     12 episodes"), out)
        XCTAssertTrue(out.contains("epoch 2 validation"), out)
        for f in ["last.safetensors", "last.json", "best.safetensors", "best.json", "log.jsonl"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/" + f), f)
        }
        let svg = try String(contentsOfFile: dir + "/curves.svg", encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("validation accuracy"))
        let log = try String(contentsOfFile: run + "/log.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(log.filter { $0.contains("\"event\":\"train\"") }.count, 6)
        XCTAssertEqual(log.filter { $0.contains("\"event\":\"validation\"") }.count, 2)

        // eval --json over two settings.
        (code, out, err) = try runMML(["eval", "--checkpoint", run + "/best.safetensors", "synthetic",
                                       "--synthetic-images", "12", "--way", "2,3", "--shot", "1", "--query", "2",
                                       "--episodes", "5", "--json", "--threads", "1"])
        XCTAssertEqual(code, 0, err)
        let obj = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        let results = try XCTUnwrap(obj?["results"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["way"] as? Int }, [2, 3])
        for r in results {
            let fused = try XCTUnwrap(r["fused"] as? [String: Any])
            let mean = try XCTUnwrap(fused["mean"] as? Double)
            XCTAssertTrue((0...1).contains(mean))
            XCTAssertEqual((r["levels"] as? [String: Any])?.keys.sorted(), ["distribution", "part", "pixel"])
            XCTAssertEqual(fused["episodes"] as? Int, 5)
        }
        // The same seed gives the same episodes: a second eval reproduces the numbers exactly.
        let (_, again, _) = try runMML(["eval", "--checkpoint", run + "/best.safetensors", "synthetic",
                                        "--synthetic-images", "12", "--way", "2,3", "--shot", "1", "--query", "2",
                                        "--episodes", "5", "--json", "--threads", "1"])
        let obj2 = try JSONSerialization.jsonObject(with: Data(again.utf8)) as? [String: Any]
        XCTAssertEqual(((obj2?["results"] as? [[String: Any]])?[1]["fused"] as? [String: Any])?["mean"] as? Double,
                       (results[1]["fused"] as? [String: Any])?["mean"] as? Double)

        // ablate from the one model.
        (code, out, err) = try runMML(["ablate", "--checkpoint", run + "/best.safetensors", "synthetic",
                                       "--synthetic-images", "12", "--way", "3", "--query", "2", "--episodes", "6",
                                       "--refit-episodes", "3", "--out", dir + "/abl", "--threads", "1"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("| pixel+part+distribution |"), out)
        let abl = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/abl/ablation.json"))) as? [String: Any]
        let rows = try XCTUnwrap(abl?["rows"] as? [[String: Any]])
        XCTAssertEqual(rows.count, 8)
        XCTAssertEqual(rows.compactMap { ($0["per_episode"] as? [Double])?.count }, Array(repeating: 6, count: 8))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/abl/ablation.svg"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/abl/ablation.md"))
    }

    /// `--profile` prints one row per phase and writes profile.json with the same phases.
    func testProfileFlagPrintsAndWritesThePhases() throws {
        let dir = try makeTempDir(self, prefix: "mml-train-profile")
        let (code, out, err) = try runMML(["train"] + data + small + ["--levels", "pixel,distribution", "--out",
                                                                      dir + "/run", "--profile"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("profile     wall time per phase over 12 training episodes"), out)
        for phase in ["data", "backbone-forward", "pixel-forward", "distribution-backward", "backbone-backward",
                      "optimizer", "validation"] {
            XCTAssertTrue(out.contains("\n            \(phase) "), "\(phase) missing in\n\(out)")
        }
        XCTAssertFalse(out.contains("part-forward"), out)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/run/profile.json")))
        let obj = try XCTUnwrap(json as? [String: Any])
        XCTAssertEqual(obj["episodes"] as? Int, 12)
        let phases = try XCTUnwrap(obj["phases"] as? [[String: Any]]).compactMap { $0["phase"] as? String }
        XCTAssertTrue(phases.contains("pixel-forward") && !phases.contains("part-forward"), "\(phases)")
        XCTAssertTrue(phases.contains("validation"), "\(phases)")

        // Without validation there is no validation row, neither printed nor in profile.json.
        let noValidation = ["--way", "3", "--shot", "1", "--query", "2", "--episodes-per-epoch", "6", "--epochs", "2",
                            "--episodes-per-step", "2", "--log-every", "2", "--val-split", "none"]
        let (code2, out2, err2) = try runMML(["train"] + data + noValidation + ["--levels", "pixel", "--out",
                                                                                dir + "/noval", "--profile"])
        XCTAssertEqual(code2, 0, err2)
        XCTAssertTrue(out2.contains("\n            data "), out2)
        XCTAssertTrue(out2.contains("\n            checkpoint "), out2)
        XCTAssertFalse(out2.contains("\n            validation "), out2)
        let json2 = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: dir + "/noval/profile.json")))
        let phases2 = try XCTUnwrap((json2 as? [String: Any])?["phases"] as? [[String: Any]])
            .compactMap { $0["phase"] as? String }
        XCTAssertTrue(phases2.contains("data") && !phases2.contains("validation"), "\(phases2)")
    }

    func testResumeThroughTheCLIMatchesAnUninterruptedRun() throws {
        let dir = try makeTempDir(self, prefix: "mml-train")
        var (code, _, err) = try runMML(["train"] + data + small + ["--out", dir + "/a"])
        XCTAssertEqual(code, 0, err)
        (code, _, err) = try runMML(["train"] + data + small + ["--out", dir + "/b", "--stop-after", "4"])
        XCTAssertEqual(code, 0, err)
        // Starting again without --resume is refused and leaves the run untouched.
        let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/b/last.safetensors"))
        var out: String
        (code, out, err) = try runMML(["train"] + data + small + ["--out", dir + "/b"])
        XCTAssertNotEqual(code, 0)
        XCTAssertTrue(err.contains("already holds a run") && err.contains("--resume"), err)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/b/last.safetensors")), before)
        (code, out, err) = try runMML(["train"] + data + small + ["--out", dir + "/b", "--resume"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("resuming"), out)
        let a = try Safetensors.read(contentsOf: dir + "/a/last.safetensors")
        let b = try Safetensors.read(contentsOf: dir + "/b/last.safetensors")
        XCTAssertEqual(a.entries.map(\.name), b.entries.map(\.name))
        for e in a.entries where !e.name.hasPrefix("optimizer.t.") {
            XCTAssertEqual(try a.tensor(named: e.name).data, try b.tensor(named: e.name).data, e.name)
        }
    }

    /// The checkpoint records the kernel path its run trained on; a resume on another path (here the portable one
    /// through MML_KERNELS_ISA) warns, says how to stay on the first and records both.
    func testResumeOnAnotherKernelPathWarnsAndRecordsIt() throws {
        let dir = try makeTempDir(self, prefix: "mml-train")
        var environment = ProcessInfo.processInfo.environment
        environment["MML_KERNELS_ISA"] = nil
        var (code, _, err) = try runMML(["train"] + data + small + ["--out", dir + "/a", "--stop-after", "4"],
                                        environment: environment)
        XCTAssertEqual(code, 0, err)
        func recorded() throws -> [String]? {
            let sidecar = try Data(contentsOf: URL(fileURLWithPath: dir + "/a/last.json"))
            let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: sidecar) as? [String: Any])
            return (json["state"] as? [String: Any])?["kernelPaths"] as? [String]
        }
        XCTAssertEqual(try recorded(), [BLASRuntime.bestKernelISA])
        guard BLASRuntime.bestKernelISA != "portable" else {
            throw XCTSkip("this CPU runs the portable path only: no other path to take")
        }
        environment["MML_KERNELS_ISA"] = "portable"
        var out: String
        (code, out, err) = try runMML(["train"] + data + small + ["--out", dir + "/a", "--resume", "--stop-after", "8"],
                                      environment: environment)
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("resuming"), out)
        XCTAssertTrue(err.contains("warning: this run trained on the \(BLASRuntime.bestKernelISA) kernel path and now "
                                   + "continues on the portable one: some kernels round differently there"), err)
        XCTAssertTrue(err.contains("unset MML_KERNELS_ISA to continue on the same path"), err)
        XCTAssertEqual(try recorded(), [BLASRuntime.bestKernelISA, "portable"])
        // Back on the first path: the same warning the other way, the record grows.
        environment["MML_KERNELS_ISA"] = nil
        (code, out, err) = try runMML(["train"] + data + small + ["--out", dir + "/a", "--resume"],
                                      environment: environment)
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(err.contains("this run trained on the portable kernel path and now continues on the "
                                   + "\(BLASRuntime.bestKernelISA) one"), err)
        XCTAssertTrue(err.contains("set MML_KERNELS_ISA=portable to continue on the same path"), err)
        XCTAssertEqual(try recorded(), [BLASRuntime.bestKernelISA, "portable", BLASRuntime.bestKernelISA])
    }

    func testUserErrors() throws {
        let dir = try makeTempDir(self, prefix: "mml-train")
        try assertMMLFails(["train"] + data + small + ["--out", dir + "/x", "--resume"], "does not exist; start the run without --resume")
        try assertMMLFails(["train"] + data + small + ["--out", dir + "/x", "--levels", "pixel,texture"], "unknown metric level 'texture'")
        try assertMMLFails(["train"] + data + small + ["--out", dir + "/x", "--distance", "cosine"], "unknown distribution distance")
        try assertMMLFails(["train"] + data + small + ["--out", dir + "/x", "--way", "1"], "--way 1")
        try assertMMLFails(["train"] + data + small + ["--out", dir + "/x", "--augment", "heavy"], "--augment heavy")
        try assertMMLFails(["train"] + data + small + ["--out", dir + "/x", "--widths", "8,8"], "give 4 positive channel counts")
        try assertMMLFails(["train"] + data + small + ["--out", dir + "/x", "--way", "30"], "30")
        try assertMMLFails(["eval", "--checkpoint", dir + "/none.safetensors"], "none.safetensors")
        try assertMMLFails(["eval", "--checkpoint", dir + "/none.safetensors", "--way", "5,x"], "none.safetensors")
        try assertMMLFails(["ablate", "synthetic"], "give --checkpoint")
        // A checkpoint-less safetensors file.
        try Safetensors.write([(name: "w", tensor: Tensor(shape: [1], data: [1]))], to: dir + "/plain.safetensors")
        try assertMMLFails(["eval", "--checkpoint", dir + "/plain.safetensors"], "without an mml model configuration")
    }
}
