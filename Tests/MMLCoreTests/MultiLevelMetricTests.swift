import MMLCore
import MMLTestSupport
import XCTest

final class MultiLevelMetricTests: XCTestCase {
    func testEveryLevelSubsetScoresAndGradients() throws {
        var rng = TestRNG(seed: 52)  // seed 51 puts two pixel-level neighbours 5e-6 apart: a kink no step size avoids
        let labels = [0, 1, 2, 0, 1, 2], way = 3
        let support = rng.tensor([6, 4, 4, 4]), query = rng.tensor([4, 4, 4, 4])
        let r = rng.tensor([4, way])
        let all: [MetricLevel] = [.pixel, .part, .distribution]
        for mask in 1..<8 {
            let levels = Set(all.enumerated().filter { mask & (1 << $0.offset) != 0 }.map(\.element))
            var metric = try MultiLevelMetric(levels: levels, pixel: PixelLevel(neighbours: 2, threads: 1),
                                              part: PartLevel(form: .grid([2, 1]), neighbours: 1, threads: 1),
                                              distribution: DistributionLevel(distance: .kl(.symmetric), eps: 0.1, threads: 1))
            metric.fusion.weights = (0..<levels.count).map { Float($0) * 0.5 + 0.7 }
            var probe = metric
            let (out, cache) = try probe.forward(support: support, labels: labels, query: query, way: way, training: true)
            XCTAssertEqual(Set(out.levelScores.keys), levels)
            XCTAssertEqual(out.logits.shape, [4, way])
            // Each level's scores equal its head run alone: a disabled level is absent, not zeroed.
            if levels.contains(.pixel) {
                let alone = try metric.pixel.forward(support: support, labels: labels, query: query, way: way).scores
                XCTAssertEqual(out.levelScores[.pixel], alone)
            }
            var fg = LearnedFusion.Gradients(levels: levels.count)
            let (ds, dq) = try metric.backward(r, cache: cache, fusionGradients: &fg)
            func loss(_ s: Tensor, _ q: Tensor) throws -> Double {
                var m = metric
                let (o, _) = try m.forward(support: s, labels: labels, query: q, way: way, training: true)
                return zip(o.logits.data, r.data).reduce(0) { $0 + Double($1.0) * Double($1.1) }
            }
            // Float forward, so central differences are noisy, and the top-K selections are piecewise: a probe passes
            // when any of three step sizes agrees (a kink or rounding spoils one, a wrong gradient spoils all).
            for (t, g, isSupport) in [(support, ds, true), (query, dq, false)] {
                for i in stride(from: 0, to: t.count, by: 7) {
                    var fds: [Double] = []
                    for h: Float in [1e-3, 1e-4, 3e-5] {
                        var p = t, m = t
                        p.data[i] += h; m.data[i] -= h
                        fds.append(isSupport ? (try loss(p, query) - loss(m, query)) / Double(2 * h)
                                             : (try loss(support, p) - loss(support, m)) / Double(2 * h))
                    }
                    let a = Double(g.data[i])
                    XCTAssertTrue(fds.contains { abs(a - $0) <= 1e-2 + 3e-2 * abs($0) },
                                  "levels \(levels.sorted()) \(isSupport ? "support" : "query") \(i): analytic \(a), numeric \(fds)")
                }
            }
        }
    }

    func testNoLevelIsAnError() {
        XCTAssertThrowsError(try MultiLevelMetric(levels: [])) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("no metric level") ?? false)
        }
    }
}
