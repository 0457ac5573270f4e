import Foundation
import MMLCore
import XCTest

/// The code of docs/API.md, compiled and run here. The test also checks that the guide still contains the snippet
/// verbatim, so neither can change without the other.
final class APIGuideTests: XCTestCase {
    func testGuideSnippetCompilesRunsAndIsInTheGuide() throws {
        // BEGIN API.md snippet
        // 1. A metric from a configuration.
        var config = MetricConfiguration(levels: [.pixel, .part, .distribution])
        config.pixelNeighbours = 3
        config.partForm = .grid([2])
        config.distance = .kl
        let metric = try config.makeMetric()

        // 2. One 2-way episode of precomputed (N, C, H, W) feature maps.
        var rng = SeededRNG(seed: 1)
        func maps(_ n: Int) -> Tensor {
            Tensor(shape: [n, 16, 4, 4], data: (0..<(n * 256)).map { _ in rng.nextFloat() })
        }
        let support = maps(4), query = maps(3)
        let scores = try scoreEpisode(metric: metric, support: support, labels: [0, 1, 0, 1],
                                      query: query, way: 2, fusionStatistics: .episode)
        let pixel = scores.levelScores[.pixel]!     // (3, 2): queries x classes
        let fused = scores.fused                    // (3, 2)
        let predicted = scores.predictions          // one class per query
        let acc = try scores.accuracy(queryLabels: [0, 1, 1])

        // 3a. Many episodes over precomputed features of a whole test set.
        let all = maps(40)
        let set = try FeatureSet(features: all, labels: (0..<40).map { $0 % 4 })
        let sampler = try EpisodeSampler(dataset: set, way: 2, shot: 1, query: 5, seed: 7)
        let result = try evaluateEpisodes(features: set, episodes: sampler.episodes(10), metric: metric,
                                          fusionStatistics: .episode)
        print(result.fused.percentString, result.levels[.pixel]!.percentString)

        // 3b. Images through any backbone given as a closure (N, C_in, H, W) -> features.
        let data = try SyntheticDataset(options: .init(imagesPerClass: 10, size: 28, channels: 1), split: "test")
        let loader = try EpisodeLoader(dataset: data, config: ImageConfig(size: 28, channels: 1))
        let images = try EpisodeSampler(dataset: data, way: 5, shot: 1, query: 2, seed: 3)
        let conv = try makeBackbone(BackboneConfiguration(kind: .conv64F, inputChannels: 1, seed: 1))
        let viaClosure = try evaluateEpisodes(backbone: { x in conv.forward(x, training: false).output },
                                              metric: metric, loader: loader, sampler: images, episodes: 2,
                                              fusionStatistics: .episode)

        // 4. Whole runs, as `mml train` and `mml eval` start them: one configuration value, events, a Codable result.
        let out = NSTemporaryDirectory() + "mml-api-guide-run"
        let training = EpisodicTrainingConfiguration(way: 3, shot: 1, query: 2, episodesPerEpoch: 4, epochs: 1,
                                                     seed: 7, validationEpisodes: 2)
        let run = EpisodicTrainingRunConfiguration(
            dataset: DatasetSource(path: "synthetic", syntheticSize: 20, syntheticImages: 12),
            backbone: BackboneSettings(widths: [8, 8, 8, 8]), metric: MetricConfiguration(way: 3),
            training: training, validationQuery: 2, out: out)
        var episodesSeen = 0
        let trained = try EpisodicTrainingRun(run).run { event in
            if case .training(.episode) = event { episodesSeen += 1 }
        }
        let evaluation = try EvaluationRun(EvaluationRunConfiguration(
            checkpoint: trained.last, dataset: run.dataset, ways: [3], shots: [1], query: 2, episodes: 5)).run()
        print(evaluation.results[0].accuracy.percentString)   // JSONEncoder().encode(evaluation) is `mml eval --json`
        // END API.md snippet

        XCTAssertEqual(pixel.shape, [3, 2])
        XCTAssertEqual(fused.shape, [3, 2])
        XCTAssertEqual(predicted.count, 3)
        XCTAssertTrue((0...1).contains(acc.fused))
        XCTAssertEqual(result.fused.count, 10)
        XCTAssertEqual(viaClosure.fusedPerEpisode.count, 2)
        XCTAssertEqual(episodesSeen, 4)
        XCTAssertEqual(trained.state.episodesDone, 4)
        XCTAssertEqual(evaluation.results.map(\.accuracy.episodes), [5])
        try? FileManager.default.removeItem(atPath: out)

        let source = try String(contentsOfFile: #filePath, encoding: .utf8)
        let begin = try XCTUnwrap(source.range(of: "// BEGIN API.md snippet\n"))
        let end = try XCTUnwrap(source.range(of: "        // END API.md snippet"))
        let snippet = source[begin.upperBound..<end.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("        ") ? String($0.dropFirst(8)) : String($0) }.joined(separator: "\n")
        let guidePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/API.md").path
        let guide = try String(contentsOfFile: guidePath, encoding: .utf8)
        XCTAssertTrue(guide.contains(snippet), "docs/API.md no longer contains the snippet of this test verbatim:\n\(snippet)")
    }
}
