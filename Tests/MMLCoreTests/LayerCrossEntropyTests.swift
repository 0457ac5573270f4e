import MMLCore
import MMLTestSupport
import XCTest

/// Softmax cross-entropy: value against a direct double formula, gradient against finite differences, errors,
/// and the tiny overfit test that exercises backbone + head + loss + optimiser together.
final class LayerCrossEntropyTests: XCTestCase {
    func testValueAndGradient() throws {
        var z = LayerFD.random([4, 5], seed: 1, std: 3)
        let labels = [0, 4, 2, 2]
        let out = try SoftmaxCrossEntropy.forward(logits: z, labels: labels)
        var ref = 0.0
        for i in 0..<4 {
            let row = (0..<5).map { Double(z.data[i * 5 + $0]) }
            ref += log(row.map { exp($0) }.reduce(0, +)) - row[labels[i]]
        }
        XCTAssertEqual(out.loss, ref / 4, accuracy: 1e-5)
        let g = SoftmaxCrossEntropy.backward(out)
        LayerFD.check("cross-entropy", analytic: g, probes: Array(0..<20), get: { z.data[$0] }, set: { z.data[$0] = $1 },
                 loss: { try! SoftmaxCrossEntropy.forward(logits: z, labels: labels).loss })
        // large logits stay finite
        let big = try SoftmaxCrossEntropy.forward(logits: Tensor(shape: [1, 2], data: [1000, -1000]), labels: [1])
        XCTAssertEqual(big.loss, 2000, accuracy: 1e-2)
    }

    func testErrors() {
        let z = Tensor(shape: [2, 3])
        XCTAssertThrowsError(try SoftmaxCrossEntropy.forward(logits: z, labels: [0, 3])) {
            XCTAssertTrue("\($0)".contains("label 3 of row 1 is outside 0..<3"), "\($0)")
        }
        XCTAssertThrowsError(try SoftmaxCrossEntropy.forward(logits: z, labels: [0])) {
            XCTAssertTrue("\($0)".contains("1 labels for 2 rows"), "\($0)")
        }
        XCTAssertThrowsError(try SoftmaxCrossEntropy.forward(logits: Tensor(shape: [1, 2], data: [.nan, 0]), labels: [0])) {
            XCTAssertTrue("\($0)".contains("NaN or Inf"), "\($0)")
        }
    }

    /// Ten random images, ten classes: a few Adam steps on Conv-4 + global pool + linear head drive the loss down.
    func testTinyOverfit() throws {
        let backbone = try makeBackbone(BackboneConfiguration(kind: .conv4, inputChannels: 1, widths: [8, 8, 8, 8],
                                                              initialization: .kaiming, seed: 3))
        var g = SeededRNG(state: 4)
        let pool = GlobalAvgPool2D(), flatten = Flatten()
        let head = Linear(inputFeatures: 8, outputFeatures: 10, initialization: .kaimingNormal(negativeSlope: 0), generator: &g)
        let x = LayerFD.random([10, 1, 16, 16], seed: 5)
        let labels = Array(0..<10)
        let opt = try Adam(learningRate: 0.01)
        var losses: [Double] = []
        for _ in 0..<60 {
            backbone.zeroGradients()
            head.zeroGradients()
            let (f, fc) = backbone.forward(x, training: true)
            let (p, pc) = pool.forward(f, training: true)
            let (v, vc) = flatten.forward(p, training: true)
            let (z, zc) = head.forward(v, training: true)
            let out = try SoftmaxCrossEntropy.forward(logits: z, labels: labels)
            losses.append(out.loss)
            let dz = SoftmaxCrossEntropy.backward(out)
            let dv = head.backward(dz, cache: zc)
            let dp = flatten.backward(dv, cache: vc)
            let df = pool.backward(dp, cache: pc)
            _ = backbone.backward(df, cache: fc, inputGradient: false)
            opt.step([backbone, head])
        }
        XCTAssertGreaterThan(losses[0], 1.5, "starts far from fitted")
        XCTAssertLessThan(losses.last!, 0.3 * losses[0], "loss sequence \(losses.map { String(format: "%.3f", $0) })")
    }
}
