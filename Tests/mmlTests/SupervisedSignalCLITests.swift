import Foundation
import MMLCore
import MMLTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Issue 16 for `mml pretrain` and `mml train-embedding` with the built binary on tiny synthetic data: SIGINT /
/// SIGTERM / SIGHUP finish the current batch (iteration), write last.safetensors, print `stopped ...` and the exact
/// command that resumes, and exit 130 / 143 / 129; running the printed command gives the uninterrupted run's bits;
/// `--resume` with nothing to resume or other settings is refused with the flags and both values.
final class SupervisedSignalCLITests: XCTestCase {
    typealias Running = SignalCLITests.Running
    func pretrainArgs(_ out: String) -> [String] {
        // 28 px and 32 channels: about 3 ms a batch (20 px and 8 channels took 0.7 ms and once, on a loaded machine,
        // finished before the signal landed), so the signal lands in training.
        ["pretrain", "synthetic", "--synthetic-size", "28", "--synthetic-images", "12", "--widths", "32,32,32,32",
         "--threads", "1", "--batch-size", "2", "--max-batches", "150", "--epochs", "2", "--lr", "0.05",
         "--val-split", "none", "--log-every", "1", "--out", out]
    }

    func embeddingArgs(_ out: String) -> [String] {
        // 20 images per class: the final 5-way 5-shot episodes need 5 + 15.
        // 28 px and 32 channels, as pre-training's: the signal lands in training even on a loaded machine.
        ["train-embedding", "synthetic", "--synthetic-size", "28", "--widths", "32,32,32,32", "--threads", "1",
         "--synthetic-images", "20", "--classes-per-batch", "3", "--images-per-class", "2", "--dim", "8",
         "--iterations", "300", "--eval-episodes", "2", "--log-every", "1", "--checkpoint-every", "40", "--out", out]
    }

    func tensors(_ path: String) throws -> [String: [Float]] {
        let c = try Safetensors.read(contentsOf: path)
        return Dictionary(uniqueKeysWithValues: try c.entries.map { ($0.name, try c.tensor(named: $0.name).data) })
    }

    func assertSameBits(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try tensors(a), y = try tensors(b)
        XCTAssertEqual(x.keys.sorted(), y.keys.sorted(), b, file: file, line: line)
        XCTAssertFalse(x.isEmpty, file: file, line: line)
        for (name, v) in x { assertBitwiseEqual(v, y[name] ?? [], "\(b): \(name)", file: file, line: line) }
    }

    /// Starts `args`, waits for `progress` in its output, sends `sig`, checks the exit code, the stopped line and the
    /// printed resume command (this command with --resume), runs that command and returns the stopped line and the
    /// resumed run's output.
    func interruptAndResume(_ args: [String], out: String, progress: String, sig: Int32, code: Int32, name: String,
                            unit: String, file: StaticString = #filePath,
                            line: UInt = #line) throws -> (stopped: String, output: String) {
        let run = try Running(args)
        XCTAssertTrue(run.wait { $0.stdout.contains(progress) }, "no progress: \(run.stdout) \(run.stderr)",
                      file: file, line: line)
        kill(run.process.processIdentifier, sig)
        XCTAssertEqual(run.finish(), code, "\(name): \(run.stdout) \(run.stderr)", file: file, line: line)
        XCTAssertTrue(run.stderr.contains("mml: \(name) received: finishing the current \(unit), then saving "
                                          + "\(out)/last.safetensors"), run.stderr, file: file, line: line)
        let lines = run.stdout.split(separator: "\n").map(String.init)
        let stopped = try XCTUnwrap(lines.first { $0.hasPrefix("stopped     after ") }, run.stdout, file: file, line: line)
        XCTAssertTrue(stopped.contains("(\(name)); \(out)/last.safetensors holds every finished \(unit)"), stopped,
                      file: file, line: line)
        XCTAssertEqual(try Checkpoint.repairSidecar(of: out + "/last.safetensors"), .agrees, file: file, line: line)
        let left = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.contains(".tmp-") }
        XCTAssertEqual(left, [], file: file, line: line)
        let resume = try XCTUnwrap(lines.first { $0.hasPrefix("resume      ") }, run.stdout, file: file, line: line)
        let words = resume.dropFirst("resume      ".count).split(separator: " ").map(String.init)
        XCTAssertEqual(words, [mmlBinaryPath] + args + ["--resume"], file: file, line: line)
        let (rc, rout, rerr) = try runProcess(words[0], Array(words.dropFirst()))
        XCTAssertEqual(rc, 0, rout + rerr, file: file, line: line)
        return (stopped, rout)
    }

    func testPretrainSignalsSaveResumeExactlyAndExitWithTheSignalsCode() throws {
        let dir = try makeTempDir(self, prefix: "mml-pretrain-signal")
        let (code, out, err) = try runMML(pretrainArgs(dir + "/whole"))
        XCTAssertEqual(code, 0, out + err)
        for (sig, code, name) in [(SIGINT, Int32(130), "SIGINT"), (SIGTERM, 143, "SIGTERM"), (SIGHUP, 129, "SIGHUP")] {
            let run = dir + "/" + name
            let (stopped, rout) = try interruptAndResume(pretrainArgs(run), out: run, progress: "epoch 1 batch 3/150",
                                                         sig: sig, code: code, name: name, unit: "batch")
            XCTAssertTrue(stopped.contains(" batches of epoch "), stopped)
            XCTAssertTrue(rout.contains("resuming \(run) at epoch "), stopped + "\n" + rout)
            for f in ["last", "backbone"] {
                try assertSameBits(dir + "/whole/\(f).safetensors", run + "/\(f).safetensors")
            }
        }
    }

    func testTrainEmbeddingSignalSavesResumesExactly() throws {
        let dir = try makeTempDir(self, prefix: "mml-embedding-signal")
        let (code, out, err) = try runMML(embeddingArgs(dir + "/whole"))
        XCTAssertEqual(code, 0, out + err)
        let run = dir + "/cut"
        let (stopped, rout) = try interruptAndResume(embeddingArgs(run), out: run, progress: "iter 3/300",
                                                     sig: SIGTERM, code: 143, name: "SIGTERM", unit: "iteration")
        XCTAssertTrue(stopped.contains(" of 300 iterations (SIGTERM)"), stopped)
        XCTAssertTrue(rout.contains("resuming \(run) at iteration "), rout)
        for f in ["last", "embedding"] { try assertSameBits(dir + "/whole/\(f).safetensors", run + "/\(f).safetensors") }
    }

    func testResumeRefusals() throws {
        let dir = try makeTempDir(self, prefix: "mml-resume-refuse")
        try assertMMLFails(pretrainArgs(dir + "/p") + ["--resume"],
                           "error: --resume: \(dir)/p/last.safetensors does not exist, there is nothing to resume in "
                           + "\(dir)/p; start the run without --resume")
        try assertMMLFails(embeddingArgs(dir + "/e") + ["--resume"],
                           "error: --resume: \(dir)/e/last.safetensors does not exist, there is nothing to resume in "
                           + "\(dir)/e; start the run without --resume")
        var short = pretrainArgs(dir + "/p")
        short[short.firstIndex(of: "--max-batches")! + 1] = "2"
        let (code, out, err) = try runMML(short)
        XCTAssertEqual(code, 0, out + err)
        var other = short + ["--resume", "--threads", "2"]
        other[other.firstIndex(of: "--batch-size")! + 1] = "4"
        other[other.firstIndex(of: "--lr")! + 1] = "0.1"
        try assertMMLFails(other, "error: --resume: the checkpoint was trained with different settings: --batch-size 2 "
                           + "(checkpoint) vs 4 (now); --lr 0.05 (checkpoint) vs 0.1 (now); resume with the same options "
                           + "or start a new --out directory")
    }
}
