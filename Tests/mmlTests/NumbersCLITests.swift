import Foundation
import MMLTestSupport
import XCTest

/// Issue 16 items 4, 7, 8: every number a user types is bounded (no trap, no huge allocation, no silent wrong
/// result), products of counts are overflow-checked, a run that cannot fit in memory is refused with its figure,
/// options that cannot apply in a mode are refused with the reason, and every message is in the user's words and
/// suggests only options the command has.
final class NumbersCLITests: XCTestCase {
    /// A tiny trained checkpoint shared by the cases (eval, ablate, train-embedding --eval-only).
    nonisolated(unsafe) static var dir = ""
    static var checkpoint: String { dir + "/ck/best.safetensors" }
    static let tiny = ["synthetic", "--synthetic-size", "16", "--synthetic-images", "20", "--widths", "4,4,4,4",
                       "--threads", "1"]

    override class func setUp() {
        super.setUp()
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("mml-numbers-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = try? runMML(["train"] + tiny + ["--episodes-per-epoch", "2", "--epochs", "1", "--episodes-per-step", "1",
                                           "--val-split", "none", "--out", dir + "/ck"])
    }

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
        super.tearDown()
    }

    private var eval: [String] {
        ["eval", "--checkpoint", Self.checkpoint, "synthetic", "--synthetic-images", "20", "--threads", "1"]
    }
    private var ablate: [String] {
        ["ablate", "--checkpoint", Self.checkpoint, "synthetic", "--synthetic-images", "20", "--threads", "1",
         "--out", Self.dir + "/ab"]
    }
    private func train(_ extra: [String]) -> [String] {
        ["train"] + Self.tiny + ["--episodes-per-epoch", "2", "--epochs", "1", "--out", Self.dir + "/t-\(UUID())"] + extra
    }
    private var pretrain: [String] { ["pretrain"] + Self.tiny + ["--out", Self.dir + "/p", "--val-split", "none"] }
    private var embedding: [String] { ["train-embedding"] + Self.tiny + ["--iterations", "1"] }
    private var episodes: [String] { ["data", "episodes", "synthetic", "-o", Self.dir + "/l.json"] }

    /// Each number category of each command: 0, negative, huge and not-a-number values, refused with the field's
    /// flag and its range (exit 1, no trap).
    var boundCases: [([String], String)] {
        [
            (eval + ["--episodes", "1000000000000"], "--episodes 1000000000000 is out of range: episodes per setting must be in 1...100000000"),
            (eval + ["--episodes", "9223372036854775807"], "--episodes 9223372036854775807 is out of range"),
            (eval + ["--threads=-1"], "--threads -1 is out of range: kernel threads (0: all cores) must be in 0...1024"),
            (eval + ["--threads", "9223372036854775807"], "--threads 9223372036854775807 is out of range"),
            (eval + ["--query", "0"], "--query 0 is out of range: query images per class must be in 1...100000"),
            (eval + ["--query", "9223372036854775807"], "--query 9223372036854775807 is out of range"),
            (eval + ["--way", "9223372036854775807"], "--way 9223372036854775807 is out of range: classes per episode"),
            (eval + ["--shot", "4611686018427387904"], "--shot 4611686018427387904 is out of range"),
            (eval + ["--protocol", "cosine-classifier", "--classifier-passes", "9223372036854775807"],
             "--classifier-passes 9223372036854775807 is out of range: passes over the support set must be in 1...1000000"),
            (eval + ["--protocol", "cosine-classifier", "--classifier-lr", "nan"], "--classifier-lr must be a number > 0, got nan"),
            (eval + ["--synthetic-images", "9223372036854775807"], "--synthetic-images 9223372036854775807 is out of range"),
            (eval + ["--synthetic-size", "0"], "--synthetic-size 0 is out of range: the synthetic image side must be in 8...1024"),
            (eval + ["--synthetic-channels", "2"], "--synthetic-channels 2: synthetic images have 1 or 3 channels"),
            (ablate + ["--episodes", "1000000000000"], "--episodes 1000000000000 is out of range: test episodes"),
            (ablate + ["--refit-episodes=-3"], "--episodes 600 and --refit-episodes -3 must be >= 1"),
            (ablate + ["--threads=-2"], "--threads -2 is out of range"),
            (episodes + ["--episodes", "1000000000000"], "--episodes 1000000000000 is out of range: episodes must be in 1...100000000"),
            (episodes + ["--way", "0"], "--way 0 is out of range: classes per episode must be in 1...100000"),
            (["data", "cache", "synthetic", "--size", "100000", "--output", Self.dir + "/c.bin"],
             "--size 100000 is out of range: the image side in pixels must be in 1...4096"),
            (["data", "cache", "synthetic", "--channels", "2", "--output", Self.dir + "/c.bin"], "--channels 2: the cache stores 1"),
            (train(["--stop-after=-5"]), "--stop-after -5 is out of range: episodes before stopping"),
            (train(["--lr", "inf"]), "--lr inf must be a positive number"),
            (train(["--beta1", "nan"]), "--beta1 nan is not allowed: it must be a finite number in [0, 1)"),
            (train(["--weight-decay", "1e300"]), "--weight-decay inf is not allowed: it must be a finite number >= 0"),
            (train(["--pixel-k", "1000000000"]), "--pixel-k 1000000000 is out of range: pixel neighbours K"),
            (train(["--image-size", "100000"]), "--image-size 100000 is out of range: the image side in pixels must be in 1...4096"),
            (train(["--widths", "4,4,4,100000000"]), "--widths [4, 4, 4, 100000000] must be 4 channel counts in 1...65536"),
            (train(["--epochs", "9223372036854775807"]), "--epochs 9223372036854775807 is out of range"),
            (train(["--val-query", "0"]), "--val-query 0 is out of range"),
            (train(["--log-every", "0"]), "--checkpoint-every and --log-every must be at least 1"),
            (pretrain + ["--epochs", "9223372036854775807"], "--epochs 9223372036854775807 is out of range: epochs must be in 1...1000000"),
            (pretrain + ["--batch-size", "9223372036854775807"], "--batch-size 9223372036854775807 is out of range"),
            (pretrain + ["--log-every=-1"], "--log-every -1 is out of range"),
            (pretrain + ["--margin", "inf", "--loss", "neg-cosine"], "--margin inf is not allowed"),
            (embedding + ["--out", Self.dir + "/te", "--dim", "9223372036854775807"], "--dim 9223372036854775807 is out of range"),
            (embedding + ["--out", Self.dir + "/te", "--eval-episodes=-1"], "--eval-episodes -1 is out of range"),
            (embedding + ["--out", Self.dir + "/te", "--log-every", "0"], "--log-every 0 is out of range"),
            (embedding + ["--out", Self.dir + "/te", "--beta0", "nan", "--loss", "margin"], "--beta0 nan is not allowed"),
        ]
    }

    /// Products of counts: overflow or an absurd total is refused naming the factors to lower.
    var overflowCases: [([String], String)] {
        [
            (train(["--episodes-per-epoch", "9223372036854775807", "--epochs", "2"]),
             "--episodes-per-epoch 9223372036854775807 is out of range"),
            (train(["--episodes-per-epoch", "1000000000", "--epochs", "1000000"]),
             "--episodes-per-epoch 1000000000 x --epochs 1000000 makes 1000000000000000 training episodes, out of range "
                + "1...1000000000000; lower --episodes-per-epoch or --epochs"),
            (embedding + ["--out", Self.dir + "/te", "--classes-per-batch", "100000", "--images-per-class", "100000"],
             "--classes-per-batch 100000 x --images-per-class 100000 makes 10000000000 images per batch"),
            (eval + ["--way", "100000", "--shot", "100000", "--query", "100000"],
             "--way 100000 x --shot + --query 200000 makes 20000000000 images per episode"),
        ]
    }

    /// Runs that cannot fit: refused before allocating, with the figure and what to lower.
    var memoryCases: [([String], String)] {
        [
            (eval + ["--episodes", "100000000", "--way", "50", "--query", "100"],
             "this run needs about 4.5 TB of memory (100000000 50-way 1-shot episodes of 5050 images: 4.5 TB) but this "
                + "machine has"),
            (train(["--image-size", "4096", "--query", "1000", "--val-split", "none"]),
             "this run needs about 5.0 TB of memory (one training episode: 5005 images of 3 x 4096 x 4096: 5.0 TB) but "
                + "this machine has"),
            (pretrain + ["--image-size", "4096", "--batch-size", "100000"], "this run needs about "),
        ]
    }

    /// Options that cannot apply in a mode (the option x mode table): refused with the reason and what to do.
    var cannotApplyCases: [([String], String)] {
        [
            // ablate from a checkpoint: model and training flags are the checkpoint's.
            (ablate + ["--backbone", "resnet12", "--image-size", "32"], "--backbone, --image-size cannot apply to the "
                + "ablation of --checkpoint: its backbone, image size, metric and training are the checkpoint's"),
            (ablate + ["--levels", "pixel", "--epochs", "3"], "--levels, --epochs cannot apply to the ablation of --checkpoint"),
            (ablate + ["--ink", "ink-one"], "--ink, --resize-filter, --mean and --std set how --retrain's models"),
            // ablate --retrain: no checkpoint, no refit.
            (ablate + ["--retrain"], "is not used with --retrain (each subset's model is trained from scratch)"),
            (["ablate", "--retrain", "--refit-episodes", "5"] + Self.tiny + ["--out", Self.dir + "/ab2"],
             "--refit-episodes sets the fusion refit of one checkpoint's ablation; with --retrain"),
            (["ablate", "--retrain", "--shard", "0/2", "--episodes-out", Self.dir + "/e/"] + Self.tiny
                + ["--out", Self.dir + "/ab3"], "--shard does not work with --retrain"),
            // eval: an episode list fixes the episodes; classifier options need their protocol; shards need a file.
            (eval + ["--episode-list", Self.dir + "/none.json", "--way", "7", "--seed", "3"],
             "--way, --seed cannot apply with --episode-list"),
            (eval + ["--classifier-passes", "3"], "--classifier-passes only applies to --protocol cosine-classifier"),
            (eval + ["--shard", "0/2"], "a shard's results go to a per-episode file; give --episodes-out"),
            // synthetic-data options on real data.
            (["data", "episodes", "/tmp", "--synthetic-size", "20", "-o", Self.dir + "/l2.json"],
             "--synthetic-size only applies to the built-in synthetic data; /tmp is read as folder data"),
            (["data", "episodes", "/tmp", "--synthetic-remove-cue", "part", "-o", Self.dir + "/l3.json"],
             "--synthetic-remove-cue only applies to the built-in synthetic data; /tmp is read as folder data"),
            // train: optimiser, schedule, validation and resume.
            (train(["--optimizer", "sgd", "--beta1", "0.6"]), "--beta1 only applies with --optimizer adam"),
            (train(["--momentum", "0.5"]), "--momentum only applies with --optimizer sgd"),
            (train(["--schedule", "cosine", "--lr-step", "3"]), "--lr-step only applies with --schedule step"),
            (train(["--val-split", "none", "--val-way", "3"]), "--val-way sets the validation episodes, but this run "
                + "does not validate"),
            (train(["--resume", "--init", Self.checkpoint]), "--init " + Self.checkpoint + " cannot apply with --resume"),
            // pretrain: validation, final test, softmax scale.
            (pretrain + ["--val-episodes", "7"], "--val-episodes 7 does not apply without a validation split"),
            (pretrain + ["--test-split", "val"], "--test-split sets the final few-shot evaluation, which runs only with "
                + "--test-episodes > 0"),
            (pretrain + ["--loss", "softmax", "--scale", "3"], "--scale 3.0 has no effect with --loss softmax"),
            (pretrain + ["--loss", "softmax", "--margin", "0.1"], "--margin 0.1 has no effect with --loss softmax"),
            // train-embedding: --eval-only evaluates a saved embedding; beta0 belongs to the margin loss.
            (embedding + ["--eval-only", Self.checkpoint, "--lr", "0.1", "--backbone", "resnet12"],
             "--backbone, --widths, --iterations, --lr cannot apply with --eval-only"),
            (embedding + ["--out", Self.dir + "/te", "--beta0", "2"], "--beta0 2.0 is the initial beta of the margin loss"),
            // score: the checkpoint's metric.
            (["score", "--support", "s.npy", "--support-labels", "l.npy", "--query", "q.npy", "--json", "--checkpoint",
              Self.checkpoint, "--pixel-k", "3"], "--pixel-k cannot be combined with --checkpoint"),
            // import: --list-names prints names only; --channels only for it; --way only with a metric.
            (["import", "--list-names", "--way", "3", "--out", "x"], "--way, --out cannot apply with --list-names"),
            (["import", "in.safetensors", "--channels", "1", "--out", "x"], "--channels only applies with --list-names"),
            (["import", "in.safetensors", "--way", "7", "--out", "x"], "--way sets the n-way of an attached metric"),
        ]
    }

    /// Foundation errors in words: no error domain, code or type dump.
    var foundationCases: [([String], String)] {
        let file = Self.dir + "/a-file"
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        return [
            (ablate + ["--out", file + "/sub"], "--out " + file + "/sub cannot be created: " + file
             + " is a file, not a directory; give a path under a directory"),
            (eval + ["--episodes", "2", "--report", file + "/r.json"], "--report " + file + "/r.json: the directory " + file
             + " is a file, not a directory; give a directory path"),
            (train(["--config", file]), "is not the settings of an episodic training run (not JSON); give the .json"),
        ]
    }

    private func check(_ cases: [([String], String)], file: StaticString = #filePath, line: UInt = #line) throws {
        for (args, message) in cases { try assertMMLFails(args, message, reported: true, file: file, line: line) }
    }

    func testEveryNumberIsBounded() throws { try check(boundCases) }

    func testProductsOfCountsAreOverflowChecked() throws { try check(overflowCases) }

    func testRunThatCannotFitIsRefusedWithItsFigure() throws {
        try check(memoryCases)
        let (_, _, err) = try runMML(memoryCases[0].0)
        XCTAssertTrue(err.contains("; lower --episodes, --way, --shot, --query"), err)
        XCTAssertTrue(err.range(of: #"but this machine has [0-9.]+ [KMGT]B"#, options: .regularExpression) != nil, err)
    }

    func testOptionsThatCannotApplyAreRefused() throws { try check(cannotApplyCases) }

    func testFoundationErrorsAreInWords() throws {
        try check(foundationCases)
        for (args, _) in foundationCases {
            let (_, _, err) = try runMML(args)
            for bad in ["Domain", "NSCocoaErrorDomain", "error 2", "The operation could", "DecodingError", "CodingKeys",
                        "dataCorrupted", "Context(", "errno"] {
                XCTAssertFalse(err.contains(bad), "'\(bad)' in: \(err)")
            }
        }
    }

    /// Every `--flag` any message of the tables suggests (and every flag a core field is rendered as) is an option of
    /// the command that printed it (argument-parser's own description of the command).
    func testEverySuggestedOptionIsAcceptedByItsCommand() throws {
        var options: [String: Set<String>] = [:]
        let all = boundCases + overflowCases + memoryCases + cannotApplyCases + foundationCases
        var checked = 0
        for (args, _) in all {
            let command = args[0] == "data" ? Array(args.prefix(2)) : [args[0]]
            let key = command.joined(separator: " ")
            if options[key] == nil { options[key] = try Self.options(of: command) }
            let (_, _, err) = try runMML(args)
            let message = err.split(separator: "\n").filter { $0.hasPrefix("error: ") }.joined(separator: "\n")
            XCTAssertFalse(message.isEmpty, "no error line for \(args): \(err)")
            let regex = try NSRegularExpression(pattern: #"--[a-z][a-z0-9-]*"#)
            let range = NSRange(message.startIndex..., in: message)
            for m in regex.matches(in: message, range: range) {
                let flag = String(message[Range(m.range, in: message)!])
                XCTAssertTrue(options[key]!.contains(flag), "mml \(key) has no option \(flag), suggested by: \(message)")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 100)
    }

    /// The long options of `mml <command>` from `--experimental-dump-help`.
    static func options(of command: [String]) throws -> Set<String> {
        let (code, out, err) = try runMML(command + ["--experimental-dump-help"])
        XCTAssertEqual(code, 0, err)
        let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        let arguments = (json?["command"] as? [String: Any])?["arguments"] as? [[String: Any]] ?? []
        var names = Set<String>()
        for a in arguments {
            for n in a["names"] as? [[String: Any]] ?? [] where n["kind"] as? String == "long" {
                names.insert("--" + (n["name"] as? String ?? ""))
            }
        }
        XCTAssertFalse(names.isEmpty, "no options for \(command)")
        return names
    }
}
