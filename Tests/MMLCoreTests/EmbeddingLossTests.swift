import MMLCore
import XCTest

final class EmbeddingLossTests: XCTestCase {
    /// P x K unit-norm embeddings.
    func batch(p: Int, k: Int, dim: Int, seed: UInt64) -> (Tensor, [Int]) {
        let x = NegMarginFD.random([p * k, dim], seed: seed)
        return (L2Normalize.forward(x).output, (0..<(p * k)).map { $0 / k })
    }

    func naiveDistance(_ e: Tensor, _ i: Int, _ j: Int) -> Double {
        let d = e.shape[1]
        var s = 0.0
        for c in 0..<d { let t = Double(e.data[i * d + c]) - Double(e.data[j * d + c]); s += t * t }
        return (s + 1e-12).squareRoot()
    }

    /// Brute force over every explicit triplet (a, p, n): picks per anchor by sorting the candidate pairs,
    /// then the loss of the picked triplets.
    func bruteForce(_ e: Tensor, _ labels: [Int], _ cfg: EmbeddingLossConfiguration, beta: Double)
        -> (loss: Double, tuples: [EmbeddingTuple]) {
        let n = labels.count
        var triplets: [(a: Int, p: Int, n: Int, dap: Double, dan: Double)] = []
        for a in 0..<n { for p in 0..<n where p != a && labels[p] == labels[a] {
            for m in 0..<n where labels[m] != labels[a] {
                triplets.append((a, p, m, naiveDistance(e, a, p), naiveDistance(e, a, m)))
            }
        } }
        var picked: [EmbeddingTuple] = []
        var total = 0.0
        let alpha = Double(cfg.margin)
        for a in 0..<n {
            let mine = triplets.filter { $0.a == a }
            guard !mine.isEmpty else { continue }
            // positive: sort by (distance, index) ascending; easy takes the first, hardest the last distance
            let pos = Dictionary(grouping: mine, by: { $0.p }).map { ($0.key, $0.value[0].dap) }
            let asc = pos.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
            let desc = pos.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
            let p = cfg.positives == .easy ? asc[0].0 : desc[0].0
            let cands = mine.filter { $0.p == p }
            let semi = cands.filter { $0.dan > $0.dap }.sorted { $0.dan != $1.dan ? $0.dan < $1.dan : $0.n < $1.n }
            let t = semi.first ?? cands.sorted { $0.dan != $1.dan ? $0.dan > $1.dan : $0.n < $1.n }[0]
            picked.append(EmbeddingTuple(anchor: a, positive: p, negative: t.n))
            switch cfg.loss {
            case .triplet: total += max(0, t.dap - t.dan + alpha)
            case .margin: total += max(0, alpha + t.dap - beta) + max(0, alpha - (t.dan - beta))
            }
        }
        return (picked.isEmpty ? 0 : total / Double(picked.count), picked)
    }

    func testLossesMatchBruteForceOverExplicitTriplets() throws {
        let (e, labels) = batch(p: 4, k: 3, dim: 5, seed: 21)
        for loss in EmbeddingLossKind.allCases {
            for positives in [PositiveSelection.easy, .hardest] {
                let cfg = EmbeddingLossConfiguration(loss: loss, positives: positives, negatives: .semiHard, margin: 0.3)
                let f = try EmbeddingLoss(cfg, beta0: 0.9)
                let out = try f.compute(e, labels: labels, seed: 1)
                let ref = bruteForce(e, labels, cfg, beta: Double(Float(0.9)))
                XCTAssertEqual(out.tuples, ref.tuples, "\(loss) \(positives)")
                XCTAssertEqual(out.loss, ref.loss, accuracy: 1e-9, "\(loss) \(positives)")
                XCTAssertGreaterThan(out.loss, 0)
            }
        }
    }

    func testRandomPositivesAreSeededAndValid() throws {
        let (e, labels) = batch(p: 3, k: 4, dim: 4, seed: 5)
        let f = try EmbeddingLoss(EmbeddingLossConfiguration(loss: .triplet, positives: .random))
        let a = try f.compute(e, labels: labels, seed: 7), b = try f.compute(e, labels: labels, seed: 7)
        XCTAssertEqual(a.tuples, b.tuples)
        var differs = false
        for s in 8..<20 where try f.compute(e, labels: labels, seed: UInt64(s)).tuples != a.tuples { differs = true }
        XCTAssertTrue(differs, "different seeds should give different random positives")
        for t in a.tuples {
            XCTAssertNotEqual(t.anchor, t.positive)
            XCTAssertEqual(labels[t.anchor], labels[t.positive])
            XCTAssertNotEqual(labels[t.anchor], labels[t.negative])
        }
        // The loss of the chosen tuples, recomputed by hand.
        var total = 0.0
        for t in a.tuples {
            total += max(0, naiveDistance(e, t.anchor, t.positive) - naiveDistance(e, t.anchor, t.negative) + Double(Float(0.2)))
        }
        XCTAssertEqual(a.loss, total / Double(a.tuples.count), accuracy: 1e-9)
    }

    func testEasyPositiveIsTheNearestSameClassSampleWithDeterministicTies() throws {
        // Class 0: anchor 0 at the origin, samples 1 and 2 both at distance 1, sample 3 at distance 0.5 from 1.
        let e = Tensor(shape: [6, 2], data: [0, 0, 1, 0, 0, 1, 1.5, 0, 5, 5, 5, 6])
        let labels = [0, 0, 0, 0, 1, 1]
        let f = try EmbeddingLoss(EmbeddingLossConfiguration(loss: .triplet, positives: .easy))
        let t = try f.compute(e, labels: labels, seed: 0).tuples
        XCTAssertEqual(t[0].positive, 1, "tie between 1 and 2 at distance 1: the smaller index")
        XCTAssertEqual(t[1].positive, 3, "nearest to sample 1 is sample 3 (0.5)")
        XCTAssertEqual(t[2].positive, 0, "sample 2: 0 at 1, 1 at sqrt 2, 3 at 1.8")
        XCTAssertEqual(t[3].positive, 1)
        XCTAssertEqual(t[4].positive, 5)
        let h = try EmbeddingLoss(EmbeddingLossConfiguration(loss: .triplet, positives: .hardest))
        let th = try h.compute(e, labels: labels, seed: 0).tuples
        XCTAssertEqual(th[0].positive, 3, "farthest from the origin is sample 3 (1.5)")
        XCTAssertEqual(th[3].positive, 2, "farthest from sample 3: 2 at sqrt 3.25")
    }

    func testBatchesWithoutTuplesGiveZeroLossAndGradient() throws {
        for cfg in [EmbeddingLossConfiguration(loss: .triplet), EmbeddingLossConfiguration(loss: .margin,
                                                                                          negatives: .distanceWeighted)] {
            let f = try EmbeddingLoss(cfg)
            let (e, _) = batch(p: 1, k: 4, dim: 3, seed: 2)
            let one = try f.compute(e, labels: [0, 0, 0, 0], seed: 0)          // no negative
            let distinct = try f.compute(e, labels: [0, 1, 2, 3], seed: 0)     // no positive
            let same = try f.compute(Tensor(shape: [4, 3], repeating: 0.5), labels: [0, 0, 1, 1], seed: 0) // d = 0
            for out in [one, distinct] {
                XCTAssertEqual(out.loss, 0); XCTAssertTrue(out.tuples.isEmpty)
                XCTAssertEqual(out.gradient.data, [Float](repeating: 0, count: 12))
            }
            XCTAssertTrue(same.loss.isFinite); XCTAssertTrue(same.gradient.isFinite)
            XCTAssertEqual(f.beta.grad.data[0].isFinite, true)
        }
        let f = try EmbeddingLoss(EmbeddingLossConfiguration())
        XCTAssertThrowsError(try f.compute(Tensor(shape: [2, 2], data: [.nan, 0, 0, 1]), labels: [0, 1], seed: 0)) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("NaN or Inf") ?? false, "\($0)")
        }
        XCTAssertThrowsError(try f.compute(Tensor(shape: [3, 2]), labels: [0, 1], seed: 0)) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("N = 2 labels") ?? false, "\($0)")
        }
        XCTAssertThrowsError(try EmbeddingLoss(EmbeddingLossConfiguration(margin: -1))) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("margin alpha must be >= 0") ?? false, "\($0)")
        }
    }

    func testGradientsMatchFiniteDifferencesIncludingBeta() throws {
        for (loss, negatives) in [(EmbeddingLossKind.triplet, NegativeSelection.semiHard), (.margin, .semiHard),
                                  (.margin, .distanceWeighted), (.triplet, .distanceWeighted)] {
            for positives in PositiveSelection.allCases {
                var (e, labels) = batch(p: 3, k: 3, dim: 4, seed: 33)
                let f = try EmbeddingLoss(EmbeddingLossConfiguration(loss: loss, positives: positives,
                                                                     negatives: negatives, margin: 0.5), beta0: 1.0)
                f.zeroGradients()
                let out = try f.compute(e, labels: labels, seed: 3)
                XCTAssertGreaterThan(out.activeTuples, 0)
                // Hold the selected tuples fixed: FD of the loss of these tuples.
                let tuples = out.tuples
                func fixed() -> Double {
                    var total = 0.0
                    let b = Double(f.beta.value.data[0]), a = 0.5
                    for t in tuples {
                        let dap = naiveDistance(e, t.anchor, t.positive), dan = naiveDistance(e, t.anchor, t.negative)
                        total += loss == .triplet ? max(0, dap - dan + a) : max(0, a + dap - b) + max(0, a - (dan - b))
                    }
                    return total / Double(tuples.count)
                }
                XCTAssertEqual(out.loss, fixed(), accuracy: 1e-9)
                NegMarginFD.check("\(loss)/\(positives)/\(negatives) de", analytic: out.gradient.data, count: e.count,
                                  get: { e.data[$0] }, set: { e.data[$0] = $1 }, loss: fixed, eps: 1e-3)
                if loss == .margin {
                    NegMarginFD.check("beta", analytic: f.beta.grad.data, count: 1, get: { f.beta.value.data[$0] },
                                      set: { f.beta.value.data[$0] = $1 }, loss: fixed, eps: 1e-3)
                    XCTAssertEqual(f.namedParameters().map(\.name), ["beta"])
                } else {
                    XCTAssertTrue(f.namedParameters().isEmpty)
                }
            }
        }
    }

    func testDistanceWeightedSamplingFollowsInverseSphereDensity() throws {
        let f = try EmbeddingLoss(EmbeddingLossConfiguration(negatives: .distanceWeighted))
        let dim = 8
        let d = [0.3, 0.8, 1.0, 1.3, 1.5]
        let w = f.distanceWeights(d, dimension: dim)
        func q(_ x: Double) -> Double { let c = max(x, 0.5); return pow(c, 6) * pow(1 - c * c / 4, 2.5) }
        XCTAssertEqual(w[4], 0, "beyond the non-zero-loss cut-off 1.4")
        XCTAssertEqual(w.reduce(0, +), 1, accuracy: 1e-12)
        XCTAssertEqual(w[0] / w[2], q(1.0) / q(0.5), accuracy: 1e-9 * w[0] / w[2], "0.3 is clipped to 0.5")
        XCTAssertEqual(w[1] / w[3], q(1.3) / q(0.8), accuracy: 1e-9 * w[1] / w[3])
        XCTAssertEqual(f.distanceWeights([1.5, 1.9], dimension: dim), [0, 0])
        // Empirical frequencies over anchors: anchor 0 with negatives at known distances.
        var pts: [Float] = [1, 0, 0.995, 0.0998]       // anchor, positive (close)
        let angles: [Float] = [0.7, 1.6]                // chord distances 2 sin(a/2): 0.686, 1.435 (excluded)
        for a in angles { pts += [cos(a), sin(a)] }
        let e = Tensor(shape: [4, 2], data: pts)
        let g = try EmbeddingLoss(EmbeddingLossConfiguration(negatives: .distanceWeighted))
        var counts = [0, 0]
        for s in 0..<200 {
            let t = try g.compute(e, labels: [0, 0, 1, 2], seed: UInt64(s)).tuples[0]
            counts[t.negative - 2] += 1
        }
        XCTAssertEqual(counts, [200, 0], "the only negative below 1.4 is always drawn")
    }
}
