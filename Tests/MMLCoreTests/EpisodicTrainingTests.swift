import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// The episodic trainer: a tiny run learns, a resumed run equals the uninterrupted one bit for bit, checkpoints
/// round-trip, and the optimiser state survives export / import.
final class EpisodicTrainingTests: XCTestCase {
    func tinyModelConfiguration(levels: Set<MetricLevel> = Set(MetricLevel.allCases), size: Int = 20,
                                fusion: FusionKind = .learned) -> ModelConfiguration {
        ModelConfiguration(kind: "episodic", backbone: .conv64F, inputChannels: 3, widths: [8, 8, 8, 8], seed: 5,
                           image: ImageConfig(size: size, channels: 3, mean: [0.5], std: [0.25]),
                           metric: MetricConfiguration(levels: levels, fusion: fusion))
    }

    struct Setup {
        let model: FewShotModel
        let train: (loader: EpisodeLoader, sampler: EpisodeSampler)
        let val: (loader: EpisodeLoader, sampler: EpisodeSampler)
        let test: (loader: EpisodeLoader, sampler: EpisodeSampler)
    }

    func setup(_ config: ModelConfiguration, training t: EpisodicTrainingConfiguration, model: FewShotModel? = nil,
               imagesPerClass: Int = 12) throws -> Setup {
        let opts = SyntheticDataset.Options(seed: 0, imagesPerClass: imagesPerClass, size: config.image.size, channels: 3)
        func part(_ split: String, way: Int, shot: Int, query: Int, seed: UInt64) throws -> (EpisodeLoader, EpisodeSampler) {
            let ds = try SyntheticDataset(options: opts, split: split)
            return (try EpisodeLoader(dataset: ds, config: config.image),
                    try EpisodeSampler(dataset: ds, way: way, shot: shot, query: query, seed: seed))
        }
        return Setup(model: try model ?? FewShotModel(config, threads: 1),
                     train: try part("train", way: t.way, shot: t.shot, query: t.query, seed: t.seed),
                     val: try part("val", way: t.way, shot: t.shot, query: 3, seed: t.validationSeed),
                     test: try part("test", way: 5, shot: 1, query: 5, seed: 9))
    }

    func parameters(_ m: FewShotModel) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: m.namedParameters().map { ($0.name, $0.parameter.value.data) })
    }

    func testResumedRunEqualsUninterruptedRun() throws {
        let t = EpisodicTrainingConfiguration(way: 3, shot: 1, query: 2, episodesPerEpoch: 6, epochs: 2,
                                              episodesPerStep: 2, freezeBatchNormAfterEpochs: 1, seed: 7,
                                              validationEpisodes: 2, checkpointEvery: 4, logEvery: 2)
        let config = tinyModelConfiguration()
        // Uninterrupted.
        let dirA = try makeTempDir(self, prefix: "mml-runA")
        let a = try setup(config, training: t)
        let ta = try EpisodicTrainer(model: a.model, configuration: t, train: a.train, validation: a.val, directory: dirA)
        try ta.run()
        // Interrupted after 4 episodes (mid-epoch), then resumed from last.safetensors in a fresh model and trainer.
        let dirB = try makeTempDir(self, prefix: "mml-runB")
        let b = try setup(config, training: t)
        let tb = try EpisodicTrainer(model: b.model, configuration: t, train: b.train, validation: b.val, directory: dirB)
        try tb.run(stopAfter: 4)
        XCTAssertEqual(tb.state.episodesDone, 4)
        let loaded = try Checkpoint.load(dirB + "/last.safetensors", threads: 1)
        XCTAssertFalse(loaded.extra.isEmpty, "the training checkpoint must hold the optimiser moments")
        let c = try setup(config, training: t, model: loaded.model)
        let tc = try EpisodicTrainer(model: c.model, configuration: t, train: c.train, validation: c.val, directory: dirB)
        try tc.restore(state: XCTUnwrap(loaded.state), optimizerTensors: loaded.extra)
        tc.truncateLog()
        try tc.run()
        XCTAssertEqual(tc.state.episodesDone, 12)
        XCTAssertEqual(tc.state.stepsDone, ta.state.stepsDone)
        let pa = parameters(a.model), pc = parameters(c.model)
        XCTAssertEqual(Set(pa.keys), Set(pc.keys))
        for (name, v) in pa { XCTAssertEqual(v, pc[name], "parameter \(name) differs after resume") }
        XCTAssertEqual(ta.state.validations.map(\.accuracy), tc.state.validations.map(\.accuracy))
        // The resumed log has no duplicated or missing lines.
        let logA = try String(contentsOfFile: dirA + "/log.jsonl", encoding: .utf8).split(separator: "\n")
        let logB = try String(contentsOfFile: dirB + "/log.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(logA.count, logB.count)
        // A run that had stopped must differ from one that never trained (the check can fail).
        let fresh = parameters(try FewShotModel(config, threads: 1))
        XCTAssertNotEqual(fresh["backbone.block1.conv.weight"], pa["backbone.block1.conv.weight"])
    }

    func testTinyTrainingLowersLossAndBeatsChance() throws {
        let t = EpisodicTrainingConfiguration(way: 5, shot: 1, query: 4, episodesPerEpoch: 60, epochs: 1,
                                              episodesPerStep: 1, seed: 3, validationEpisodes: 0, logEvery: 20)
        let config = tinyModelConfiguration(size: 24)
        let s = try setup(config, training: t, imagesPerClass: 20)
        let before = try evaluateModel(s.model, loader: s.test.loader, sampler: s.test.sampler, episodes: 30)
        let trainer = try EpisodicTrainer(model: s.model, configuration: t, train: s.train, validation: nil, directory: nil)
        var windows: [Double] = []
        trainer.onEvent = { if case .log(_, _, let loss, _, _, _) = $0 { windows.append(loss) } }
        try trainer.run()
        XCTAssertEqual(windows.count, 3)
        XCTAssertLessThan(windows.last!, windows.first! * 0.8, "loss windows \(windows)")
        let after = try evaluateModel(s.model, loader: s.test.loader, sampler: s.test.sampler, episodes: 30)
        XCTAssertGreaterThan(after.fused.mean, 0.2 + 0.25, "5-way chance is 20%; got \(after.fused.mean)")
        XCTAssertGreaterThan(after.fused.mean, before.fused.mean)
        XCTAssertEqual(Set(after.levels.keys), Set(MetricLevel.allCases))
    }

    func testCheckpointRoundTripAndErrors() throws {
        let dir = try makeTempDir(self, prefix: "mml-ckpt")
        let config = tinyModelConfiguration(levels: [.pixel, .distribution])
        let m = try FewShotModel(config, threads: 1)
        m.namedParameters().first { $0.name == "fusion.weight" }!.parameter.value.data = [0.25, 2]
        try Checkpoint.save(m, extra: [(name: "head.weight", tensor: Tensor(shape: [2], data: [1, 2]))],
                            state: "{\"x\":1}", to: dir + "/m.safetensors")
        let l = try Checkpoint.load(dir + "/m.safetensors", threads: 1)
        XCTAssertEqual(l.model.configuration, config)
        XCTAssertEqual(parameters(l.model), parameters(m))
        XCTAssertEqual(l.model.metric?.levels, [.pixel, .distribution])
        XCTAssertEqual(l.state, "{\"x\":1}")
        XCTAssertEqual(l.extra.map(\.name), ["head.weight"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/m.json"))
        // The fusion weights reach the metric in the loaded model's forward.
        let x = Tensor(shape: [2, 3, 20, 20], data: (0..<2400).map { Float(($0 * 37) % 101) / 101 })
        let (o1, _) = try m.forward(support: x, labels: [0, 1], query: x, way: 2, training: false)
        let (o2, _) = try l.model.forward(support: x, labels: [0, 1], query: x, way: 2, training: false)
        XCTAssertEqual(o1.logits.data, o2.logits.data)

        // A plain safetensors file is not an mml checkpoint.
        try Safetensors.write([(name: "w", tensor: Tensor(shape: [1], data: [1]))], to: dir + "/plain.safetensors")
        XCTAssertThrowsError(try Checkpoint.load(dir + "/plain.safetensors")) {
            XCTAssertTrue("\($0)".contains("without an mml model configuration"), "\($0)")
        }
        // --init from a different backbone says what differs.
        var other = config
        other.widths = [4, 4, 4, 4]
        try Checkpoint.save(try FewShotModel(other, threads: 1), to: dir + "/other.safetensors")
        XCTAssertThrowsError(try Checkpoint.loadBackbone(into: m, from: dir + "/other.safetensors")) {
            XCTAssertTrue("\($0)".contains("widths [4, 4, 4, 4]"), "\($0)")
        }
        // --init from a matching backbone copies exactly the backbone.
        let fresh = try FewShotModel(config, threads: 1)
        XCTAssertEqual(try Checkpoint.loadBackbone(into: fresh, from: dir + "/m.safetensors"),
                       m.backbone.namedParameters().count)
        XCTAssertEqual(fresh.backbone.namedParameters().map(\.parameter.value.data),
                       m.backbone.namedParameters().map(\.parameter.value.data))
        XCTAssertNotEqual(fresh.namedParameters().first { $0.name == "fusion.weight" }!.parameter.value.data, [0.25, 2])
        // A missing file.
        XCTAssertThrowsError(try Checkpoint.load(dir + "/nope.safetensors")) {
            XCTAssertEqual(($0 as? MMLError)?.kind, .fileNotFound)
        }
    }

    func testResumeRefusesADifferentConfiguration() throws {
        let t = EpisodicTrainingConfiguration(way: 3, shot: 1, query: 2, episodesPerEpoch: 4, epochs: 1,
                                              episodesPerStep: 2, validationEpisodes: 0)
        let config = tinyModelConfiguration()
        let s = try setup(config, training: t)
        let tr = try EpisodicTrainer(model: s.model, configuration: t, train: s.train, validation: nil, directory: nil)
        var other = t
        other.learningRate = 0.01
        let state = try EpisodicTrainingState(training: other).jsonString()
        XCTAssertThrowsError(try tr.restore(state: state, optimizerTensors: [])) {
            // Each differing setting is named with both values, fields in backquotes for the front end.
            XCTAssertTrue("\($0)".contains("different settings: learningRate 0.01 (checkpoint) vs 0.001 (now); "
                                          + "resume with the same options"), "\($0)")
            XCTAssertEqual(($0 as? MMLError)?.fields, ["resume", "learningRate", "out"])
        }
        XCTAssertThrowsError(try tr.restore(state: "{oops", optimizerTensors: [])) {
            XCTAssertTrue("\($0)".contains("training state cannot be read"), "\($0)")
        }
    }

    func testTrainingConfigurationErrors() {
        func message(_ c: EpisodicTrainingConfiguration) -> String {
            do { try c.validate(); return "" } catch { return "\(error)" }
        }
        func fields(_ c: EpisodicTrainingConfiguration) -> [String] {
            do { try c.validate(); return [] } catch { return (error as? MMLError)?.fields ?? [] }
        }
        // Messages name configuration fields (the CLI spells them as flags).
        XCTAssertTrue(message(.init(way: 1)).contains("way 1"))
        XCTAssertEqual(fields(.init(way: 1)), ["way"])
        XCTAssertTrue(message(.init(shot: 0)).contains("shot 0"))
        XCTAssertEqual(fields(.init(shot: 0)), ["shot"])
        XCTAssertThrowsError(try OptimizerKind.parse("rmsprop")) {
            XCTAssertEqual(($0 as? MMLError)?.message, "optimizer rmsprop: use adam or sgd")
            XCTAssertEqual(($0 as? MMLError)?.fields, ["optimizer"])
        }
        XCTAssertThrowsError(try ScheduleKind.parse("poly")) {
            XCTAssertTrue("\($0)".contains("schedule poly"), "\($0)")
            XCTAssertEqual(($0 as? MMLError)?.fields, ["schedule"])
        }
        XCTAssertEqual(fields(.init(learningRate: -1)), ["learningRate"])
        XCTAssertEqual(message(.init()), "")
        // The step schedule halves every 10 epochs (METHOD.md 2.5).
        let c = EpisodicTrainingConfiguration(episodesPerEpoch: 100)
        XCTAssertEqual(c.learningRate(afterEpisodes: 999), 1e-3)
        XCTAssertEqual(c.learningRate(afterEpisodes: 1000), 5e-4)
        XCTAssertEqual(c.learningRate(afterEpisodes: 2500), 2.5e-4)
    }

    func testOptimizerStateExportImportContinuesIdentically() throws {
        for makeOpt in [{ try Adam(learningRate: 0.01, beta1: 0.5, beta2: 0.9) as any Optimizer },
                        { try SGD(learningRate: 0.01, momentum: 0.9) as any Optimizer }] {
            let cfg = tinyModelConfiguration(levels: [.pixel])
            let m1 = try FewShotModel(cfg, threads: 1), m2 = try FewShotModel(cfg, threads: 1)
            let o1 = try makeOpt(), o2 = try makeOpt()
            func fakeGrad(_ m: FewShotModel, _ step: Int) {
                for (i, (_, p)) in m.namedParameters().enumerated() where p.isTrainable {
                    for j in 0..<p.grad.count { p.grad.data[j] = sin(Float(i * 31 + j * 7 + step)) }
                }
            }
            for step in 0..<3 { fakeGrad(m1, step); o1.step(m1) }
            // m2 takes m1's weights and o1's state, then both continue.
            for (a, b) in zip(m1.namedParameters(), m2.namedParameters()) { b.parameter.value = a.parameter.value }
            try o2.importState(o1.exportState())
            for step in 3..<5 { fakeGrad(m1, step); o1.step(m1); fakeGrad(m2, step); o2.step(m2) }
            XCTAssertEqual(parameters(m1), parameters(m2))
            XCTAssertThrowsError(try o2.importState([(name: "bogus.x", tensor: Tensor(shape: [1]))]))
        }
    }
}
