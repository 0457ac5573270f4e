import MMLCore
import MMLTestSupport
import XCTest

final class PixelLevelTests: XCTestCase {
    /// Brute force in Double: normalise every descriptor, all cosines, top-K per (descriptor, class), sums.
    func bruteForce(support: Tensor, labels: [Int], query: Tensor, way: Int, k: Int) -> [Double] {
        let c = support.shape[1], m = support.shape.dropFirst(2).reduce(1, *)
        func desc(_ t: Tensor, _ n: Int, _ p: Int) -> [Double] {
            let v = (0..<c).map { Double(t.data[(n * c + $0) * m + p]) }
            let norm = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            return v.map { $0 / norm }
        }
        var out = [Double](repeating: 0, count: query.shape[0] * way)
        for q in 0..<query.shape[0] {
            for p in 0..<m {
                let x = desc(query, q, p)
                for cls in 0..<way {
                    var sims: [Double] = []
                    for (n, l) in labels.enumerated() where l == cls {
                        for pp in 0..<m { sims.append(zip(x, desc(support, n, pp)).reduce(0) { $0 + $1.0 * $1.1 }) }
                    }
                    out[q * way + cls] += sims.sorted(by: >).prefix(k).reduce(0, +)
                }
            }
        }
        return out
    }

    func testScoresMatchBruteForce() throws {
        var rng = TestRNG(seed: 21)
        for (way, shot, k, c, h) in [(3, 2, 3, 5, 3), (2, 1, 1, 7, 2), (4, 1, 4, 3, 2)] {
            let labels = (0..<(way * shot)).map { $0 % way }
            let support = rng.tensor([way * shot, c, h, h]), query = rng.tensor([5, c, h, h])
            let head = PixelLevel(neighbours: k, threads: 1)
            let (s, _) = try head.forward(support: support, labels: labels, query: query, way: way)
            let ref = bruteForce(support: support, labels: labels, query: query, way: way, k: k)
            for i in 0..<ref.count { XCTAssertEqual(Double(s.data[i]), ref[i], accuracy: 1e-4 + 1e-5 * abs(ref[i])) }
        }
    }

    func testGradientsMatchFiniteDifferences() throws {
        var rng = TestRNG(seed: 22)
        let way = 2, labels = [0, 1, 0], c = 4, h = 2
        let support = rng.tensor([3, c, h, h]), query = rng.tensor([2, c, h, h])
        let head = PixelLevel(neighbours: 2, threads: 1)
        let r = rng.tensor([2, way])
        func loss(_ s: Tensor, _ q: Tensor) -> Double {
            bruteForce(support: s, labels: labels, query: q, way: way, k: 2).enumerated()
                .reduce(0) { $0 + $1.1 * Double(r.data[$1.0]) }
        }
        let (_, cache) = try head.forward(support: support, labels: labels, query: query, way: way, keepCache: true)
        let (ds, dq) = head.backward(r, cache: cache!)
        let h2 = 1e-3
        for (t, g, isSupport) in [(support, ds, true), (query, dq, false)] {
            for i in 0..<t.count {
                var p = t, mnus = t
                p.data[i] += Float(h2); mnus.data[i] -= Float(h2)
                let fd = isSupport ? (loss(p, query) - loss(mnus, query)) / (2 * h2)
                                   : (loss(support, p) - loss(support, mnus)) / (2 * h2)
                // The top-K selection is piecewise constant; with random inputs a swap within +-h is unlikely.
                XCTAssertEqual(Double(g.data[i]), fd, accuracy: 5e-3 + 2e-2 * abs(fd), "\(isSupport ? "support" : "query") \(i)")
            }
        }
    }

    func testUserErrors() {
        var rng = TestRNG(seed: 23)
        let s = rng.tensor([2, 3, 2, 2]), q = rng.tensor([1, 3, 2, 2])
        let head = PixelLevel(neighbours: 1)
        XCTAssertThrowsError(try head.forward(support: s, labels: [0], query: q, way: 2)) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("1 support labels for 2 support maps") ?? false, "\($0)")
        }
        XCTAssertThrowsError(try head.forward(support: s, labels: [0, 0], query: q, way: 2)) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("class 1") ?? false, "\($0)")
        }
        XCTAssertThrowsError(try head.forward(support: s, labels: [0, 1], query: rng.tensor([1, 4, 2, 2]), way: 2))
        XCTAssertThrowsError(try PixelLevel(neighbours: 5).forward(support: s, labels: [0, 1], query: q, way: 2)) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("k = 5") ?? false, "\($0)")
        }
        var bad = q
        bad.data[3] = .nan
        XCTAssertThrowsError(try head.forward(support: s, labels: [0, 1], query: bad, way: 2))
    }
}
