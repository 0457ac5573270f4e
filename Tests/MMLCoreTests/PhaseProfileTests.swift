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
}
