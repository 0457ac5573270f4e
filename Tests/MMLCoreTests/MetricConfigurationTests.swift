import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import MMLCore
import MMLTestSupport
import XCTest

/// MetricConfiguration parsing / validation, the fixed fusion inside MultiLevelMetric, and the ablation's fusion
/// refit (an optimum of the validation cross-entropy, checked by finite differences).
final class MetricConfigurationTests: XCTestCase {
    func maps(_ n: Int, seed: Int) -> Tensor {
        Tensor(shape: [n, 4, 3, 3], data: (0..<(n * 36)).map { Float(sin(Double($0 * 13 + seed * 101))) })
    }

    func testParseAndValidate() throws {
        XCTAssertEqual(try MetricConfiguration.parseLevels("all"), Set(MetricLevel.allCases))
        XCTAssertEqual(try MetricConfiguration.parseLevels("distribution, pixel"), [.pixel, .distribution])
        XCTAssertEqual(try MetricConfiguration.parseLevels("part+pixel"), [.pixel, .part])
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(message { _ = try MetricConfiguration.parseLevels("pixel,texture") }.contains("unknown metric level 'texture'"))
        XCTAssertTrue(message { _ = try MetricConfiguration.parseLevels(" , ") }.contains("no metric level"))
        var c = MetricConfiguration()
        XCTAssertEqual(c.levels, [.pixel, .part, .distribution])
        // Typed fields, parsed once; errors name the field.
        func fields(_ body: () throws -> Void) -> [String] {
            do { try body(); return [] } catch { return (error as? MMLError)?.fields ?? ["not an MMLError"] }
        }
        XCTAssertTrue(message { _ = try PartLevel.Form.parse("grid:3,0") }.contains("partForm 'grid:3,0'"))
        XCTAssertEqual(fields { _ = try PartLevel.Form.parse("grid:x") }, ["partForm"])
        c.partForm = .grid([3, 0])
        XCTAssertTrue(message { try c.validate() }.contains("partForm 'grid:3,0'"))
        XCTAssertEqual(try PartLevel.Form.parse("grid:1,2,3"), .grid([1, 2, 3]))
        XCTAssertEqual(try PartLevel.Form.parse(" Grid:3, 2"), .grid([3, 2]))
        XCTAssertEqual(try PartLevel.Form.parse("2,1"), .grid([2, 1]))
        c.partForm = try PartLevel.Form.parse("channels")
        XCTAssertEqual(c.partForm, .channels)
        XCTAssertTrue(message { _ = try DistributionDistance.parse("hellinger") }
            .contains("unknown distribution distance 'hellinger'"))
        XCTAssertEqual(fields { _ = try DistributionDistance.parse("hellinger") }, ["distance"])
        c.distance = try DistributionDistance.parse("kl-sym")
        XCTAssertEqual(c.distance.kernelDistance, .kl(.symmetric))
        XCTAssertEqual(try DistributionDistance.parse("KL-QC"), .kl)
        XCTAssertEqual(try DistributionDistance.parse("wasserstein"), .w2)
        XCTAssertEqual(try DistributionDistance.parse("mml-v1").kernelDistance, .mmlv1)
        XCTAssertTrue(message { _ = try FusionKind.parse("average") }.contains("unknown fusion 'average'"))
        XCTAssertEqual(fields { _ = try FusionKind.parse("average") }, ["fusion"])
        XCTAssertEqual(fields { _ = try MetricConfiguration.parseWeights("1,x") }, ["fixedWeights"])
        XCTAssertEqual(try MetricConfiguration.parseWeights("1, 0.5"), [1, 0.5])
        // The JSON of existing checkpoints (strings, as the user typed them) still decodes; encoding writes the
        // canonical names (today's raw values).
        let old = #"{"levels":["pixel","part","distribution"],"pixelNeighbours":1,"partForm":"grid:3, 2","#
            + #""partNeighbours":1,"distance":"wasserstein","distributionEps":0.01,"fusion":"fixed","#
            + #""fusionNormalization":"per-level","way":5}"#
        let decoded = try JSONDecoder().decode(MetricConfiguration.self, from: Data(old.utf8))
        XCTAssertEqual(decoded.partForm, .grid([3, 2]))
        XCTAssertEqual(decoded.distance, .w2)
        XCTAssertEqual(decoded.fusion, .fixed)
        let text = String(decoding: try JSONEncoder().encode(decoded), as: UTF8.self)
        XCTAssertTrue(text.contains(#""partForm":"grid:3,2""#) && text.contains(#""distance":"w2""#)
                      && text.contains(#""fusion":"fixed""#), text)
        XCTAssertThrowsError(try JSONDecoder().decode(MetricConfiguration.self, from: Data(
            old.replacingOccurrences(of: "wasserstein", with: "hellinger").utf8)))
        c.pixelNeighbours = 0
        XCTAssertTrue(message { try c.validate() }.contains("pixel neighbours K = 0"))
        XCTAssertEqual(fields { try c.validate() }, ["pixelNeighbours"])
        c.pixelNeighbours = 3
        c.fusion = .fixed
        c.fixedWeights = [1, 2]
        XCTAssertTrue(message { try c.validate() }.contains("give 3 non-negative weights"))
        c.fixedWeights = [1, 0.5, 0.5]
        XCTAssertEqual(message { try c.validate() }, "")
        c.distributionEps = 0
        XCTAssertTrue(message { try c.validate() }.contains("distribution eps"))
        // JSON round trip.
        let back = try JSONDecoder().decode(MetricConfiguration.self, from: JSONEncoder().encode(c))
        XCTAssertEqual(back, c)
    }

    func testMakeMetricMatchesHandBuiltHeads() throws {
        var c = MetricConfiguration(levels: [.pixel, .part, .distribution], pixelNeighbours: 2, partForm: .grid([2, 1]),
                                    partNeighbours: 1, distance: .w2)
        c.distributionEps = 0.05
        var m = try c.makeMetric(threads: 1)
        let s = maps(4, seed: 1), q = maps(3, seed: 2), y = [0, 1, 0, 1]
        let (out, _) = try m.forward(support: s, labels: y, query: q, way: 2, training: false)
        let px = try PixelLevel(neighbours: 2, threads: 1).forward(support: s, labels: y, query: q, way: 2).scores
        let pt = try PartLevel(form: .grid([2, 1]), neighbours: 1, threads: 1).forward(support: s, labels: y, query: q, way: 2).scores
        let ds = try DistributionLevel(distance: .wasserstein2, eps: 0.05, threads: 1).forward(support: s, labels: y, query: q, way: 2).scores
        XCTAssertEqual(out.levelScores[.pixel]!.data, px.data)
        XCTAssertEqual(out.levelScores[.part]!.data, pt.data)
        XCTAssertEqual(out.levelScores[.distribution]!.data, ds.data)
    }

    func testFixedFusionInsideTheMetric() throws {
        var c = MetricConfiguration(levels: [.pixel, .distribution], fusion: .fixed)
        var m = try c.makeMetric(threads: 1)
        let s = maps(4, seed: 3), q = maps(2, seed: 4), y = [0, 1, 1, 0]
        let (out, cache) = try m.forward(support: s, labels: y, query: q, way: 2, training: true)
        let ref = FixedFusion(weights: [1, 0.5]).forward([out.levelScores[.pixel]!, out.levelScores[.distribution]!]).0
        XCTAssertEqual(out.logits.data, ref.data)
        // Backward runs through the fixed fusion (no learned weights).
        var g = LearnedFusion.Gradients(levels: 2)
        let (dsu, dq) = try m.backward(Tensor(shape: [2, 2], data: [1, -1, 0.5, -0.5]), cache: cache, fusionGradients: &g)
        XCTAssertEqual(g.weights, [0, 0])
        XCTAssertTrue(dsu.data.contains { $0 != 0 } && dq.data.contains { $0 != 0 })
        c.fixedWeights = [0, 1]
        m = try c.makeMetric(threads: 1)
        let (o2, _) = try m.forward(support: s, labels: y, query: q, way: 2, training: false)
        XCTAssertEqual(accuracy(of: o2.logits, labels: [0, 1]), accuracy(of: out.levelScores[.distribution]!, labels: [0, 1]))
    }

    /// Scores where the part level carries the label and the pixel level is noise: the refit weights put the
    /// weight on the part level and sit at a minimum of the cross-entropy.
    func testFusionRefitFindsTheInformativeLevelAndAnOptimum() throws {
        var rng = SeededRNG(seed: 11)
        var episodes: [LevelScores] = []
        for _ in 0..<20 {
            let labels = (0..<10).map { $0 % 5 }
            var informative = Tensor(shape: [10, 5]), noise = Tensor(shape: [10, 5])
            for i in 0..<10 {
                for c in 0..<5 {
                    informative.data[i * 5 + c] = Float(rng.nextGaussian()) + (c == labels[i] ? 1.5 : 0)
                    noise.data[i * 5 + c] = 10 + 3 * Float(rng.nextGaussian())
                }
            }
            episodes.append(LevelScores(scores: [.pixel: noise, .part: informative], labels: labels))
        }
        let f = try FusionRefit.fit(levels: [.pixel, .part], on: episodes, iterations: 600)
        XCTAssertGreaterThan(f.weights[1], 1)
        XCTAssertLessThan(abs(f.weights[0]), f.weights[1] / 4)
        // Statistics: the mean of the noise level is ~10.
        XCTAssertEqual(f.runningMean[0], 10, accuracy: 0.5)
        // Mean cross-entropy as a function of the weights; its finite-difference gradient vanishes at the fit.
        func loss(_ w: [Float]) -> Double {
            var g = f
            g.weights = w
            var total = 0.0, n = 0.0
            for e in episodes {
                let (z, _) = g.forward([e.scores[.pixel]!, e.scores[.part]!], training: false)
                let ce = try! SoftmaxCrossEntropy.forward(logits: z, labels: e.labels)
                total += ce.loss * Double(e.labels.count); n += Double(e.labels.count)
            }
            return total / n
        }
        let h: Float = 1e-2
        for k in 0..<2 {
            var a = f.weights, b = f.weights
            a[k] += h; b[k] -= h
            let d = (loss(a) - loss(b)) / Double(2 * h)
            XCTAssertLessThan(abs(d), 5e-3, "dCE/dw[\(k)] = \(d) at the refit weights \(f.weights)")
        }
        XCTAssertLessThan(loss(f.weights), loss([1, 1]))
        // A brute-force minimiser of the same loss: a grid of step 0.05, then a finer grid of step 0.005 around
        // its best point. The refit's full-batch Adam (constant step 0.05) ends within about one step of the
        // minimiser, at a loss within 1e-3 of the minimum.
        func gridMinimum(_ centre: [Float], radius: Float, step: Float) -> (w: [Float], loss: Double) {
            var best = (w: centre, loss: loss(centre))
            let n = Int((radius / step).rounded())
            for i in -n...n {
                for j in -n...n {
                    let w = [centre[0] + Float(i) * step, centre[1] + Float(j) * step]
                    let l = loss(w)
                    if l < best.loss { best = (w, l) }
                }
            }
            return best
        }
        let coarse = gridMinimum([1, 3], radius: 3, step: 0.05)
        let fine = gridMinimum(coarse.w, radius: 0.05, step: 0.005)
        XCTAssertLessThanOrEqual(loss(f.weights), fine.loss + 1e-3, "refit \(f.weights) vs grid \(fine.w)")
        assertClose(f.weights, fine.w.map(Double.init), atol: 0.06, rtol: 0, "refit weights vs brute force")
        XCTAssertThrowsError(try FusionRefit.fit(levels: [.distribution], on: episodes)) {
            XCTAssertTrue("\($0)".contains("no distribution-level scores"), "\($0)")
        }
        XCTAssertThrowsError(try FusionRefit.fit(levels: [.part], on: [])) {
            XCTAssertTrue("\($0)".contains("no validation episodes"), "\($0)")
        }
    }

    func testSVGChartsAreWellFormed() throws {
        let line = SVGChart.lines(title: "loss <a&b>", xLabel: "episode", yLabel: "ce",
                                  series: [.init(name: "train", points: [(0, 1), (10, 0.5), (20, 0.25)]),
                                           .init(name: "val", points: [(10, 0.7), (20, .nan)])])
        let bars = SVGChart.bars(title: "ablation", yLabel: "%", labels: ["a", "b"], values: [90, 80], errors: [1, 2])
        for doc in [line, bars, SVGChart.stack([line, bars], width: 560, height: 360)] {
            let parser = XMLParser(data: Data(doc.utf8))
            XCTAssertTrue(parser.parse(), "not well-formed: \(parser.parserError.map { "\($0)" } ?? "")")
        }
        XCTAssertTrue(line.contains("loss &lt;a&amp;b&gt;"))
        XCTAssertEqual(line.components(separatedBy: "<polyline").count - 1, 1, "the NaN-only series draws no line")
        XCTAssertEqual(bars.components(separatedBy: "<rect x=").count - 1, 2)
    }
}
