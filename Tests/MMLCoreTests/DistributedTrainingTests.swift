import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// N processes simulated by N threads of one process (an in-process `ProcessGroup`): the canonical reduction gives
/// the weights, optimiser moments and running statistics of one process, bit for bit, for N = 2, 3 and 6; the
/// exchange format round-trips; the split of a step is contiguous and complete; a bad N is refused.
final class DistributedTrainingTests: XCTestCase {
    /// `size` ranks in one process; `allGather` waits until every rank has given its bytes.
    final class ThreadGroupHub: @unchecked Sendable {
        let size: Int
        let condition = NSCondition()
        var round = 0
        var slots: [[UInt8]?]
        var result: [[UInt8]] = []
        var gathers = 0
        init(size: Int) { self.size = size; slots = Array(repeating: nil, count: size) }

        func gather(_ bytes: [UInt8], rank: Int) -> [[UInt8]] {
            condition.lock()
            defer { condition.unlock() }
            let myRound = round
            slots[rank] = bytes
            if slots.allSatisfy({ $0 != nil }) {
                result = slots.map { $0! }
                slots = Array(repeating: nil, count: size)
                round += 1
                gathers += 1
                condition.broadcast()
            } else {
                while round == myRound { condition.wait() }
            }
            return result
        }
    }

    final class ThreadGroup: ProcessGroup {
        let hub: ThreadGroupHub
        let rank: Int
        var size: Int { hub.size }
        init(hub: ThreadGroupHub, rank: Int) { self.hub = hub; self.rank = rank }
        func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] { hub.gather(bytes, rank: rank) }
        func barrier() throws { _ = hub.gather([], rank: rank) }
    }

    /// What each rank's thread ended with (written under `onRanks`'s lock).
    final class RankResults<T>: @unchecked Sendable {
        var values: [Result<T, Error>?]
        init(_ n: Int) { values = Array(repeating: nil, count: n) }
    }

    let modelConfiguration = ModelConfiguration(
        kind: "episodic", backbone: .conv64F, inputChannels: 3, widths: [8, 8, 8, 8], seed: 5,
        image: ImageConfig(size: 20, channels: 3, mean: [0.5], std: [0.25]), metric: MetricConfiguration())
    /// 2 epochs of 9 episodes, 6 per step: the first epoch ends inside step 2 (a chunk of 3), and BatchNorm freezes
    /// after the first epoch.
    let training = EpisodicTrainingConfiguration(way: 3, shot: 1, query: 2, episodesPerEpoch: 9, epochs: 2,
                                                 episodesPerStep: 6, freezeBatchNormAfterEpochs: 1, seed: 3,
                                                 validationEpisodes: 4, logEvery: 3)

    /// Trains with `group` (nil: one process); returns the trainer after its run.
    func train(group: (any ProcessGroup)?) throws -> EpisodicTrainer {
        let trainer = try makeTrainer(group: group)
        try trainer.run()
        return trainer
    }

    /// A trainer over the test's data with `group` (nil: one process), not yet run.
    func makeTrainer(group: (any ProcessGroup)?) throws -> EpisodicTrainer {
        let opts = SyntheticDataset.Options(seed: 0, imagesPerClass: 12, size: 20, channels: 3)
        func part(_ split: String, query: Int, seed: UInt64) throws -> (loader: EpisodeLoader, sampler: EpisodeSampler) {
            let ds = try SyntheticDataset(options: opts, split: split)
            return (try EpisodeLoader(dataset: ds, config: modelConfiguration.image),
                    try EpisodeSampler(dataset: ds, way: 3, shot: 1, query: query, seed: seed))
        }
        return try EpisodicTrainer(
            model: try FewShotModel(modelConfiguration, threads: 1), configuration: training,
            train: try part("train", query: 2, seed: training.seed),
            validation: try part("val", query: 2, seed: training.validationSeed), directory: nil,
            group: group ?? SingleProcessGroup())
    }

    func assertSame(_ a: EpisodicTrainer, _ b: EpisodicTrainer, _ what: String) {
        let pa = a.model.namedParameters(), pb = b.model.namedParameters()
        XCTAssertEqual(pa.map(\.name), pb.map(\.name))
        for (x, y) in zip(pa, pb) { assertBitwiseEqual(x.parameter.value.data, y.parameter.value.data, "\(what) \(x.name)") }
        let oa = a.optimizerState, ob = b.optimizerState
        XCTAssertEqual(oa.map(\.name), ob.map(\.name))
        XCTAssertFalse(oa.isEmpty)
        for (x, y) in zip(oa, ob) { assertBitwiseEqual(x.tensor.data, y.tensor.data, "\(what) optimizer \(x.name)") }
        var sa = a.state, sb = b.state
        sa.elapsedSeconds = 0; sb.elapsedSeconds = 0
        XCTAssertEqual(sa, sb, what)
    }

    func testThreadRanksGiveTheBitsOfOneProcess() throws {
        let one = try train(group: nil)
        XCTAssertEqual(one.state.stepsDone, 3)
        XCTAssertEqual(one.state.validations.count, 2)
        XCTAssertEqual(one.exchange.exchanges, 0)
        for n in [2, 3, 6] {
            let hub = ThreadGroupHub(size: n)
            let trainers = try Self.onRanks(n) { r in try self.train(group: ThreadGroup(hub: hub, rank: r)) }
            // Chunks 0..<6, 6..<9 | 9..<12 (step 2 is cut at the epoch's end), 12..<18, and 2 validations.
            XCTAssertEqual(hub.gathers, 4 + 2, "exchanges of \(n) ranks")
            for (r, t) in trainers.enumerated() {
                assertSame(one, t, "\(n) ranks, rank \(r)")
                XCTAssertGreaterThan(t.exchange.bytesGathered, 0)
            }
        }
    }

    /// Runs `body(rank)` on `n` threads at once (the ranks of a `ThreadGroupHub`); the results in rank order.
    static func onRanks<T>(_ n: Int, _ body: @escaping (Int) throws -> T) throws -> [T] {
        let box = RankResults<T>(n), lock = NSLock(), done = DispatchGroup()
        for r in 0..<n {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                let v = Result { try body(r) }
                lock.lock(); box.values[r] = v; lock.unlock()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 600), .success, "a rank waited forever")
        return try box.values.map { try XCTUnwrap($0).get() }
    }

    func testEveryRanksKernelPathIsRecorded() throws {
        let own = BLASRuntime.kernelISA
        for paths in [["avx2", "avx512", "avx2"], ["portable", "portable", "portable"]] {
            let hub = ThreadGroupHub(size: 3)
            let out = try Self.onRanks(3) { r -> (record: [String]?, warning: String?) in
                let t = try self.makeTrainer(group: ThreadGroup(hub: hub, rank: r))
                let w = try t.gatherKernelPaths(current: paths[r])
                return (t.state.kernelPaths, w)
            }
            XCTAssertEqual(hub.gathers, 1)
            var expected = [own]
            for p in paths where !expected.contains(p) { expected.append(p) }
            for (r, o) in out.enumerated() {
                XCTAssertEqual(o.record, expected, "\(paths) rank \(r)")
                if Set(paths).count > 1 {
                    let w = try XCTUnwrap(o.warning, "\(paths) rank \(r)")
                    XCTAssertTrue(w.contains("(rank 0 avx2, rank 1 avx512, rank 2 avx2)"), w)
                    XCTAssertTrue(w.contains("MML_KERNELS_ISA"), w)
                } else {
                    XCTAssertNil(o.warning, "\(paths) rank \(r)")
                }
            }
        }
        // One process: nothing exchanged, the record as it was.
        let single = try makeTrainer(group: nil)
        XCTAssertNil(try single.gatherKernelPaths(current: own == "avx2" ? "portable" : "avx2"))
        XCTAssertEqual(single.state.kernelPaths, [own])
    }

    func testShareIsContiguousAndComplete() {
        let hub = ThreadGroupHub(size: 3)
        for range in [0..<6, 10..<15, 4..<5, 7..<7] {
            let parts = (0..<3).map { ThreadGroup(hub: hub, rank: $0).share(of: range) }
            XCTAssertEqual(parts.flatMap { Array($0) }, Array(range))
            XCTAssertLessThanOrEqual(parts.map(\.count).max()! - parts.map(\.count).min()!, 1)
        }
    }

    func testProcessCountThatDoesNotDivideTheStepIsRefused() throws {
        XCTAssertThrowsError(try EpisodicTrainer.checkSplit(training, processes: 4)) { error in
            XCTAssertEqual((error as? MMLError)?.template,
                           "`episodesPerStep` 6 cannot be split evenly over 4 processes: run with a process count "
                           + "that divides it (1, 2, 3, 6) or set `episodesPerStep` to a multiple of 4")
        }
        XCTAssertNoThrow(try EpisodicTrainer.checkSplit(training, processes: 3))
    }
}
