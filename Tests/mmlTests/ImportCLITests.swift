import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// `mml import` end to end, the preprocessing flags on train and eval, and `--protocol protonet`.
final class ImportCLITests: XCTestCase {
    /// A ProtoNet-named Conv-4 state_dict (grey input, conv biases) written with the repo's writer.
    func protonetState(_ dir: String, extra: [(String, Tensor)] = []) throws -> String {
        var rng = TestRNG(seed: 21)
        var tensors: [(name: String, tensor: Tensor)] = []
        var c = 1
        for k in 0..<4 {
            tensors.append(("encoder.\(k).0.weight", rng.tensor([8, c, 3, 3], scale: 0.4)))
            tensors.append(("encoder.\(k).0.bias", rng.tensor([8], scale: 0.1)))
            tensors.append(("encoder.\(k).1.weight", rng.tensor([8], scale: 0.2, offset: 1)))
            tensors.append(("encoder.\(k).1.bias", rng.tensor([8], scale: 0.1)))
            tensors.append(("encoder.\(k).1.running_mean", rng.tensor([8], scale: 0.1)))
            tensors.append(("encoder.\(k).1.running_var", rng.tensor([8], scale: 0.2, offset: 1)))
            c = 8
        }
        tensors += extra.map { (name: $0.0, tensor: $0.1) }
        let path = dir + "/protonet.safetensors"
        try Safetensors.write(tensors, to: path)
        return path
    }

    func testImportThenEvaluateWithProtoNetProtocolAndPreprocessing() throws {
        let dir = try makeTempDir(self, prefix: "mml-import-cli")
        let weights = try protonetState(dir)
        let ckpt = dir + "/imported.safetensors"
        var (code, out, err) = try runMML(["import", weights, "--backbone", "conv4", "--image-size", "28",
                                           "--ink", "ink-one", "--resize-filter", "area", "--mean", "0.1", "--std", "0.9",
                                           "--out", ckpt])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("convention  protonet"), out)
        XCTAssertTrue(out.contains("mapped      24 tensors (4 conv biases folded into BatchNorm)"), out)
        let sidecar = try String(contentsOfFile: dir + "/imported.json", encoding: .utf8)
        for s in ["\"ink\":\"ink-one\"", "\"resizeFilter\":\"area\"", "\"mean\":[0.1]", "\"kind\":\"imported\""] {
            XCTAssertTrue(sidecar.contains(s), "\(s) in \(sidecar)")
        }
        // the checkpoint's preprocessing is used, and can be overridden
        let eval = ["eval", "--checkpoint", ckpt, "synthetic", "--synthetic-images", "8", "--way", "3", "--query", "2",
                    "--episodes", "4", "--json", "--threads", "1", "--protocol", "protonet"]
        (code, out, err) = try runMML(eval)
        XCTAssertEqual(code, 0, err)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        XCTAssertEqual(obj["protocol"] as? String, "protonet")
        let first = try XCTUnwrap((obj["results"] as? [[String: Any]])?.first)
        let acc = try XCTUnwrap((first["accuracy"] as? [String: Any])?["mean"] as? Double)
        XCTAssertTrue((0...1).contains(acc))
        (code, out, err) = try runMML(eval + ["--ink", "paper-white", "--resize-filter", "triangle", "--mean", "0"])
        XCTAssertEqual(code, 0, err)
        // a human-readable run names the protocol
        (code, out, err) = try runMML(Array(eval.filter { $0 != "--json" }))
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("protonet (frozen features flattened, squared Euclidean"), out)
        // the JSON report of the import
        (code, out, err) = try runMML(["import", weights, "--backbone", "conv4", "--convention", "protonet",
                                       "--out", dir + "/again.safetensors", "--json"])
        XCTAssertEqual(code, 0, err)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        XCTAssertEqual(report["convention"] as? String, "protonet")
        XCTAssertEqual((report["folded_biases"] as? [String])?.count, 4)
        XCTAssertEqual((report["mapped"] as? [[String: Any]])?.count, 24)
    }

    func testListNamesAndErrors() throws {
        let dir = try makeTempDir(self, prefix: "mml-import-cli-errors")
        var (code, out, err) = try runMML(["import", "--list-names", "--backbone", "resnet12"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("backbone.block1.conv1.weight [64, 3, 3, 3]"), out)
        XCTAssertTrue(out.contains("backbone.block4.downsample.bn.running_var [640]"), out)
        let weights = try protonetState(dir, extra: [("head.weight", Tensor(shape: [5, 8], repeating: 0))])
        try assertMMLFails(["import", weights, "--backbone", "conv4"], "give the checkpoint to write with --out", reported: true)
        try assertMMLFails(["import", "--backbone", "conv4", "--out", dir + "/x.safetensors"], "give the safetensors file", reported: true)
        try assertMMLFails(["import", dir + "/nope.safetensors", "--out", dir + "/x.safetensors"], "cannot open safetensors file", reported: true)
        try assertMMLFails(["import", weights, "--backbone", "conv4", "--convention", "keras", "--out", dir + "/x.safetensors"], "keras")
        try assertMMLFails(["import", weights, "--backbone", "conv4", "--out", dir + "/x.safetensors"],
                           "map to nothing in the conv4: 'head.weight'; pass --allow-unused", reported: true)
        try assertMMLFails(["import", weights, "--backbone", "conv4", "--convention", "dn4", "--out", dir + "/x.safetensors"],
                           "tensors in the dn4 convention are missing: 'features.0.weight'", reported: true)
        try assertMMLFails(["import", weights, "--backbone", "conv4", "--allow-unused", "--mean", "0.1,0.2,0.3,0.4", "--out", dir + "/x.safetensors"],
                           "give 1 or 3 comma-separated numbers", reported: true)
        try assertMMLFails(["import", weights, "--backbone", "conv4", "--allow-unused", "--mean", "0.1,0.2,0.3", "--out", dir + "/x.safetensors"],
                           "--mean has 3 values [0.1, 0.2, 0.3]; the images have 1 channel, give 1 value", reported: true)
        (code, out, err) = try runMML(["import", weights, "--backbone", "conv4", "--allow-unused", "--out", dir + "/ok.safetensors"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(err.contains("warning: 1 tensor(s) of"), err)
        XCTAssertTrue(out.contains("1 unused"), out)
    }

    func testTrainRecordsPreprocessingFlags() throws {
        let dir = try makeTempDir(self, prefix: "mml-train-preprocessing")
        let (code, _, err) = try runMML(["train", "synthetic", "--synthetic-size", "20", "--synthetic-images", "12",
                                         "--widths", "8,8,8,8", "--threads", "1", "--way", "3", "--shot", "1", "--query", "2",
                                         "--episodes-per-epoch", "2", "--epochs", "1", "--episodes-per-step", "2",
                                         "--val-episodes", "1", "--val-query", "2", "--levels", "pixel",
                                         "--ink", "ink-one", "--resize-filter", "area", "--mean", "0.5", "--std", "0.25",
                                         "--out", dir + "/run"])
        XCTAssertEqual(code, 0, err)
        let sidecar = try String(contentsOfFile: dir + "/run/last.json", encoding: .utf8)
        for s in ["\"ink\":\"ink-one\"", "\"resizeFilter\":\"area\"", "\"mean\":[0.5]", "\"std\":[0.25]"] {
            XCTAssertTrue(sidecar.contains(s), "\(s) in \(sidecar)")
        }
        try assertMMLFails(["train", "synthetic", "--ink", "black"], "black")
        try assertMMLFails(["ablate", "--checkpoint", dir + "/run/last.safetensors", "synthetic", "--ink", "ink-one"],
                           "without --retrain the checkpoint's own preprocessing is used", reported: true)
        try assertMMLFails(["train", "synthetic", "--std", "0", "--out", dir + "/bad"], "--std values must be positive", reported: true)
    }
}
