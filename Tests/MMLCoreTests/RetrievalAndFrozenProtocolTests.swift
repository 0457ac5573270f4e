import MMLCore
import XCTest

final class RetrievalTests: XCTestCase {
    func testHandComputedTinyExample() throws {
        // 1-D points: A at 0, 1, 2.2; B at 3, 4 (worked out by hand in the comments).
        // q0 (0):   ranking 1(A) 2.2(A) 3(B) 4(B)   -> hit@1, RP 2/2, AP (1 + 1)/2 = 1
        // q1 (1):   ranking 0(A) 2.2(A) 3 4          -> hit@1, RP 1,   AP 1
        // q2 (3,B): ranking 2.2(A) 4(B) ...  R = 1  -> miss@1, hit@2, RP 0, AP 0
        // q3 (4,B): ranking 3(B) ...                 -> hit@1, RP 1, AP 1
        // q4 (2.2): ranking 3(B) 1(A) 4(B) 0(A)      -> miss@1, hit@2, RP 1/2, AP (1/2)/2 = 0.25
        let e = Tensor(shape: [5, 1], data: [0, 1, 3, 4, 2.2])
        let m = try retrievalMetrics(embeddings: e, labels: [0, 0, 1, 1, 0])
        XCTAssertEqual(m.recallAt[1]!, 0.6, accuracy: 1e-12)
        XCTAssertEqual(m.recallAt[2]!, 1.0, accuracy: 1e-12)
        XCTAssertEqual(m.recallAt[4]!, 1.0, accuracy: 1e-12)
        XCTAssertEqual(m.recallAt[8]!, 1.0, accuracy: 1e-12)
        XCTAssertEqual(m.rPrecision, 3.5 / 5, accuracy: 1e-12)
        XCTAssertEqual(m.mapAtR, 3.25 / 5, accuracy: 1e-12)
        XCTAssertEqual(m.queries, 5)
    }

    func testTiesRankTheSmallerIndexFirstAndSingletonsAreSkipped() throws {
        // Query 0 at the origin; samples 1 (class 1) and 2 (class 0) both at distance 1; 3 is alone in class 2.
        let e = Tensor(shape: [4, 1], data: [0, 1, -1, 9])
        let m = try retrievalMetrics(embeddings: e, labels: [0, 1, 0, 2], recallKs: [1])
        // q0: tie -> 1 (wrong class) first: miss. q2 (-1): 0 first: hit. q1 and q3 are alone: skipped.
        XCTAssertEqual(m.queries, 2); XCTAssertEqual(m.skippedQueries, 2)
        XCTAssertEqual(m.recallAt[1]!, 0.5)
        XCTAssertThrowsError(try retrievalMetrics(embeddings: Tensor(shape: [2, 1]), labels: [0, 1])) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("no class has two samples") ?? false, "\($0)")
        }
        XCTAssertThrowsError(try retrievalMetrics(embeddings: Tensor(shape: [2, 1]), labels: [0, 0], recallKs: [0])) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("recall k values must be >= 1") ?? false, "\($0)")
        }
    }

    /// Against a naive full sort in Double on a set larger than one 256-query block.
    func testMatchesNaiveFullRanking() throws {
        let n = 300, d = 6
        var g = SeededRNG(seed: 4)
        let e = L2Normalize.forward(Tensor(shape: [n, d], normalMean: 0, std: 1, generator: &g)).output
        let labels = (0..<n).map { ($0 * 7) % 23 }
        let m = try retrievalMetrics(embeddings: e, labels: labels, threads: 2)
        var hits = [1: 0, 2: 0, 4: 0, 8: 0], rp = 0.0, map = 0.0
        for q in 0..<n {
            var pairs: [(dist: Double, index: Int)] = []
            for j in 0..<n where j != q {
                var s = 0.0
                for c in 0..<d {
                    let t = Double(e.data[q * d + c]) - Double(e.data[j * d + c])
                    s += t * t
                }
                pairs.append((s, j))
            }
            pairs.sort { $0.dist != $1.dist ? $0.dist < $1.dist : $0.index < $1.index }
            let order: [Bool] = pairs.map { labels[$0.index] == labels[q] }
            let r = order.filter { $0 }.count
            for k in hits.keys where order.prefix(k).contains(true) { hits[k]! += 1 }
            rp += Double(order.prefix(r).filter { $0 }.count) / Double(r)
            var found = 0, ap = 0.0
            for i in 0..<r where order[i] { found += 1; ap += Double(found) / Double(i + 1) }
            map += ap / Double(r)
        }
        for k in [1, 2, 4, 8] { XCTAssertEqual(m.recallAt[k]!, Double(hits[k]!) / Double(n), accuracy: 1e-12, "R@\(k)") }
        XCTAssertEqual(m.rPrecision, rp / Double(n), accuracy: 1e-9)
        XCTAssertEqual(m.mapAtR, map / Double(n), accuracy: 1e-9)
    }
}

final class FrozenProtocolTests: XCTestCase {
    /// Well-separated synthetic features: class c around a random unit direction, plus noise.
    func features(way: Int, perClass: Int, dim: Int, noise: Float, seed: UInt64) -> (Tensor, [Int]) {
        var g = SeededRNG(seed: 100)
        let centres = L2Normalize.forward(Tensor(shape: [way, dim], normalMean: 0, std: 1, generator: &g)).output
        var h = SeededRNG(seed: seed)
        var x = Tensor(shape: [way * perClass, dim])
        var labels: [Int] = []
        for c in 0..<way { for i in 0..<perClass {
            for k in 0..<dim { x.data[(c * perClass + i) * dim + k] = 3 * centres.data[c * dim + k]
                                + noise * Float(h.nextGaussian()) }
            labels.append(c)
        } }
        return (x, labels)
    }

    func testBothProtocolsSeparateAnEasySyntheticSet() throws {
        let (s, sl) = features(way: 5, perClass: 5, dim: 16, noise: 0.3, seed: 1)
        let (q, ql) = features(way: 5, perClass: 15, dim: 16, noise: 0.3, seed: 2)
        for proto in FrozenFeatureProtocol.allCases {
            let scores = try frozenFeatureScores(support: s, supportLabels: sl, query: q, way: 5, protocol: proto)
            XCTAssertEqual(scores.shape, [75, 5])
            XCTAssertGreaterThanOrEqual(accuracy(of: scores, labels: ql), 0.97, "\(proto)")
        }
        // A shuffled labelling cannot be learnt from a few passes: chance-level accuracy on the true labels.
        let wrong = sl.map { ($0 + 1) % 5 }
        let bad = try frozenFeatureScores(support: s, supportLabels: wrong, query: q, way: 5, protocol: .cosineClassifier)
        XCTAssertEqual(accuracy(of: bad, labels: ql), 0)
    }

    func testPrototypeScoresAreCosinesToClassMeans() throws {
        let s = Tensor(shape: [4, 2], data: [1, 0, 3, 0, 0, 2, 0, 4])
        let q = Tensor(shape: [1, 2], data: [1, 1])
        let scores = try frozenFeatureScores(support: s, supportLabels: [0, 0, 1, 1], query: q, way: 2,
                                             protocol: .prototype)
        XCTAssertEqual(scores.data[0], Float(0.5).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(scores.data[1], Float(0.5).squareRoot(), accuracy: 1e-6)
        XCTAssertThrowsError(try frozenFeatureScores(support: s, supportLabels: [0, 0, 1, 2], query: q, way: 2,
                                                     protocol: .prototype)) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("support label 2 is outside 0..<2") ?? false, "\($0)")
        }
    }

    func testCosineClassifierIsSeededPerEpisode() throws {
        let (s, sl) = features(way: 3, perClass: 2, dim: 8, noise: 2, seed: 3)
        let (q, _) = features(way: 3, perClass: 4, dim: 8, noise: 2, seed: 4)
        let a = try frozenFeatureScores(support: s, supportLabels: sl, query: q, way: 3, protocol: .cosineClassifier,
                                        episode: 5)
        let b = try frozenFeatureScores(support: s, supportLabels: sl, query: q, way: 3, protocol: .cosineClassifier,
                                        episode: 5)
        let c = try frozenFeatureScores(support: s, supportLabels: sl, query: q, way: 3, protocol: .cosineClassifier,
                                        episode: 6)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        for v in a.data { XCTAssertLessThanOrEqual(abs(v), 5 + 1e-4, "cosine logits are bounded by s = 5") }
    }

    func testEvaluateFrozenFeaturesOnSyntheticImages() throws {
        let ds = try Datasets.open(path: "synthetic", layout: nil, split: "test",
                                   synthetic: SyntheticDataset.Options(seed: 0, imagesPerClass: 20, size: 28, channels: 1))
        let loader = try EpisodeLoader(dataset: ds, config: ImageConfig(size: 28, channels: 1))
        let sampler = try EpisodeSampler(dataset: ds, way: 3, shot: 2, query: 3, seed: 1)
        let model = try FewShotModel(ModelConfiguration(kind: "pretrained", backbone: .conv4, inputChannels: 1,
                                                        widths: [8, 8, 8, 8], seed: 1,
                                                        image: ImageConfig(size: 28, channels: 1), metric: nil))
        var seen = 0
        let r = try evaluateFrozenFeatures(model: model, loader: loader, sampler: sampler, episodes: 4,
                                           protocol: .prototype, progress: { seen = $0 })
        XCTAssertEqual(r.perEpisode.count, 4); XCTAssertEqual(seen, 4)
        XCTAssertEqual(r.summary, AccuracySummary(r.perEpisode))
        // The same episodes through the feature-closure form give the same accuracies.
        let f = try evaluateFrozenFeatures(features: { try pooledFeatures(model: model, images: $0) }, loader: loader,
                                           sampler: sampler, episodes: 4, protocol: .prototype)
        XCTAssertEqual(f.perEpisode, r.perEpisode)
        XCTAssertThrowsError(try evaluateFrozenFeatures(model: model, loader: loader, sampler: sampler, episodes: 0,
                                                        protocol: .prototype)) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("episodes must be >= 1") ?? false, "\($0)")
        }
    }

    /// The list form scores each episode by its own index: the same episodes in reverse order give the same
    /// per-episode accuracies, reversed (the cosine classifier is seeded by `episode.index`, not the position).
    func testEvaluateFrozenFeaturesOnAnEpisodeList() throws {
        let ds = try Datasets.open(path: "synthetic", layout: nil, split: "test",
                                   synthetic: SyntheticDataset.Options(seed: 0, imagesPerClass: 20, size: 28, channels: 1))
        let loader = try EpisodeLoader(dataset: ds, config: ImageConfig(size: 28, channels: 1))
        let sampler = try EpisodeSampler(dataset: ds, way: 3, shot: 2, query: 3, seed: 4)
        let model = try FewShotModel(ModelConfiguration(kind: "pretrained", backbone: .conv4, inputChannels: 1,
                                                        widths: [8, 8, 8, 8], initialization: .kaiming, seed: 2,
                                                        image: ImageConfig(size: 28, channels: 1), metric: nil))
        let features = { (x: Tensor) in try pooledFeatures(model: model, images: x) }
        var options = CosineClassifierProtocolOptions()
        options.passes = 3
        options.seed = 9
        let sampled = try evaluateFrozenFeatures(features: features, loader: loader, sampler: sampler, episodes: 5,
                                                 protocol: .cosineClassifier, options: options)
        var seen = 0
        let reversed = try evaluateFrozenFeatures(features: features, loader: loader,
                                                  episodes: Array(sampler.episodes(5).reversed()),
                                                  protocol: .cosineClassifier, options: options,
                                                  progress: { seen = $0 })
        XCTAssertEqual(seen, 5)
        XCTAssertEqual(reversed.perEpisode, sampled.perEpisode.reversed())
        // Each equals the episode scored on its own.
        for e in [0, 3] {
            let ep = sampler.episode(e)
            let b = try loader.batch(for: ep)
            let scores = try frozenFeatureScores(support: features(b.support), supportLabels: b.supportLabels,
                                                 query: features(b.query), way: 3, protocol: .cosineClassifier,
                                                 options: options, episode: e)
            XCTAssertEqual(accuracy(of: scores, labels: b.queryLabels), sampled.perEpisode[e])
        }
        XCTAssertThrowsError(try evaluateFrozenFeatures(features: features, loader: loader, episodes: [],
                                                        protocol: .prototype)) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("episodes must be >= 1, got 0") ?? false, "\($0)")
        }
    }
}
