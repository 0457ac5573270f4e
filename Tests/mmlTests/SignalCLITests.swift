import Foundation
import MMLCore
import MMLTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Issue 16 end to end with the built `mml`: SIGINT / SIGTERM / SIGHUP during real training save `last`, print the
/// exact command that resumes, exit 130 / 143 / 129, and the resumed run equals an uninterrupted one bit for bit; a
/// second signal exits at once leaving nothing torn; an interrupted eval says how far it got and leaves no
/// per-episode file; kill -9 at varied times during checkpoint writes, then resuming, still gives the uninterrupted
/// bits, with the leftovers cleaned; unwritable outputs are reported before any training.
final class SignalCLITests: XCTestCase {
    /// A running `mml` whose output is collected as it comes.
    final class Running: @unchecked Sendable {
        let process = Process()
        private let lock = NSLock()
        private var outText = "", errText = ""

        init(_ arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: mmlBinaryPath)
            process.arguments = arguments
            let out = Pipe(), err = Pipe()
            process.standardOutput = out
            process.standardError = err
            out.fileHandleForReading.readabilityHandler = { [weak self] h in self?.append(h.availableData, err: false) }
            err.fileHandleForReading.readabilityHandler = { [weak self] h in self?.append(h.availableData, err: true) }
            try process.run()
        }

        private func append(_ data: Data, err: Bool) {
            lock.lock(); defer { lock.unlock() }
            if err { errText += String(decoding: data, as: UTF8.self) } else { outText += String(decoding: data, as: UTF8.self) }
        }

        var stdout: String { lock.lock(); defer { lock.unlock() }; return outText }
        var stderr: String { lock.lock(); defer { lock.unlock() }; return errText }

        /// Waits (polling, at most `seconds`) until `condition` holds; false if the process ended first or timed out.
        func wait(upTo seconds: Double = 120, until condition: (Running) -> Bool) -> Bool {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end {
                if condition(self) { return true }
                if !process.isRunning { return condition(self) }
                usleep(2_000)
            }
            return false
        }

        /// Waits for the end; returns the exit status (a signal's death as 128 + its number).
        func finish() -> Int32 {
            process.waitUntilExit()
            usleep(50_000)  // the last bytes through the pipes
            return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus
                : process.terminationStatus
        }
    }

    /// Tiny synthetic data, a narrow backbone, 3 epochs of 200 episodes, 2 per step, a checkpoint every 10 episodes.
    func trainArgs(_ out: String) -> [String] {
        ["train", "synthetic", "--synthetic-size", "20", "--synthetic-images", "12", "--widths", "8,8,8,8",
         "--way", "3", "--shot", "1", "--query", "2", "--episodes-per-epoch", "200", "--epochs", "3",
         "--episodes-per-step", "2", "--val-episodes", "2", "--val-query", "2", "--log-every", "2",
         "--checkpoint-every", "10", "--threads", "1", "--out", out]
    }

    /// Every tensor of a checkpoint, by name.
    func tensors(_ path: String) throws -> [String: [Float]] {
        let c = try Safetensors.read(contentsOf: path)
        return Dictionary(uniqueKeysWithValues: try c.entries.map { ($0.name, try c.tensor(named: $0.name).data) })
    }

    func assertSameBits(_ a: String, _ b: String, _ what: String, file: StaticString = #filePath,
                        line: UInt = #line) throws {
        let x = try tensors(a), y = try tensors(b)
        XCTAssertEqual(x.keys.sorted(), y.keys.sorted(), what, file: file, line: line)
        XCTAssertTrue(x.keys.contains { $0.hasPrefix("optimizer.") }, what, file: file, line: line)
        for (name, v) in x { assertBitwiseEqual(v, y[name] ?? [], "\(what): \(name)", file: file, line: line) }
    }

    /// The uninterrupted run's `last.safetensors` (trained once per test class).
    nonisolated(unsafe) static var reference: String?
    func referenceLast() throws -> String {
        if let r = Self.reference { return r }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mml-signal-ref-\(getpid())").path
        try? FileManager.default.removeItem(atPath: dir)
        let (code, out, err) = try runMML(trainArgs(dir))
        XCTAssertEqual(code, 0, out + err)
        Self.reference = dir + "/last.safetensors"
        return dir + "/last.safetensors"
    }

    override class func tearDown() {
        if let r = reference { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: r).deletingLastPathComponent().path) }
        super.tearDown()
    }

    /// No temporary file of an interrupted write is left in `dir`.
    func assertNoTemporaries(_ dir: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
        XCTAssertEqual(left, [], "temporary files left in \(dir)", file: file, line: line)
    }

    func testSignalsDuringTrainingSaveResumeExactlyAndExitWithTheSignalsCode() throws {
        let reference = try referenceLast()
        let dir = try makeTempDir(self, prefix: "mml-signal")
        for (sig, code, name) in [(SIGINT, Int32(130), "SIGINT"), (SIGTERM, 143, "SIGTERM"), (SIGHUP, 129, "SIGHUP")] {
            let out = dir + "/" + name
            let run = try Running(trainArgs(out))
            // Past the first optimiser step: the plain progress line of episode 4.
            XCTAssertTrue(run.wait { $0.stdout.contains("episode 4/600") }, "no progress: \(run.stdout) \(run.stderr)")
            kill(run.process.processIdentifier, sig)
            XCTAssertEqual(run.finish(), code, "\(name): \(run.stdout) \(run.stderr)")
            XCTAssertTrue(run.stderr.contains("mml: \(name) received: finishing the current optimiser step, then saving "
                                              + "\(out)/last.safetensors"), run.stderr)
            let lines = run.stdout.split(separator: "\n").map(String.init)
            let stopped = try XCTUnwrap(lines.first { $0.hasPrefix("stopped     at episode ") }, run.stdout)
            XCTAssertTrue(stopped.hasSuffix("of 600 (\(name)); \(out)/last.safetensors holds every finished step"), stopped)
            let episode = Int(stopped.dropFirst("stopped     at episode ".count).prefix { $0.isNumber }) ?? -1
            XCTAssertTrue(episode >= 4 && episode < 600 && episode % 2 == 0, stopped)
            // `last` is loadable, holds that episode, and its sidecar agrees with it.
            _ = try Checkpoint.load(out + "/last.safetensors", threads: 1)
            XCTAssertTrue(try XCTUnwrap(Safetensors.metadata(at: out + "/last.safetensors")[Checkpoint.stateKey])
                .contains("\"episodesDone\":\(episode),"))
            XCTAssertEqual(try Checkpoint.repairSidecar(of: out + "/last.safetensors"), .agrees)
            try assertNoTemporaries(out)
            // The printed command is this one with --resume, and running it finishes the run with the same bits.
            let resume = try XCTUnwrap(lines.first { $0.hasPrefix("resume      ") }, run.stdout)
            let words = resume.dropFirst("resume      ".count).split(separator: " ").map(String.init)
            XCTAssertEqual(words, [mmlBinaryPath] + trainArgs(out) + ["--resume"])
            let (rc, rout, rerr) = try runProcess(words[0], Array(words.dropFirst()))
            XCTAssertEqual(rc, 0, rout + rerr)
            XCTAssertTrue(rout.contains("resuming \(out) at episode \(episode) of 600"), rout)
            try assertSameBits(reference, out + "/last.safetensors", "\(name) then resumed")
        }
    }

    func testSecondSignalExitsAtOnceAndLeavesNothingTorn() throws {
        let dir = try makeTempDir(self, prefix: "mml-signal2")
        let out = dir + "/run"
        // Long steps of 2000 episodes (about a second on an idle machine; 200 were over before the second signal
        // came): the first signal waits for the step's end, the second does not.
        var args = trainArgs(out)
        args[args.firstIndex(of: "--episodes-per-epoch")! + 1] = "2000"
        args[args.firstIndex(of: "--episodes-per-step")! + 1] = "2000"
        let run = try Running(args)
        XCTAssertTrue(run.wait { _ in FileManager.default.fileExists(atPath: out + "/log.jsonl") }, run.stderr)
        usleep(100_000)
        kill(run.process.processIdentifier, SIGINT)
        XCTAssertTrue(run.wait(upTo: 30) { $0.stderr.contains("SIGINT received") }, run.stderr)
        kill(run.process.processIdentifier, SIGINT)
        XCTAssertEqual(run.finish(), 130, run.stdout + run.stderr)
        XCTAssertTrue(run.stderr.contains("mml: SIGINT again: exiting now"), run.stderr)
        XCTAssertFalse(run.stdout.contains("resume      "), "it did not exit at once: \(run.stdout)")
        // Whatever was written is whole: a checkpoint there loads and agrees with its sidecar; the next start
        // (resume if a checkpoint was committed, else a new run) cleans up and finishes.
        let last = out + "/last.safetensors"
        let committed = FileManager.default.fileExists(atPath: last)
        if committed { _ = try Checkpoint.load(last, threads: 1) }
        let (rc, rout, rerr) = try runMML(args + (committed ? ["--resume"] : []))
        XCTAssertEqual(rc, 0, rout + rerr)
        try assertNoTemporaries(out)
        XCTAssertEqual(try Checkpoint.repairSidecar(of: last), .agrees)
    }

    func testInterruptedEvalSaysHowFarItGotAndWritesNoEpisodeFile() throws {
        let reference = try referenceLast()
        let dir = try makeTempDir(self, prefix: "mml-signal-eval")
        let episodes = dir + "/episodes.jsonl", report = dir + "/report.json"
        let run = try Running(["eval", "--checkpoint", reference, "synthetic", "--synthetic-size", "20",
                               "--synthetic-images", "12", "--way", "3", "--shot", "1", "--query", "2",
                               "--episodes", "1000000", "--threads", "1", "--episodes-out", episodes,
                               "--report", report])
        XCTAssertTrue(run.wait { $0.stderr.contains("100/1000000 episodes") }, run.stdout + run.stderr)
        kill(run.process.processIdentifier, SIGTERM)
        XCTAssertEqual(run.finish(), 143, run.stdout + run.stderr)
        let line = try XCTUnwrap(run.stderr.split(separator: "\n").first { $0.hasPrefix("mml eval: stopped after ") },
                                 run.stderr)
        XCTAssertTrue(line.hasSuffix(" of 1000000 episodes of 3-way 1-shot (SIGTERM)"), String(line))
        let done = Int(line.dropFirst("mml eval: stopped after ".count).prefix { $0.isNumber }) ?? 0
        XCTAssertGreaterThanOrEqual(done, 100)
        XCTAssertFalse(FileManager.default.fileExists(atPath: episodes), "a partial per-episode file")
        XCTAssertFalse(FileManager.default.fileExists(atPath: report), "a partial report")
        try assertNoTemporaries(dir)
    }

    func testKillNineDuringCheckpointWritesThenResumeGivesTheSameBits() throws {
        let reference = try referenceLast()
        let dir = try makeTempDir(self, prefix: "mml-kill9")
        let out = dir + "/run"
        var kills = 0
        // Checkpoints every 10 episodes (5 steps): kills at varied times land before, during and after their writes.
        for delay in [150_000, 400_000, 90_000, 650_000, 250_000] as [UInt32] {
            let resume = FileManager.default.fileExists(atPath: out + "/last.safetensors")
            let run = try Running(trainArgs(out) + (resume ? ["--resume"] : []))
            XCTAssertTrue(run.wait { $0.stdout.contains("episode ") || $0.stdout.contains("resuming") }, run.stderr)
            usleep(delay)
            guard run.process.isRunning else { _ = run.finish(); break }
            kill(run.process.processIdentifier, SIGKILL)
            let code = run.finish()
            if code == 0 { break }  // it finished on its own between the check and the kill
            XCTAssertEqual(code, 128 + SIGKILL, run.stdout + run.stderr)
            kills += 1
        }
        XCTAssertGreaterThan(kills, 0)
        // A constructed leftover as well: a dead writer's temporary file and a sidecar of another step.
        let dead = try deadWriterTemporary(in: out)
        if FileManager.default.fileExists(atPath: out + "/last.json") {
            try Data("{\"checkpoint\":\"last.safetensors\",\"model\":{},\"state\":{\"episodesDone\":0}}\n".utf8)
                .write(to: URL(fileURLWithPath: out + "/last.json"))
            // Read on its own, the stale sidecar is refused with what to give instead.
            try assertMMLFails(trainArgs(dir + "/other") + ["--config", out + "/last.json"],
                               "does not describe the checkpoint beside it, \(out)/last.safetensors")
        }
        let resume = FileManager.default.fileExists(atPath: out + "/last.safetensors")
        let (rc, rout, rerr) = try runMML(trainArgs(out) + (resume ? ["--resume"] : []))
        XCTAssertEqual(rc, 0, rout + rerr)
        if resume { XCTAssertTrue(rout.contains("rewrote \(out)/last.json from \(out)/last.safetensors"), rout) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dead))
        try assertNoTemporaries(out)
        XCTAssertEqual(try Checkpoint.repairSidecar(of: out + "/last.safetensors"), .agrees)
        XCTAssertEqual(try Checkpoint.repairSidecar(of: out + "/best.safetensors"), .agrees)
        try assertSameBits(reference, out + "/last.safetensors", "after \(kills) kill -9")
    }

    /// Creates in `dir` the temporary file of a checkpoint writer that died (a reaped child's pid).
    func deadWriterTemporary(in dir: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        let mine = URL(fileURLWithPath: AtomicFile.temporaryPath(for: dir + "/last.safetensors")).lastPathComponent
        let path = dir + "/" + mine.replacingOccurrences(of: ".tmp-\(getpid())@", with: ".tmp-\(p.processIdentifier)@")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: 1000))
        return path
    }

    func testUnwritableOutputsAreReportedBeforeAnyWork() throws {
        let dir = try makeTempDir(self, prefix: "mml-unwritable")
        let file = dir + "/plain-file"
        FileManager.default.createFile(atPath: file, contents: Data([1]))
        let data = ["synthetic", "--synthetic-size", "20", "--synthetic-images", "12"]
        let notDir = "\(file) is a file, not a directory"
        // Training commands: the message comes before the run's facts or any episode, and nothing is written.
        for args in [trainArgs(file + "/run"),
                     ["pretrain"] + data + ["--widths", "8,8,8,8", "--epochs", "1", "--out", file + "/run"],
                     ["train-embedding"] + data + ["--widths", "8,8,8,8", "--iterations", "2", "--out", file + "/run"]] {
            let (code, out, err) = try runMML(args)
            XCTAssertEqual(code, 1, args[0] + out + err)
            XCTAssertTrue(err.contains("error: --out \(file)/run cannot be created: \(notDir); give a path under a "
                                       + "directory"), args[0] + ": " + err)
            XCTAssertFalse(out.contains("episode") || out.contains("model  ") || out.contains("epoch"), out)
        }
        let (code, out, err) = try runMML(trainArgs(file))
        XCTAssertEqual(code, 1)
        XCTAssertTrue(err.contains("error: --out \(file) is a file, not a directory; give a directory path"), out + err)
        // A read-only file system (for root too).
        if FileManager.default.fileExists(atPath: "/proc/self") {
            let (code, out, err) = try runMML(trainArgs("/proc/mml-run"))
            XCTAssertEqual(code, 1)
            XCTAssertTrue(err.contains("error: --out /proc/mml-run cannot be created: mkdir /proc/mml-run failed ("),
                          out + err)
        }
        // Evaluation's and the other commands' output files.
        let reference = try referenceLast()
        let eval = ["eval", "--checkpoint", reference] + data + ["--way", "3", "--query", "2", "--episodes", "3"]
        try assertMMLFails(eval + ["--episodes-out", file + "/e.jsonl"],
                           "error: --episodes-out \(file)/e.jsonl: the directory \(file) is a file, not a directory",
                           reported: true)
        try assertMMLFails(eval + ["--report", file + "/r.json"],
                           "error: --report \(file)/r.json: the directory \(file) is a file, not a directory",
                           reported: true)
        try assertMMLFails(eval + ["--report", dir], "error: --report \(dir) is a directory; give a file path",
                           reported: true)
        try assertMMLFails(["ablate", "--checkpoint", reference] + data + ["--episodes", "3", "--out", file + "/a"],
                           "error: --out \(file)/a cannot be created: \(notDir)", reported: true)
        try assertMMLFails(["data", "episodes"] + data + ["--episodes", "2", "--output", file + "/list.json"],
                           "error: --output \(file)/list.json: the directory \(file) is a file, not a directory",
                           reported: true)
        try assertMMLFails(["import", reference, "--out", file + "/m.safetensors"],
                           "error: --out \(file)/m.safetensors: the directory \(file) is a file, not a directory",
                           reported: true)
    }
}
