import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// Training seeds end to end through the CLI on tiny synthetic data: `mml train --seeds` (one seed per array task,
/// resume skipping finished seeds, each seed equal to `mml train --seed s`), `mml eval` / `mml ablate` over the study
/// (the combined figures against the per-seed ones), sharded evaluation over seeds, and the errors.
final class SeedsCLITests: XCTestCase {
    let data = ["synthetic", "--synthetic-size", "20", "--synthetic-images", "12", "--widths", "8,8,8,8",
                "--threads", "1"]
    let small = ["--way", "3", "--shot", "1", "--query", "2", "--episodes-per-epoch", "6", "--epochs", "2",
                 "--episodes-per-step", "2", "--val-episodes", "2", "--val-query", "2", "--log-every", "2"]
    let evalData = ["synthetic", "--synthetic-size", "20", "--synthetic-images", "12", "--way", "3", "--query", "2",
                    "--threads", "1"]

    func tensors(_ path: String) throws -> [String: [Float]] {
        let f = try Safetensors.read(contentsOf: path)
        var out: [String: [Float]] = [:]
        for e in f.entries where !e.name.hasPrefix("optimizer.t.") { out[e.name] = try f.tensor(named: e.name).data }
        return out
    }

    func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }

    func testSeedStudyTrainResumeEvaluateAblate() throws {
        let dir = try makeTempDir(self, prefix: "mml-seeds")
        let study = dir + "/study"
        // Seed 1 alone, as task 0 of a 2-task SLURM array.
        var env = ProcessInfo.processInfo.environment
        env["SLURM_ARRAY_TASK_ID"] = "0"
        env["SLURM_ARRAY_TASK_COUNT"] = "2"
        var (code, out, err) = try runMML(["train"] + data + small + ["--seeds", "1,2", "--out", study],
                                          environment: env)
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(err.contains("seed index 0 (seed 1) from SLURM_ARRAY_TASK_ID"), err)
        XCTAssertTrue(FileManager.default.fileExists(atPath: study + "/seed-1/best.safetensors"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: study + "/seed-2"))
        let seed1 = try Data(contentsOf: URL(fileURLWithPath: study + "/seed-1/last.safetensors"))
        // --resume skips seed 1 and starts seed 2 (stopped early), then finishes it.
        (code, out, err) = try runMML(["train"] + data + small + ["--seeds", "1,2", "--out", study, "--resume",
                                                                  "--stop-after", "4"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("seed 1 (1 of 2): finished (12 episodes)") && out.contains("skipped"), out)
        XCTAssertTrue(out.contains("seed 2 (2 of 2): training into"), out)
        var summary = try json(String(contentsOfFile: study + "/seeds.json", encoding: .utf8))
        XCTAssertEqual(summary["seeds"] as? [Int], [1, 2])
        XCTAssertEqual((summary["runs"] as? [[String: Any]])?.map { $0["finished"] as? Bool }, [true, false])
        // The unfinished seed is refused by the evaluation, naming it.
        try assertMMLFails(["eval", "--checkpoint", study] + evalData + ["--episodes", "2"],
                           "seed 2 of the study \(study) has not finished training (at episode 4 of 12)",
                           reported: true)
        (code, out, err) = try runMML(["train"] + data + small + ["--seeds", "1,2", "--out", study, "--resume"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("seed 2 (2 of 2): resuming"), out)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: study + "/seed-1/last.safetensors")), seed1,
                       "a finished seed is not touched")
        summary = try json(String(contentsOfFile: study + "/seeds.json", encoding: .utf8))
        XCTAssertEqual((summary["runs"] as? [[String: Any]])?.map { $0["best"] as? String },
                       ["seed-1/best.safetensors", "seed-2/best.safetensors"])
        XCTAssertEqual((summary["runs"] as? [[String: Any]])?.map { $0["finished"] as? Bool }, [true, true])

        // Each seed's checkpoints equal a single `mml train --seed s` run, bit for bit.
        for s in ["1", "2"] {
            (code, _, err) = try runMML(["train"] + data + small + ["--seed", s, "--out", dir + "/single-" + s])
            XCTAssertEqual(code, 0, err)
            for f in ["last", "best"] {
                XCTAssertEqual(try tensors(study + "/seed-\(s)/\(f).safetensors"),
                               try tensors(dir + "/single-\(s)/\(f).safetensors"), "seed \(s) \(f)")
            }
        }

        // eval over the study: the combined figures from the per-seed ones.
        (code, out, err) = try runMML(["eval", "--checkpoint", study] + evalData
                                      + ["--episodes", "4", "--json", "--plot", dir + "/seeds.svg"])
        XCTAssertEqual(code, 0, err)
        let report = try json(out)
        let perSeed = try XCTUnwrap(report["per_seed"] as? [[String: Any]])
        XCTAssertEqual(perSeed.map { $0["seed"] as? Int }, [1, 2])
        let seedMeans = try perSeed.map { s -> Double in
            let r = try XCTUnwrap((s["report"] as? [String: Any])?["results"] as? [[String: Any]])
            return try XCTUnwrap((r[0]["accuracy"] as? [String: Any])?["mean"] as? Double)
        }
        let combined = try XCTUnwrap((report["results"] as? [[String: Any]])?.first)
        let acc = try XCTUnwrap(combined["accuracy"] as? [String: Any])
        XCTAssertEqual(acc["per_seed"] as? [Double], seedMeans)
        let mean = (seedMeans[0] + seedMeans[1]) / 2
        XCTAssertEqual(try XCTUnwrap(acc["mean"] as? Double), mean, accuracy: 1e-12)
        let std = abs(seedMeans[0] - seedMeans[1]) / 2.0.squareRoot()
        XCTAssertEqual(try XCTUnwrap(acc["ci95"] as? Double), 12.706204736 * std / 2.0.squareRoot(), accuracy: 1e-8)
        XCTAssertEqual(((combined["pooled"] as? [String: Any])?["episodes"] as? Int), 8)
        XCTAssertEqual(try XCTUnwrap((combined["pooled"] as? [String: Any])?["mean"] as? Double), mean, accuracy: 1e-12)
        XCTAssertEqual((combined["levels"] as? [String: Any])?.keys.sorted(), ["distribution", "part", "pixel"])
        let svg = try String(contentsOfFile: dir + "/seeds.svg", encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("<circle"), svg)
        // A seed's figure is that of evaluating its checkpoint alone (same episodes: the evaluation seed is fixed).
        (code, out, err) = try runMML(["eval", "--checkpoint", study + "/seed-2/best.safetensors"] + evalData
                                      + ["--episodes", "4", "--json"])
        XCTAssertEqual(code, 0, err)
        let alone = try XCTUnwrap(((try json(out))["results"] as? [[String: Any]])?.first)
        XCTAssertEqual((alone["accuracy"] as? [String: Any])?["mean"] as? Double, seedMeans[1])
        // Repeated --checkpoint gives the same combined report; the text names the interval.
        (code, out, err) = try runMML(["eval", "--checkpoint", dir + "/single-1/best.safetensors", "--checkpoint",
                                       dir + "/single-2/best.safetensors"] + evalData + ["--episodes", "4"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("over 2 training seed(s) (seed 1, seed 2)") && out.contains("t(0.975, 1 df)"), out)
        XCTAssertTrue(out.contains(String(format: "%.2f +- %.2f%% across seeds", mean * 100,
                                          12.706204736 * std / 2.0.squareRoot() * 100)), out)

        // Sharded over seeds: two shards, merged, equal the unsharded report's combined figures.
        for shard in ["0/2", "1/2"] {
            (code, _, err) = try runMML(["eval", "--checkpoint", study] + evalData
                                        + ["--episodes", "4", "--shard", shard, "--episodes-out", dir + "/shards/"])
            XCTAssertEqual(code, 0, err)
        }
        let shardFile = try String(contentsOfFile: dir + "/shards/seed-2/episodes-shard-1-of-2.jsonl", encoding: .utf8)
        XCTAssertTrue(shardFile.contains("\"trainingSeed\":2"), shardFile)
        (code, out, err) = try runMML(["eval", "merge", dir + "/shards", "--json"])
        XCTAssertEqual(code, 0, err)
        let merged = try XCTUnwrap(((try json(out))["results"] as? [[String: Any]])?.first)
        XCTAssertEqual((merged["accuracy"] as? [String: Any])?["per_seed"] as? [Double], seedMeans)
        XCTAssertEqual((merged["accuracy"] as? [String: Any])?["ci95"] as? Double, acc["ci95"] as? Double)

        // Each seed evaluated alone (another process, array task or day) with --report; the report files combined by
        // mml eval merge equal the evaluation over the study, and refuse a seed given twice or a file that is no report.
        for s in ["1", "2"] {
            (code, _, err) = try runMML(["eval", "--checkpoint", dir + "/single-\(s)/best.safetensors"] + evalData
                                        + ["--episodes", "4", "--report", dir + "/report-\(s).json"])
            XCTAssertEqual(code, 0, err)
            XCTAssertEqual(try json(String(contentsOfFile: dir + "/report-\(s).json", encoding: .utf8))["training_seed"]
                           as? Int, Int(s))
        }
        (code, out, err) = try runMML(["eval", "merge", dir + "/report-1.json", dir + "/report-2.json", "--json",
                                       "--plot", dir + "/reports.svg"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(err.contains("combined 2 report file(s): 2 training seed(s)"), err)
        let fromReports = try XCTUnwrap(((try json(out))["results"] as? [[String: Any]])?.first)
        XCTAssertEqual((fromReports["accuracy"] as? [String: Any])?["per_seed"] as? [Double], seedMeans)
        XCTAssertEqual((fromReports["accuracy"] as? [String: Any])?["ci95"] as? Double, acc["ci95"] as? Double)
        XCTAssertEqual(((fromReports["pooled"] as? [String: Any])?["ci95"] as? Double),
                       (combined["pooled"] as? [String: Any])?["ci95"] as? Double)
        XCTAssertEqual((fromReports["levels"] as? [String: Any])?.keys.sorted(), ["distribution", "part", "pixel"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/reports.svg"))
        // Seeds evaluated on different kernel paths: the combined lines say which path each seed's figures have.
        (code, out, err) = try runMML(["eval", "merge", dir + "/report-1.json", dir + "/report-2.json"])
        XCTAssertEqual(code, 0, err)
        XCTAssertFalse(out.contains("kernel paths:"), out)
        let best = BLASRuntime.bestKernelISA
        if best != "portable" {
            var environment = ProcessInfo.processInfo.environment
            environment["MML_KERNELS_ISA"] = "portable"
            (code, _, err) = try runMML(["eval", "--checkpoint", dir + "/single-2/best.safetensors"] + evalData
                                        + ["--episodes", "4", "--report", dir + "/report-2p.json"],
                                        environment: environment)
            XCTAssertEqual(code, 0, err)
            (code, out, err) = try runMML(["eval", "merge", dir + "/report-1.json", dir + "/report-2p.json"])
            XCTAssertEqual(code, 0, err)
            XCTAssertTrue(out.contains("kernel paths: seed 1 \(best), seed 2 portable (the Gaussian kernels round "
                                       + "differently on each"), out)
        }
        try assertMMLFails(["eval", "merge", dir + "/report-1.json", dir + "/report-1.json"],
                           "both hold training seed 1", reported: true)
        try AtomicFile.write("{\"a\": 1}\n", to: dir + "/nothing.json")
        try assertMMLFails(["eval", "merge", dir + "/report-1.json", dir + "/nothing.json"],
                           "nothing.json is not a report of mml eval", reported: true)
        try assertMMLFails(["eval", "merge", dir + "/report-1.json", dir + "/absent.json"],
                           "cannot read the report", reported: true)
        try assertMMLFails(["eval", "merge", dir + "/report-1.json", "--episodes-out", dir + "/x"],
                           "report files (.json) hold none", reported: true)

        // ablate over the study: per-seed tables in out/seed-<s>, the combined one in out.
        (code, out, err) = try runMML(["ablate", "--checkpoint", study] + evalData
                                      + ["--episodes", "4", "--refit-episodes", "2", "--out", dir + "/abl"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("Ablation over 2 training seed(s)") && out.contains("| pixel |"), out)
        let table = try json(String(contentsOfFile: dir + "/abl/ablation.json", encoding: .utf8))
        let rows = try XCTUnwrap(table["rows"] as? [[String: Any]])
        XCTAssertEqual(rows.count, 8)
        let seedTables = try ["1", "2"].map { s in
            try XCTUnwrap(try json(String(contentsOfFile: dir + "/abl/seed-\(s)/ablation.json", encoding: .utf8))["rows"]
                          as? [[String: Any]])
        }
        for (i, row) in rows.enumerated() {
            let diffs = try seedTables.map { t -> Double in
                let a = try XCTUnwrap(t[i]["per_episode"] as? [Double]), f = try XCTUnwrap(t[0]["per_episode"] as? [Double])
                return zip(a, f).map { $0 - $1 }.reduce(0, +) / Double(a.count)
            }
            let d = try XCTUnwrap(row["difference_to_full"] as? [String: Any])
            let got = try XCTUnwrap(d["per_seed"] as? [Double])
            for (x, y) in zip(got, diffs) { XCTAssertEqual(x, y, accuracy: 1e-12, "row \(i)") }
            XCTAssertEqual(try XCTUnwrap(d["mean"] as? Double), (diffs[0] + diffs[1]) / 2, accuracy: 1e-12)
        }
        XCTAssertTrue(try String(contentsOfFile: dir + "/abl/ablation.svg", encoding: .utf8).contains("<circle"))
    }

    /// examples/slurm/train-seeds-array.sbatch run as task 1 of a 2-task array trains the second seed only.
    func testSeedArrayExample() throws {
        let dir = try makeTempDir(self, prefix: "mml-seeds")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [packageRoot().appendingPathComponent("examples/slurm/train-seeds-array.sbatch").path]
        p.environment = ProcessInfo.processInfo.environment.merging([
            "MML": mmlBinaryPath, "SEEDS": "4,5", "OUT": dir + "/arr", "SLURM_ARRAY_TASK_ID": "1",
            "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_CPUS_PER_TASK": "1",
            "DATA": "synthetic --synthetic-size 20 --synthetic-images 12 --widths 8,8,8,8",
            "TRAIN_ARGS": small.joined(separator: " "),
        ]) { $1 }
        let err = Pipe()
        (p.standardOutput, p.standardError) = (FileHandle.nullDevice, err)
        try p.run()
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, e)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/arr/seed-5/best.safetensors"), e)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/arr/seed-4"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/arr/seeds.json"))
    }

    func testSeedErrors() throws {
        let dir = try makeTempDir(self, prefix: "mml-seeds")
        let base = ["train"] + data + small + ["--out", dir + "/s"]
        try assertMMLFails(base + ["--seeds", ""], "error: --seeds is empty: give a comma-separated list", reported: true)
        try assertMMLFails(base + ["--seeds", "1,2,1"], "--seeds '1,2,1': seed 1 is listed twice", reported: true)
        try assertMMLFails(base + ["--seeds", "1,two"], "--seeds '1,two': 'two' is not a seed", reported: true)
        try assertMMLFails(base + ["--seeds=1,-3"], "--seeds '1,-3': -3 is negative", reported: true)
        try assertMMLFails(base + ["--seeds", "1,2", "--seed", "4"], "give --seed (one run) or --seeds", reported: true)
        try assertMMLFails(base + ["--seed-index", "0"], "--seed-index and --seed-initial-weights go with --seeds",
                           reported: true)
        try assertMMLFails(base + ["--seeds", "1,2", "--seed-index", "2"],
                           "--seed-index 2: the 2 --seeds [1, 2] have indices 0..<2", reported: true)
        try assertMMLFails(base + ["--seeds", "1", "--seed-initial-weights", "--init-seed", "3"],
                           "drop --init-seed", reported: true)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/s"), "nothing written on a bad seed list")
        // A directory that is not a study; the same training seed twice.
        try assertMMLFails(["eval", "--checkpoint", dir] + evalData, "holds no seeds.json", reported: true)
        var (code, _, err) = try runMML(["train"] + data + small + ["--out", dir + "/one", "--stop-after", "2"])
        XCTAssertEqual(code, 0, err)
        try assertMMLFails(["eval", "--checkpoint", dir + "/one/last.safetensors", "--checkpoint",
                            dir + "/one/last.safetensors"] + evalData,
                           "were both trained with seed 1; give one checkpoint per training seed", reported: true)
        // Checkpoints of different recipes are evaluated, with a warning naming what differs.
        (code, _, err) = try runMML(["train"] + data + small + ["--out", dir + "/two", "--seed", "2", "--lr", "0.01",
                                                                "--stop-after", "2"])
        XCTAssertEqual(code, 0, err)
        var out: String
        (code, out, err) = try runMML(["eval", "--checkpoint", dir + "/one/last.safetensors", "--checkpoint",
                                       dir + "/two/last.safetensors"] + evalData + ["--episodes", "2"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(err.contains("warning: \(dir)/two/last.safetensors differs from \(dir)/one/last.safetensors in "
                                   + "learningRate 0.01 vs 0.001"), err)
        XCTAssertTrue(out.contains("over 2 training seed(s) (seed 1, seed 2)"), out)
        try assertMMLFails(["eval", "--checkpoint", dir + "/one/last.safetensors", "--plot", dir + "/p.svg"] + evalData,
                           "--plot draws the spread over training seeds", reported: true)
        try assertMMLFails(["ablate", "--retrain", "--checkpoint", dir + "/one/last.safetensors", "--checkpoint",
                            dir + "/one/best.safetensors"] + evalData,
                           "--retrain trains its own models: it takes no --checkpoint per training seed", reported: true)
    }
}
