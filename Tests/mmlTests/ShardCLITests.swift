import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// `mml eval --shard` / `mml ablate --shard` (flag and SLURM variables), `mml eval merge`, `mml ablate merge`,
/// `mml compare` and the examples in examples/slurm: sharded + merged output equals the unsharded output in every
/// printed number, and each user error is reported with its message.
final class ShardCLITests: XCTestCase {
    let data = ["synthetic", "--synthetic-images", "12", "--query", "2", "--threads", "1"]

    func checkpoint(_ dir: String, seed: UInt64 = 3) throws -> String {
        let config = ModelConfiguration(kind: "episodic", backbone: .conv64F, inputChannels: 1, widths: [8, 8, 8, 8],
                                        initialization: .kaiming, seed: seed, image: ImageConfig(size: 20, channels: 1),
                                        metric: MetricConfiguration(partForm: .grid([2])))
        let path = dir + "/m\(seed).safetensors"
        try Checkpoint.save(try FewShotModel(config, threads: 1), to: path)
        return path
    }

    /// The environment of this process with `extra` set (and no SLURM array variables unless given).
    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SLURM_ARRAY") }
        for (k, v) in extra { env[k] = v }
        return env
    }

    func ok(_ args: [String], env: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) throws
        -> String {
        let (code, out, err) = try runMML(args, environment: environment(env))
        XCTAssertEqual(code, 0, "mml \(args.joined(separator: " ")): \(err)", file: file, line: line)
        return out
    }

    /// Text output without the timing figures and the lines naming written files.
    func untimed(_ text: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("wrote ") }.map {
            $0.replacingOccurrences(of: #"\s*\([0-9.]+ episodes/s\)"#, with: "", options: .regularExpression)
        }
    }

    /// A JSON report without `seconds` and `episodes_per_second`.
    func untimedJSON(_ text: String) throws -> NSDictionary {
        var obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        obj["results"] = (obj["results"] as? [[String: Any]])?.map {
            $0.filter { $0.key != "seconds" && $0.key != "episodes_per_second" }
        }
        return obj as NSDictionary
    }

    func testEvalShardsMergeCompareAndErrors() throws {
        let dir = try makeTempDir(self, prefix: "mml-shardcli")
        let ckpt = try checkpoint(dir)
        let eval = ["eval", "--checkpoint", ckpt] + data + ["--way", "2,3", "--episodes", "7", "--seed", "4"]
        let full = try ok(eval + ["--episodes-out", dir + "/full.jsonl"])
        let fullJSON = try ok(eval + ["--json"])
        XCTAssertTrue(full.contains("wrote \(dir)/full.jsonl (per-episode results)"), full)
        _ = try ok(eval + ["--shard", "0/3", "--episodes-out", dir + "/shards/"])
        let viaSLURM = try runMML(eval + ["--episodes-out", dir + "/shards/"],
                                  environment: environment(["SLURM_ARRAY_TASK_ID": "11", "SLURM_ARRAY_TASK_MIN": "10",
                                                            "SLURM_ARRAY_TASK_COUNT": "3"]))
        XCTAssertEqual(viaSLURM.0, 0, viaSLURM.2)
        XCTAssertTrue(viaSLURM.2.contains("shard 1/3 from SLURM_ARRAY_TASK_ID=11"), viaSLURM.2)
        XCTAssertTrue(viaSLURM.1.contains("episodes-shard-1-of-3.jsonl"), viaSLURM.1)
        // --shard wins over the SLURM variables.
        _ = try ok(eval + ["--shard", "2/3", "--episodes-out", dir + "/shards/"],
                   env: ["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "5"])
        let merged = try ok(["eval", "merge", dir + "/shards", "--episodes-out", dir + "/merged.jsonl"])
        XCTAssertEqual(untimed(merged), untimed(full))
        XCTAssertEqual(untimed(merged).count, 11)
        XCTAssertEqual(try untimedJSON(try ok(["eval", "merge", dir + "/shards", "--json"])), try untimedJSON(fullJSON))
        // The merged file is the unsharded file's records; compare pairs them.
        XCTAssertEqual(try EvaluationEpisodeFile.read(dir + "/merged.jsonl").records,
                       try EvaluationEpisodeFile.read(dir + "/full.jsonl").records)
        let other = try checkpoint(dir, seed: 8)
        _ = try ok(["eval", "--checkpoint", other] + Array(eval.dropFirst(3)) + ["--episodes-out", dir + "/other.jsonl"])
        let cmp = try ok(["compare", dir + "/full.jsonl", dir + "/other.jsonl", "--json"])
        let c = try JSONDecoder().decode(EpisodeComparison.self, from: Data(cmp.utf8))
        let a = try EvaluationEpisodeFile.read(dir + "/full.jsonl"), b = try EvaluationEpisodeFile.read(dir + "/other.jsonl")
        let fusedA = a.records.filter { $0.way == 3 }.map(\.accuracy), fusedB = b.records.filter { $0.way == 3 }.map(\.accuracy)
        XCTAssertEqual(c.settings[1].measures[0].difference, pairedDifference(fusedA, fusedB))
        let text = try ok(["compare", dir + "/full.jsonl", dir + "/shards"])
        XCTAssertTrue(text.contains("3-way 1-shot, 2 queries, 7 paired episodes:"), text)
        XCTAssertTrue(text.contains("+0.00 +- 0.00"), text)

        // Errors.
        try assertMMLFails(eval + ["--shard", "3/3", "--episodes-out", dir + "/x/"],
                           "--shard 3/3: the shard index must be in 0..<3", reported: true)
        try assertMMLFails(eval + ["--shard", "1-3", "--episodes-out", dir + "/x/"], "--shard '1-3': give i/n", reported: true)
        try assertMMLFails(eval + ["--shard", "1/3"], "give --episodes-out", reported: true)
        try assertMMLFails(eval + ["--shard", "0/9", "--episodes-out", dir + "/x/"], "9 shards for the 7 --episodes",
                           reported: true)
        let (code, _, err) = try runMML(eval + ["--episodes-out", dir + "/x/"],
                                        environment: environment(["SLURM_ARRAY_TASK_ID": "abc", "SLURM_ARRAY_TASK_COUNT": "3"]))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(err.contains("SLURM_ARRAY_TASK_ID=abc is not an integer; give --shard i/n explicitly"), err)
        try FileManager.default.createDirectory(atPath: dir + "/two", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dir + "/shards/episodes-shard-0-of-3.jsonl",
                                         toPath: dir + "/two/episodes-shard-0-of-3.jsonl")
        try assertMMLFails(["eval", "merge", dir + "/two"], "shard(s) 1/3, 2/3 missing", reported: true)
        try assertMMLFails(["eval", "merge", dir + "/two", dir + "/shards"], "shard 0/3 is given twice", reported: true)
        _ = try ok(eval.map { $0 == "4" ? "5" : $0 } + ["--shard", "1/3", "--episodes-out", dir + "/seed5/"])
        try assertMMLFails(["eval", "merge", dir + "/two", dir + "/seed5"], "seed: 5 vs 4", reported: true)
        try assertMMLFails(["compare", dir + "/full.jsonl", dir + "/seed5/episodes-shard-1-of-3.jsonl"],
                           "shard(s) 0/3, 2/3 missing", reported: true)
        _ = try ok(eval.map { $0 == "4" ? "5" : $0 } + ["--episodes-out", dir + "/seed5.jsonl"])
        try assertMMLFails(["compare", dir + "/full.jsonl", dir + "/seed5.jsonl"], "episode 0 of 2-way 1-shot differs: hash",
                           reported: true)
        try assertMMLFails(["compare", dir + "/full.jsonl", dir + "/none.jsonl"], "\(dir)/none.jsonl does not exist",
                           reported: true)
        try "not json\n".write(toFile: dir + "/junk.jsonl", atomically: true, encoding: .utf8)
        try assertMMLFails(["eval", "merge", dir + "/junk.jsonl"], "junk.jsonl is not a per-episode file of mml",
                           reported: true)
        try assertMMLFails(["ablate", "merge", dir + "/full.jsonl"], "holds results of mml eval, not mml ablate",
                           reported: true)
    }

    /// A report names the kernel paths that computed it; a merge of shards computed on two paths names both.
    func testReportsNameTheirKernelPaths() throws {
        let best = BLASRuntime.bestKernelISA
        let dir = try makeTempDir(self, prefix: "mml-shardcli")
        let ckpt = try checkpoint(dir)
        let eval = ["eval", "--checkpoint", ckpt] + data + ["--way", "3", "--episodes", "4", "--seed", "4"]
        func kernels(_ json: String) throws -> [String]? {
            let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            return o["kernels"] as? [String]
        }
        XCTAssertEqual(try kernels(try ok(eval + ["--json"])), [best])
        guard best != "portable" else { throw XCTSkip("this CPU runs the portable path only: no other path to take") }
        _ = try ok(eval + ["--shard", "0/2", "--episodes-out", dir + "/shards/"])
        _ = try ok(eval + ["--shard", "1/2", "--episodes-out", dir + "/shards/"], env: ["MML_KERNELS_ISA": "portable"])
        XCTAssertEqual(try kernels(try ok(["eval", "merge", dir + "/shards", "--json"])), [best, "portable"])
        let ablate = ["ablate", "--checkpoint", ckpt] + data + ["--way", "3", "--episodes", "4", "--seed", "4",
                                                                "--out", dir + "/ab"]
        _ = try ok(ablate, env: ["MML_KERNELS_ISA": "portable"])
        let table = try String(contentsOfFile: dir + "/ab/ablation.json", encoding: .utf8)
        XCTAssertEqual(try kernels(table), ["portable"])
    }

    func testAblateShardsAndMergeEqualTheUnshardedTable() throws {
        let dir = try makeTempDir(self, prefix: "mml-shardabl")
        let ckpt = try checkpoint(dir)
        let ablate = ["ablate", "--checkpoint", ckpt] + data + ["--way", "3", "--episodes", "5", "--refit-episodes", "3"]
        let full = try ok(ablate + ["--out", dir + "/full"])
        for i in 0..<2 {
            let out = try ok(ablate + ["--out", dir + "/sh"], env: ["SLURM_ARRAY_TASK_ID": "\(i)", "SLURM_ARRAY_TASK_COUNT": "2"])
            XCTAssertTrue(out.contains("shard \(i)/2: \(i == 0 ? 3 : 2) of 5 test episodes"), out)
        }
        let merged = try ok(["ablate", "merge", dir + "/sh"])
        XCTAssertEqual(untimed(merged), untimed(full))
        XCTAssertTrue(merged.contains("| pixel+part+distribution |"), merged)
        XCTAssertEqual(try String(contentsOfFile: dir + "/sh/ablation.json", encoding: .utf8),
                       try String(contentsOfFile: dir + "/full/ablation.json", encoding: .utf8))
        let cmp = try ok(["compare", dir + "/full", dir + "/sh/episodes.jsonl"])
        XCTAssertTrue(cmp.contains("pixel+part") && cmp.contains("all (trained fusion)"), cmp)
        // The shard directory now also holds the merged episodes.jsonl: merging it again takes the shards.
        XCTAssertEqual(untimed(try ok(["ablate", "merge", dir + "/sh"])), untimed(full))
        XCTAssertEqual(try ok(["compare", dir + "/full", dir + "/sh"]), cmp.replacingOccurrences(
            of: "B: \(dir)/sh/episodes.jsonl", with: "B: \(dir)/sh"))
        try assertMMLFails(ablate + ["--out", dir + "/r", "--retrain", "--shard", "0/2"],
                           "--shard does not work with --retrain", reported: true)
    }

    /// The examples in examples/slurm parse as bash; the evaluation array, run task by task as SLURM would, and its
    /// merge give the unsharded report; the MPI training script uses only flags `mml train` accepts.
    func testSlurmExamples() throws {
        let dir = try makeTempDir(self, prefix: "mml-slurm")
        let root = packageRoot().appendingPathComponent("examples/slurm").path
        let names = try FileManager.default.contentsOfDirectory(atPath: root).sorted()
        XCTAssertTrue(Set(names).isSuperset(of: ["eval-array.sbatch", "eval-merge.sbatch", "submit-eval.sh",
                                                 "train-mpi.sbatch"]), "\(names)")
        func bash(_ args: [String], env: [String: String]) throws -> (Int32, String, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = args
            p.environment = environment(env)
            let out = Pipe(), err = Pipe()
            (p.standardOutput, p.standardError) = (out, err)
            try p.run()
            let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
        }
        for n in names where n.hasSuffix(".sbatch") || n.hasSuffix(".sh") {
            let r = try bash(["-n", root + "/" + n], env: [:])
            XCTAssertEqual(r.0, 0, "\(n): \(r.2)")
        }
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("mml").path
        let ckpt = try checkpoint(dir)
        let evalArgs = "--way 2,3 --shot 1 --query 2 --episodes 5 --seed 1"
        let env = ["MML": binary, "CKPT": ckpt, "DATA": "synthetic --synthetic-images 12", "OUT": dir + "/shards",
                   "EVAL_ARGS": evalArgs, "SLURM_CPUS_PER_TASK": "1"]
        for i in 0..<3 {
            let r = try bash([root + "/eval-array.sbatch"],
                             env: env.merging(["SLURM_ARRAY_TASK_ID": "\(i)", "SLURM_ARRAY_TASK_COUNT": "3"]) { $1 })
            XCTAssertEqual(r.0, 0, r.2)
        }
        let m = try bash([root + "/eval-merge.sbatch"], env: env)
        XCTAssertEqual(m.0, 0, m.2)
        let unsharded = try ok(["eval", "--checkpoint", ckpt, "synthetic", "--synthetic-images", "12", "--threads", "1",
                                "--json"] + evalArgs.split(separator: " ").map(String.init))
        XCTAssertEqual(try untimedJSON(try String(contentsOfFile: dir + "/shards/eval.json", encoding: .utf8)),
                       try untimedJSON(unsharded))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/shards/all-episodes.jsonl"))
        // train-mpi.sbatch: every flag of its mml train line is one mml train accepts; N must divide K.
        let script = try String(contentsOfFile: root + "/train-mpi.sbatch", encoding: .utf8)
        let help = try ok(["train", "--help"])
        let trainLines = script.split(separator: "\n").filter { $0.contains("\"$MML\" train") }
        XCTAssertEqual(trainLines.count, 1)   // launched with mpirun only
        let defaults = script.split(separator: "\n").first { $0.hasPrefix("TRAIN_ARGS=") }.map(String.init) ?? ""
        for line in trainLines + [Substring(defaults)] {
            let flags = line.split(separator: " ").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"'")) }
                .filter { $0.hasPrefix("--") && $0.count > 2 }
            XCTAssertFalse(flags.isEmpty)
            for f in flags { XCTAssertTrue(help.contains(f + " "), "mml train has no \(f)") }
        }
        let r = try bash([root + "/train-mpi.sbatch"], env: ["MML": binary, "DATA": "synthetic", "SLURM_NTASKS": "3",
                                                              "EPISODES_PER_STEP": "4", "OUT": dir + "/mpi"])
        XCTAssertEqual(r.0, 1)
        XCTAssertTrue(r.2.contains("3 ranks do not divide --episodes-per-step 4"), r.2)
    }
}
