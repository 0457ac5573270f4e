import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// Sharded evaluation through the library: shards + merge give the unsharded report number for number (eval,
/// frozen protocol, ablation), per-episode files round-trip, paired comparisons match a brute-force computation,
/// and every refusal (shard syntax and bounds, SLURM variables, missing / duplicated / mismatched shards, missing
/// episodes, corrupt files, differing episodes) names what is wrong.
final class ShardedEvaluationTests: XCTestCase {
    let data = DatasetSource(path: "synthetic", syntheticSize: 20, syntheticImages: 12)

    func saveModel(_ path: String, seed: UInt64 = 3) throws {
        let config = ModelConfiguration(kind: "episodic", backbone: .conv64F, inputChannels: 1, widths: [8, 8, 8, 8],
                                        initialization: .kaiming, seed: seed, image: ImageConfig(size: 20, channels: 1),
                                        metric: MetricConfiguration(partForm: .grid([2])))
        try Checkpoint.save(try FewShotModel(config, threads: 1), to: path)
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return (error as? MMLError)?.template ?? "\(error)" }
    }

    func assertMessage(_ body: () throws -> Void, _ needles: String..., file: StaticString = #filePath,
                       line: UInt = #line) {
        let m = message(body)
        for n in needles { XCTAssertTrue(m.contains(n), "expected '\(n)' in: \(m)", file: file, line: line) }
    }

    /// The report without its timing (`seconds`, `episodes_per_second`), as JSON text.
    func untimed(_ r: EvaluationRunResult) throws -> String {
        var r = r
        for i in r.results.indices { r.results[i].seconds = 0; r.results[i].episodesPerSecond = 0 }
        return try r.jsonText()
    }

    func testShardSpecParsingBoundsAndSLURM() throws {
        XCTAssertEqual(try ShardSpec.parse("2/5"), ShardSpec(index: 2, count: 5))
        XCTAssertEqual((0..<10).filter(ShardSpec(index: 1, count: 3).contains), [1, 4, 7])
        assertMessage({ _ = try ShardSpec.parse("2") }, "`shard` '2': give i/n")
        assertMessage({ _ = try ShardSpec.parse("a/3") }, "`shard` 'a/3'")
        assertMessage({ _ = try ShardSpec.parse("3/3") }, "`shard` 3/3: the shard index must be in 0..<3")
        assertMessage({ _ = try ShardSpec.parse("-1/3") }, "`shard` -1/3")
        assertMessage({ _ = try ShardSpec.parse("0/0") }, "`shard` 0/0: the number of shards must be >= 1")
        assertMessage({ try ShardSpec(index: 0, count: 9).validate(episodes: 4, setting: "5-way 1-shot") },
                      "9 shards for the 4 `episodes` of 5-way 1-shot; use at most 4 shards")
        XCTAssertNil(try ShardSpec.fromSLURM(environment: ["SLURM_ARRAY_TASK_ID": "3"]))
        XCTAssertEqual(try ShardSpec.fromSLURM(environment: ["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"]),
                       ShardSpec(index: 3, count: 4))
        XCTAssertEqual(try ShardSpec.fromSLURM(environment: ["SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10",
                                                             "SLURM_ARRAY_TASK_COUNT": "3"]), ShardSpec(index: 2, count: 3))
        XCTAssertEqual(try ShardSpec.fromSLURM(environment: ["SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "0",
                                                             "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_COUNT": "3"]),
                       ShardSpec(index: 2, count: 3))
        assertMessage({ _ = try ShardSpec.fromSLURM(environment: ["SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"]) },
                      "SLURM_ARRAY_TASK_ID=x is not an integer")
        assertMessage({ _ = try ShardSpec.fromSLURM(environment: ["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "2"]) },
                      "gives shard 5/2, outside 0..<2")
    }

    func testContentHashIsStableAndSeesEveryIdentity() throws {
        let ds = try data.with(split: "test").open(image: ImageConfig(size: 20, channels: 1))
        let sampler = try EpisodeSampler(dataset: ds, way: 3, shot: 1, query: 2, seed: 4)
        let e = sampler.episode(5)
        let h = EpisodeRecord.contentHash(of: e, in: ds, dataIdentity: "")
        XCTAssertEqual(h, EpisodeRecord.contentHash(of: sampler.episode(5), in: ds, dataIdentity: ""))
        XCTAssertEqual(h.count, 16)
        var other = e
        other.query[1][0] = (other.query[1][0] + 1) % 12
        if other.query[1][0] == other.support[1][0] { other.query[1][0] = (other.query[1][0] + 1) % 12 }
        XCTAssertNotEqual(h, EpisodeRecord.contentHash(of: other, in: ds, dataIdentity: ""))
        XCTAssertNotEqual(h, EpisodeRecord.contentHash(of: e, in: ds, dataIdentity: "synthetic-seed=1"))
        XCTAssertNotEqual(h, EpisodeRecord.contentHash(of: sampler.episode(6), in: ds, dataIdentity: ""))
        // FNV-1a 64 reference values (the published test vectors).
        var f = FNV1a64()
        XCTAssertEqual(f.hex, "cbf29ce484222325")
        f.add("a")
        XCTAssertEqual(f.hex, "af63dc4c8601ec8c")
    }

    /// Unsharded vs 3 shards merged (and a single unsharded file merged), metric and prototype protocols.
    func testShardedEvaluationMergesToTheUnshardedReport() throws {
        let dir = try makeTempDir(self, prefix: "mml-shard")
        try saveModel(dir + "/m.safetensors")
        for proto in [EvaluationProtocol.metric, .prototype, .cosineClassifier] {
            var config = EvaluationRunConfiguration(checkpoint: dir + "/m.safetensors", dataset: data,
                                                    evaluationProtocol: proto, ways: [2, 3], shots: [1], query: 2,
                                                    episodes: 7, seed: 5, threads: 1)
            config.episodesOut = dir + "/\(proto)-full.jsonl"
            let full = try EvaluationRun(config).run()
            var parts: [EvaluationRunResult] = []
            for i in 0..<3 {
                var c = config
                c.shard = ShardSpec(index: i, count: 3)
                c.episodesOut = dir + "/\(proto)/" + c.shard!.fileName
                parts.append(try EvaluationRun(c).run())
            }
            XCTAssertEqual(parts.map { $0.results[0].episodes }, [3, 2, 2])
            let (merged, file) = try EvaluationRunResult.merged([dir + "/\(proto)"])
            XCTAssertEqual(try untimed(merged), try untimed(full))
            XCTAssertEqual(merged.results.map(\.accuracy), full.results.map(\.accuracy))
            XCTAssertEqual(merged.results.map(\.levels), full.results.map(\.levels))
            XCTAssertEqual(merged.results[0].seconds, parts.reduce(0) { $0 + $1.results[0].seconds }, accuracy: 1e-12)
            // The merged records are the unsharded file's records.
            let fullFile = try EvaluationEpisodeFile.read(dir + "/\(proto)-full.jsonl")
            XCTAssertEqual(file.records, fullFile.records)
            XCTAssertNil(file.header.shard)
            XCTAssertEqual(try untimed(try EvaluationRunResult.merged([dir + "/\(proto)-full.jsonl"]).result),
                           try untimed(full))
            XCTAssertEqual(fullFile.records.filter { $0.way == 3 }.map(\.index), Array(0..<7))
            XCTAssertEqual(fullFile.records.first?.levels != nil, proto == .metric)
        }
    }

    /// An episode list is sharded by position in the list; a directory as `episodesOut` gets the default name.
    func testShardedEpisodeListAndDefaultFileNames() throws {
        let dir = try makeTempDir(self, prefix: "mml-shardlist")
        try saveModel(dir + "/m.safetensors")
        let ds = try data.with(split: "test").open(image: ImageConfig(size: 20, channels: 1))
        let sampler = try EpisodeSampler(dataset: ds, way: 3, shot: 2, query: 2, seed: 11)
        // Not in index order: positions, not episode indices, decide the shard.
        try EpisodeList(episodes: [4, 0, 9, 2, 7].map(sampler.episode), sampler: sampler, split: "test")
            .write(to: dir + "/list.json")
        var config = EvaluationRunConfiguration(checkpoint: dir + "/m.safetensors", dataset: data,
                                                episodeList: dir + "/list.json", threads: 1, episodesOut: dir + "/full/")
        let full = try EvaluationRun(config).run()
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/full/episodes.jsonl"))
        for i in 0..<2 {
            config.shard = ShardSpec(index: i, count: 2)
            config.episodesOut = dir + "/shards/"
            _ = try EvaluationRun(config).run()
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/shards").sorted(),
                       ["episodes-shard-0-of-2.jsonl", "episodes-shard-1-of-2.jsonl"])
        let (merged, file) = try EvaluationRunResult.merged([dir + "/shards"])
        XCTAssertEqual(try untimed(merged), try untimed(full))
        XCTAssertEqual(file.records.map(\.index), Array(0..<5))
        XCTAssertEqual(file.records.map(\.hash), try EvaluationEpisodeFile.read(dir + "/full/episodes.jsonl").records.map(\.hash))
        XCTAssertNotEqual(file.header.manifest["episode_list"], "none")
    }

    func testShardedAblationMergesToTheUnshardedTable() throws {
        let dir = try makeTempDir(self, prefix: "mml-shardabl")
        try saveModel(dir + "/m.safetensors")
        let config = AblationRunConfiguration(checkpoint: dir + "/m.safetensors", dataset: data, refitEpisodes: 3,
                                              way: 2, shot: 1, query: 3, episodes: 5, seed: 2, out: dir + "/full",
                                              threads: 1)
        let full = try AblationRun(config).run()
        for i in 0..<2 {
            var c = config
            c.out = dir + "/shards"
            c.shard = ShardSpec(index: i, count: 2)
            _ = try AblationRun(c).run()
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/shards/ablation.md"))
        let (merged, file) = try AblationRunResult.merged([dir + "/shards"])
        XCTAssertEqual(merged.markdown, full.markdown)
        XCTAssertEqual(try merged.jsonText(), try full.jsonText())
        XCTAssertEqual(merged.rows.map(\.differenceToFull), full.rows.map(\.differenceToFull))
        XCTAssertEqual(file.records, try AblationEpisodeFile.read(dir + "/full/episodes.jsonl").records)
        // The table from the records is the table from the scores (one path): rows[1] brute force.
        let acc = file.records.map { $0.subsets!["pixel+part"]! }
        XCTAssertEqual(full.rows[1].perEpisode, acc)
        XCTAssertEqual(full.rows[1].differenceToFull, AccuracySummary(zip(acc, file.records.map(\.accuracy)).map { $0 - $1 }))
        var bad = config
        bad.shard = ShardSpec(index: 0, count: 2)
        bad.retrain = true
        assertMessage({ _ = try AblationRun(bad, trainer: { _, _, _ in (0, 0) }) }, "`shard` does not work with `retrain`")
    }

    func testMergeRefusesMissingDuplicatedMismatchedAndCorruptShards() throws {
        let dir = try makeTempDir(self, prefix: "mml-shardbad")
        try saveModel(dir + "/m.safetensors")
        try saveModel(dir + "/other.safetensors", seed: 4)
        func shard(_ i: Int, _ n: Int, to sub: String, seed: UInt64 = 5, checkpoint: String = "m",
                   ways: [Int] = [2], preprocessing: Preprocessing = Preprocessing()) throws -> String {
            let path = dir + "/\(sub)/" + ShardSpec(index: i, count: n).fileName
            _ = try EvaluationRun(EvaluationRunConfiguration(
                checkpoint: dir + "/\(checkpoint).safetensors", dataset: data, ways: ways, query: 2, episodes: 4,
                seed: seed, threads: 1, shard: ShardSpec(index: i, count: n), episodesOut: path,
                preprocessing: preprocessing)).run()
            return path
        }
        let a0 = try shard(0, 2, to: "a"), a1 = try shard(1, 2, to: "a")
        let seed1 = try shard(1, 2, to: "seed", seed: 6)
        let ckpt1 = try shard(1, 2, to: "ckpt", checkpoint: "other")
        let way1 = try shard(1, 2, to: "way", ways: [3])
        let ink1 = try shard(1, 2, to: "ink", preprocessing: Preprocessing(ink: .inkOne))
        let b0 = try shard(0, 3, to: "b")
        assertMessage({ _ = try EvaluationRunResult.merged([a0]) }, "shard(s) 1/2 missing")
        assertMessage({ _ = try EvaluationRunResult.merged([a0, a1, a1]) }, "shard 1/2 is given twice", a1)
        assertMessage({ _ = try EvaluationRunResult.merged([a0, seed1]) }, seed1, "not from the same run", "seed: 6 vs 5")
        assertMessage({ _ = try EvaluationRunResult.merged([a0, ckpt1]) }, ckpt1, "checkpoint_hash: fnv1a64:")
        assertMessage({ _ = try EvaluationRunResult.merged([a0, way1]) }, way1, "settings:")
        assertMessage({ _ = try EvaluationRunResult.merged([a0, ink1]) }, ink1, "not from the same run", "image:")
        assertMessage({ _ = try EvaluationRunResult.merged([a0, b0]) }, "is shard 0/3 but", "is shard 0/2")
        assertMessage({ _ = try EvaluationRunResult.merged([dir + "/nothing"]) }, dir + "/nothing does not exist")
        // An ablation file is not an eval file.
        _ = try AblationRun(AblationRunConfiguration(checkpoint: dir + "/m.safetensors", dataset: data, refitEpisodes: 2,
                                                     way: 2, query: 2, episodes: 2, out: dir + "/abl", threads: 1)).run()
        assertMessage({ _ = try EvaluationRunResult.merged([dir + "/abl/episodes.jsonl"]) },
                      "holds results of mml ablate, not mml eval")
        // A record removed, duplicated, or a damaged line.
        let text = try String(contentsOfFile: a1, encoding: .utf8)
        var lines = text.split(separator: "\n").map(String.init)
        try (lines.dropLast().joined(separator: "\n") + "\n").write(toFile: dir + "/a/cut.jsonl", atomically: true, encoding: .utf8)
        assertMessage({ _ = try EvaluationRunResult.merged([a0, dir + "/a/cut.jsonl"]) }, "episode(s) 3 of 2-way 1-shot missing")
        try (text + lines[1] + "\n").write(toFile: dir + "/a/dup.jsonl", atomically: true, encoding: .utf8)
        assertMessage({ _ = try EvaluationRunResult.merged([a0, dir + "/a/dup.jsonl"]) }, "episode 1 of 2-way 1-shot appears twice")
        try (text + (try String(contentsOfFile: a0, encoding: .utf8)).split(separator: "\n")[1] + "\n")
            .write(toFile: dir + "/a/wrong.jsonl", atomically: true, encoding: .utf8)
        assertMessage({ _ = try EvaluationRunResult.merged([a0, dir + "/a/wrong.jsonl"]) }, "does not belong to shard 1/2")
        lines[2] = "{\"way\": 2, oops"
        try lines.joined(separator: "\n").write(toFile: dir + "/a/bad.jsonl", atomically: true, encoding: .utf8)
        assertMessage({ _ = try EvaluationRunResult.merged([a0, dir + "/a/bad.jsonl"]) }, "bad.jsonl line 3: not a per-episode record")
        try "hello\n".write(toFile: dir + "/a/hello.jsonl", atomically: true, encoding: .utf8)
        assertMessage({ _ = try EvaluationRunResult.merged([dir + "/a/hello.jsonl"]) }, "hello.jsonl is not a per-episode file of mml")
        // Shards need a file; at most one shard per episode.
        assertMessage({ _ = try EvaluationRun(EvaluationRunConfiguration(checkpoint: dir + "/m.safetensors", shard: ShardSpec(index: 0, count: 2))) },
                      "`shard` 0/2: a shard's results go to a per-episode file; give `episodesOut`")
        assertMessage({ _ = try EvaluationRun(EvaluationRunConfiguration(
            checkpoint: dir + "/m.safetensors", dataset: data, ways: [2], query: 2, episodes: 2, threads: 1,
            shard: ShardSpec(index: 0, count: 3), episodesOut: dir + "/x.jsonl")).run() }, "3 shards for the 2 `episodes` of 2-way 1-shot")
    }

    func testCompareIsThePairedDifferenceAndRefusesOtherEpisodes() throws {
        let dir = try makeTempDir(self, prefix: "mml-compare")
        try saveModel(dir + "/m.safetensors")
        try saveModel(dir + "/other.safetensors", seed: 9)
        func run(_ ckpt: String, seed: UInt64 = 5, query: Int = 2) throws -> EpisodeFile<IgnoredReport> {
            let path = dir + "/\(ckpt)-\(seed)-\(query).jsonl"
            _ = try EvaluationRun(EvaluationRunConfiguration(
                checkpoint: dir + "/\(ckpt).safetensors", dataset: data, ways: [3], query: query, episodes: 6,
                seed: seed, threads: 1, episodesOut: path)).run()
            return try EpisodeFile<IgnoredReport>.read(path)
        }
        let a = try run("m"), b = try run("other")
        let c = try EpisodeComparison(a, named: "A", b, named: "B")
        XCTAssertEqual(c.settings.map(\.measures.count), [4])
        for m in c.settings[0].measures {
            let x = m.name == "accuracy" ? a.records.map(\.accuracy) : a.records.map { $0.levels![m.name]! }
            let y = m.name == "accuracy" ? b.records.map(\.accuracy) : b.records.map { $0.levels![m.name]! }
            var d: [Double] = []
            for k in x.indices { d.append(x[k] - y[k]) }
            let mean = d.reduce(0, +) / 6
            let sd = (d.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 5).squareRoot()
            XCTAssertEqual(m.difference.mean, mean, accuracy: 1e-12)
            XCTAssertEqual(m.difference.ci95, 1.96 * sd / 6.0.squareRoot(), accuracy: 1e-12)
            XCTAssertEqual(m.a, AccuracySummary(x))
        }
        XCTAssertTrue(c.text.contains("3-way 1-shot, 2 queries, 6 paired episodes"), c.text)
        assertMessage({ _ = try EpisodeComparison(a, named: "A", try run("other", seed: 6), named: "B") },
                      "episode 0 of 3-way 1-shot differs: hash", "in A vs", "in B")
        assertMessage({ _ = try EpisodeComparison(a, named: "A", try run("m", query: 3), named: "B") },
                      "A and B have different settings")
    }
}
