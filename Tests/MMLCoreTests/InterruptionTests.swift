import Foundation
import MMLCore
import MMLTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Issue 16, items 1-3 in the core: a `StopRequest` ends training at a step boundary with `last` written and the
/// resumed run equal to an uninterrupted one bit for bit (also when only one of two ranks was asked); evaluation
/// stops between episodes with how far it got and writes no per-episode file; a checkpoint's sidecar is a derived
/// view that is repaired (or refused when read alone); temporary files of dead writers are removed and live ones
/// kept; outputs are checked before work (a file as a parent, a read-only file system, a full disk).
final class InterruptionTests: XCTestCase {
    func tinyRun(out: String) -> EpisodicTrainingRunConfiguration {
        let t = EpisodicTrainingConfiguration(way: 3, shot: 1, query: 2, episodesPerEpoch: 6, epochs: 2,
                                              episodesPerStep: 2, seed: 7, validationEpisodes: 2, checkpointEvery: 4,
                                              logEvery: 2)
        return EpisodicTrainingRunConfiguration(
            dataset: DatasetSource(path: "synthetic", syntheticSize: 20, syntheticImages: 12),
            backbone: BackboneSettings(widths: [8, 8, 8, 8]), metric: MetricConfiguration(way: 3), training: t,
            validationQuery: 2, out: out, threads: 1)
    }

    /// Every tensor of a checkpoint (weights, buffers, optimiser moments), by name.
    func tensors(_ path: String) throws -> [String: [Float]] {
        let c = try Safetensors.read(contentsOf: path)
        return Dictionary(uniqueKeysWithValues: try c.entries.map { ($0.name, try c.tensor(named: $0.name).data) })
    }

    func assertSameTensors(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try tensors(a), y = try tensors(b)
        XCTAssertEqual(x.keys.sorted(), y.keys.sorted(), file: file, line: line)
        XCTAssertFalse(x.isEmpty, file: file, line: line)
        for (name, v) in x { assertBitwiseEqual(v, y[name] ?? [], "\(name)", file: file, line: line) }
    }

    func testStopRequestEndsAtAStepBoundaryAndResumesBitForBit() throws {
        let dir = try makeTempDir(self, prefix: "mml-stop")
        let whole = try EpisodicTrainingRun(tinyRun(out: dir + "/whole")).run()
        XCTAssertFalse(whole.stopped)
        // Asked during episode 3 (inside the second step of 2): the step is finished, `last` holds 4 episodes.
        let stop = StopRequest()
        let run = try EpisodicTrainingRun(tinyRun(out: dir + "/cut"))
        run.stop = stop
        var seen: [Int] = []
        let cut = try run.run { e in
            if case .training(.episode(let i, _, _, _, _, _)) = e {
                seen.append(i)
                if i == 2 { stop.request(reason: 2) }
            }
        }
        XCTAssertTrue(cut.stopped)
        XCTAssertEqual(cut.state.episodesDone, 4)
        XCTAssertEqual(seen, [0, 1, 2, 3])
        XCTAssertEqual(stop.reason, 2)
        let state = try XCTUnwrap(Safetensors.metadata(at: cut.last)[Checkpoint.stateKey])
        XCTAssertTrue(state.contains("\"episodesDone\":4"), state)
        XCTAssertEqual(try Checkpoint.repairSidecar(of: cut.last), .agrees)
        var resume = tinyRun(out: dir + "/cut")
        resume.resume = true
        let rest = try EpisodicTrainingRun(resume).run()
        XCTAssertFalse(rest.stopped)
        XCTAssertEqual(rest.state.episodesDone, 12)
        try assertSameTensors(whole.last, rest.last)
        try assertSameTensors(whole.best!, rest.best!)
    }

    /// Without validation (`validationSplit` "none") the checkpoints still hold the training state: such a run
    /// resumes bit for bit across an epoch boundary, and a seed study skips it once finished. (The state once held a
    /// NaN validation record per epoch, which JSON cannot encode, and was written empty.)
    func testRunWithoutValidationResumesAndIsSkippedWhenFinished() throws {
        let dir = try makeTempDir(self, prefix: "mml-noval")
        func run(_ out: String) -> EpisodicTrainingRunConfiguration {
            var c = tinyRun(out: out)
            c.validationSplit = "none"
            c.validationQuery = 15  // the default: no validation setting with validation off
            return c
        }
        let whole = try EpisodicTrainingRun(run(dir + "/whole")).run()
        var cut = run(dir + "/cut")
        cut.stopAfter = 8  // past the end of epoch 1 (6 episodes)
        let first = try EpisodicTrainingRun(cut).run()
        XCTAssertEqual(first.state.episodesDone, 8)
        let state = try XCTUnwrap(Safetensors.metadata(at: first.last)[Checkpoint.stateKey])
        XCTAssertTrue(state.contains("\"episodesDone\":8"), state)
        XCTAssertEqual(try EpisodicTrainingState(metadata: state).validations.count, 0)
        cut.stopAfter = nil
        cut.resume = true
        let resumed = try EpisodicTrainingRun(cut).run()
        XCTAssertEqual(resumed.state.episodesDone, 12)
        try assertSameTensors(whole.last, resumed.last)
        try assertSameTensors(dir + "/whole/best.safetensors", dir + "/cut/best.safetensors")
        // A study over one such seed: the finished seed is skipped on resume.
        var study = run(dir + "/study")
        study.resume = false
        let seeds = SeedTrainingRunConfiguration(run: study, seeds: [7])
        _ = try SeedTrainingRun(seeds).run()
        var again = study
        again.resume = true
        var notes: [String] = []
        _ = try SeedTrainingRun(SeedTrainingRunConfiguration(run: again, seeds: [7])).run { e in
            if case .note(let n) = e { notes.append(n) }
        }
        XCTAssertTrue(notes.contains { $0.contains("finished (12 episodes)") && $0.contains("skipped") }, "\(notes)")
        XCTAssertEqual(try SeedStudy.progress(ofRunIn: dir + "/study/seed-7")?.episodesDone, 12)
    }

    func testOneRankAskedStopsEveryRankAtTheSameStep() throws {
        typealias Hub = DistributedTrainingTests.ThreadGroupHub
        let hub = Hub(size: 2)
        let stops = [StopRequest(), StopRequest()]
        stops[1].request()  // only rank 1 was signalled
        let config = ModelConfiguration(
            kind: "episodic", backbone: .conv64F, inputChannels: 3, widths: [8, 8, 8, 8], seed: 5,
            image: ImageConfig(size: 20, channels: 3, mean: [0.5], std: [0.25]), metric: MetricConfiguration())
        let training = EpisodicTrainingConfiguration(way: 3, shot: 1, query: 2, episodesPerEpoch: 8, epochs: 2,
                                                     episodesPerStep: 4, seed: 3, validationEpisodes: 0, logEvery: 4)
        let trainers = try DistributedTrainingTests.onRanks(2) { r in
            let ds = try SyntheticDataset(options: .init(seed: 0, imagesPerClass: 12, size: 20, channels: 3),
                                          split: "train")
            let trainer = try EpisodicTrainer(
                model: try FewShotModel(config, threads: 1), configuration: training,
                train: (try EpisodeLoader(dataset: ds, config: config.image),
                        try EpisodeSampler(dataset: ds, way: 3, shot: 1, query: 2, seed: 3)),
                validation: nil, directory: nil, group: DistributedTrainingTests.ThreadGroup(hub: hub, rank: r))
            trainer.stopRequest = stops[r]
            try trainer.run()
            return trainer
        }
        for (r, t) in trainers.enumerated() {
            XCTAssertTrue(t.stopped, "rank \(r)")
            XCTAssertEqual(t.state.episodesDone, 4, "rank \(r) stopped after the first step")
            XCTAssertEqual(t.state.stepsDone, 1)
        }
    }

    func testEvaluationStopsBetweenEpisodesAndWritesNoEpisodeFile() throws {
        let dir = try makeTempDir(self, prefix: "mml-stop-eval")
        var short = tinyRun(out: dir + "/m")
        short.training.epochs = 1
        let trained = try EpisodicTrainingRun(short).run()
        let out = dir + "/episodes.jsonl"
        let config = EvaluationRunConfiguration(
            checkpoint: trained.last, dataset: DatasetSource(path: "synthetic", syntheticSize: 20, syntheticImages: 12),
            ways: [3], shots: [1], query: 2, episodes: 50, threads: 1, episodesOut: out)
        let run = try EvaluationRun(config)
        let stop = StopRequest()
        run.stop = stop
        XCTAssertThrowsError(try run.run { e in
            if case .progress(_, let done, _) = e, done == 7 { stop.request() }
        }) { error in
            let s = error as? RunStopped
            XCTAssertEqual(s?.done, 7)
            XCTAssertEqual(s?.total, 50)
            XCTAssertEqual(s?.description, "stopped after 7 of 50 episodes of 3-way 1-shot")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a partial run left a per-episode file")
    }

    func testStaleSidecarIsRepairedOrRefused() throws {
        let dir = try makeTempDir(self, prefix: "mml-sidecar")
        var c = tinyRun(out: dir + "/run")
        c.stopAfter = 4
        let first = try EpisodicTrainingRun(c).run()
        let side = Checkpoint.sidecarPath(first.last)
        let old = try Data(contentsOf: URL(fileURLWithPath: side))
        XCTAssertTrue(String(decoding: old, as: UTF8.self).hasPrefix("{\"checkpoint\":\"last.safetensors\","))
        (c.stopAfter, c.resume) = (8, true)
        _ = try EpisodicTrainingRun(c).run()
        // As if killed between the checkpoint's rename and the sidecar's: the sidecar describes episode 4.
        try old.write(to: URL(fileURLWithPath: side))
        XCTAssertThrowsError(try SavedEpisodicSettings(contentsOf: side)) { error in
            let m = (error as? MMLError)?.message ?? "\(error)"
            XCTAssertTrue(m.contains("`config` \(side) does not describe the checkpoint beside it")
                          || m.contains("config \(side) does not describe the checkpoint beside it"), m)
            XCTAssertTrue(m.contains("step 4") && m.contains("step 8"), m)
        }
        // The checkpoint itself gives the settings; the repaired sidecar the same.
        let fromCheckpoint = try SavedEpisodicSettings(contentsOf: first.last)
        XCTAssertEqual(fromCheckpoint.training, c.training)
        XCTAssertEqual(try Checkpoint.repairSidecar(of: first.last), .rewritten)
        XCTAssertEqual(try SavedEpisodicSettings(contentsOf: side), fromCheckpoint)
        XCTAssertEqual(try Checkpoint.repairSidecar(of: first.last), .agrees)
        // An earlier version's sidecar (no `checkpoint` key) that agrees is read; a repair brings it up to date.
        let meta = try Safetensors.metadata(at: first.last)
        try Data(("{\"model\":" + meta[Checkpoint.modelKey]! + ",\"state\":" + meta[Checkpoint.stateKey]! + "}\n").utf8)
            .write(to: URL(fileURLWithPath: side))
        XCTAssertEqual(try SavedEpisodicSettings(contentsOf: side), fromCheckpoint)
        XCTAssertEqual(try Checkpoint.repairSidecar(of: first.last), .rewritten)
        // A missing sidecar is rewritten by the next resume, which says so.
        try FileManager.default.removeItem(atPath: side)
        c.stopAfter = 10
        var notes: [String] = []
        _ = try EpisodicTrainingRun(c).run { if case .note(let n) = $0 { notes.append(n) } }
        XCTAssertTrue(notes.contains { $0.hasPrefix("rewrote \(side) from \(first.last)") }, "\(notes)")
        XCTAssertEqual(try Checkpoint.repairSidecar(of: first.last), .agrees)
    }

    /// A process id that is not running: a child that has exited and been reaped.
    func deadPID() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    func testTemporariesOfDeadWritersAreRemovedAndLiveOnesKept() throws {
        let dir = try makeTempDir(self, prefix: "mml-tmp")
        let dead = try deadPID()
        let mine = AtomicFile.temporaryPath(for: dir + "/last.safetensors")
        let name = URL(fileURLWithPath: mine).lastPathComponent
        XCTAssertTrue(name.hasPrefix(".last.safetensors.tmp-\(getpid())@"), mine)
        let hostAndRandom = name[name.index(after: name.firstIndex(of: "@")!)...]
        let names = [
            "deadOurs": ".last.safetensors.tmp-\(dead)@\(hostAndRandom)",
            "deadOld": "last.safetensors.tmp-\(dead)",  // Safetensors' former name
            "otherHost": ".last.json.tmp-\(dead)@some-other-host-77",
            "oldFresh": ".log.jsonl.tmp-0A1B2C3D-0000-4000-8000-000000000000",
            "plain": "last.safetensors",
        ]
        for n in names.values { FileManager.default.createFile(atPath: dir + "/" + n, contents: Data([1])) }
        FileManager.default.createFile(atPath: mine, contents: Data([1]))
        let removed = Set(AtomicFile.removeStaleTemporaries(in: dir).map { URL(fileURLWithPath: $0).lastPathComponent })
        XCTAssertEqual(removed, [names["deadOurs"]!, names["deadOld"]!])
        for k in ["otherHost", "oldFresh", "plain"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + names[k]!), k)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: mine), "a live writer's temporary was removed")
        // Older than the age limit, the nameless ones (unknown writer) go too.
        let removedOld = AtomicFile.removeStaleTemporaries(in: dir, olderThan: -1).map {
            URL(fileURLWithPath: $0).lastPathComponent
        }
        XCTAssertEqual(Set(removedOld), [names["otherHost"]!, names["oldFresh"]!])
    }

    func testOutputsAreCheckedBeforeWork() throws {
        let dir = try makeTempDir(self, prefix: "mml-outcheck")
        let file = dir + "/plain-file"
        FileManager.default.createFile(atPath: file, contents: Data([1]))
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return (error as? MMLError)?.message ?? "\(error)" }
        }
        var m = message { try OutputCheck.prepare(directory: file + "/run") }
        XCTAssertEqual(m, "out \(file + "/run") cannot be created: \(file) is a file, not a directory; give a path under "
                       + "a directory")
        m = message { try OutputCheck.prepare(directory: file) }
        XCTAssertEqual(m, "out \(file) is a file, not a directory; give a directory path")
        if FileManager.default.fileExists(atPath: "/proc/self") {
            m = message { try OutputCheck.prepare(directory: "/proc/mml-output-check") }
            XCTAssertTrue(m.hasPrefix("out /proc/mml-output-check cannot be created: mkdir /proc/mml-output-check failed ("), m)
        }
        if FileManager.default.fileExists(atPath: "/sys/kernel") {
            m = message { try OutputCheck.prepare(directory: "/sys/kernel") }
            XCTAssertTrue(m.hasPrefix("out /sys/kernel cannot hold the outputs: cannot create a file in its directory"), m)
        }
        m = message { try OutputCheck.prepare(file: dir, field: "report") }
        XCTAssertEqual(m, "report \(dir) is a directory; give a file path")
        // A full disk, through the free-space figure the check takes.
        let saved = OutputCheck.freeBytes
        defer { OutputCheck.freeBytes = saved }
        OutputCheck.freeBytes = { _ in 1_000 }
        m = message { try OutputCheck.prepare(directory: dir + "/ok", bytesNeeded: 5_000_000, what: "checkpoints") }
        XCTAssertEqual(m, "out \(dir)/ok has 0.0 MB free, the checkpoints need about 5.0 MB; free some space or "
                       + "choose another out on a disk with room")
        // A training run meets it before its first episode: no event of training, nothing written.
        var events: [String] = []
        m = message { _ = try EpisodicTrainingRun(tinyRun(out: dir + "/full")).run { events.append("\($0)") } }
        XCTAssertTrue(m.hasPrefix("out \(dir)/full has 0.0 MB free, the checkpoints need about "), m)
        XCTAssertEqual(events, [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/full"), [])
        OutputCheck.freeBytes = saved
        // A file as the parent of `out`: the same before any work.
        m = message { _ = try EpisodicTrainingRun(tinyRun(out: file + "/run")).run { events.append("\($0)") } }
        XCTAssertTrue(m.contains("\(file) is a file, not a directory"), m)
        XCTAssertEqual(events, [])
        // The room needed for Adam: weights and two moments for `last`, the weights for `best`.
        XCTAssertEqual(OutputCheck.checkpointBytes(parameters: 1000, moments: 2), 12_000 + (1 << 20))
    }
}
