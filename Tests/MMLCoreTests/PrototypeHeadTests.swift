import MMLCore
import MMLTestSupport
import XCTest

final class PrototypeHeadTests: XCTestCase {
    func loss(_ t: Tensor, _ r: Tensor) -> Double { zip(t.data, r.data).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

    func testScoresAgainstBruteForceAndGradients() {
        var rng = TestRNG(seed: 5)
        let way = 3, d = 7
        let labels = [0, 1, 2, 0, 1, 2, 2]
        let support = rng.tensor([labels.count, d])
        let query = rng.tensor([4, d])
        for kind in PrototypeDistance.allCases {
            let head = PrototypeHead(distance: kind)
            let (s, cache) = head.forward(support: support, labels: labels, query: query, way: way)
            // Brute force one score.
            var proto = [Double](repeating: 0, count: d)
            let members = labels.indices.filter { labels[$0] == 2 }
            for r in members { for j in 0..<d { proto[j] += Double(support.data[r * d + j]) / Double(members.count) } }
            let x = (0..<d).map { Double(query.data[1 * d + $0]) }
            let expected: Double
            switch kind {
            case .squaredEuclidean: expected = -zip(x, proto).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            case .cosine:
                let dot = zip(x, proto).reduce(0) { $0 + $1.0 * $1.1 }
                expected = dot / (x.reduce(0) { $0 + $1 * $1 }.squareRoot() * proto.reduce(0) { $0 + $1 * $1 }.squareRoot())
            }
            XCTAssertEqual(Double(s.data[1 * way + 2]), expected, accuracy: 1e-5)
            let r = rng.tensor([4, way])
            let (gs, gq) = head.backward(r, cache: cache)
            let h: Float = 1e-2
            for i in 0..<support.count {
                var p = support, m = support
                p.data[i] += h; m.data[i] -= h
                let fd = (loss(head.forward(support: p, labels: labels, query: query, way: way).0, r)
                          - loss(head.forward(support: m, labels: labels, query: query, way: way).0, r)) / Double(2 * h)
                XCTAssertEqual(Double(gs.data[i]), fd, accuracy: 2e-3 + 1e-2 * abs(fd), "\(kind) support \(i)")
            }
            for i in 0..<query.count {
                var p = query, m = query
                p.data[i] += h; m.data[i] -= h
                let fd = (loss(head.forward(support: support, labels: labels, query: p, way: way).0, r)
                          - loss(head.forward(support: support, labels: labels, query: m, way: way).0, r)) / Double(2 * h)
                XCTAssertEqual(Double(gq.data[i]), fd, accuracy: 2e-3 + 1e-2 * abs(fd), "\(kind) query \(i)")
            }
        }
    }
}
