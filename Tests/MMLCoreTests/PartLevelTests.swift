import MMLCore
import MMLTestSupport
import XCTest

final class PartLevelTests: XCTestCase {
    /// Brute force in Double of both part forms.
    func bruteForce(_ form: PartLevel.Form, support: Tensor, labels: [Int], query: Tensor, way: Int, k: Int) -> [Double] {
        let c = support.shape[1], h = support.shape[2], w = support.shape[3], m = h * w
        func parts(_ t: Tensor, _ n: Int) -> [[Double]] {
            switch form {
            case .grid(let grids):
                var out: [[Double]] = []
                for g in grids {
                    for gy in 0..<g {
                        for gx in 0..<g {
                            let y0 = gy * h / g, y1 = ((gy + 1) * h + g - 1) / g
                            let x0 = gx * w / g, x1 = ((gx + 1) * w + g - 1) / g
                            var v = [Double](repeating: 0, count: c)
                            for ch in 0..<c {
                                for y in y0..<y1 { for x in x0..<x1 { v[ch] += Double(t.data[((n * c + ch) * h + y) * w + x]) } }
                                v[ch] /= Double((y1 - y0) * (x1 - x0))
                            }
                            let norm = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
                            out.append(v.map { $0 / norm })
                        }
                    }
                }
                return out
            case .channels:
                var norms = [Double](repeating: 0, count: m)
                for p in 0..<m { for ch in 0..<c { norms[p] += pow(Double(t.data[(n * c + ch) * m + p]), 2) } }
                return (0..<c).map { ch in (0..<m).map { p in Double(t.data[(n * c + ch) * m + p]) / max(norms[p].squareRoot(), 1e-12) } }
            }
        }
        var out = [Double](repeating: 0, count: query.shape[0] * way)
        for q in 0..<query.shape[0] {
            for x in parts(query, q) {
                for cls in 0..<way {
                    let sims = labels.indices.filter { labels[$0] == cls }.flatMap { parts(support, $0) }
                        .map { s in zip(x, s).reduce(0) { $0 + $1.0 * $1.1 } }
                    out[q * way + cls] += sims.sorted(by: >).prefix(k).reduce(0, +)
                }
            }
        }
        return out
    }

    func testBothFormsMatchBruteForceAndGradients() throws {
        var rng = TestRNG(seed: 41)
        let labels = [0, 1, 2, 1], way = 3
        let support = rng.tensor([4, 3, 5, 4]), query = rng.tensor([2, 3, 5, 4])
        let r = rng.tensor([2, way])
        for form: PartLevel.Form in [.grid([3, 2]), .grid([1, 2]), .channels] {
            for k in [1, 2] {
                let head = PartLevel(form: form, neighbours: k, threads: 1)
                let (s, cache) = try head.forward(support: support, labels: labels, query: query, way: way, keepCache: true)
                let ref = bruteForce(form, support: support, labels: labels, query: query, way: way, k: k)
                for i in 0..<ref.count { XCTAssertEqual(Double(s.data[i]), ref[i], accuracy: 1e-4 + 1e-5 * abs(ref[i]), "\(form) k=\(k)") }
                let (ds, dq) = head.backward(r, cache: cache!)
                func loss(_ sp: Tensor, _ q: Tensor) -> Double {
                    bruteForce(form, support: sp, labels: labels, query: q, way: way, k: k).enumerated()
                        .reduce(0) { $0 + $1.1 * Double(r.data[$1.0]) }
                }
                let h = 1e-4
                for (t, g, isSupport) in [(support, ds, true), (query, dq, false)] {
                    for i in stride(from: 0, to: t.count, by: 2) {
                        var p = t, mn = t
                        p.data[i] += Float(h); mn.data[i] -= Float(h)
                        let fd = isSupport ? (loss(p, query) - loss(mn, query)) / (2 * h) : (loss(support, p) - loss(support, mn)) / (2 * h)
                        XCTAssertEqual(Double(g.data[i]), fd, accuracy: 5e-3 + 2e-2 * abs(fd), "\(form) k=\(k) \(isSupport) \(i)")
                    }
                }
            }
        }
    }

    func testGridLargerThanMapIsAClearError() {
        var rng = TestRNG(seed: 42)
        let s = rng.tensor([2, 3, 2, 2]), q = rng.tensor([1, 3, 2, 2])
        XCTAssertThrowsError(try PartLevel(form: .grid([3])).forward(support: s, labels: [0, 1], query: q, way: 2)) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("grid sizes [3]") ?? false, "\($0)")
        }
    }
}
