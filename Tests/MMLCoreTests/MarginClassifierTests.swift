import MMLCore
import XCTest

/// Central-difference checks for the negative-margin tests: analytic vs (L(v + e) - L(v - e)) / 2e with
/// e = 1e-2 (Float inputs, Double losses); passes when |a - n| <= 2e-3 + 3e-2 |n|.
enum NegMarginFD {
    static func check(_ name: String, analytic: [Float], count: Int, get: (Int) -> Float, set: (Int, Float) -> Void,
                      loss: () throws -> Double, eps: Float = 1e-2, file: StaticString = #filePath,
                      line: UInt = #line) rethrows {
        for i in 0..<count {
            let v = get(i)
            set(i, v + eps); let lp = try loss()
            set(i, v - eps); let lm = try loss()
            set(i, v)
            let num = (lp - lm) / (2 * Double(eps))
            XCTAssertEqual(Double(analytic[i]), num, accuracy: 2e-3 + 3e-2 * abs(num),
                           "\(name)[\(i)]", file: file, line: line)
        }
    }

    static func random(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
        var g = SeededRNG(seed: seed)
        return Tensor(shape: shape, normalMean: 0, std: std, generator: &g)
    }
}

final class MarginClassifierTests: XCTestCase {
    /// Naive logits in Double, straight from METHOD.md section 3.
    func naiveLogits(_ kind: ClassifierHeadKind, x: Tensor, w: Tensor, b: Tensor?, s: Double, m: Double,
                     labels: [Int]) -> [[Double]] {
        let n = x.shape[0], d = x.shape[1], k = w.shape[0]
        var out: [[Double]] = []
        for i in 0..<n {
            var z = [Double](repeating: 0, count: k)
            let xi = (0..<d).map { Double(x.data[i * d + $0]) }
            let xnorm = xi.map { $0 * $0 }.reduce(0, +).squareRoot()
            for j in 0..<k {
                let wj = (0..<d).map { Double(w.data[j * d + $0]) }
                let dot = zip(xi, wj).map { $0 * $1 }.reduce(0, +)
                switch kind {
                case .softmax, .negSoftmax: z[j] = dot + (b.map { Double($0.data[j]) } ?? 0)
                case .cosine, .negCosine: z[j] = dot / (xnorm * wj.map { $0 * $0 }.reduce(0, +).squareRoot())
                }
            }
            switch kind {
            case .softmax: break
            case .cosine: z = z.map { s * $0 }
            case .negCosine: z = z.enumerated().map { s * ($1 - ($0 == labels[i] ? m : 0)) }
            case .negSoftmax:
                let lo = z.min()!
                z = z.enumerated().map { s * ($1 - lo - ($0 == labels[i] ? m : 0)) }
            }
            out.append(z)
        }
        return out
    }

    func testForwardMatchesNaiveFormulas() throws {
        let x = NegMarginFD.random([6, 5], seed: 1)
        let labels = [0, 3, 2, 1, 3, 0]
        for kind in ClassifierHeadKind.allCases {
            let head = try MarginClassifier(kind: kind, inputFeatures: 5, classes: 4, margin: -0.07, seed: 9)
            if let b = head.bias { b.value = NegMarginFD.random([4], seed: 3) }
            let ref = naiveLogits(kind, x: x, w: head.weight.value, b: head.bias?.value, s: Double(head.scale),
                                  m: -0.07, labels: labels)
            let z = try head.forward(x, labels: labels).logits
            for i in 0..<6 { for j in 0..<4 {
                XCTAssertEqual(Double(z.data[i * 4 + j]), ref[i][j], accuracy: 1e-4 * max(1, abs(ref[i][j])),
                               "\(kind) [\(i), \(j)]")
            } }
        }
    }

    func testNegativeMarginRaisesTheTargetLogit() throws {
        let x = NegMarginFD.random([3, 4], seed: 2)
        let labels = [1, 0, 2]
        for kind in [ClassifierHeadKind.negCosine, .negSoftmax] {
            let neg = try MarginClassifier(kind: kind, inputFeatures: 4, classes: 3, margin: -0.1, seed: 5)
            let zero = try MarginClassifier(kind: kind, inputFeatures: 4, classes: 3, margin: 0, seed: 5)
            let pos = try MarginClassifier(kind: kind, inputFeatures: 4, classes: 3, margin: 0.1, seed: 5)
            let zn = try neg.forward(x, labels: labels).logits, z0 = try zero.forward(x, labels: labels).logits
            let zp = try pos.forward(x, labels: labels).logits
            for i in 0..<3 { for j in 0..<3 {
                let k = i * 3 + j
                if j == labels[i] {
                    XCTAssertEqual(zn.data[k] - z0.data[k], neg.scale * 0.1, accuracy: 1e-4, "\(kind) raised")
                    XCTAssertEqual(zp.data[k] - z0.data[k], -pos.scale * 0.1, accuracy: 1e-4, "\(kind) lowered")
                } else {
                    XCTAssertEqual(zn.data[k], z0.data[k], "\(kind) non-target unchanged")
                }
            } }
            // A negative margin lowers the training loss of the same weights; a positive one raises it.
            let ln = try neg.trainingStep(x, labels: labels).loss, l0 = try zero.trainingStep(x, labels: labels).loss
            let lp = try pos.trainingStep(x, labels: labels).loss
            XCTAssertLessThan(ln, l0); XCTAssertLessThan(l0, lp)
            // Prediction ignores the margin.
            XCTAssertEqual(try neg.predict(x), try zero.predict(x))
        }
        // softmax and cosine have no margin.
        XCTAssertEqual(try MarginClassifier(kind: .cosine, inputFeatures: 4, classes: 3, margin: -0.3, seed: 1).margin, 0)
    }

    func testGradientsMatchFiniteDifferences() throws {
        let labels = [0, 3, 2, 1, 3]
        for kind in ClassifierHeadKind.allCases {
            var x = NegMarginFD.random([5, 6], seed: 11)
            let head = try MarginClassifier(kind: kind, inputFeatures: 6, classes: 4,
                                            scale: kind == .softmax ? nil : 4, margin: -0.2, seed: 7)
            func loss() throws -> Double {
                let z = try head.forward(x, labels: labels).logits
                return try SoftmaxCrossEntropy.forward(logits: z, labels: labels).loss
            }
            head.zeroGradients()
            let dx = try head.trainingStep(x, labels: labels).dx
            try NegMarginFD.check("\(kind) dx", analytic: dx.data, count: x.count, get: { x.data[$0] },
                                  set: { x.data[$0] = $1 }, loss: loss)
            let w = head.weight
            try NegMarginFD.check("\(kind) dW", analytic: w.grad.data, count: w.value.count, get: { w.value.data[$0] },
                                  set: { w.value.data[$0] = $1 }, loss: loss)
            if let b = head.bias {
                try NegMarginFD.check("\(kind) db", analytic: b.grad.data, count: 4, get: { b.value.data[$0] },
                                      set: { b.value.data[$0] = $1 }, loss: loss)
            }
        }
    }

    func testParametersAndErrors() throws {
        let h = try MarginClassifier(kind: .softmax, inputFeatures: 3, classes: 2, seed: 0)
        XCTAssertEqual(h.namedParameters(prefix: "head").map(\.name), ["head.weight", "head.bias"])
        let c = try MarginClassifier(kind: .negCosine, inputFeatures: 3, classes: 2, seed: 0)
        XCTAssertEqual(c.namedParameters(prefix: "head").map(\.name), ["head.weight"])
        XCTAssertEqual(c.scale, 30)
        XCTAssertEqual(try MarginClassifier(kind: .negSoftmax, inputFeatures: 3, classes: 2, seed: 0).scale, 5)
        XCTAssertThrowsError(try MarginClassifier(kind: .negCosine, inputFeatures: 3, classes: 2, scale: 0, seed: 0)) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("scale must be a positive number") ?? false, "\($0)")
        }
        XCTAssertThrowsError(try c.forward(Tensor(shape: [2, 3]), labels: [0, 5])) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("label 5 of row 1 is outside 0..<2") ?? false, "\($0)")
        }
        XCTAssertThrowsError(try c.forward(Tensor(shape: [2, 4]), labels: nil)) {
            XCTAssertTrue(($0 as? MMLError)?.message.contains("features must be (N, 3)") ?? false, "\($0)")
        }
        // A zero feature row gives finite logits and gradients.
        let out = try c.trainingStep(Tensor(shape: [1, 3]), labels: [1])
        XCTAssertTrue(out.loss.isFinite); XCTAssertTrue(out.dx.isFinite)
    }

    func testL2NormalizeAndPoolingGradients() throws {
        var x = NegMarginFD.random([3, 4], seed: 4)
        let w = NegMarginFD.random([3, 4], seed: 5)
        func loss() -> Double {
            let y = L2Normalize.forward(x).output
            return zip(y.data, w.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let (y, cache) = L2Normalize.forward(x)
        for r in 0..<3 {
            XCTAssertEqual((0..<4).reduce(Float(0)) { $0 + y.data[r * 4 + $1] * y.data[r * 4 + $1] }, 1, accuracy: 1e-5)
        }
        let dx = L2Normalize.backward(w, cache: cache)
        NegMarginFD.check("l2 dx", analytic: dx.data, count: x.count, get: { x.data[$0] }, set: { x.data[$0] = $1 },
                          loss: loss)
        let m = Tensor(shape: [1, 2, 2, 2], data: [1, 2, 3, 4, 5, 6, 7, 9])
        XCTAssertEqual(GlobalAveragePool.forward(m).data, [2.5, 6.75])
        XCTAssertEqual(GlobalAveragePool.backward(Tensor(shape: [1, 2], data: [4, 8]), inputShape: m.shape).data,
                       [1, 1, 1, 1, 2, 2, 2, 2])
    }
}
