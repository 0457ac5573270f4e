import MMLCore
import XCTest

final class EpisodeEvaluatorTests: XCTestCase {
    func testAccuracyArgmax() {
        let s = Tensor(shape: [3, 2], data: [1, 2, 5, 0, 3, 3])
        XCTAssertEqual(accuracy(of: s, labels: [1, 0, 1]), 2.0 / 3.0, accuracy: 1e-12)  // tie -> first maximum
    }

    func testEvaluationIsReproducibleAndPerLevelMatchesHeads() throws {
        let (loader, sampler, backbone, metric) = try smallEvaluationSetup(imagesPerClass: 20, way: 5, query: 3)
        let a = try evaluateEpisodes(backbone: backbone, metric: metric, loader: loader, sampler: sampler, episodes: 4)
        let b = try evaluateEpisodes(backbone: backbone, metric: metric, loader: loader, sampler: sampler, episodes: 4)
        XCTAssertEqual(a.fusedPerEpisode, b.fusedPerEpisode)
        XCTAssertEqual(Set(a.levels.keys), [.pixel, .distribution])
        XCTAssertEqual(a.fused.count, 4)
        // Episode 2's pixel accuracy, recomputed with the head alone.
        let batch = try loader.batch(for: sampler.episode(2))
        let s = backbone.forward(batch.support, training: false).output
        let q = backbone.forward(batch.query, training: false).output
        let (scores, _) = try PixelLevel(neighbours: 3).forward(support: s, labels: batch.supportLabels, query: q, way: 5)
        XCTAssertEqual(a.levelsPerEpisode[.pixel]![2], accuracy(of: scores, labels: batch.queryLabels), accuracy: 1e-12)
        XCTAssertThrowsError(try evaluateEpisodes(backbone: backbone, metric: metric, loader: loader, sampler: sampler, episodes: 0))
    }
}
