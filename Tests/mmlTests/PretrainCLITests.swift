import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// `mml pretrain` and `mml train-embedding` on the built-in synthetic data at small sizes.
final class PretrainCLITests: XCTestCase {
    let data = ["synthetic", "--synthetic-size", "28", "--synthetic-channels", "1", "--synthetic-images", "20"]
    var synthetic: [String] { data + ["--image-size", "28", "--widths", "16,16,16,16"] }

    /// Pre-training's and embedding training's resumable checkpoints record the kernel path too; resuming a finished
    /// run on another path (its final evaluation runs again) warns and records both.
    func testSupervisedResumeOnAnotherKernelPathWarns() throws {
        let best = BLASRuntime.bestKernelISA
        guard best != "portable" else { throw XCTSkip("this CPU runs the portable path only: no other path to take") }
        let dir = try makeTempDir(self, prefix: "mml-pre")
        let runs = [
            ["pretrain"] + synthetic + ["--epochs", "1", "--batch-size", "16", "--max-batches", "2", "--val-split",
                                        "none", "--test-episodes", "2", "--out", dir + "/p"],
            ["train-embedding"] + synthetic + ["--iterations", "2", "--classes-per-batch", "2", "--images-per-class",
                                               "2", "--eval-episodes", "0", "--out", dir + "/e"],
        ]
        for (args, out) in zip(runs, [dir + "/p", dir + "/e"]) {
            var environment = ProcessInfo.processInfo.environment
            environment["MML_KERNELS_ISA"] = nil
            var (code, _, err) = try runMML(args, environment: environment)
            XCTAssertEqual(code, 0, err)
            func recorded() throws -> [String]? {
                let file = try Safetensors.read(contentsOf: out + "/last.safetensors")
                let json = try XCTUnwrap(file.metadata[Checkpoint.stateKey])
                let state = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
                return state["kernelPaths"] as? [String]
            }
            XCTAssertEqual(try recorded(), [best], args[0])
            environment["MML_KERNELS_ISA"] = "portable"
            (code, _, err) = try runMML(args + ["--resume"], environment: environment)
            XCTAssertEqual(code, 0, err)
            XCTAssertTrue(err.contains("warning: this run trained on the \(best) kernel path and now continues on "
                                       + "the portable one"), args[0] + ": " + err)
            XCTAssertTrue(err.contains("unset MML_KERNELS_ISA to continue on the same path"), err)
        }
    }

    func testPretrainWritesCheckpointsAndLog() throws {
        let dir = try makeTempDir(self, prefix: "mml-pre")
        let (code, out, err) = try runMML(["pretrain"] + synthetic + ["--loss", "neg-cosine", "--margin=-0.05",
                                           "--epochs", "2", "--batch-size", "32", "--max-batches", "6",
                                           "--warmup-epochs", "1", "--val-episodes", "5", "--test-episodes", "3",
                                           "--out", dir])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("head neg-cosine s=30.0 m=-0.05"), out)
        XCTAssertTrue(out.contains("epoch 2/2"), out)
        XCTAssertTrue(out.contains("val 5-way 1-shot"), out)
        XCTAssertTrue(out.contains("test test 5-way 1-shot prototype (3 episodes): "), out)
        XCTAssertTrue(out.contains("test test 5-way 5-shot cosine-classifier (3 episodes): "), out)
        let log = try String(contentsOfFile: dir + "/log.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(log.count, 3, "two epochs and the test record")
        let test = try JSONSerialization.jsonObject(with: Data(log[2].utf8)) as! [String: Any]
        XCTAssertNotNil(test["cosine-classifier_5way_5shot_ci95"] as? Double, "\(test)")
        let rec = try JSONSerialization.jsonObject(with: Data(log[1].utf8)) as! [String: Any]
        XCTAssertEqual(rec["epoch"] as? Int, 2)
        XCTAssertNotNil(rec["val_accuracy"] as? Double)
        XCTAssertTrue((rec["loss"] as? Double ?? .nan).isFinite)
        for name in ["backbone", "best"] {
            let loaded = try Checkpoint.load(dir + "/\(name).safetensors")
            XCTAssertEqual(loaded.model.configuration.kind, "pretrained")
            XCTAssertNil(loaded.model.configuration.metric)
            let head = loaded.extra.first { $0.name == "head.weight" }
            XCTAssertEqual(head?.tensor.shape, [64, 16], "64 synthetic train classes x 16 features")
        }
        // The pre-trained backbone initialises another model.
        let fresh = try FewShotModel(try Checkpoint.configuration(at: dir + "/backbone.safetensors"))
        XCTAssertEqual(try Checkpoint.loadBackbone(into: fresh, from: dir + "/backbone.safetensors"),
                       fresh.backbone.namedParameters().count)
    }

    func testPretrainSoftmaxWithoutValidation() throws {
        let dir = try makeTempDir(self, prefix: "mml-pre")
        let (code, out, err) = try runMML(["pretrain"] + synthetic + ["--loss", "softmax", "--epochs", "1",
                                           "--batch-size", "16", "--max-batches", "3", "--val-split", "none",
                                           "--optimizer", "adam", "--lr", "0.001", "--out", dir])
        XCTAssertEqual(code, 0, err)
        XCTAssertFalse(out.contains("val 5-way"), out)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/backbone.safetensors"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/best.safetensors"))
        let loaded = try Checkpoint.load(dir + "/backbone.safetensors")
        XCTAssertEqual(Set(loaded.extra.map(\.name)), ["head.weight", "head.bias"])
    }

    /// pretrain and train-embedding take train's backbone and image options, with their own defaults (Conv-4,
    /// Kaiming, weights seeded by --seed); --augment mml is stored in the checkpoint (validation and the
    /// evaluation load images without it).
    func testSharedBackboneAndImageOptions() throws {
        let dir = try makeTempDir(self, prefix: "mml-pre")
        let short = ["--epochs", "1", "--batch-size", "8", "--max-batches", "1", "--seed", "9"]
        var (code, out, err) = try runMML(["pretrain"] + synthetic + short + ["--val-episodes", "2", "--out", dir + "/a"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("conv4 28x28x1"), out)
        let a = try Checkpoint.configuration(at: dir + "/a/backbone.safetensors")
        XCTAssertEqual(a.backbone, .conv4)
        XCTAssertEqual(a.initialization, .kaiming)
        XCTAssertEqual(a.seed, 9)
        XCTAssertEqual(a.image, ImageConfig(size: 28, channels: 1))
        (code, out, err) = try runMML(["pretrain"] + synthetic + short + [
            "--val-episodes", "2", "--augment", "mml", "--backbone", "conv64f", "--initialization", "mml",
            "--init-seed", "4", "--out", dir + "/b"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("val 5-way 1-shot"), out)
        let b = try Checkpoint.configuration(at: dir + "/b/backbone.safetensors")
        XCTAssertEqual(b.backbone, .conv64F)
        XCTAssertEqual(b.initialization, .mml)
        XCTAssertEqual(b.seed, 4)
        XCTAssertEqual(b.image.augmentation, .mml)
        XCTAssertEqual(b.image.resize, 33, "round(28 * 100 / 84)")
        (code, _, err) = try runMML(["train-embedding"] + synthetic + ["--iterations", "1", "--classes-per-batch", "2",
                                    "--images-per-class", "2", "--eval-episodes", "0", "--seed", "3", "--out", dir + "/e"])
        XCTAssertEqual(code, 0, err)
        let e = try Checkpoint.configuration(at: dir + "/e/embedding.safetensors")
        XCTAssertEqual(e.backbone, .conv4)
        XCTAssertEqual(e.initialization, .kaiming)
        XCTAssertEqual(e.seed, 3)
        try assertMMLFails(["pretrain"] + synthetic + ["--augment", "heavy", "--out", dir + "/c"], "--augment heavy")
        try assertMMLFails(["train-embedding"] + synthetic + ["--widths", "8,8", "--out", dir + "/d"],
                        "give 4 positive channel counts")
    }

    func testPretrainBadFlags() throws {
        let dir = try makeTempDir(self, prefix: "mml-pre")
        let base = ["pretrain"] + synthetic + ["--out", dir]
        try assertMMLFails(base + ["--loss", "cosine", "--margin", "0.1"], "--margin 0.1 has no effect with --loss cosine")
        try assertMMLFails(base + ["--epochs", "2", "--warmup-epochs", "2"], "--warmup-epochs 2 must be in 0..<2")
        try assertMMLFails(base + ["--optimizer", "rmsprop"], "--optimizer 'rmsprop' is unknown; use sgd or adam")
        try assertMMLFails(base + ["--epochs", "0"], "--epochs must be >= 1, got 0")
        try assertMMLFails(base + ["--lr", "0"], "--lr must be > 0")
        try assertMMLFails(base + ["--scale", "0", "--epochs", "1"], "--scale 0.0 is not allowed: it must be a finite number > 0")
        try assertMMLFails(base + ["--widths", "16,x"], "--widths '16,x' must be comma-separated positive integers")
        try assertMMLFails(base + ["--loss", "arcface"], "arcface")
        try assertMMLFails(base + ["--test-protocols", "prototype,knn"], "--test-protocols: 'knn' is unknown")
        try assertMMLFails(base + ["--test-episodes=-1"], "--test-episodes must be >= 0")
        try assertMMLFails(["pretrain", "/no/such/omniglot", "--layout", "omniglot-vinyals", "--out", dir], "/no/such")
    }

    func testTrainEmbeddingAndEvalOnly() throws {
        let dir = try makeTempDir(self, prefix: "mml-pre")
        let args = ["train-embedding"] + synthetic + ["--loss", "margin", "--positives", "easy", "--negatives",
                    "distance-weighted", "--dim", "8", "--iterations", "6", "--classes-per-batch", "4",
                    "--images-per-class", "3", "--eval-episodes", "3", "--log-every", "3"]
        let (code, out, err) = try runMML(args + ["--out", dir])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("easy positives, distance-weighted negatives"), out)
        XCTAssertTrue(out.contains("iter 6/6"), out)
        XCTAssertTrue(out.contains("20 classes, 400 queries: R@1 "), out)
        XCTAssertTrue(out.contains("MAP@R"), out)
        XCTAssertTrue(out.contains("few-shot 5-way 5-shot (3 episodes"), out)
        let loaded = try Checkpoint.load(dir + "/embedding.safetensors")
        XCTAssertEqual(loaded.model.configuration.kind, "embedding")
        XCTAssertEqual(Set(loaded.extra.map(\.name)), ["embedding.weight", "embedding.bias", "loss.beta"])
        XCTAssertEqual(loaded.extra.first { $0.name == "embedding.weight" }?.tensor.shape, [8, 16])
        // --eval-only on the saved embedding reproduces the final evaluation exactly.
        // (only the data and the evaluation's options: the training ones cannot apply to a saved embedding)
        let (code2, out2, err2) = try runMML(["train-embedding"] + data + ["--eval-episodes", "3", "--eval-only",
                                                                           dir + "/embedding.safetensors"])
        XCTAssertEqual(code2, 0, err2)
        let result = { (s: String) in s.split(separator: "\n").first { $0.hasPrefix("result ") } }
        XCTAssertNotNil(result(out))
        XCTAssertEqual(result(out), result(out2))
    }

    func testTrainEmbeddingBadFlags() throws {
        let dir = try makeTempDir(self, prefix: "mml-pre")
        let base = ["train-embedding"] + synthetic
        try assertMMLFails(base, "--out DIR is required to train (or give --eval-only CKPT)")
        try assertMMLFails(base + ["--out", dir, "--classes-per-batch", "1"],
                        "--classes-per-batch and --images-per-class must be >= 2")
        try assertMMLFails(base + ["--out", dir, "--classes-per-batch", "100"],
                        "has 64 class(es) with at least 4 images, but P x K batches need 100")
        try assertMMLFails(base + ["--out", dir, "--margin=-0.1"], "--margin -0.1 is not allowed: it must be a finite number >= 0")
        try assertMMLFails(base + ["--out", dir, "--positives", "medium"], "medium")
        try assertMMLFails(base + ["--eval-only", "/no/such.safetensors"], "/no/such.safetensors")
        // A pre-trained (not embedding) checkpoint is refused by --eval-only.
        let (code, _, err) = try runMML(["pretrain"] + synthetic + ["--epochs", "1", "--max-batches", "1",
                                         "--batch-size", "8", "--val-split", "none", "--out", dir])
        XCTAssertEqual(code, 0, err)
        try assertMMLFails(["train-embedding"] + data + ["--eval-only", dir + "/backbone.safetensors"],
                        "is a 'pretrained' checkpoint; --eval-only takes the embedding.safetensors")
    }
}
