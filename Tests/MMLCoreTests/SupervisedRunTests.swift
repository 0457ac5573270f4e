import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// `PretrainingRun`, `EmbeddingTrainingRun` and `RetrievalEvaluationRun` called directly on tiny synthetic data:
/// results, events in order, configuration JSON round-trips and errors naming the field.
final class SupervisedRunTests: XCTestCase {
    /// 20 images per class: enough for the 5-way 5-shot 15-query evaluation episodes.
    let data = DatasetSource(path: "synthetic", syntheticSize: 20, syntheticImages: 20)
    let backbone = BackboneSettings(widths: [8, 8, 8, 8])

    func roundTrip<T: Codable & Equatable>(_ value: T) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        XCTAssertEqual(try JSONDecoder().decode(T.self, from: enc.encode(value)), value)
    }

    /// A short tag per event, to check their order.
    func tag(_ e: RunEvent) -> String {
        switch e {
        case .started(let run, _): return "started:" + run
        case .progress: return "progress"
        case .training: return "training"
        case .wrote(_, let what): return "wrote:" + what
        case .warning: return "warning"
        case .note: return "note"
        case .evaluated, .ablationSubsetStarted, .ablationSubsetTrained: return "evaluation"
        case .supervised(let s):
            switch s {
            case .batch: return "batch"
            case .epoch: return "epoch"
            case .checkpoints: return "checkpoints"
            case .test(_, let shot, _, _, _, _): return "test\(shot)"
            case .iteration(let it, _, _, _, _, _, _): return "iteration\(it)"
            case .retrieval: return "retrieval"
            case .fewShot(let shot, _, _): return "fewShot\(shot)"
            }
        }
    }

    func testPretrainingRun() throws {
        let dir = try makeTempDir(self, prefix: "mml-pretrain-run")
        let config = PretrainingRunConfiguration(dataset: data, backbone: backbone, loss: .negCosine, margin: -0.05,
                                                 epochs: 2, batchSize: 16, maxBatches: 2, validationEpisodes: 2,
                                                 testEpisodes: 2, testProtocols: [.prototype], seed: 3, threads: 1,
                                                 logEvery: 1, out: dir)
        try roundTrip(config)
        var tags: [String] = []
        var facts: [String: String] = [:]
        let result = try PretrainingRun(config).run { e in
            tags.append(self.tag(e))
            if case .started(_, let f) = e { facts = Dictionary(f, uniquingKeysWith: { a, _ in a }) }
        }
        XCTAssertEqual(tags, ["started:pretrain", "batch", "batch", "epoch", "batch", "batch", "epoch", "checkpoints",
                              "test1", "test5"])
        XCTAssertEqual(facts["backbone"], "conv4")
        XCTAssertEqual(facts["image"], "20x20x3")
        XCTAssertEqual(facts["batches"], "2")
        XCTAssertEqual(result.epochs.map(\.epoch), [1, 2])
        XCTAssertNotNil(result.epochs[0].validation)
        XCTAssertEqual(result.best, dir + "/best.safetensors")
        XCTAssertEqual(result.testedCheckpoint, result.best)
        XCTAssertEqual(result.tests.map(\.shot), [1, 5])
        for file in ["backbone.safetensors", "best.safetensors", "log.jsonl"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + file), file)
        }
        let saved = try Checkpoint.load(dir + "/backbone.safetensors", threads: 1)
        XCTAssertEqual(saved.model.configuration.kind, "pretrained")
        XCTAssertEqual(saved.model.configuration.widths, [8, 8, 8, 8])
        XCTAssertEqual(saved.extra.map(\.name), ["head.weight"])
        // The log has one record per epoch and one for the test.
        let lines = try String(contentsOfFile: dir + "/log.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        let epoch = try JSONDecoder().decode(PretrainingEpochLogRecord.self, from: Data(lines[1].utf8))
        XCTAssertEqual(epoch.epoch, 2)
        XCTAssertEqual(epoch.validationAccuracy, result.epochs[1].validation?.mean)
        XCTAssertEqual(epoch.lr, Double(result.epochs[1].learningRate))
        let test = try JSONDecoder().decode(PretrainingTestLogRecord.self, from: Data(lines[2].utf8))
        XCTAssertEqual(test.checkpoint, dir + "/best.safetensors")
        XCTAssertEqual(Set(test.scores.keys), ["prototype_5way_1shot", "prototype_5way_1shot_ci95",
                                               "prototype_5way_5shot", "prototype_5way_5shot_ci95"])
        XCTAssertEqual(test.scores["prototype_5way_5shot"], result.tests[1].summary.mean)
    }

    func testPretrainingConfigurationErrorsNameTheField() {
        func fields(_ change: (inout PretrainingRunConfiguration) -> Void) -> [String] {
            var c = PretrainingRunConfiguration(dataset: data, out: "/tmp/unused")
            change(&c)
            do { _ = try PretrainingRun(c); return [] } catch { return (error as? MMLError)?.fields ?? ["?"] }
        }
        XCTAssertEqual(fields { _ in }, [])
        XCTAssertEqual(fields { $0.epochs = 0 }, ["epochs"])
        XCTAssertEqual(fields { $0.batchSize = 0 }, ["batchSize"])
        XCTAssertEqual(fields { $0.learningRate = .nan }, ["learningRate"])
        XCTAssertEqual(fields { $0.epochs = 2; $0.warmupEpochs = 2 }, ["warmupEpochs", "epochs"])
        XCTAssertEqual(fields { $0.loss = .cosine; $0.margin = 0.1 }, ["margin", "loss", "loss", "margin"])
        XCTAssertEqual(fields { $0.validationEpisodes = 0 }, ["validationEpisodes"])
        XCTAssertEqual(fields { $0.validationSplit = nil; $0.validationEpisodes = 0 }, [])
        XCTAssertEqual(fields { $0.testEpisodes = -1 }, ["testEpisodes"])
        XCTAssertThrowsError(try PretrainingRunConfiguration.parseProtocols("prototype,knn")) {
            XCTAssertEqual(($0 as? MMLError)?.fields, ["testProtocols"])
            XCTAssertTrue("\($0)".contains("'knn' is unknown"), "\($0)")
        }
        XCTAssertEqual(try PretrainingRunConfiguration.parseProtocols("cosine-classifier"), [.cosineClassifier])
        XCTAssertThrowsError(try OptimizerKind.parseSupervised("rmsprop")) {
            XCTAssertEqual(($0 as? MMLError)?.message, "optimizer 'rmsprop' is unknown; use sgd or adam")
        }
    }

    func testEmbeddingTrainingRunAndEvalOnly() throws {
        let dir = try makeTempDir(self, prefix: "mml-embedding-run")
        var config = EmbeddingTrainingRunConfiguration(
            dataset: data, backbone: backbone,
            loss: EmbeddingLossConfiguration(loss: .margin, positives: .easy, negatives: .semiHard, margin: 0.2),
            dim: 8, classesPerBatch: 4, imagesPerClass: 2, iterations: 3, evalEpisodes: 2, seed: 4, threads: 1,
            logEvery: 2, out: dir)
        try roundTrip(config)
        var tags: [String] = []
        let trained = try EmbeddingTrainingRun(config).run { tags.append(self.tag($0)) }
        XCTAssertEqual(tags, ["started:train-embedding", "iteration2", "iteration3", "wrote:embedding", "retrieval",
                              "fewShot1", "fewShot5"])
        XCTAssertEqual(trained.checkpoint, dir + "/embedding.safetensors")
        let e = trained.evaluation
        XCTAssertEqual(e.split, "test")
        XCTAssertEqual(e.classes, 20)
        XCTAssertEqual(e.metrics.queries, 20 * 20)
        XCTAssertEqual(Set(e.fewShot.keys), [1, 5])
        // The result encodes flat, with the keys of the CLI's `result` line, and decodes back.
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let json = try enc.encode(e)
        let keys = try XCTUnwrap(JSONSerialization.jsonObject(with: json) as? [String: Any]).keys
        XCTAssertEqual(Set(keys), ["split", "classes", "queries", "r_precision", "map_at_r", "recall_at_1",
                                   "recall_at_2", "recall_at_4", "recall_at_8", "fewshot_5way_1shot",
                                   "fewshot_5way_1shot_ci95", "fewshot_5way_5shot", "fewshot_5way_5shot_ci95"])
        XCTAssertEqual(try JSONDecoder().decode(RetrievalEvaluationRunResult.self, from: json), e)
        // evalOnly on the saved embedding, and the retrieval run on its own, reproduce the evaluation exactly.
        // (the training settings back to their defaults: they cannot apply to a saved embedding)
        config = EmbeddingTrainingRunConfiguration(dataset: config.dataset, evalSplit: config.evalSplit,
                                                   evalEpisodes: config.evalEpisodes,
                                                   evalOnly: dir + "/embedding.safetensors", seed: config.seed,
                                                   threads: config.threads, out: nil)
        tags = []
        let again = try EmbeddingTrainingRun(config).run { tags.append(self.tag($0)) }
        XCTAssertEqual(tags, ["retrieval", "fewShot1", "fewShot5"])
        XCTAssertNil(again.checkpoint)
        XCTAssertEqual(again.evaluation, e)
        var retrieval = config.evaluation
        retrieval.checkpoint = dir + "/embedding.safetensors"
        try roundTrip(retrieval)
        XCTAssertEqual(try RetrievalEvaluationRun(retrieval).run(), e)
    }

    func testEmbeddingConfigurationErrorsNameTheField() throws {
        func fields(_ change: (inout EmbeddingTrainingRunConfiguration) -> Void) -> [String] {
            var c = EmbeddingTrainingRunConfiguration(dataset: data, out: "/tmp/unused")
            change(&c)
            do { _ = try EmbeddingTrainingRun(c); return [] } catch { return (error as? MMLError)?.fields ?? ["?"] }
        }
        XCTAssertEqual(fields { _ in }, [])
        XCTAssertEqual(fields { $0.out = nil }, ["out", "evalOnly"])
        XCTAssertEqual(fields { $0.iterations = 0 }, ["iterations"])
        XCTAssertEqual(fields { $0.dim = -1 }, ["dim"])
        XCTAssertEqual(fields { $0.classesPerBatch = 1 }, ["classesPerBatch", "imagesPerClass"])
        XCTAssertEqual(fields { $0.learningRate = 0 }, ["learningRate"])
        XCTAssertEqual(fields { $0.evalOnly = "x"; $0.out = nil }, [], "evalOnly does not train")
        // a training setting cannot apply to evaluating a saved embedding
        XCTAssertEqual(fields { $0.evalOnly = "x"; $0.out = nil; $0.iterations = 0 }, ["iterations", "evalOnly", "evalOnly"])
        XCTAssertThrowsError(try RetrievalEvaluationRun(.init(dataset: data, fewShotEpisodes: -1))) {
            XCTAssertEqual(($0 as? MMLError)?.fields, ["fewShotEpisodes"])
        }
        XCTAssertThrowsError(try RetrievalEvaluationRun(.init(dataset: data)).run()) {
            XCTAssertEqual(($0 as? MMLError)?.fields, ["checkpoint"])
        }
        // A checkpoint of another kind is refused, naming the field that gave it.
        let dir = try makeTempDir(self, prefix: "mml-embedding-run")
        let model = try FewShotModel(try backbone.modelConfiguration(kind: "pretrained", dataset: data,
                                                                     image: ImageSettings(),
                                                                     defaults: .supervised(seed: 0)), threads: 1)
        try Checkpoint.save(model, to: dir + "/p.safetensors")
        var c = EmbeddingTrainingRunConfiguration(dataset: data, evalOnly: dir + "/p.safetensors", out: nil)
        c.threads = 1
        XCTAssertThrowsError(try EmbeddingTrainingRun(c).run()) {
            XCTAssertEqual(($0 as? MMLError)?.fields, ["evalOnly"])
            XCTAssertTrue("\($0)".contains("is a 'pretrained' checkpoint"), "\($0)")
        }
    }
}
