import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// `--precision fp32|bf16|bf16amx` of `mml eval` and `mml ablate` (`SimilarityPrecision`): the flag reaches the run
/// (the CLI's numbers are the library's bf16 / bf16amx ones), bad values and values that would change nothing are
/// refused naming the flag, the portable paths warn on stderr with the same results, `mml compare` counts the changed
/// predictions, and `mml env` says whether bf16 and bf16amx have their fast paths.
final class PrecisionCLITests: XCTestCase {
    let data = ["synthetic", "--synthetic-size", "20", "--synthetic-channels", "1", "--synthetic-images", "12",
                "--threads", "1"]

    /// An untrained Conv-64F (width 8, 5 x 5 maps at 20 x 20) with all three levels, saved to `path`.
    func saveModel(_ path: String) throws -> FewShotModel {
        let config = ModelConfiguration(kind: "episodic", backbone: .conv64F, inputChannels: 1, widths: [8, 8, 8, 8],
                                        initialization: .kaiming, seed: 3, image: ImageConfig(size: 20, channels: 1),
                                        metric: MetricConfiguration(partForm: .grid([2])))
        let model = try FewShotModel(config, threads: 1)
        try Checkpoint.save(model, to: path)
        return model
    }

    /// This process's environment with `MML_KERNELS_ISA` set (or removed for nil).
    func environment(isa: String?) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["MML_KERNELS_ISA"] = isa
        return env
    }

    func testBadValuesAndValuesThatWouldChangeNothingAreRefused() throws {
        let dir = try makeTempDir(self, prefix: "mml-precision-cli")
        let ckpt = dir + "/m.safetensors"
        _ = try saveModel(ckpt)
        let eval = ["eval", "--checkpoint", ckpt] + data + ["--episodes", "2", "--query", "2"]
        try assertMMLFails(eval + ["--precision", "bf17"], "error: --precision bf17: use fp32, bf16 or bf16amx",
                           reported: true)
        try assertMMLFails(eval + ["--precision", "FP32"], "error: --precision FP32: use fp32, bf16 or bf16amx",
                           reported: true)
        try assertMMLFails(["ablate", "--checkpoint", ckpt] + data + ["--episodes", "2", "--precision", "fp16",
                                                                     "--out", dir + "/abl"],
                           "error: --precision fp16: use fp32, bf16 or bf16amx", reported: true)
        try assertMMLFails(eval + ["--precision", "bf16", "--protocol", "prototype"],
                           "error: --precision bf16 applies to the pixel and part levels of --protocol metric; this "
                           + "run uses --protocol prototype (frozen features, no similarity kernel): drop --precision",
                           reported: true)
        for command in ["eval", "ablate"] {
            let (code, out, _) = try runMML([command, "--help"])
            XCTAssertEqual(code, 0)
            XCTAssertTrue(out.contains("--precision <precision>"), out)
            XCTAssertTrue(out.contains("fp32, bf16 or bf16amx"), out)
        }
    }

    func testEvalBF16IsTheLibrarysAndThePortablePathWarns() throws {
        let dir = try makeTempDir(self, prefix: "mml-precision-cli")
        let ckpt = dir + "/m.safetensors"
        let model = try saveModel(ckpt)
        let args = ["eval", "--checkpoint", ckpt] + data + ["--way", "5", "--query", "4", "--episodes", "12",
                                                           "--seed", "3"]
        func run(_ extra: [String], isa: String? = nil) throws -> (obj: [String: Any], err: String) {
            let (code, out, err) = try runMML(args + extra + ["--json"], environment: environment(isa: isa))
            XCTAssertEqual(code, 0, err)
            return (try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], out), err)
        }
        func accuracies(_ obj: [String: Any]) throws -> [Double] {
            let r = try XCTUnwrap((obj["results"] as? [[String: Any]])?.first)
            let levels = try XCTUnwrap(r["levels"] as? [String: [String: Any]])
            return try [r["accuracy"] as? [String: Any]].map { try XCTUnwrap($0?["mean"] as? Double) }
                + MetricLevel.allCases.map { try XCTUnwrap(levels[$0.rawValue]?["mean"] as? Double) }
        }
        let bf16 = try run(["--precision", "bf16", "--episodes-out", dir + "/bf16.jsonl"])
        let fp32 = try run(["--episodes-out", dir + "/fp32.jsonl"])
        // The library on the same episodes, each precision.
        let ds = try SyntheticDataset(options: .init(imagesPerClass: 12, size: 20, channels: 1), split: "test")
        let loader = try EpisodeLoader(dataset: ds, config: model.configuration.image.forEvaluation)
        let sampler = try EpisodeSampler(dataset: ds, way: 5, shot: 1, query: 4, seed: 3)
        for (obj, precision) in [(bf16.obj, SimilarityPrecision.bf16), (fp32.obj, .fp32)] {
            let lib = try evaluateModel(model, loader: loader, sampler: sampler, episodes: 12, precision: precision)
            let want = [lib.fused.mean] + MetricLevel.allCases.map { lib.levels[$0]!.mean }
            // JSON text keeps the accuracies to ~1e-16 (the two precisions differ by far more here).
            let got = try accuracies(obj)
            XCTAssertEqual(got.count, want.count)
            for (g, w) in zip(got, want) { XCTAssertEqual(g, w, accuracy: 1e-12, "\(precision)") }
        }
        // bf16 changes some predictions of this untrained model (the core test asserts it); mml compare counts them.
        let (code, text, err) = try runMML(["compare", dir + "/bf16.jsonl", dir + "/fp32.jsonl"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(text.contains("predictions changed"), text)
        XCTAssertTrue(text.contains(" of 240 ("), text)
        // The portable path: one warning line on stderr, the same numbers, and the fact line says so.
        let portable = try run(["--precision", "bf16"], isa: "portable")
        XCTAssertEqual(try accuracies(portable.obj), try accuracies(bf16.obj))
        let warnings = portable.err.split(separator: "\n").filter { $0.hasPrefix("warning: ") }
        XCTAssertEqual(warnings, ["warning: --precision bf16: MML_KERNELS_ISA=portable forces the portable kernels, so "
                                  + "the pixel and part levels' bf16 similarity runs on the portable path: the same "
                                  + "results, bit for bit, but several times slower than --precision fp32"], portable.err)
        XCTAssertFalse(fp32.err.contains("warning"), fp32.err)
        if CPUFeatures.current.contains(.avx512bf16) && CPUFeatures.current.contains(.avx512f) {
            XCTAssertFalse(bf16.err.contains("warning"), bf16.err)
        }
        let (tcode, plain, terr) = try runMML(args + ["--precision", "bf16"], environment: environment(isa: "portable"))
        XCTAssertEqual(tcode, 0, terr)
        XCTAssertTrue(plain.contains("precision   bf16 similarity at the pixel and part levels (portable path, "
                                     + "slower than fp32)"), plain)
    }

    /// --precision bf16amx: the library's bf16amx numbers, the same on the portable path (which warns once), and the
    /// fact line names the path.
    func testEvalBF16AMXIsTheLibrarysOnBothPaths() throws {
        let dir = try makeTempDir(self, prefix: "mml-precision-cli")
        let ckpt = dir + "/m.safetensors"
        let model = try saveModel(ckpt)
        let args = ["eval", "--checkpoint", ckpt] + data + ["--way", "5", "--query", "4", "--episodes", "6",
                                                           "--seed", "3", "--precision", "bf16amx"]
        func run(isa: String?) throws -> (obj: [String: Any], err: String) {
            let (code, out, err) = try runMML(args + ["--json"], environment: environment(isa: isa))
            XCTAssertEqual(code, 0, err)
            return (try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], out), err)
        }
        func fused(_ obj: [String: Any]) throws -> Double {
            let r = try XCTUnwrap((obj["results"] as? [[String: Any]])?.first)
            return try XCTUnwrap((r["accuracy"] as? [String: Any])?["mean"] as? Double)
        }
        let native = try run(isa: nil), portable = try run(isa: "portable")
        XCTAssertEqual(native.obj["precision"] as? String, "bf16amx")
        let ds = try SyntheticDataset(options: .init(imagesPerClass: 12, size: 20, channels: 1), split: "test")
        let loader = try EpisodeLoader(dataset: ds, config: model.configuration.image.forEvaluation)
        let sampler = try EpisodeSampler(dataset: ds, way: 5, shot: 1, query: 4, seed: 3)
        let lib = try evaluateModel(model, loader: loader, sampler: sampler, episodes: 6, precision: .bf16amx)
        XCTAssertEqual(try fused(native.obj), lib.fused.mean, accuracy: 1e-12)
        XCTAssertEqual(try fused(portable.obj), try fused(native.obj))
        XCTAssertEqual(portable.err.split(separator: "\n").filter { $0.hasPrefix("warning: ") },
                       ["warning: --precision bf16amx: MML_KERNELS_ISA=portable forces the portable kernels, so the "
                        + "pixel and part levels' bf16amx similarity runs on the portable path: the same results, bit "
                        + "for bit, but several times slower than --precision fp32"], portable.err)
        let saved = getenv("MML_KERNELS_ISA").map { String(cString: $0) }
        unsetenv("MML_KERNELS_ISA")
        let fast = SimilarityKernels.bf16amxPath == "amx"
        if let saved { setenv("MML_KERNELS_ISA", saved, 1) }
        XCTAssertEqual(native.err.contains("warning"), !fast, native.err)
        let (code, plain, err) = try runMML(args, environment: environment(isa: nil))
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(plain.contains("precision   bf16amx similarity at the pixel and part levels ("
                                     + (fast ? "AMX)" : "portable path, slower than fp32)")), plain)
    }

    func testAblateBF16RunsAndSaysSo() throws {
        let dir = try makeTempDir(self, prefix: "mml-precision-cli")
        let ckpt = dir + "/m.safetensors"
        _ = try saveModel(ckpt)
        let (code, out, err) = try runMML(["ablate", "--checkpoint", ckpt] + data
                                          + ["--way", "3", "--query", "2", "--episodes", "3", "--refit-episodes", "2",
                                             "--precision", "bf16", "--out", dir + "/abl"],
                                          environment: environment(isa: nil))
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("bf16 similarity at the pixel and part levels"), out)
        let file = try EpisodeFile<AblationRunResult>.read(dir + "/abl/episodes.jsonl")
        XCTAssertEqual(file.header.manifest["precision"], "bf16")
    }

    func testEnvSaysWhetherBF16HasItsFastPath() throws {
        func field(_ isa: String?, _ key: String = "bf16_similarity") throws -> String {
            let (code, out, err) = try runMML(["env", "--json", "--sgemm-size", "0"], environment: environment(isa: isa))
            XCTAssertEqual(code, 0, err)
            let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: String], out)
            return try XCTUnwrap(obj[key], out)
        }
        let native = try field(nil)
        // Whether this CPU has the fast path, asked of the kernels with MML_KERNELS_ISA unset (make test sets it).
        let saved = getenv("MML_KERNELS_ISA").map { String(cString: $0) }
        unsetenv("MML_KERNELS_ISA")
        let fast = SimilarityKernels.bf16Path == "avx512bf16"
        if let saved { setenv("MML_KERNELS_ISA", saved, 1) }
        if fast {
            XCTAssertEqual(native, "avx512bf16 (--precision bf16 has its fast path)")
        } else {
            XCTAssertTrue(native.hasPrefix("portable ("), native)
        }
        XCTAssertEqual(try field("portable"), "portable (MML_KERNELS_ISA=portable forces the portable kernels: "
                       + "--precision bf16 gives the same results, slower than fp32)")
        // bf16amx: "amx" exactly when the kernel takes its AMX path here.
        unsetenv("MML_KERNELS_ISA")
        let amx = SimilarityKernels.bf16amxPath == "amx"
        if let saved { setenv("MML_KERNELS_ISA", saved, 1) }
        let amxField = try field(nil, "bf16amx_similarity")
        if amx {
            XCTAssertEqual(amxField, "amx (--precision bf16amx has its fast path)")
        } else {
            XCTAssertTrue(amxField.hasPrefix("portable ("), amxField)
        }
        XCTAssertEqual(try field("portable", "bf16amx_similarity"), "portable (MML_KERNELS_ISA=portable forces the "
                       + "portable kernels: --precision bf16amx gives the same results, slower than fp32)")
    }
}
