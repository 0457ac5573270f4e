import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// `EpisodicTrainingRun` called directly on tiny synthetic data: events in order, the result, resume refusing other
/// settings with each difference named, a run started from a checkpoint's sidecar reproducing the original bit for
/// bit, configuration JSON round-trip and errors naming the field.
final class EpisodicTrainingRunTests: XCTestCase {
    func tinyRun(out: String) -> EpisodicTrainingRunConfiguration {
        let t = EpisodicTrainingConfiguration(way: 3, shot: 1, query: 2, episodesPerEpoch: 4, epochs: 2,
                                              episodesPerStep: 2, seed: 7, validationEpisodes: 2, checkpointEvery: 2,
                                              logEvery: 2)
        return EpisodicTrainingRunConfiguration(
            dataset: DatasetSource(path: "synthetic", syntheticSize: 20, syntheticImages: 12),
            backbone: BackboneSettings(widths: [8, 8, 8, 8]), metric: MetricConfiguration(way: 3), training: t,
            validationQuery: 2, out: out, threads: 1)
    }

    func weights(_ path: String) throws -> [String: [Float]] {
        let m = try Checkpoint.load(path, threads: 1).model
        return Dictionary(uniqueKeysWithValues: m.namedParameters().map { ($0.name, $0.parameter.value.data) })
    }

    func testRunEventsResultAndRoundTrip() throws {
        let dir = try makeTempDir(self, prefix: "mml-episodic-run")
        let config = tinyRun(out: dir + "/a")
        let enc = JSONEncoder()
        XCTAssertEqual(try JSONDecoder().decode(EpisodicTrainingRunConfiguration.self, from: enc.encode(config)), config)
        // The enums encode as the strings checkpoints always held.
        let training = String(decoding: try enc.encode(config.training), as: UTF8.self)
        XCTAssertTrue(training.contains("\"optimizer\":\"adam\"") && training.contains("\"schedule\":\"step\""), training)
        var tags: [String] = []
        var factKeys: [String] = []
        let result = try EpisodicTrainingRun(config).run { e in
            switch e {
            case .started(_, let facts): tags.append("started"); factKeys = facts.map(\.key)
            case .training(.begin(let episode, _)): tags.append("begin\(episode)")
            case .training(.episode(let i, _, _, _, _, _)): tags.append("e\(i)")
            case .training(.log(let episode, _, _, _, _, _)): tags.append("log\(episode)")
            case .training(.validation(let r, _)): tags.append("val\(r.epoch)")
            case .training(.checkpoint): break
            default: tags.append("other")
            }
        }
        XCTAssertEqual(tags, ["started", "begin0", "e0", "e1", "log2", "e2", "e3", "log4", "val1", "e4", "e5", "log6",
                              "e6", "e7", "log8", "val2"])
        XCTAssertEqual(factKeys, ["model", "episodes", "data"])
        XCTAssertEqual(result.state.episodesDone, 8)
        XCTAssertEqual(result.totalEpisodes, 8)
        XCTAssertEqual(result.state.validations.count, 2)
        XCTAssertNotNil(result.best)
        XCTAssertTrue(FileManager.default.fileExists(atPath: result.last))
        // The log's records decode as the Codable records that wrote them.
        let lines = try String(contentsOfFile: result.log, encoding: .utf8).split(separator: "\n")
        let train = try lines.filter { $0.contains("\"event\":\"train\"") }
            .map { try JSONDecoder().decode(EpisodicTrainLogRecord.self, from: Data($0.utf8)) }
        XCTAssertEqual(train.map(\.episode), [2, 4, 6, 8])
        let validations = try lines.filter { $0.contains("\"event\":\"validation\"") }
            .map { try JSONDecoder().decode(EpisodicValidationLogRecord.self, from: Data($0.utf8)) }
        XCTAssertEqual(validations.map(\.accuracy), result.state.validations.map(\.accuracy))
        XCTAssertEqual(validations.first?.levels, result.state.validations.first?.levels)
        // Starting again in the same directory without resume is refused, naming the fields.
        XCTAssertThrowsError(try EpisodicTrainingRun(config).run()) {
            XCTAssertEqual(($0 as? MMLError)?.fields, ["resume", "out"])
        }
    }

    func testResumeNamesEachDifferingSetting() throws {
        let dir = try makeTempDir(self, prefix: "mml-episodic-run")
        var config = tinyRun(out: dir)
        config.stopAfter = 4
        _ = try EpisodicTrainingRun(config).run()
        config.resume = true
        config.stopAfter = nil
        config.training.learningRate = 0.01
        config.training.optimizer = .sgd
        XCTAssertThrowsError(try EpisodicTrainingRun(config).run()) {
            let e = $0 as? MMLError
            XCTAssertEqual(e?.message, "resume: the checkpoint was trained with different settings: optimizer adam "
                           + "(checkpoint) vs sgd (now); learningRate 0.001 (checkpoint) vs 0.01 (now); resume with "
                           + "the same options or start a new out directory")
            XCTAssertEqual(e?.fields, ["resume", "optimizer", "learningRate", "out"])
        }
        // With the same settings it resumes.
        config.training = tinyRun(out: dir).training
        XCTAssertEqual(try EpisodicTrainingRun(config).run().state.episodesDone, 8)
    }

    func testSidecarSettingsReproduceTheRun() throws {
        let dir = try makeTempDir(self, prefix: "mml-episodic-run")
        let config = tinyRun(out: dir + "/a")
        _ = try EpisodicTrainingRun(config).run()
        let saved = try SavedEpisodicSettings(contentsOf: Checkpoint.sidecarPath(dir + "/a/last.safetensors"))
        XCTAssertEqual(saved.training, config.effectiveTraining)
        XCTAssertEqual(saved.metric, config.metric)
        XCTAssertEqual(saved.backbone.widths, [8, 8, 8, 8])
        var again = tinyRun(out: dir + "/b")
        (again.image, again.backbone, again.metric, again.training) = (saved.image, saved.backbone, saved.metric,
                                                                       saved.training)
        _ = try EpisodicTrainingRun(again).run()
        XCTAssertEqual(try weights(dir + "/b/last.safetensors"), try weights(dir + "/a/last.safetensors"))
        XCTAssertEqual(try weights(dir + "/b/best.safetensors"), try weights(dir + "/a/best.safetensors"))
        // A missing or foreign file names the field and the file.
        XCTAssertThrowsError(try SavedEpisodicSettings(contentsOf: dir + "/nope.json")) {
            XCTAssertEqual(($0 as? MMLError)?.kind, .fileNotFound)
            XCTAssertEqual(($0 as? MMLError)?.fields, ["config"])
            XCTAssertTrue("\($0)".contains(dir + "/nope.json"), "\($0)")
        }
        try "{\"model\": 1}".write(toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try SavedEpisodicSettings(contentsOf: dir + "/bad.json")) {
            XCTAssertTrue("\($0)".contains("is not the settings of an episodic training run"), "\($0)")
        }
    }

    func testInvalidConfigurationNamesTheField() {
        var c = tinyRun(out: "/tmp/unused")
        c.training.way = 1
        XCTAssertThrowsError(try EpisodicTrainingRun(c)) { XCTAssertEqual(($0 as? MMLError)?.fields, ["way"]) }
        c = tinyRun(out: "/tmp/unused")
        c.training.episodesPerStep = 0
        XCTAssertThrowsError(try EpisodicTrainingRun(c)) {
            XCTAssertEqual(($0 as? MMLError)?.fields, ["episodesPerStep"])
        }
        // validationSplit none turns validation off whatever validationEpisodes says.
        c = tinyRun(out: "/tmp/unused")
        c.validationSplit = "none"
        XCTAssertEqual(c.effectiveTraining.validationEpisodes, 0)
    }

    /// The memory check counts images as the run loads them: an Omniglot layout's 28 x 28 grey default (not 84 x 84
    /// x 3), and the `mml` augmentation's resize to 100/84 of the side, in episodic training and in pre-training.
    func testMemoryEstimateUsesTheImagesAsLoaded() throws {
        var c = tinyRun(out: "/tmp/unused")
        c.dataset = DatasetSource(path: "/nonexistent/omniglot", layout: .omniglotVinyals)
        c.validationSplit = "none"
        c.validationQuery = 15
        c.training.way = 1000
        c.training.query = 9000
        assertThrowsMessage(try c.validate(), contains: ["one training episode: 9001000 images of 1 x 28 x 28"])
        c = tinyRun(out: "/tmp/unused")
        c.validationSplit = "none"
        c.validationQuery = 15
        c.image = ImageSettings(size: 4096, augmentation: .mml)
        c.training.query = 1000
        assertThrowsMessage(try c.validate(), contains: ["images of 3 x 4876 x 4876"])
        let p = PretrainingRunConfiguration(dataset: DatasetSource(path: "synthetic"),
                                            image: ImageSettings(size: 4096, augmentation: .mml), batchSize: 100_000,
                                            out: "/tmp/unused")
        assertThrowsMessage(try p.validate(), contains: ["one batch: 100000 images of 3 x 4876 x 4876"])
    }

    /// Validation episodes that the validation split cannot give: the error names the validation split and the
    /// validation fields to lower (`--val-way` etc. on the command line), not the training ones.
    func testValidationSplitTooSmallNamesTheValidationFields() throws {
        let dir = try makeTempDir(self, prefix: "mml-episodic-val")
        var c = tinyRun(out: dir + "/a")
        c.validationWay = 17  // the synthetic val split has 16 classes; training stays 3-way
        XCTAssertThrowsError(try EpisodicTrainingRun(c).run()) { e in
            let err = e as? MMLError
            XCTAssertEqual(err?.kind, .datasetTooSmall)
            XCTAssertTrue(err?.message.hasPrefix("validation split 'val': ") == true, "\(e)")
            XCTAssertEqual(err?.fields, ["validationWay", "validationSplit", "validationSplit"], "\(e)")
            XCTAssertTrue(err?.message.contains("17-way episodes need 17") == true, "\(e)")
        }
        c = tinyRun(out: dir + "/b")
        c.validationQuery = 12  // 12 images per class: 1 shot + 12 queries do not fit
        XCTAssertThrowsError(try EpisodicTrainingRun(c).run()) { e in
            let err = e as? MMLError
            XCTAssertEqual(err?.kind, .datasetTooSmall)
            XCTAssertTrue(err?.fields.starts(with: ["validationShot", "validationQuery"]) == true, "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/a/last.safetensors"))
        // The training episodes too large: the training fields, and no `dropSmallClasses` (training has none).
        c = tinyRun(out: dir + "/c")
        c.training.way = 65  // the synthetic train split has 64 classes
        XCTAssertThrowsError(try EpisodicTrainingRun(c).run()) { e in
            XCTAssertEqual((e as? MMLError)?.fields, ["way"], "\(e)")
        }
        c = tinyRun(out: dir + "/d")
        c.training.query = 12
        XCTAssertThrowsError(try EpisodicTrainingRun(c).run()) { e in
            XCTAssertEqual((e as? MMLError)?.fields, ["shot", "query"], "\(e)")
        }
    }
}
