import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// `PhaseProfile` (`mml train --profile`): measuring changes no result, every phase of the enabled levels is entered
/// the expected number of times, disabled levels and validation without a validation split never (so they have no
/// row), and the report's shares add up.
final class PhaseProfileTests: XCTestCase {
    func tinyRun(out: String, levels: [MetricLevel] = MetricLevel.allCases) -> EpisodicTrainingRunConfiguration {
        let t = EpisodicTrainingConfiguration(way: 3, shot: 1, query: 2, episodesPerEpoch: 4, epochs: 2,
                                              episodesPerStep: 2, seed: 5, validationEpisodes: 2, checkpointEvery: 4,
                                              logEvery: 2)
        var metric = MetricConfiguration(way: 3)
        metric.levels = levels
        return EpisodicTrainingRunConfiguration(
            dataset: DatasetSource(path: "synthetic", syntheticSize: 20, syntheticImages: 12),
            backbone: BackboneSettings(widths: [8, 8, 8, 8]), metric: metric, training: t,
            validationQuery: 2, out: out, threads: 1)
    }

    func tensors(_ path: String) throws -> [String: [Float]] {
        let c = try Safetensors.read(contentsOf: path)
        return Dictionary(uniqueKeysWithValues: try c.entries.map { ($0.name, try c.tensor(named: $0.name).data) })
    }

    func testProfilingChangesNothingAndCountsEveryPhase() throws {
        let dir = try makeTempDir(self, prefix: "mml-profile")
        _ = try EpisodicTrainingRun(tinyRun(out: dir + "/plain")).run()
        let run = try EpisodicTrainingRun(tinyRun(out: dir + "/profiled"))
        let profile = PhaseProfile()
        run.profile = profile
        _ = try run.run()
        let a = try tensors(dir + "/plain/last.safetensors"), b = try tensors(dir + "/profiled/last.safetensors")
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted())
        for (name, v) in a { assertBitwiseEqual(v, b[name] ?? [], name) }

        XCTAssertEqual(profile.episodes, 8)
        let perEpisode: [PhaseProfile.Phase] = [.data, .backboneForward, .pixelForward, .partForward,
                                                .distributionForward, .fusionForward, .loss, .fusionBackward,
                                                .pixelBackward, .partBackward, .distributionBackward,
                                                .backboneBackward]
        for p in perEpisode { XCTAssertEqual(profile.counts[p], 8, p.rawValue) }
        // Zeroing before and summing after each episode; 4 optimiser steps plus the buffer updates of 8 episodes;
        // one validation per epoch.
        XCTAssertEqual(profile.counts[.gradientSum], 16)
        XCTAssertEqual(profile.counts[.optimizer], 12)
        XCTAssertEqual(profile.counts[.validation], 2)
        XCTAssertNil(profile.counts[.exchange])
        XCTAssertGreaterThan(profile.seconds[.backboneForward] ?? 0, 0)
        let report = profile.report
        XCTAssertEqual(report.phases.map(\.phase), PhaseProfile.Phase.allCases.filter { profile.counts[$0] != nil })
        XCTAssertEqual(report.phases.reduce(0) { $0 + $1.share }, 1, accuracy: 1e-9)
        XCTAssertEqual(report.phases.reduce(0) { $0 + $1.seconds }, report.seconds, accuracy: 1e-9)
        for r in report.phases {
            XCTAssertEqual(r.perEpisodeMilliseconds, r.seconds * 1e3 / 8, accuracy: 1e-9)
        }
    }

    func testDisabledLevelsAreNeverEntered() throws {
        let dir = try makeTempDir(self, prefix: "mml-profile-levels")
        let run = try EpisodicTrainingRun(tinyRun(out: dir + "/pixel", levels: [.pixel]))
        let profile = PhaseProfile()
        run.profile = profile
        _ = try run.run()
        XCTAssertEqual(profile.counts[.pixelForward], 8)
        XCTAssertEqual(profile.counts[.pixelBackward], 8)
        for p in [PhaseProfile.Phase.partForward, .partBackward, .distributionForward, .distributionBackward] {
            XCTAssertNil(profile.counts[p], p.rawValue)
        }
    }

    /// Without validation (validation split `none`) the validation phase is never entered, so the report (the
    /// printed table and profile.json) has no validation row; the other phases are still all there.
    func testNoValidationMeansNoValidationRow() throws {
        let dir = try makeTempDir(self, prefix: "mml-profile-noval")
        var c = tinyRun(out: dir + "/run")
        c.validationSplit = "none"
        c.validationQuery = 15  // the default: a run without validation refuses any other
        let run = try EpisodicTrainingRun(c)
        let profile = PhaseProfile()
        run.profile = profile
        _ = try run.run()
        XCTAssertEqual(profile.episodes, 8)
        XCTAssertNil(profile.counts[.validation])
        XCTAssertNil(profile.seconds[.validation])
        let phases = profile.report.phases.map(\.phase)
        XCTAssertFalse(phases.contains(.validation), "\(phases)")
        // best.safetensors is still written at each epoch's end (the latest epoch is the best one)
        XCTAssertEqual(profile.counts[.data], 8)
        XCTAssertNotNil(profile.counts[.checkpoint])
        XCTAssertEqual(phases, PhaseProfile.Phase.allCases.filter { $0 != .validation && $0 != .exchange })
    }

    /// Evaluation with a profile (`mml-bench episode --breakdown`): the same accuracies and predictions as without,
    /// every evaluation phase entered once per episode, no training phase entered.
    func testEvaluationProfileChangesNothingAndCountsEachEpisode() throws {
        let image = ImageConfig(size: 20, channels: 3)
        let data = try SyntheticDataset(options: .init(seed: 0, imagesPerClass: 8, size: 20, channels: 3), split: "test")
        let loader = try EpisodeLoader(dataset: data, config: image)
        let model = try FewShotModel(ModelConfiguration(
            backbone: .conv64F, inputChannels: 3, seed: 1, image: image,
            metric: MetricConfiguration(pixelNeighbours: 3, partForm: .grid([3, 2]), partNeighbours: 1, distance: .kl)))
        let sampler = try EpisodeSampler(dataset: data, way: 3, shot: 2, query: 2, seed: 4)
        let plain = try evaluateModel(model, loader: loader, sampler: sampler, episodes: 3)
        let profile = PhaseProfile()
        let profiled = try evaluateModel(model, loader: loader, sampler: sampler, episodes: 3, profile: profile)
        XCTAssertEqual(plain.fusedPerEpisode, profiled.fusedPerEpisode)
        XCTAssertEqual(plain.levelsPerEpisode, profiled.levelsPerEpisode)
        XCTAssertEqual(plain.fusedPredictions, profiled.fusedPredictions)
        XCTAssertEqual(profile.episodes, 3)
        let phases: [PhaseProfile.Phase] = [.data, .backboneForward, .pixelForward, .partForward, .distributionForward,
                                            .fusionForward]
        XCTAssertEqual(Set(profile.counts.keys), Set(phases))
        for p in phases { XCTAssertEqual(profile.counts[p], 3, p.rawValue) }
        XCTAssertEqual(profile.report.phases.reduce(0) { $0 + $1.share }, 1, accuracy: 1e-9)
    }
}
