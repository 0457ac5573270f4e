import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// `mml score`: its scores equal the library's on the same episode, and bad input gives clear messages.
final class ScoreCLITests: XCTestCase {
    var dir = ""
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("MMLCoreTests/Fixtures/npy").path

    override func setUpWithError() throws { dir = try makeTempDir(self, prefix: "mml-score") }

    /// A seeded 3-way episode: support labels 7, 3, 9 (two each, interleaved), queries with labels.
    func writeEpisode(shape: [Int] = [6, 8, 4, 4], queryShape: [Int]? = nil) throws
        -> (support: Tensor, query: Tensor, supportLabels: [Int], queryLabels: [Int]) {
        var g = SeededRNG(seed: 5, stream: 0)
        func tensor(_ shape: [Int], classes: [Int]) -> Tensor {
            let per = shape.dropFirst().reduce(1, *)
            var data: [Float] = []
            for c in classes { for k in 0..<per { data.append(Float(g.nextDouble() * 2 - 1) + (k % 3 == c ? 1.5 : 0)) } }
            return Tensor(shape: shape, data: data)
        }
        let sc = [0, 1, 2, 0, 1, 2], qc = [2, 0, 1, 1, 0]
        var qs = queryShape ?? shape
        qs[0] = qc.count
        let s = tensor(shape, classes: sc), q = tensor(qs, classes: qc)
        let names = [7, 3, 9]
        try NPY.write(s, to: dir + "/s.npy")
        try NPY.write(q, to: dir + "/q.npy")
        try NPY.write(ints: sc.map { names[$0] }, shape: [6], to: dir + "/sl.npy")
        try NPY.write(ints: qc.map { names[$0] }, shape: [5], to: dir + "/ql.npy")
        return (s, q, sc, qc)
    }

    var episodeArgs: [String] {
        ["score", "--support", dir + "/s.npy", "--support-labels", dir + "/sl.npy", "--query", dir + "/q.npy",
         "--query-labels", dir + "/ql.npy", "--threads", "1"]
    }

    func assertClose(_ a: Tensor, _ b: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        for i in 0..<min(a.count, b.count) {
            XCTAssertEqual(a.data[i], b.data[i], accuracy: 1e-5 * max(1, abs(b.data[i])), "\(what)[\(i)]", file: file, line: line)
        }
    }

    func testNpyOutputEqualsLibraryScores() throws {
        let e = try writeEpisode()
        let (code, out, err) = try runMML(episodeArgs + ["--out", dir + "/scores.npy"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("per-episode") || out.contains("over this episode"), out)
        let metric = try MetricConfiguration().makeMetric(threads: 1)
        let lib = try scoreEpisode(metric: metric, support: e.support, labels: e.supportLabels, query: e.query, way: 3,
                                   fusionStatistics: .episode)
        for l in lib.levels {
            assertClose(try NPY.readTensor(dir + "/scores.\(l.rawValue).npy"), lib.levelScores[l]!, l.rawValue)
        }
        assertClose(try NPY.readTensor(dir + "/scores.npy"), lib.fused, "fused")
        XCTAssertEqual(try NPY.read(dir + "/scores.classes.npy").ints(), [7, 3, 9])
    }

    func testJSONOutputWithDescriptorSetsFixedFusionAndAccuracy() throws {
        let e = try writeEpisode(shape: [6, 5, 8])
        let (code, out, err) = try runMML(episodeArgs + ["--json", "--levels", "pixel,part,distribution", "--part-form",
                                                        "channels", "--pixel-k", "2", "--distance", "w2", "--fusion", "fixed"])
        XCTAssertEqual(code, 0, err)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], out)
        XCTAssertEqual(obj["classes"] as? [Int], [7, 3, 9])
        let config = MetricConfiguration(pixelNeighbours: 2, partForm: .channels, distance: .w2, fusion: .fixed)
        let lib = try scoreEpisode(metric: try config.makeMetric(threads: 1), support: e.support, labels: e.supportLabels,
                                   query: e.query, way: 3)
        func tensor(_ rows: Any?) throws -> Tensor {
            let r = try XCTUnwrap(rows as? [[Double]])
            return Tensor(shape: [r.count, r[0].count], data: r.flatMap { $0.map(Float.init) })
        }
        let scores = try XCTUnwrap(obj["scores"] as? [String: Any])
        for l in lib.levels { assertClose(try tensor(scores[l.rawValue]), lib.levelScores[l]!, l.rawValue) }
        assertClose(try tensor(obj["fused"]), lib.fused, "fused")
        let acc = try lib.accuracy(queryLabels: e.queryLabels)
        let jacc = try XCTUnwrap(obj["accuracy"] as? [String: Double])
        XCTAssertEqual(jacc["fused"]!, acc.fused, accuracy: 1e-12)
        XCTAssertEqual(jacc["pixel"]!, acc.levels[.pixel]!, accuracy: 1e-12)
        XCTAssertEqual(obj["predictions"] as? [Int], lib.predictions.map { [7, 3, 9][$0] })
    }

    /// The metric flags `mml score` shares with `mml train` (MetricOptions): eps, fixed weights, per-position fusion.
    func testSharedMetricFlagsMatchTheLibrary() throws {
        let e = try writeEpisode()
        let (code, out, err) = try runMML(episodeArgs + ["--json", "--levels", "pixel,distribution", "--fusion", "fixed",
                                                        "--fixed-weights", "0.25,2", "--distribution-eps", "0.5"])
        XCTAssertEqual(code, 0, err)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], out)
        let config = MetricConfiguration(levels: [.pixel, .distribution], distributionEps: 0.5, fusion: .fixed,
                                         fixedWeights: [0.25, 2])
        let lib = try scoreEpisode(metric: try config.makeMetric(threads: 1), support: e.support, labels: e.supportLabels,
                                   query: e.query, way: 3)
        let fused = try XCTUnwrap(obj["fused"] as? [[Double]])
        assertClose(Tensor(shape: [fused.count, fused[0].count], data: fused.flatMap { $0.map(Float.init) }), lib.fused,
                    "fused")
        XCTAssertTrue((obj["metric"] as? String ?? "").contains("[0.25, 2.0]"), "\(obj["metric"] ?? "")")
        // Per-position normalisation is made for the episode's own n-way (3 here, from the support labels).
        let (c2, out2, err2) = try runMML(episodeArgs + ["--out", dir + "/pp.npy", "--fusion-normalization", "per-position"])
        XCTAssertEqual(c2, 0, err2)
        XCTAssertTrue(out2.contains("learned per-position fusion"), out2)
        let pp = MetricConfiguration(fusionNormalization: .perPosition, way: 3)
        let libPP = try scoreEpisode(metric: try pp.makeMetric(threads: 1), support: e.support, labels: e.supportLabels,
                                     query: e.query, way: 3, fusionStatistics: .episode)
        assertClose(try NPY.readTensor(dir + "/pp.npy"), libPP.fused, "per-position fused")
        try assertMMLFails(episodeArgs + ["--json", "--fixed-weights", "1,x", "--fusion", "fixed"],
                        "--fixed-weights '1,x': 'x' is not a number", reported: true)
        try assertMMLFails(episodeArgs + ["--json", "--fixed-weights", "1,2", "--fusion", "fixed"],
                        "fixed fusion weights [1.0, 2.0]: give 3 non-negative weights", reported: true)
        try assertMMLFails(episodeArgs + ["--json", "--distribution-eps", "0"],
                           "distribution eps = 0.0", reported: true)
    }

    func testCheckpointMetricAndTrainedFusion() throws {
        let e = try writeEpisode()
        let config = ModelConfiguration(backbone: .conv4, inputChannels: 1, seed: 1, image: ImageConfig(size: 28, channels: 1),
                                        metric: MetricConfiguration(levels: [.pixel, .distribution], distance: .klSymmetric))
        let model = try FewShotModel(config, threads: 1)
        for (name, p) in model.namedParameters() {
            if name == "fusion.weight" { p.value.data = [0.5, 2] }
            if name == "fusion.running_mean" { p.value.data = [10, -30] }
            if name == "fusion.running_var" { p.value.data = [4, 100] }
        }
        try Checkpoint.save(model, to: dir + "/m.safetensors")
        let (code, _, err) = try runMML(episodeArgs + ["--checkpoint", dir + "/m.safetensors", "--out", dir + "/c.npy"])
        XCTAssertEqual(code, 0, err)
        let lib = try scoreEpisode(metric: try XCTUnwrap(model.scoringMetric), support: e.support, labels: e.supportLabels,
                                   query: e.query, way: 3, fusionStatistics: .stored)
        assertClose(try NPY.readTensor(dir + "/c.npy"), lib.fused, "fused")
        assertClose(try NPY.readTensor(dir + "/c.distribution.npy"), lib.levelScores[.distribution]!, "distribution")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/c.part.npy"))
        let (c2, _, e2) = try runMML(episodeArgs + ["--checkpoint", dir + "/m.safetensors", "--levels", "pixel", "--json"])
        XCTAssertNotEqual(c2, 0)
        XCTAssertTrue(e2.contains("--levels cannot be combined with --checkpoint"), e2)
        let (c3, _, e3) = try runMML(episodeArgs + ["--checkpoint", dir + "/m.safetensors", "--distribution-eps", "0.1",
                                                    "--fixed-weights", "1,1", "--json"])
        XCTAssertNotEqual(c3, 0)
        XCTAssertTrue(e3.contains("--distribution-eps, --fixed-weights cannot be combined with --checkpoint"), e3)
    }

    func with(_ flag: String, _ value: String) -> [String] {
        var a = episodeArgs + ["--json"]
        a[a.firstIndex(of: flag)! + 1] = value
        return a
    }

    func testBadInputErrors() throws {
        _ = try writeEpisode()
        let fx = { (n: String) in self.fixtures + "/" + n }
        try assertMMLFails(with("--support", fx("i8_labels.npy")),
                           "dtype <i8 where features must be float32 or float64", reported: true)
        try assertMMLFails(with("--support", fx("f4_bigendian.npy")), "big-endian dtype >f4", reported: true)
        try assertMMLFails(with("--query", fx("f4_fortran.npy")), "Fortran (column-major) order", reported: true)
        try assertMMLFails(with("--support", fx("f4_2x3.npy")), "support features have shape [2, 3]", reported: true)
        try assertMMLFails(with("--support-labels", fx("f4_2x3.npy")), "labels must be int32 or int64", reported: true)
        try assertMMLFails(with("--support-labels", fx("i4_labels.npy")),
                           "has 3 support labels but \(dir)/s.npy has 6", reported: true)
        try assertMMLFails(with("--support-labels", fx("i4_scalar.npy")), "give a 1-D array", reported: true)
        try assertMMLFails(with("--query", fx("f8_nonfinite.npy")), "element 3 (index (1, 1)) is -inf", reported: true)
        try assertMMLFails(with("--query", fx("missing.npy")), "no such file", reported: true)
        // Truncated and oversized headers.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/s.npy")))
        try Data(bytes.prefix(50)).write(to: URL(fileURLWithPath: dir + "/t.npy"))
        try assertMMLFails(with("--support", dir + "/t.npy"), "truncated: the header claims", reported: true)
        bytes[6] = 2
        bytes.insert(contentsOf: [0xFF, 0x7F], at: 10)
        bytes[8] = 0; bytes[9] = 0
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/h.npy"))
        try assertMMLFails(with("--support", dir + "/h.npy"), "exceeds the limit of 65536", reported: true)
        // Episode-level mismatches.
        var g = SeededRNG(seed: 1, stream: 0)
        try NPY.write(Tensor(shape: [5, 7, 4, 4], data: (0..<560).map { _ in Float(g.nextDouble()) }), to: dir + "/q7.npy")
        try assertMMLFails(with("--query", dir + "/q7.npy"),
                           "have C = 8 channels but query features \(dir)/q7.npy have C = 7", reported: true)
        try NPY.write(ints: [7, 3, 9, 7, 3, 9], shape: [6], to: dir + "/sl6.npy")
        try assertMMLFails(episodeArgs + ["--json", "--way", "5"],
                           "has 3 distinct labels [7, 3, 9] but --way is 5", reported: true)
        try NPY.write(ints: [7, 3, 9, 3, 42], shape: [5], to: dir + "/ql42.npy")
        try assertMMLFails(with("--query-labels", dir + "/ql42.npy"),
                           "query 4 has label 42, which no support item has", reported: true)
        try assertMMLFails(Array(episodeArgs.dropLast(0)), "nothing to write", reported: true)
        try assertMMLFails(episodeArgs + ["--json", "--distance", "l2"],
                           "unknown distribution distance 'l2'", reported: true)
        try assertMMLFails(episodeArgs + ["--json", "--levels", "pixels"],
                           "unknown metric level 'pixels'", reported: true)
        try assertMMLFails(episodeArgs + ["--json", "--part-form", "grid:9"], "grid sizes [9]", reported: true)
        try assertMMLFails(episodeArgs + ["--json", "--checkpoint", fx("f4_2x3.npy")], "f4_2x3.npy", reported: true)
    }
}
