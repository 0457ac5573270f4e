import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// The evaluation runs called directly (`EvaluationRun`, `AblationRun`, `EpisodeScoringRun`): results, events in
/// order, configuration JSON round trips, and errors that name the field.
final class EvaluationRunTests: XCTestCase {
    let data = DatasetSource(path: "synthetic", syntheticSize: 20, syntheticImages: 12)

    /// A small untrained checkpoint of `kind` with `metric`.
    func saveModel(_ path: String, kind: String = "episodic",
                   metric: MetricConfiguration? = MetricConfiguration(partForm: .grid([2]))) throws -> FewShotModel {
        let config = ModelConfiguration(kind: kind, backbone: .conv64F, inputChannels: 1, widths: [8, 8, 8, 8],
                                        initialization: .kaiming, seed: 3, image: ImageConfig(size: 20, channels: 1),
                                        metric: metric)
        let model = try FewShotModel(config, threads: 1)
        try Checkpoint.save(model, to: path)
        return model
    }

    func fields(_ body: () throws -> Void) -> [String] {
        do { try body(); return [] } catch { return (error as? MMLError)?.fields ?? ["not an MMLError: \(error)"] }
    }

    func roundTrip<T: Codable & Equatable>(_ value: T) throws {
        XCTAssertEqual(try JSONDecoder().decode(T.self, from: JSONEncoder().encode(value)), value)
    }

    func testEvaluationRunMetricProtocolEventsAndResult() throws {
        let dir = try makeTempDir(self, prefix: "mml-evalrun")
        let model = try saveModel(dir + "/m.safetensors")
        let config = EvaluationRunConfiguration(checkpoint: dir + "/m.safetensors", dataset: data, ways: [2, 3],
                                                shots: [1], query: 3, episodes: 4, seed: 7, threads: 1)
        try roundTrip(config)
        var log: [String] = []
        let result = try EvaluationRun(config).run { event in
            switch event {
            case .started(let run, let facts): log.append("started \(run) " + facts.map(\.key).joined(separator: ","))
            case .progress(let phase, let done, let total): log.append("\(phase) \(done)/\(total)")
            case .evaluated(let s): log.append("evaluated \(s.way)-way")
            default: log.append("other \(event)")
            }
        }
        let episodes = (1...4).map { "episodes \($0)/4" }
        XCTAssertEqual(log, ["started evaluation checkpoint,data,protocol"] + episodes + ["evaluated 2-way"] + episodes
                       + ["evaluated 3-way"])
        XCTAssertEqual(result.evaluationProtocol, .metric)
        XCTAssertTrue(result.perLevel)
        XCTAssertEqual(result.split, "test")
        XCTAssertEqual(result.model, model.configuration)
        XCTAssertNil(result.cosineClassifier)
        let given = try EvaluationRun(config, checkpoint: Checkpoint.load(dir + "/m.safetensors", threads: 1)).run()
        XCTAssertEqual(given.results.map(\.accuracy), result.results.map(\.accuracy))
        // The same numbers as the evaluator on the same episodes.
        let ds = try data.with(split: "test").open(image: model.configuration.image)
        let loader = try EpisodeLoader(dataset: ds, config: model.configuration.image.forEvaluation)
        for (s, way) in zip(result.results, [2, 3]) {
            let sampler = try EpisodeSampler(dataset: ds, way: way, shot: 1, query: 3, seed: 7)
            let r = try evaluateModel(model, loader: loader, sampler: sampler, episodes: 4)
            XCTAssertEqual(s.accuracy, .init(r.fused))
            XCTAssertEqual(s.fused, .init(r.fused))
            XCTAssertEqual(s.orderedLevels.map(\.level), [.pixel, .part, .distribution])
            XCTAssertEqual(s.levels?["part"], .init(r.levels[.part]!))
        }
        // The report's keys (mml eval --json).
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.jsonText().utf8)) as? [String: Any])
        XCTAssertEqual(Set(obj.keys), ["checkpoint", "dataset", "split", "model", "protocol", "per_level", "results",
                                       "kernels"])
        XCTAssertEqual(obj["kernels"] as? [String], [BLASRuntime.kernelISA])
        let first = try XCTUnwrap((obj["results"] as? [[String: Any]])?.first)
        XCTAssertEqual(Set(first.keys), ["way", "shot", "query", "episodes", "seed", "protocol", "accuracy", "fused",
                                         "levels", "seconds", "episodes_per_second"])
        XCTAssertEqual(Set((first["accuracy"] as? [String: Any])?.keys ?? [:].keys), ["mean", "ci95", "std", "episodes"])
    }

    func testEvaluationRunFrozenProtocolsAndErrors() throws {
        let dir = try makeTempDir(self, prefix: "mml-evalrun")
        let path = dir + "/pre.safetensors"
        _ = try saveModel(path, kind: "pretrained", metric: nil)
        var config = EvaluationRunConfiguration(checkpoint: path, dataset: data, ways: [2], shots: [1], query: 3,
                                                episodes: 3, threads: 1)
        let proto = try EvaluationRun(config).run()
        XCTAssertEqual(proto.evaluationProtocol, .prototype)
        XCTAssertFalse(proto.perLevel)
        XCTAssertNil(proto.results[0].levels)
        config.cosineClassifier.passes = 2
        XCTAssertEqual(fields { _ = try EvaluationRun(config).run() },
                       ["cosineClassifier.passes", "evaluationProtocol", "evaluationProtocol"])
        config.evaluationProtocol = .cosineClassifier
        try roundTrip(config)
        let cc = try EvaluationRun(config).run()
        XCTAssertEqual(cc.cosineClassifier?.passes, 2)
        XCTAssertEqual(cc.cosineClassifier?.seed, CosineClassifierSettings.derivedSeed(episodeSeed: 0))
        XCTAssertEqual(cc.results[0].episodes, 3)
        config.evaluationProtocol = .metric
        XCTAssertEqual(fields { _ = try EvaluationRun(config).run() }, ["evaluationProtocol", "evaluationProtocol"])
        XCTAssertEqual(fields { _ = try EvaluationProtocol.parse("knn") }, ["evaluationProtocol"])
        XCTAssertEqual(try EvaluationProtocol.parse("cosine-classifier"), .cosineClassifier)
        config.evaluationProtocol = .cosineClassifier
        config.cosineClassifier.passes = 0
        XCTAssertEqual(fields { _ = try EvaluationRun(config).run() }, ["cosineClassifier.passes"])
        config.cosineClassifier.passes = nil
        config.ways = [2, 0]
        XCTAssertEqual(fields { _ = try EvaluationRun(config) }, ["ways"])
        // Episodes the split cannot give: the advice names the evaluation's own fields (lists of ways and shots),
        // and no `dropSmallClasses`, which an evaluation does not have. The test split has 20 classes of 12 images.
        config.evaluationProtocol = nil
        config.ways = [21]
        XCTAssertEqual(fields { _ = try EvaluationRun(config).run() }, ["ways"])
        config.ways = [2]
        config.query = 12
        XCTAssertEqual(fields { _ = try EvaluationRun(config).run() }, ["shots", "query"])
        config.query = 3
        config.ways = [2]
        config.episodes = 0
        XCTAssertEqual(fields { _ = try EvaluationRun(config) }, ["episodes"])
    }

    func testAblationRunRefitEventsFilesAndResult() throws {
        let dir = try makeTempDir(self, prefix: "mml-ablrun")
        _ = try saveModel(dir + "/m.safetensors")
        let config = AblationRunConfiguration(checkpoint: dir + "/m.safetensors", dataset: data, refitEpisodes: 3,
                                              way: 2, shot: 1, query: 3, episodes: 4, seed: 2, out: dir + "/abl",
                                              threads: 1)
        try roundTrip(config)
        var log: [String] = []
        let result = try AblationRun(config).run { event in
            switch event {
            case .progress(let phase, let done, let total): log.append("\(phase) \(done)/\(total)")
            case .wrote(let path, _): log.append("wrote " + URL(fileURLWithPath: path).lastPathComponent)
            default: log.append("other \(event)")
            }
        }
        XCTAssertEqual(log, (1...4).map { "test episodes \($0)/4" } + (1...3).map { "refit episodes \($0)/3" }
                       + ["wrote episodes.jsonl", "wrote ablation.md", "wrote ablation.json", "wrote ablation.svg"])
        XCTAssertEqual(result.rows.map(\.name), ["pixel+part+distribution", "pixel+part", "pixel+distribution",
                                                 "part+distribution", "pixel", "part", "distribution",
                                                 "all (trained fusion)"])
        XCTAssertEqual(result.rows[0].differenceToFull.mean, 0)
        XCTAssertTrue(result.rows.allSatisfy { $0.perEpisode.count == 4 && $0.weights != nil })
        XCTAssertEqual(try String(contentsOfFile: dir + "/abl/ablation.md", encoding: .utf8), result.markdown)
        let back = try JSONDecoder().decode(AblationRunResult.self,
                                            from: Data(contentsOf: URL(fileURLWithPath: dir + "/abl/ablation.json")))
        XCTAssertEqual(back.rows.map(\.perEpisode), result.rows.map(\.perEpisode))
        XCTAssertEqual(back.rows.map(\.accuracy), result.rows.map(\.accuracy))
        XCTAssertEqual(back.markdown, result.markdown)
        XCTAssertTrue(result.mode.contains("fusion re-fitted per subset on 3 val episodes"), result.mode)
        // Too many queries for the split's 12 images per class: the ablation's fields, no `dropSmallClasses`.
        var big = config
        big.query = 12
        XCTAssertEqual(fields { _ = try AblationRun(big).run() }, ["shot", "query"])
    }

    /// Without a trainer, `retraining` trains each subset's model with `EpisodicTrainingRun`: its events arrive
    /// between the subset's start and end, each subset's checkpoint has exactly the subset's levels, and a second
    /// run reuses every finished model with identical per-episode results.
    func testAblationRunRetrainTrainsEachSubsetWithEpisodicTrainingRun() throws {
        let dir = try makeTempDir(self, prefix: "mml-ablretrain")
        let t = EpisodicTrainingConfiguration(way: 2, shot: 1, query: 2, episodesPerEpoch: 2, epochs: 1,
                                              episodesPerStep: 1, seed: 5, validationEpisodes: 1, checkpointEvery: 2,
                                              logEvery: 2)
        let template = EpisodicTrainingRunConfiguration(
            dataset: data, backbone: BackboneSettings(widths: [8, 8, 8, 8]),
            metric: MetricConfiguration(partForm: .grid([2]), way: 2), training: t, validationQuery: 2, threads: 1)
        let config = AblationRunConfiguration(dataset: data, way: 2, shot: 1, query: 2, episodes: 2, out: dir,
                                              threads: 1, retrain: true, retraining: template)
        var log: [String] = []
        let events: (RunEvent) -> Void = { event in
            switch event {
            case .ablationSubsetStarted(_, _, let reused): log.append(reused ? "reused" : "start")
            case .ablationSubsetTrained(_, let episodes, _): log.append("trained \(episodes)")
            case .training(.episode): if log.last != "episode" { log.append("episode") }
            default: break
            }
        }
        let first = try AblationRun(config).run(events: events)
        XCTAssertEqual(log, Array(repeating: ["start", "episode", "trained 2"], count: 7).flatMap { $0 })
        XCTAssertEqual(first.rows.count, 7)
        for subset in allLevelSubsets() {
            let best = dir + "/retrain-" + AblationRow.name(subset) + "/best.safetensors"
            XCTAssertEqual(try Checkpoint.load(best, threads: 1).model.configuration.metric?.levels, subset)
        }
        log = []
        let second = try AblationRun(config).run(events: events)
        XCTAssertEqual(log, Array(repeating: "reused", count: 7))
        XCTAssertEqual(second.rows.map(\.perEpisode), first.rows.map(\.perEpisode))
    }

    func testAblationRunRetrainUsesTheTrainerAndReusesFinishedRuns() throws {
        let dir = try makeTempDir(self, prefix: "mml-ablrun")
        var config = AblationRunConfiguration(dataset: data, way: 2, shot: 1, query: 3, episodes: 2, out: dir,
                                              threads: 1, retrain: true,
                                              retraining: EpisodicTrainingRunConfiguration(
                                                  dataset: data, metric: MetricConfiguration(partForm: .grid([2]))))
        var trained: [[MetricLevel]] = []
        let trainer: AblationRun.SubsetTrainer = { metric, directory, resume in
            XCTAssertFalse(resume)
            trained.append(metric.levels)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            _ = try self.saveModel(directory + "/best.safetensors", metric: metric)
            return (episodes: 5, seconds: 1)
        }
        var log: [String] = []
        let events: (RunEvent) -> Void = { event in
            switch event {
            case .ablationSubsetStarted(let levels, _, let reused): log.append("\(AblationRow.name(levels)) \(reused)")
            case .ablationSubsetTrained(let levels, let episodes, _): log.append("trained \(levels.count) \(episodes)")
            default: break
            }
        }
        let first = try AblationRun(config, trainer: trainer, naming: { "--" + $0 }).run(events: events)
        XCTAssertEqual(trained, allLevelSubsets())
        XCTAssertEqual(log.count, 14)
        XCTAssertEqual(Array(log.prefix(2)), ["pixel+part+distribution false", "trained 3 5"])
        XCTAssertEqual(first.mode, "one model per subset (--retrain)")
        XCTAssertEqual(first.rows.count, 7)
        log = []
        let second = try AblationRun(config, trainer: trainer).run(events: events)
        XCTAssertEqual(trained.count, 7, "finished runs are reused")
        XCTAssertEqual(log.last, "distribution true")
        XCTAssertEqual(second.rows.map(\.perEpisode), first.rows.map(\.perEpisode))
        XCTAssertEqual(second.mode, "one model per subset (retrain)")
        // Invalid configurations name their fields.
        var untrained = config
        untrained.retraining = nil
        XCTAssertEqual(fields { _ = try AblationRun(untrained) }, ["retrain", "retraining"])
        config.episodes = 0
        XCTAssertEqual(fields { _ = try AblationRun(config, trainer: trainer) }, ["episodes", "refitEpisodes"])
        XCTAssertEqual(fields { _ = try AblationRun(AblationRunConfiguration()) }, ["checkpoint", "retrain"])
        XCTAssertEqual(fields { _ = try FusionRefit.fit(levels: [.pixel], on: []) }, ["refitEpisodes"])
    }

    func testEpisodeScoringRunMatchesScoreEpisode() throws {
        let dir = try makeTempDir(self, prefix: "mml-scorerun")
        var rng = TestRNG(seed: 4)
        let s = rng.tensor([4, 6, 3, 3]), q = rng.tensor([3, 6, 3, 3])
        try NPY.write(s, to: dir + "/s.npy")
        try NPY.write(q, to: dir + "/q.npy")
        try NPY.write(ints: [7, 3, 7, 3], shape: [4], to: dir + "/sl.npy")
        try NPY.write(ints: [3, 7, 7], shape: [3], to: dir + "/ql.npy")
        let metric = MetricConfiguration(levels: [.pixel, .part], partForm: .grid([2]))
        let config = EpisodeScoringRunConfiguration(support: dir + "/s.npy", supportLabels: dir + "/sl.npy",
                                                    query: dir + "/q.npy", queryLabels: dir + "/ql.npy", way: 2,
                                                    metric: metric, out: dir + "/out.npy", threads: 1)
        try roundTrip(config)
        var wrote: [String] = []
        let r = try EpisodeScoringRun(config).run { if case .wrote(let p, _) = $0 { wrote.append(p) } }
        XCTAssertEqual(wrote, [dir + "/out.pixel.npy", dir + "/out.part.npy", dir + "/out.classes.npy", dir + "/out.npy"])
        var m = metric
        m.way = 2
        let ref = try scoreEpisode(metric: m.makeMetric(threads: 1), support: s, labels: [0, 1, 0, 1], query: q, way: 2,
                                   fusionStatistics: .episode)
        XCTAssertEqual(r.classes, [7, 3])
        XCTAssertEqual(r.levels, ["pixel", "part"])
        XCTAssertEqual(r.fused.flatMap { $0 }.map(Float.init), ref.fused.data)
        XCTAssertEqual(r.predictions, ref.predictions.map { [7, 3][$0] })
        XCTAssertEqual(r.accuracy?["fused"], try ref.accuracy(queryLabels: [1, 0, 0]).fused)
        XCTAssertEqual(try NPY.readTensor(dir + "/out.npy").data, ref.fused.data)
        // Invalid configurations name their fields.
        var bad = config
        bad.checkpoint = dir + "/m.safetensors"
        XCTAssertEqual(fields { _ = try EpisodeScoringRun(bad) }, ["metric", "checkpoint"])
        bad = config
        bad.way = 3
        XCTAssertEqual(fields { _ = try EpisodeScoringRun(bad).run() }, ["way"])
        bad.way = nil
        bad.metric?.pixelNeighbours = 0
        XCTAssertEqual(fields { _ = try EpisodeScoringRun(bad) }, ["pixelNeighbours"])
    }
}
