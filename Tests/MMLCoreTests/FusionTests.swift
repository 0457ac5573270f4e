import MMLCore
import MMLTestSupport
import XCTest

final class FusionTests: XCTestCase {
    /// L = sum(r * logits) so dL/dlogits = r.
    func loss(_ logits: Tensor, _ r: Tensor) -> Double {
        zip(logits.data, r.data).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }

    func checkLearned(_ norm: FusionNormalization) {
        var rng = TestRNG(seed: 7)
        let q = 6, w = 4
        // Levels with very different scales, as in the real heads (top-K sums vs negated KL).
        let scores = [rng.tensor([q, w], scale: 50, offset: 300), rng.tensor([q, w], scale: 2),
                      rng.tensor([q, w], scale: 0.3, offset: -5)]
        var fusion = LearnedFusion(levels: 3, normalization: norm, way: w)
        fusion.weights = [0.7, -1.3, 2.1]
        let r = rng.tensor([q, w])
        var probe = fusion.copy()
        let (logits, cache) = probe.forward(scores, training: true)
        var grads = LearnedFusion.Gradients(levels: 3)
        let ds = fusion.backward(r, cache: cache!, grads: &grads)
        _ = logits
        for l in 0..<3 {
            let h = max(1e-2, 1e-3 * scores[l].data.map { abs($0) }.max()!)
            for i in 0..<(q * w) {
                var plus = scores, minus = scores
                plus[l].data[i] += h
                minus[l].data[i] -= h
                var f1 = fusion.copy(), f2 = fusion.copy()
                let lp = loss(f1.forward(plus, training: true).0, r)
                let lm = loss(f2.forward(minus, training: true).0, r)
                let fd = (lp - lm) / (2 * Double(h))
                XCTAssertEqual(Double(ds[l].data[i]), fd, accuracy: 2e-3 + 2e-2 * abs(fd), "\(norm) level \(l) i \(i)")
            }
        }
        for l in 0..<3 {
            var fp = fusion.copy(), fm = fusion.copy()
            fp.weights[l] += 1e-2
            fm.weights[l] -= 1e-2
            let fd = (loss(fp.forward(scores, training: true).0, r) - loss(fm.forward(scores, training: true).0, r)) / 2e-2
            XCTAssertEqual(Double(grads.weights[l]), fd, accuracy: 1e-3 + 1e-2 * abs(fd), "weight \(l)")
        }
    }

    func testLearnedFusionGradientsPerLevel() { checkLearned(.perLevel) }
    func testLearnedFusionGradientsPerPosition() { checkLearned(.perPosition) }

    func testTrainingNormalisesAndInferenceUsesRunningStatistics() {
        var rng = TestRNG(seed: 3)
        let s = rng.tensor([10, 5], scale: 4, offset: 100)
        var fusion = LearnedFusion(levels: 1)
        let (logits, _) = fusion.forward([s], training: true)
        let mean = logits.data.reduce(0, +) / Float(logits.count)
        let varr = logits.data.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(logits.count)
        XCTAssertEqual(mean, 0, accuracy: 1e-4)
        XCTAssertEqual(varr, 1, accuracy: 1e-3)
        // One update with momentum 0.1 from (0, 1).
        let m = s.data.reduce(0, +) / Float(s.count)
        XCTAssertEqual(fusion.runningMean[0], 0.1 * m, accuracy: 1e-3)
        // Inference: (s - runningMean) / sqrt(runningVar + eps) * w.
        let (inf, cache) = fusion.forward([s], training: false)
        XCTAssertNil(cache)
        let expected = (s.data[3] - fusion.runningMean[0]) / (fusion.runningVar[0] + fusion.eps).squareRoot()
        XCTAssertEqual(inf.data[3], expected, accuracy: 1e-4)
    }

    func testFixedFusionMatchesMixtureAndGradients() {
        var rng = TestRNG(seed: 11)
        let q = 3, w = 5
        let scores = [rng.tensor([q, w], scale: 3), rng.tensor([q, w], scale: 3)]
        let fusion = FixedFusion(weights: [1, 0.5])
        let (logits, cache) = fusion.forward(scores)
        // Brute force for one entry.
        func softmax(_ row: [Float]) -> [Float] {
            let e = row.map { exp(Double($0)) }
            let z = e.reduce(0, +)
            return e.map { Float($0 / z) }
        }
        let p0 = softmax(Array(scores[0].data[w..<(2 * w)])), p1 = softmax(Array(scores[1].data[w..<(2 * w)]))
        XCTAssertEqual(logits.data[w + 2], log(p0[2] + 0.5 * p1[2]), accuracy: 1e-5)
        let r = rng.tensor([q, w])
        let ds = fusion.backward(r, cache: cache)
        for l in 0..<2 {
            for i in 0..<(q * w) {
                var plus = scores, minus = scores
                plus[l].data[i] += 1e-2
                minus[l].data[i] -= 1e-2
                let fd = (loss(fusion.forward(plus).0, r) - loss(fusion.forward(minus).0, r)) / 2e-2
                XCTAssertEqual(Double(ds[l].data[i]), fd, accuracy: 1e-3 + 1e-2 * abs(fd))
            }
        }
    }

    func testAccuracySummaryAndPairedDifference() {
        let a: [Double] = [1, 0.8, 0.6, 1.0]
        let s = AccuracySummary(a)
        XCTAssertEqual(s.mean, 0.85, accuracy: 1e-12)
        let std = ((0.0225 + 0.0025 + 0.0625 + 0.0225) / 3).squareRoot()
        XCTAssertEqual(s.std, std, accuracy: 1e-12)
        XCTAssertEqual(s.ci95, 1.96 * std / 2, accuracy: 1e-12)
        let d = pairedDifference(a, [0.9, 0.8, 0.7, 0.8])
        XCTAssertEqual(d.mean, 0.05, accuracy: 1e-12)
        XCTAssertEqual(AccuracySummary([]).count, 0)
    }
}
