import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// Issue 16 for `PretrainingRun` and `EmbeddingTrainingRun` in the core: a `StopRequest` mid-epoch (mid-run) writes
/// last.safetensors after the current batch and throws a resumable `RunStopped`; the resumed run (also one stopped
/// again during the final evaluation) equals the uninterrupted run bit for bit (every checkpoint's tensors, the
/// per-epoch results, the evaluation); `resume` with nothing to resume or with other settings is refused, naming
/// each differing field with both values.
final class SupervisedResumeTests: XCTestCase {
    let data = DatasetSource(path: "synthetic", syntheticSize: 20, syntheticImages: 20)
    let backbone = BackboneSettings(widths: [8, 8, 8, 8])

    func pretrain(_ out: String) -> PretrainingRunConfiguration {
        PretrainingRunConfiguration(dataset: data, backbone: backbone, loss: .negCosine, margin: -0.05, epochs: 2,
                                    batchSize: 8, maxBatches: 4, learningRate: 0.05, warmupEpochs: 1,
                                    validationEpisodes: 2, testEpisodes: 2, testProtocols: [.prototype], seed: 3,
                                    threads: 1, logEvery: 1, out: out)
    }

    func embedding(_ out: String) -> EmbeddingTrainingRunConfiguration {
        EmbeddingTrainingRunConfiguration(
            dataset: data, backbone: backbone,
            loss: EmbeddingLossConfiguration(loss: .margin, positives: .easy, negatives: .semiHard, margin: 0.2),
            dim: 8, classesPerBatch: 4, imagesPerClass: 2, iterations: 6, evalEpisodes: 2, seed: 4, threads: 1,
            logEvery: 2, out: out, checkpointEvery: 4)
    }

    func tensors(_ path: String) throws -> [String: [Float]] {
        let c = try Safetensors.read(contentsOf: path)
        return Dictionary(uniqueKeysWithValues: try c.entries.map { ($0.name, try c.tensor(named: $0.name).data) })
    }

    func assertSameTensors(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try tensors(a), y = try tensors(b)
        XCTAssertEqual(x.keys.sorted(), y.keys.sorted(), a, file: file, line: line)
        XCTAssertFalse(x.isEmpty, file: file, line: line)
        for (name, v) in x { assertBitwiseEqual(v, y[name] ?? [], "\(a): \(name)", file: file, line: line) }
    }

    /// `body` throws an `MMLError` whose message is `expected` (backquoted field names as plain words, as
    /// `MMLError.message` renders them).
    func assertRefused(_ body: () throws -> Void, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(message(body), expected.replacingOccurrences(of: "`", with: ""), file: file, line: line)
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch let e as MMLError { return e.message } catch { return "\(error)" }
    }

    func testPretrainingStoppedMidEpochResumesBitForBit() throws {
        let dir = try makeTempDir(self, prefix: "mml-pretrain-resume")
        let whole = try PretrainingRun(pretrain(dir + "/whole")).run()
        // Asked during batch 1 of epoch 2: batch 2 is finished, last.safetensors holds it.
        let stop = StopRequest()
        let run = try PretrainingRun(pretrain(dir + "/cut"))
        run.stop = stop
        var stopped: RunStopped?
        do {
            _ = try run.run { e in
                if case .supervised(.batch(let epoch, let batch, _, _, _, _, _)) = e, epoch == 2, batch == 1 {
                    stop.request(reason: 15)
                }
            }
        } catch let s as RunStopped { stopped = s }
        let s = try XCTUnwrap(stopped)
        XCTAssertEqual(s.done, 2)
        XCTAssertEqual(s.checkpoint, dir + "/cut/last.safetensors")
        XCTAssertEqual(s.description, "stopped after 2 of 4 batches of epoch 2 of 2; \(dir)/cut/last.safetensors "
                       + "holds every finished batch")
        XCTAssertEqual(try Checkpoint.repairSidecar(of: dir + "/cut/last.safetensors"), .agrees)
        XCTAssertTrue(try tensors(dir + "/cut/last.safetensors").keys.contains { $0.hasPrefix("optimizer.momentum.") })
        // Resumed, and stopped again during the final evaluation: training is then complete in last.safetensors.
        var resume = pretrain(dir + "/cut")
        resume.resume = true
        let again = try PretrainingRun(resume)
        let stop2 = StopRequest()
        again.stop = stop2
        var notes: [String] = []
        stopped = nil
        do {
            _ = try again.run { e in
                if case .note(let n) = e { notes.append(n) }
                if case .supervised(.test) = e { stop2.request() }
            }
        } catch let s as RunStopped { stopped = s }
        XCTAssertEqual(notes, ["resuming \(dir)/cut at epoch 2 of 2, batch 2 of 4"])
        let s2 = try XCTUnwrap(stopped)
        XCTAssertEqual(s2.description, "stopped after 1 of 2 test episodes of 5-way 5-shot prototype; training is "
                       + "finished in \(dir)/cut/last.safetensors; resuming runs the test again")
        notes = []
        let rest = try PretrainingRun(resume).run { e in if case .note(let n) = e { notes.append(n) } }
        XCTAssertEqual(notes, ["resuming \(dir)/cut: its 2 epochs are trained, the final evaluation runs again"])
        for f in ["backbone", "best", "last"] {
            try assertSameTensors(dir + "/whole/\(f).safetensors", dir + "/cut/\(f).safetensors")
        }
        XCTAssertEqual(rest.epochs.map(\.loss), whole.epochs.map(\.loss))
        XCTAssertEqual(rest.epochs.map(\.accuracy), whole.epochs.map(\.accuracy))
        XCTAssertEqual(rest.epochs.map { $0.validation?.mean }, whole.epochs.map { $0.validation?.mean })
        XCTAssertEqual(rest.tests.map(\.summary.mean), whole.tests.map(\.summary.mean))
        XCTAssertEqual(rest.tests.count, 2)
        // The log: the epochs once each, then the test.
        let log = try String(contentsOfFile: dir + "/cut/log.jsonl", encoding: .utf8).split(separator: "\n")
        let wholeLog = try String(contentsOfFile: dir + "/whole/log.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(log.count, wholeLog.count)
        XCTAssertEqual(log.count, 3)
    }

    func testPretrainingResumeRefusals() throws {
        let dir = try makeTempDir(self, prefix: "mml-pretrain-refuse")
        var c = pretrain(dir + "/none")
        c.resume = true
        assertRefused({ _ = try PretrainingRun(c).run() },
                       "`resume`: \(dir)/none/last.safetensors does not exist, there is nothing to resume in "
                       + "\(dir)/none; start the run without `resume`")
        var short = pretrain(dir + "/run")
        short.epochs = 1; short.warmupEpochs = 0; short.testEpisodes = 0; short.testProtocols = [.prototype, .cosineClassifier]
        _ = try PretrainingRun(short).run()
        // A fresh run into a directory holding a run would overwrite it: refused, its files untouched.
        let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/run/backbone.safetensors"))
        assertRefused({ _ = try PretrainingRun(short).run() },
                       "\(dir)/run already holds a run (last.safetensors); a new run would overwrite it: pass `resume` "
                       + "to continue it, or choose another `out`")
        try FileManager.default.createDirectory(atPath: dir + "/old", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dir + "/run/backbone.safetensors", toPath: dir + "/old/backbone.safetensors")
        var old = short
        old.out = dir + "/old"
        assertRefused({ _ = try PretrainingRun(old).run() },
                       "\(dir)/old already holds a run (backbone.safetensors); a new run would overwrite it: choose "
                       + "another `out` (or move the old run away)")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/run/backbone.safetensors")), before)
        var other = short
        other.resume = true
        other.batchSize = 4
        other.learningRate = 0.2
        other.threads = 2  // free: does not change the bits
        other.logEvery = 7
        assertRefused({ _ = try PretrainingRun(other).run() },
                       "`resume`: the checkpoint was trained with different settings: `batchSize` 8 (checkpoint) vs 4 "
                       + "(now); `learningRate` 0.05 (checkpoint) vs 0.2 (now); resume with the same options or start "
                       + "a new `out` directory")
        other.dataset.syntheticImages = 16
        other.batchSize = 8; other.learningRate = 0.05
        assertRefused({ _ = try PretrainingRun(other).run() },
                       "`resume`: the checkpoint was trained with different settings: `dataset.syntheticImages` 20 "
                       + "(checkpoint) vs 16 (now); resume with the same options or start a new `out` directory")
        // A checkpoint of another command is no resumable pre-training.
        try FileManager.default.createDirectory(atPath: dir + "/emb", withIntermediateDirectories: true)
        _ = try EmbeddingTrainingRun(embedding(dir + "/emb")).run()
        var wrong = short
        wrong.out = dir + "/emb"
        wrong.resume = true
        let m = message { _ = try PretrainingRun(wrong).run() }
        XCTAssertTrue(m.hasPrefix("resume: the training state in \(dir)/emb/last.safetensors cannot be read ("), m)
    }

    func testEmbeddingTrainingStoppedMidRunResumesBitForBit() throws {
        let dir = try makeTempDir(self, prefix: "mml-embedding-resume")
        let whole = try EmbeddingTrainingRun(embedding(dir + "/whole")).run()
        let stop = StopRequest()
        let run = try EmbeddingTrainingRun(embedding(dir + "/cut"))
        run.stop = stop
        var stopped: RunStopped?
        do {
            _ = try run.run { e in
                if case .supervised(.iteration(2, _, _, _, _, _, _)) = e { stop.request() }
            }
        } catch let s as RunStopped { stopped = s }
        let s = try XCTUnwrap(stopped)
        XCTAssertEqual(s.description, "stopped after 2 of 6 iterations; \(dir)/cut/last.safetensors holds every "
                       + "finished iteration")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/cut/embedding.safetensors"))
        let saved = try tensors(dir + "/cut/last.safetensors")
        for name in ["embedding.weight", "loss.beta"] { XCTAssertNotNil(saved[name], name) }
        XCTAssertTrue(saved.keys.contains { $0.hasPrefix("optimizer.") })
        var resume = embedding(dir + "/cut")
        resume.resume = true
        let rest = try EmbeddingTrainingRun(resume).run()
        try assertSameTensors(dir + "/whole/embedding.safetensors", dir + "/cut/embedding.safetensors")
        try assertSameTensors(dir + "/whole/last.safetensors", dir + "/cut/last.safetensors")
        XCTAssertEqual(rest.evaluation.metrics.recallAt, whole.evaluation.metrics.recallAt)
        XCTAssertEqual(rest.evaluation.fewShot[1]?.mean, whole.evaluation.fewShot[1]?.mean)
        let log = try String(contentsOfFile: dir + "/cut/log.jsonl", encoding: .utf8)
        let wholeLog = try String(contentsOfFile: dir + "/whole/log.jsonl", encoding: .utf8)
        XCTAssertEqual(log.split(separator: "\n").count, wholeLog.split(separator: "\n").count)
        // Other settings are refused, naming each field; nothing to resume too.
        resume.iterations = 8
        resume.loss.margin = 0.3
        assertRefused({ _ = try EmbeddingTrainingRun(resume).run() },
                       "`resume`: the checkpoint was trained with different settings: `iterations` 6 (checkpoint) vs 8 "
                       + "(now); `loss.margin` 0.2 (checkpoint) vs 0.3 (now); resume with the same options or start a "
                       + "new `out` directory")
        assertRefused({ _ = try EmbeddingTrainingRun(embedding(dir + "/whole")).run() },
                       "\(dir)/whole already holds a run (last.safetensors); a new run would overwrite it: pass "
                       + "`resume` to continue it, or choose another `out`")
        var none = embedding(dir + "/none")
        none.resume = true
        assertRefused({ _ = try EmbeddingTrainingRun(none).run() },
                       "`resume`: \(dir)/none/last.safetensors does not exist, there is nothing to resume in "
                       + "\(dir)/none; start the run without `resume`")
    }
}
