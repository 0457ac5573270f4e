import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// `mml train --config FILE` (a checkpoint's sidecar) and `--resume` with other settings, through the CLI.
final class TrainConfigCLITests: XCTestCase {
    let data = ["synthetic", "--synthetic-size", "20", "--synthetic-images", "12", "--threads", "1",
                "--val-query", "2"]
    let small = ["--widths", "8,8,8,8", "--way", "3", "--shot", "1", "--query", "2", "--episodes-per-epoch", "4",
                 "--epochs", "2", "--episodes-per-step", "2", "--val-episodes", "2", "--log-every", "2", "--seed", "4"]

    func tensors(_ path: String) throws -> [String: [Float]] {
        let f = try Safetensors.read(contentsOf: path)
        return Dictionary(uniqueKeysWithValues: try f.entries.filter { !$0.name.hasPrefix("optimizer.t.") }
            .map { ($0.name, try f.tensor(named: $0.name).data) })
    }

    func training(_ sidecar: String) throws -> EpisodicTrainingConfiguration {
        try SavedEpisodicSettings(contentsOf: sidecar).training
    }

    func testConfigFromSidecarReproducesTheRunAndFlagsOverride() throws {
        let dir = try makeTempDir(self, prefix: "mml-train-config")
        var (code, _, err) = try runMML(["train"] + data + small + ["--out", dir + "/a"])
        XCTAssertEqual(code, 0, err)
        // The same run from the sidecar alone: bit-identical weights and optimiser moments.
        (code, _, err) = try runMML(["train"] + data + ["--config", dir + "/a/last.json", "--out", dir + "/b"])
        XCTAssertEqual(code, 0, err)
        XCTAssertEqual(try tensors(dir + "/b/last.safetensors"), try tensors(dir + "/a/last.safetensors"))
        XCTAssertEqual(try training(dir + "/b/last.json"), try training(dir + "/a/last.json"))
        // A flag given on the command line overrides the file's value; the others keep the file's.
        var out: String
        (code, out, err) = try runMML(["train"] + data + ["--config", dir + "/a/last.json", "--lr", "0.01",
                                                          "--epochs", "1", "--out", dir + "/c"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("3-way 1-shot 2 queries, 4 x 1 epochs, 2 per step, adam lr 0.01 (step)"), out)
        let c = try training(dir + "/c/last.json")
        XCTAssertEqual(c.learningRate, 0.01)
        XCTAssertEqual(c.epochs, 1)
        XCTAssertEqual(c.way, 3)
        XCTAssertEqual(c.seed, 4)
        XCTAssertEqual(try Checkpoint.configuration(at: dir + "/c/last.safetensors").widths, [8, 8, 8, 8])
    }

    func testConfigErrorsNameTheFile() throws {
        let dir = try makeTempDir(self, prefix: "mml-train-config")
        try assertMMLFails(["train"] + data + ["--config", dir + "/nope.json", "--out", dir + "/x"],
                           "error: --config \(dir)/nope.json does not exist or cannot be read; give the .json that "
                           + "mml train writes beside last.safetensors", reported: true)
        try "{\"state\": {}}".write(toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
        try assertMMLFails(["train"] + data + ["--config", dir + "/bad.json", "--out", dir + "/x"],
                           "error: --config \(dir)/bad.json is not the settings of an episodic training run",
                           reported: true)
        try assertMMLFails(["train"] + data + small + ["--optimizer", "sgdx", "--out", dir + "/x"],
                           "error: --optimizer sgdx: use adam or sgd", reported: true)
        try assertMMLFails(["train"] + data + small + ["--schedule", "poly", "--out", dir + "/x"],
                           "error: --schedule poly: use step, cosine or constant", reported: true)
    }

    func testResumeWithOtherSettingsNamesEachDifference() throws {
        let dir = try makeTempDir(self, prefix: "mml-train-config")
        let (code, _, err) = try runMML(["train"] + data + small + ["--stop-after", "2", "--out", dir])
        XCTAssertEqual(code, 0, err)
        try assertMMLFails(["train"] + data + small + ["--resume", "--lr", "0.01", "--freeze-bn-after", "0",
                                                       "--out", dir],
                           "error: --resume: the checkpoint was trained with different settings: --lr 0.001 "
                           + "(checkpoint) vs 0.01 (now); --freeze-bn-after 1 (checkpoint) vs 0 (now); resume with "
                           + "the same options or start a new --out directory", reported: true)
    }
}
