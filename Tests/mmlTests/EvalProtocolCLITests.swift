import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// `mml eval --protocol metric|prototype|cosine-classifier` on small checkpoints of every kind (written by
/// `mml pretrain`, `mml train-embedding` and through the library): the default choice, values equal to the library's
/// on the same episodes, episode lists, the JSON report, and the user-facing errors.
final class EvalProtocolCLITests: XCTestCase {
    /// Training data for mml pretrain / train-embedding (28 x 28 grey synthetic images, narrow Conv-4).
    let train = ["synthetic", "--synthetic-size", "28", "--synthetic-channels", "1", "--synthetic-images", "20",
                 "--image-size", "28", "--widths", "16,16,16,16", "--threads", "1"]
    /// The same data for mml eval (the test split by default).
    let data = ["synthetic", "--synthetic-size", "28", "--synthetic-channels", "1", "--synthetic-images", "20",
                "--threads", "1"]

    /// The test split of the synthetic data above, and a loader for `model`'s images.
    func testSplit(for model: FewShotModel) throws -> (any FewShotDataset, EpisodeLoader) {
        let ds = try SyntheticDataset(options: .init(imagesPerClass: 20, size: 28, channels: 1), split: "test")
        return (ds, try EpisodeLoader(dataset: ds, config: model.configuration.image))
    }

    /// An untrained model of `kind` (widths 16; Conv-4 gives 1 x 1 maps at 28 x 28, Conv-64F 7 x 7 ones for the
    /// metric) with an optional metric, saved to `path`.
    func saveModel(kind: String, backbone: BackboneKind = .conv4, metric: MetricConfiguration?, to path: String,
                   extra: [(name: String, tensor: Tensor)] = []) throws -> FewShotModel {
        let config = ModelConfiguration(kind: kind, backbone: backbone, inputChannels: 1, widths: [16, 16, 16, 16],
                                        initialization: .kaiming, seed: 3, image: ImageConfig(size: 28, channels: 1),
                                        metric: metric)
        let model = try FewShotModel(config, threads: 1)
        try Checkpoint.save(model, extra: extra, to: path)
        return model
    }

    func evalJSON(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let (code, out, err) = try runMML(["eval"] + args + ["--json"])
        XCTAssertEqual(code, 0, err, file: file, line: line)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], out,
                             file: file, line: line)
    }

    func results(_ obj: [String: Any]) throws -> [[String: Any]] { try XCTUnwrap(obj["results"] as? [[String: Any]]) }

    func mean(_ result: [String: Any], _ key: String = "accuracy") -> Double? {
        (result[key] as? [String: Any])?["mean"] as? Double
    }

    /// The "+- "-formatted accuracy after `prefix` on a line of `text` (up to the next "%").
    func percent(after prefix: String, in text: String) -> String? {
        for line in text.split(separator: "\n") {
            guard let r = line.range(of: prefix) else { continue }
            return line[r.upperBound...].split(separator: "%").first.map(String.init)
        }
        return nil
    }

    func testPretrainCheckpointDefaultsToPrototypeAndMatchesPretrainAndLibrary() throws {
        let dir = try makeTempDir(self, prefix: "mml-proto")
        var (code, out, err) = try runMML(["pretrain"] + train + ["--epochs", "1", "--batch-size", "16",
                                          "--max-batches", "2", "--val-split", "none", "--test-episodes", "3",
                                          "--seed", "3", "--out", dir])
        XCTAssertEqual(code, 0, err)
        let ckpt = dir + "/backbone.safetensors"
        // Text output: the default protocol is prototype; the numbers are those of pretrain's own final test (same
        // seed, so the same episodes), for both protocols (pretrain's classifier seed is the library default 0).
        var evalOut: String
        (code, evalOut, err) = try runMML(["eval", "--checkpoint", ckpt] + data + ["--shot", "1,5", "--episodes", "3",
                                            "--seed", "3"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(evalOut.contains("(pretrained, conv4, no metric)"), evalOut)
        XCTAssertTrue(evalOut.contains("protocol    prototype (frozen features"), evalOut)
        XCTAssertTrue(evalOut.contains("no per-level scores"), evalOut)
        for shot in [1, 5] {
            let expected = try XCTUnwrap(percent(after: "5-way \(shot)-shot prototype (3 episodes): ", in: out), out)
            XCTAssertEqual(percent(after: "5-way \(shot)-shot, 15 queries, 3 episodes (seed 3): prototype ", in: evalOut),
                           expected, evalOut)
        }
        (code, evalOut, err) = try runMML(["eval", "--checkpoint", ckpt] + data + ["--shot", "1,5", "--episodes", "3",
                                            "--seed", "3", "--protocol", "cosine-classifier", "--classifier-seed", "0"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(evalOut.contains("protocol    cosine-classifier (frozen features, a cosine classifier per "
                                       + "episode: s 5.0, SGD lr 0.01 momentum 0.9 dampening 0.9 weight decay 0.001, "
                                       + "100 passes in batches of 4, seed 0; no per-level scores)"), evalOut)
        for shot in [1, 5] {
            let expected = try XCTUnwrap(percent(after: "5-way \(shot)-shot cosine-classifier (3 episodes): ", in: out))
            XCTAssertEqual(percent(after: "(seed 3): cosine-classifier ", in: evalOut.split(separator: "\n")
                                    .filter { $0.hasPrefix("5-way \(shot)-shot") }.joined()), expected, evalOut)
        }

        // JSON over a way x shot grid equals the library on the same episodes.
        let obj = try evalJSON(["--checkpoint", ckpt] + data + ["--way", "3,5", "--shot", "1,2", "--query", "4",
                                "--episodes", "4", "--seed", "2"])
        XCTAssertEqual(obj["protocol"] as? String, "prototype")
        XCTAssertEqual(obj["per_level"] as? Bool, false)
        XCTAssertNil(obj["cosine_classifier"])
        let rs = try results(obj)
        XCTAssertEqual(rs.map { [$0["way"] as? Int ?? 0, $0["shot"] as? Int ?? 0] }, [[3, 1], [3, 2], [5, 1], [5, 2]])
        let loaded = try Checkpoint.load(ckpt, threads: 1)
        let (ds, loader) = try testSplit(for: loaded.model)
        for r in rs {
            XCTAssertEqual(r["protocol"] as? String, "prototype")
            XCTAssertNil(r["levels"], "frozen protocols have no per-level scores")
            XCTAssertNil(r["fused"])
            let sampler = try EpisodeSampler(dataset: ds, way: r["way"] as! Int, shot: r["shot"] as! Int, query: 4, seed: 2)
            let lib = try evaluateFrozenFeatures(model: loaded.model, loader: loader, sampler: sampler, episodes: 4,
                                                 protocol: .prototype)
            XCTAssertEqual(try XCTUnwrap(mean(r)), lib.summary.mean, accuracy: 1e-12)
            XCTAssertEqual((r["accuracy"] as? [String: Any])?["ci95"] as? Double ?? -1, lib.summary.ci95, accuracy: 1e-12)
            XCTAssertEqual((r["accuracy"] as? [String: Any])?["episodes"] as? Int, 4)
        }
    }

    func testCosineClassifierOptionsSeedAndEpisodeList() throws {
        let dir = try makeTempDir(self, prefix: "mml-proto")
        let ckpt = dir + "/pre.safetensors"
        let model = try saveModel(kind: "pretrained", metric: nil, to: ckpt)
        let (ds, loader) = try testSplit(for: model)
        let episodeArgs = ["--way", "3", "--shot", "2", "--query", "4", "--episodes", "4"]
        let classifierArgs = ["--classifier-passes", "7", "--classifier-batch-size", "3", "--classifier-lr", "0.05",
                              "--classifier-weight-decay", "0.01", "--classifier-scale", "8"]
        let obj = try evalJSON(["--checkpoint", ckpt] + data + episodeArgs + ["--seed", "5", "--protocol",
                               "cosine-classifier", "--report", dir + "/report.json"] + classifierArgs)
        XCTAssertEqual(obj["protocol"] as? String, "cosine-classifier")
        let cc = try XCTUnwrap(obj["cosine_classifier"] as? [String: Any])
        XCTAssertEqual(cc["passes"] as? Int, 7)
        XCTAssertEqual(cc["batch_size"] as? Int, 3)
        XCTAssertEqual(cc["learning_rate"] as? Double ?? 0, 0.05, accuracy: 1e-7)
        XCTAssertEqual(cc["weight_decay"] as? Double ?? 0, 0.01, accuracy: 1e-7)
        XCTAssertEqual(cc["scale"] as? Double, 8)
        XCTAssertEqual(cc["momentum"] as? Double ?? 0, 0.9, accuracy: 1e-7)
        XCTAssertEqual(cc["dampening"] as? Double ?? 0, 0.9, accuracy: 1e-7)
        let seed = try XCTUnwrap((cc["seed"] as? NSNumber)?.uint64Value)
        var options = CosineClassifierProtocolOptions()
        options.passes = 7
        options.batchSize = 3
        options.learningRate = 0.05
        options.weightDecay = 0.01
        options.scale = 8
        options.seed = seed
        let sampler = try EpisodeSampler(dataset: ds, way: 3, shot: 2, query: 4, seed: 5)
        let lib = try evaluateFrozenFeatures(model: model, loader: loader, sampler: sampler, episodes: 4,
                                             protocol: .cosineClassifier, options: options)
        let r = try results(obj)
        XCTAssertEqual(try XCTUnwrap(mean(r[0])), lib.summary.mean, accuracy: 1e-12)
        // The report file holds the same JSON.
        let fromFile = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath:
                                     dir + "/report.json"))) as? [String: Any])
        XCTAssertEqual(fromFile["protocol"] as? String, "cosine-classifier")
        XCTAssertEqual(try results(fromFile).count, 1)
        // The classifier seed is derived from --seed: another --seed gives another one; --classifier-seed sets it.
        let other = try evalJSON(["--checkpoint", ckpt] + data + episodeArgs + ["--seed", "6", "--protocol",
                                 "cosine-classifier", "--classifier-passes", "1"])
        XCTAssertNotEqual((other["cosine_classifier"] as? [String: Any])?["seed"] as? NSNumber, NSNumber(value: seed))
        let fixed = try evalJSON(["--checkpoint", ckpt] + data + episodeArgs + ["--seed", "6", "--protocol",
                                 "cosine-classifier", "--classifier-passes", "1", "--classifier-seed", "11"])
        XCTAssertEqual(((fixed["cosine_classifier"] as? [String: Any])?["seed"] as? NSNumber)?.uint64Value, 11)

        // An episode list of the same episodes gives the same numbers with every protocol.
        let list = dir + "/episodes.json"
        let (code, _, err) = try runMML(["data", "episodes"] + data.dropLast(2) + ["--split", "test", "--way", "3",
                                         "--shot", "2", "--query", "4", "--episodes", "4", "--seed", "5", "-o", list])
        XCTAssertEqual(code, 0, err)
        let fromList = try evalJSON(["--checkpoint", ckpt] + data + ["--episode-list", list, "--protocol",
                                    "cosine-classifier"] + classifierArgs)
        XCTAssertEqual(((fromList["cosine_classifier"] as? [String: Any])?["seed"] as? NSNumber)?.uint64Value, seed,
                       "the classifier seed follows the list's episode seed")
        let lr = try results(fromList)
        XCTAssertEqual(lr.count, 1)
        XCTAssertEqual(lr[0]["seed"] as? Int, 5)
        XCTAssertEqual(lr[0]["query"] as? Int, 4)
        XCTAssertEqual(try XCTUnwrap(mean(lr[0])), lib.summary.mean, accuracy: 1e-12)
        let protoList = try evalJSON(["--checkpoint", ckpt] + data + ["--episode-list", list])
        let protoSampled = try evalJSON(["--checkpoint", ckpt] + data + episodeArgs + ["--seed", "5"])
        XCTAssertEqual(protoList["protocol"] as? String, "prototype")
        let libProto = try evaluateFrozenFeatures(model: model, loader: loader, sampler: sampler, episodes: 4,
                                                  protocol: .prototype)
        XCTAssertEqual(try XCTUnwrap(mean(try results(protoList)[0])), libProto.summary.mean, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(mean(try results(protoSampled)[0])), libProto.summary.mean, accuracy: 1e-12)
    }

    func testEmbeddingCheckpointIsEvaluatedWithItsEmbedding() throws {
        let dir = try makeTempDir(self, prefix: "mml-proto")
        let (code, out, err) = try runMML(["train-embedding"] + train + ["--dim", "8", "--iterations", "3",
                                          "--classes-per-batch", "4", "--images-per-class", "3", "--eval-episodes", "3",
                                          "--seed", "4", "--out", dir])
        XCTAssertEqual(code, 0, err)
        let ckpt = dir + "/embedding.safetensors"
        // The features are the trained embedding: pooled backbone output, the stored linear layer, L2-normalised.
        let loaded = try Checkpoint.load(ckpt, threads: 1)
        let (_, loader) = try testSplit(for: loaded.model)
        let images = try loader.tensor(for: (0..<5).map { ItemRef(classIndex: $0, item: $0) })
        let f = try frozenFeatureFunction(of: loaded, path: ckpt)(images)
        XCTAssertEqual(f.shape, [5, 8])
        let pooled = try pooledFeatures(model: loaded.model, images: images)
        let w = try XCTUnwrap(loaded.extra.first { $0.name == "embedding.weight" }?.tensor)
        let b = try XCTUnwrap(loaded.extra.first { $0.name == "embedding.bias" }?.tensor)
        XCTAssertEqual(w.shape, [8, 16])
        for n in 0..<5 {
            var y = [Double](repeating: 0, count: 8)
            for o in 0..<8 {
                y[o] = Double(b.data[o])
                for c in 0..<16 { y[o] += Double(w.data[o * 16 + c]) * Double(pooled.data[n * 16 + c]) }
            }
            let norm = y.map { $0 * $0 }.reduce(0, +).squareRoot()
            for o in 0..<8 { XCTAssertEqual(Double(f.data[n * 8 + o]), y[o] / norm, accuracy: 1e-5) }
        }
        // mml eval picks the prototype protocol and reproduces train-embedding's own few-shot numbers (same seed).
        let (code2, evalOut, err2) = try runMML(["eval", "--checkpoint", ckpt] + data + ["--shot", "1,5",
                                                "--episodes", "3", "--seed", "4"])
        XCTAssertEqual(code2, 0, err2)
        XCTAssertTrue(evalOut.contains("(embedding, conv4, no metric)"), evalOut)
        for shot in [1, 5] {
            let expected = try XCTUnwrap(percent(after: "few-shot 5-way \(shot)-shot (3 episodes, nearest prototype): ",
                                                 in: out), out)
            XCTAssertEqual(percent(after: "5-way \(shot)-shot, 15 queries, 3 episodes (seed 4): prototype ", in: evalOut),
                           expected, evalOut)
        }
    }

    func testMetricCheckpointDefaultsToMetricAndAcceptsFrozenProtocols() throws {
        let dir = try makeTempDir(self, prefix: "mml-proto")
        let ckpt = dir + "/mml.safetensors"
        let model = try saveModel(kind: "episodic", backbone: .conv64F, metric: MetricConfiguration(way: 3), to: ckpt)
        let (ds, loader) = try testSplit(for: model)
        let sampler = try EpisodeSampler(dataset: ds, way: 3, shot: 1, query: 3, seed: 9)
        let args = ["--checkpoint", ckpt] + data + ["--way", "3", "--query", "3", "--episodes", "3", "--seed", "9"]
        let obj = try evalJSON(args)
        XCTAssertEqual(obj["protocol"] as? String, "metric")
        XCTAssertEqual(obj["per_level"] as? Bool, true)
        let r = try results(obj)[0]
        let lib = try evaluateModel(model, loader: loader, sampler: sampler, episodes: 3)
        XCTAssertEqual(try XCTUnwrap(mean(r, "fused")), lib.fused.mean, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(mean(r)), lib.fused.mean, accuracy: 1e-12)
        let levels = try XCTUnwrap(r["levels"] as? [String: Any])
        XCTAssertEqual(levels.keys.sorted(), ["distribution", "part", "pixel"])
        XCTAssertEqual(((levels["pixel"] as? [String: Any])?["mean"] as? Double) ?? -1, lib.levels[.pixel]!.mean,
                       accuracy: 1e-12)
        let (code, text, err) = try runMML(["eval"] + args)
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(text.contains("protocol    metric (the checkpoint's fused and per-level scores)"), text)
        XCTAssertTrue(text.contains("(seed 9): fused "), text)
        // The frozen protocols work on a metric checkpoint too (its backbone's pooled features).
        let proto = try evalJSON(args + ["--protocol", "prototype"])
        XCTAssertEqual(proto["protocol"] as? String, "prototype")
        let libProto = try evaluateFrozenFeatures(model: model, loader: loader, sampler: sampler, episodes: 3,
                                                  protocol: .prototype)
        XCTAssertEqual(try XCTUnwrap(mean(try results(proto)[0])), libProto.summary.mean, accuracy: 1e-12)
        XCTAssertNil(try results(proto)[0]["levels"])
    }

    func testProtocolErrors() throws {
        let dir = try makeTempDir(self, prefix: "mml-proto")
        let pre = dir + "/pre.safetensors"
        _ = try saveModel(kind: "pretrained", metric: nil, to: pre)
        func fails(_ args: [String], _ needle: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let (code, out, err) = try runMML(["eval", "--checkpoint", pre] + data + ["--episodes", "2"] + args)
            XCTAssertNotEqual(code, 0, out, file: file, line: line)
            XCTAssertTrue(err.contains(needle), "expected '\(needle)' in: \(err)", file: file, line: line)
            XCTAssertFalse(err.contains("Fatal error"), err, file: file, line: line)
        }
        try fails(["--protocol", "metric"], "--protocol metric: \(pre) is a 'pretrained' checkpoint and has no metric "
                  + "head; evaluate its frozen features with --protocol prototype, cosine-classifier or protonet")
        try fails(["--protocol", "knn"], "--protocol 'knn' is unknown; use metric, prototype, cosine-classifier or protonet")
        try fails(["--classifier-passes", "5"],
                  "--classifier-passes only applies to --protocol cosine-classifier (this run uses --protocol prototype)")
        try fails(["--protocol", "prototype", "--classifier-seed", "1"], "--classifier-seed only applies")
        let cc = ["--protocol", "cosine-classifier"]
        try fails(cc + ["--classifier-passes", "0"], "--classifier-passes must be >= 1, got 0")
        try fails(cc + ["--classifier-batch-size", "0"], "--classifier-batch-size must be >= 1, got 0")
        try fails(cc + ["--classifier-lr=-1"], "--classifier-lr must be a number > 0, got -1.0")
        try fails(cc + ["--classifier-momentum", "1"], "--classifier-momentum must be in [0, 1), got 1.0")
        try fails(cc + ["--classifier-dampening", "2"], "--classifier-dampening must be in [0, 1], got 2.0")
        try fails(cc + ["--classifier-weight-decay=-0.1"], "--classifier-weight-decay must be a number >= 0")
        try fails(cc + ["--classifier-scale", "0"], "--classifier-scale must be a number > 0, got 0.0")
        try fails(["--episodes", "0"], "--episodes 0: evaluate at least 1 episode")
        // A metric checkpoint: an unknown protocol is still refused with the list.
        let mml = dir + "/mml.safetensors"
        _ = try saveModel(kind: "episodic", backbone: .conv64F, metric: MetricConfiguration(), to: mml)
        let (code, _, err) = try runMML(["eval", "--checkpoint", mml] + data + ["--protocol", "proto"])
        XCTAssertNotEqual(code, 0)
        XCTAssertTrue(err.contains("--protocol 'proto' is unknown; use metric, prototype, cosine-classifier or protonet"), err)
        // mml ablate needs a metric too.
        let (acode, _, aerr) = try runMML(["ablate", "--checkpoint", pre] + data + ["--episodes", "2",
                                           "--out", dir + "/abl"])
        XCTAssertNotEqual(acode, 0)
        XCTAssertTrue(aerr.contains("\(pre) has no metric head; ablate a model trained with mml train"), aerr)
        // Embedding checkpoints with a malformed embedding layer.
        let bad1 = dir + "/bad1.safetensors", bad2 = dir + "/bad2.safetensors"
        _ = try saveModel(kind: "embedding", metric: nil, to: bad1,
                          extra: [(name: "embedding.weight", tensor: Tensor(shape: [4, 16]))])
        _ = try saveModel(kind: "embedding", metric: nil, to: bad2,
                          extra: [(name: "embedding.weight", tensor: Tensor(shape: [4, 7])),
                                  (name: "embedding.bias", tensor: Tensor(shape: [4]))])
        for (path, needle) in [(bad1, "embedding.weight [4, 16] without a matching embedding.bias"),
                               (bad2, "the embedding layer takes 7 features but the backbone gives 16")] {
            let (code, _, err) = try runMML(["eval", "--checkpoint", path] + data + ["--episodes", "2"])
            XCTAssertNotEqual(code, 0)
            XCTAssertTrue(err.contains(path) && err.contains(needle), err)
        }
    }

    /// `mml train --init` starts episodic training from a `mml pretrain` backbone (issue 6): with a learning rate
    /// too small to move a float32 weight, the trained model's backbone weights are the pre-trained ones, bit for bit;
    /// a backbone of another shape is refused with the shapes named.
    func testTrainInitFromPretrainedBackbone() throws {
        let dir = try makeTempDir(self, prefix: "mml-proto")
        var (code, out, err) = try runMML(["pretrain"] + train + ["--backbone", "conv64f", "--epochs", "1",
                                          "--batch-size", "8", "--max-batches", "2", "--val-split", "none",
                                          "--out", dir + "/pre"])
        XCTAssertEqual(code, 0, err)
        let pre = dir + "/pre/backbone.safetensors"
        let episodic = ["train"] + data + ["--way", "3", "--shot", "1", "--query", "2", "--episodes-per-epoch", "2",
                                           "--epochs", "1", "--episodes-per-step", "2", "--val-episodes", "1",
                                           "--val-query", "2", "--log-every", "2", "--lr", "1e-30", "--init", pre]
        (code, out, err) = try runMML(episodic + ["--widths", "16,16,16,16", "--out", dir + "/run"])
        XCTAssertEqual(code, 0, err)
        let count = try Checkpoint.load(pre).model.backbone.namedParameters().count
        XCTAssertTrue(out.contains("initialised \(count) backbone tensors from \(pre)"), out)
        let a = try Safetensors.read(contentsOf: pre), b = try Safetensors.read(contentsOf: dir + "/run/last.safetensors")
        let weights = a.entries.map(\.name).filter { $0.hasPrefix("backbone.") && $0.hasSuffix(".weight") }
        XCTAssertFalse(weights.isEmpty)
        for name in weights { XCTAssertEqual(try a.tensor(named: name).data, try b.tensor(named: name).data, name) }
        (code, out, err) = try runMML(episodic + ["--widths", "8,8,8,8", "--out", dir + "/run8"])
        XCTAssertNotEqual(code, 0, out)
        XCTAssertTrue(err.contains("holds a conv64f backbone with 1 input channel(s) and widths [16, 16, 16, 16], but "
                                   + "this model is conv64f with 1 and [8, 8, 8, 8]"), err)
    }
}
