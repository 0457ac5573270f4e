import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// scoreEpisode, the (N, M, C) layout, per-episode fusion statistics, FeatureSet episodes and the closure-backbone
/// evaluation.
final class FeatureEvaluationTests: XCTestCase {
    func testMatchesMetricForwardWithStoredStatistics() throws {
        var rng = TestRNG(seed: 3)
        let s = rng.tensor([4, 6, 3, 3]), q = rng.tensor([5, 6, 3, 3])
        let labels = [0, 1, 0, 1]
        var metric = try MetricConfiguration().makeMetric(threads: 1)
        metric.fusion.weights = [0.5, 2, 1]
        metric.fusion.runningMean = [1, -2, 0.5]
        metric.fusion.runningVar = [4, 0.25, 9]
        let r = try scoreEpisode(metric: metric, support: s, labels: labels, query: q, way: 2)
        var m = metric
        let (out, _) = try m.forward(support: s, labels: labels, query: q, way: 2, training: false)
        XCTAssertEqual(r.fused, out.logits)
        XCTAssertEqual(r.levels, [.pixel, .part, .distribution])
        for l in r.levels { XCTAssertEqual(r.levelScores[l], out.levelScores[l]) }
        // Hand-computed fusion with the stored statistics.
        for i in 0..<r.fused.count {
            var want: Float = 0
            for (k, l) in r.levels.enumerated() {
                want += metric.fusion.weights[k] * (r.levelScores[l]!.data[i] - metric.fusion.runningMean[k])
                    / (metric.fusion.runningVar[k] + 1e-5).squareRoot()
            }
            XCTAssertEqual(r.fused.data[i], want, accuracy: 1e-4 * max(1, abs(want)))
        }
    }

    func testEpisodeStatisticsNormaliseEachLevelOverTheEpisode() throws {
        var rng = TestRNG(seed: 4)
        let s = rng.tensor([3, 5, 2, 2]), q = rng.tensor([4, 5, 2, 2])
        let metric = try MetricConfiguration(levels: [.pixel, .distribution]).makeMetric(threads: 1)
        let r = try scoreEpisode(metric: metric, support: s, labels: [0, 1, 2], query: q, way: 3, fusionStatistics: .episode)
        var want = [Double](repeating: 0, count: 12)
        for l in r.levels {
            let v = r.levelScores[l]!.data.map(Double.init)
            let mean = v.reduce(0, +) / Double(v.count)
            let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count)
            for i in 0..<v.count { want[i] += (v[i] - mean) / (variance + 1e-5).squareRoot() }
        }
        for i in 0..<12 { XCTAssertEqual(Double(r.fused.data[i]), want[i], accuracy: 1e-4) }
        // The metric passed in is not changed (its running statistics stay at 0 / 1).
        XCTAssertEqual(metric.fusion.runningMean, [0, 0])
    }

    func testDescriptorSetsAreTransposedToChannelMajor() throws {
        // (N, M, C) descriptors; the pixel score is checked against a brute-force image-to-class top-1 cosine sum
        // over the descriptors as given.
        var rng = TestRNG(seed: 5)
        let n = 4, m = 3, c = 5
        let s = rng.tensor([n, m, c]), q = rng.tensor([2, m, c])
        let labels = [0, 1, 1, 0]
        let metric = try MetricConfiguration(levels: [.pixel], pixelNeighbours: 1).makeMetric(threads: 1)
        let r = try scoreEpisode(metric: metric, support: s, labels: labels, query: q, way: 2)
        func descriptor(_ t: Tensor, _ i: Int, _ p: Int) -> [Float] {
            let v = Array(t.data[((i * m + p) * c)..<((i * m + p + 1) * c)])
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return v.map { $0 / norm }
        }
        for qi in 0..<2 {
            for cls in 0..<2 {
                var total: Float = 0
                for p in 0..<m {
                    let x = descriptor(q, qi, p)
                    var best = -Float.infinity
                    for si in 0..<n where labels[si] == cls {
                        for sp in 0..<m { best = max(best, zip(x, descriptor(s, si, sp)).reduce(0) { $0 + $1.0 * $1.1 }) }
                    }
                    total += best
                }
                XCTAssertEqual(r.levelScores[.pixel]!.data[qi * 2 + cls], total, accuracy: 1e-4)
            }
        }
        let maps = try episodeFeatureMaps(s, role: "s")
        XCTAssertEqual(maps.shape, [n, c, 1, m])
        XCTAssertEqual(maps.data[(1 * c + 4) * m + 2], s.data[(1 * m + 2) * c + 4])
    }

    func testBadEpisodesGiveClearErrors() throws {
        var rng = TestRNG(seed: 6)
        let s = rng.tensor([4, 6, 3, 3]), q = rng.tensor([2, 6, 3, 3])
        let metric = try MetricConfiguration(levels: [.pixel, .part]).makeMetric(threads: 1)
        assertThrows(try scoreEpisode(metric: metric, support: s, labels: [0, 1, 2, 1], query: q, way: 2),
                     contains: "support label 2 (item 2) is outside 0..<2")
        assertThrows(try scoreEpisode(metric: metric, support: s, labels: [0, 1, 1], query: q, way: 2),
                     contains: "3 support labels for 4 support feature maps")
        assertThrows(try scoreEpisode(metric: metric, support: s, labels: [0, 1, 1, 0], query: q, way: 3),
                     contains: "class 2 of the 3-way episode has no support item")
        assertThrows(try scoreEpisode(metric: metric, support: s, labels: [0, 1, 1, 0], query: rng.tensor([2, 5, 3, 3]), way: 2),
                     contains: "C = 6 channels but query features C = 5")
        assertThrows(try scoreEpisode(metric: metric, support: s, labels: [0, 1, 1, 0], query: rng.tensor([2, 6, 4, 3]), way: 2),
                     contains: "differ in spatial size (H, W)")
        assertThrows(try scoreEpisode(metric: metric, support: s, labels: [0, 1, 1, 0], query: rng.tensor([2, 3, 6]), way: 2),
                     contains: "give both as (N, C, H, W) or both as (N, M, C)")
        assertThrows(try scoreEpisode(metric: metric, support: rng.tensor([4, 6]), labels: [0, 1, 1, 0], query: rng.tensor([2, 6]), way: 2),
                     contains: "rank 2")
        var bad = q
        bad.data[6 * 9 + 4] = .infinity
        assertThrows(try scoreEpisode(metric: metric, support: s, labels: [0, 1, 1, 0], query: bad, way: 2),
                     contains: "query features: element 58 (index (1, 0, 1, 1)) is inf")
        assertThrows(try scoreEpisode(metric: metric, support: rng.tensor([4, 9, 6]), labels: [0, 1, 1, 0],
                                      query: rng.tensor([2, 9, 6]), way: 2),
                     contains: "(N, M, C) descriptor sets have no spatial grid")
        assertThrows(try scoreEpisode(metric: metric, support: s, labels: [0, 1, 1, 0], query: q, way: 0),
                     contains: "way must be at least 1")
        // Finite but huge constant features: the covariances are fine (eps I) but the squared mean distance overflows.
        var hugeS = s, hugeQ = q
        for i in 0..<hugeS.count { hugeS.data[i] = 1.5e19 }
        for i in 0..<hugeQ.count { hugeQ.data[i] = -1.5e19 }
        let dist = try MetricConfiguration(levels: [.distribution], distance: .w2).makeMetric(threads: 1)
        assertThrows(try scoreEpisode(metric: dist, support: hugeS, labels: [0, 1, 1, 0], query: hugeQ, way: 2),
                     contains: "the distribution level's score of query 0, class 0 is -inf")
        let r = try scoreEpisode(metric: metric, support: s, labels: [0, 1, 1, 0], query: q, way: 2)
        assertThrows(try r.accuracy(queryLabels: [0]), contains: "1 query labels for 2 query feature maps")
        assertThrows(try r.accuracy(queryLabels: [0, 5]), contains: "query label 5 (query 1) is outside 0..<2")
    }

    func testFeatureSetEpisodesMatchScoreEpisode() throws {
        var rng = TestRNG(seed: 7)
        // 4 classes with labels 9, 2, 5, 7 (unsorted, non-contiguous), 5 rows each, interleaved.
        let classLabels = [9, 2, 5, 7]
        var labels: [Int] = []
        for i in 0..<20 { labels.append(classLabels[i % 4]) }
        var feats = rng.tensor([20, 4, 6])
        for r in 0..<20 { for p in 0..<4 { feats.data[r * 24 + p * 6 + r % 4] += 3 } }  // class r % 4: channel r % 4 high
        let set = try FeatureSet(features: feats, labels: labels)
        XCTAssertEqual(set.classLabels, [2, 5, 7, 9])
        XCTAssertEqual(set.rows[0], [1, 5, 9, 13, 17])
        let sampler = try EpisodeSampler(dataset: set, way: 3, shot: 2, query: 2, seed: 11)
        let metric = try MetricConfiguration(levels: [.pixel, .distribution]).makeMetric(threads: 1)
        let episodes = sampler.episodes(3)
        let ev = try evaluateEpisodes(features: set, episodes: episodes, metric: metric, fusionStatistics: .episode)
        XCTAssertEqual(ev.fused.count, 3)
        for (k, e) in episodes.enumerated() {
            let b = try set.batch(for: e)
            // The rows really are the episode's items of the episode's classes.
            for (j, c) in e.classes.enumerated() {
                XCTAssertEqual(Array(b.support.data[(j * 2 * 24)..<(j * 2 * 24 + 24)]),
                               Array(feats.data[(set.rows[c][e.support[j][0]] * 24)..<(set.rows[c][e.support[j][0]] * 24 + 24)]))
            }
            let r = try scoreEpisode(metric: metric, support: b.support, labels: b.supportLabels, query: b.query,
                                     way: 3, fusionStatistics: .episode)
            XCTAssertEqual(ev.fusedPerEpisode[k], try r.accuracy(queryLabels: b.queryLabels).fused)
        }
        XCTAssertGreaterThan(ev.fused.mean, 0.9)
        let direct = try evaluateEpisodes(features: feats, labels: labels, way: 3, shot: 2, query: 2, seed: 11,
                                          episodes: 3, metric: metric, fusionStatistics: .episode)
        XCTAssertEqual(direct.fusedPerEpisode, ev.fusedPerEpisode)
        assertThrows(try evaluateEpisodes(features: feats, labels: labels, way: 3, shot: 4, query: 2, seed: 11,
                                          episodes: 3, metric: metric), contains: "fewer images than 4-shot + 2")
        var wrong = episodes[0]
        wrong.support[0][0] = 99
        assertThrows(try evaluateEpisodes(features: set, episodes: [wrong], metric: metric), contains: "names item 99")
        assertThrows(try evaluateEpisodes(features: set, episodes: [], metric: metric), contains: "at least 1 episode")
        assertThrows(try FeatureSet(features: feats, labels: [1, 2]), contains: "2 labels for 20 feature rows")
        assertThrows(try set.loadImage(ofClass: 0, item: 0, channels: 1), contains: "holds features, not images")
    }

    func testClosureBackboneMatchesBackboneEvaluation() throws {
        let (loader, sampler, backbone, metric) = try smallEvaluationSetup(imagesPerClass: 10, way: 3, query: 2)
        let a = try evaluateEpisodes(backbone: backbone, metric: metric, loader: loader, sampler: sampler, episodes: 3)
        var calls = 0
        let b = try evaluateEpisodes(backbone: { x in calls += 1; return backbone.forward(x, training: false).output },
                                     metric: metric, loader: loader, sampler: sampler, episodes: 3)
        XCTAssertEqual(calls, 3)
        XCTAssertEqual(a.fusedPerEpisode, b.fusedPerEpisode)
        XCTAssertEqual(a.levelsPerEpisode, b.levelsPerEpisode)
        assertThrows(try evaluateEpisodes(backbone: { _ in Tensor(shape: [2, 4], repeating: 1) }, metric: metric,
                                          loader: loader, sampler: sampler, episodes: 1),
                     contains: "returned shape [2, 4] (8 values) for 9 images")
        assertThrows(try evaluateEpisodes(backbone: { _ in throw MMLError(.kernel, "remote backbone failed") },
                                          metric: metric, loader: loader, sampler: sampler, episodes: 1),
                     contains: "remote backbone failed")
    }

    func testCheckpointScoringMetricCarriesTrainedFusion() throws {
        let config = ModelConfiguration(backbone: .conv4, inputChannels: 1, seed: 1, image: ImageConfig(size: 28, channels: 1),
                                        metric: MetricConfiguration(levels: [.pixel, .distribution]))
        let model = try FewShotModel(config, threads: 1)
        for (name, p) in model.namedParameters() {
            if name == "fusion.weight" { p.value.data = [0.25, 3] }
            if name == "fusion.running_mean" { p.value.data = [2, -1] }
            if name == "fusion.running_var" { p.value.data = [0.5, 7] }
        }
        let dir = try makeTempDir(self)
        try Checkpoint.save(model, to: dir + "/m.safetensors")
        let loaded = try Checkpoint.load(dir + "/m.safetensors", threads: 1)
        let m = try XCTUnwrap(loaded.model.scoringMetric)
        XCTAssertEqual(m.fusion.weights, [0.25, 3])
        XCTAssertEqual(m.fusion.runningMean, [2, -1])
        XCTAssertEqual(m.fusion.runningVar, [0.5, 7])
    }
}
