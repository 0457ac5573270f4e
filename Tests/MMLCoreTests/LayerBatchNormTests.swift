import MMLCore
import MMLTestSupport
import XCTest

/// BatchNorm's training / inference / frozen behaviour against statistics computed here in double.
final class LayerBatchNormTests: XCTestCase {
    func testTrainingUsesBatchStatisticsAndMovesRunningOnes() {
        var g = SeededRNG(state: 1)
        let bn = BatchNorm2D(channels: 2, momentum: 0.1, gammaStd: 0, generator: &g)
        let x = LayerFD.random([3, 2, 4, 4], seed: 2, std: 2)
        let y = bn.forward(x, training: true).output
        let m = 3 * 16
        for c in 0..<2 {
            var vals: [Double] = []
            for n in 0..<3 { for i in 0..<16 { vals.append(Double(x.data[(n * 2 + c) * 16 + i])) } }
            let mean = vals.reduce(0, +) / Double(m)
            let varB = vals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(m)
            for n in 0..<3 {
                for i in 0..<16 {
                    let k = (n * 2 + c) * 16 + i
                    let expect = (Double(x.data[k]) - mean) / (varB + 1e-5).squareRoot()
                    XCTAssertEqual(Double(y.data[k]), expect, accuracy: 1e-4)
                }
            }
            XCTAssertEqual(Double(bn.runningMean.value.data[c]), 0.1 * mean, accuracy: 1e-5)
            XCTAssertEqual(Double(bn.runningVariance.value.data[c]), 0.9 + 0.1 * varB * Double(m) / Double(m - 1), accuracy: 1e-4)
        }
    }

    func testInferenceAndFrozenUseRunningStatisticsWithoutUpdating() {
        var g = SeededRNG(state: 3)
        let bn = BatchNorm2D(channels: 2, gammaStd: 0, generator: &g)
        bn.runningMean.value = Tensor(shape: [2], data: [1, -1])
        bn.runningVariance.value = Tensor(shape: [2], data: [4, 0.25])
        bn.beta.value = Tensor(shape: [2], data: [0.5, 0])
        let x = LayerFD.random([2, 2, 3, 3], seed: 4)
        for (training, frozen) in [(false, false), (true, true)] {
            bn.freezesStatistics = frozen
            let y = bn.forward(x, training: training).output
            for k in 0..<x.count {
                let c = (k / 9) % 2
                let mu: Float = c == 0 ? 1 : -1, v: Float = c == 0 ? 4 : 0.25, b: Float = c == 0 ? 0.5 : 0
                XCTAssertEqual(y.data[k], (x.data[k] - mu) / (v + 1e-5).squareRoot() + b, accuracy: 1e-5)
            }
            XCTAssertEqual(bn.runningMean.value.data, [1, -1], "running mean unchanged (training \(training))")
            XCTAssertEqual(bn.runningVariance.value.data, [4, 0.25])
        }
        // and the same input in training mode with live statistics differs
        bn.freezesStatistics = false
        let yt = bn.forward(x, training: true).output
        let ye = bn.forward(x, training: false).output
        XCTAssertGreaterThan(zip(yt.data, ye.data).map { abs($0 - $1) }.max()!, 0.1)
    }

    func testMMLInitialisation() {
        var g = SeededRNG(state: 5)
        let bn = BatchNorm2D(channels: 4000, gammaStd: 0.02, generator: &g)
        let gm = bn.gamma.value.data.map(Double.init)
        let mean = gm.reduce(0, +) / Double(gm.count)
        let std = (gm.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(gm.count)).squareRoot()
        XCTAssertEqual(mean, 1, accuracy: 0.002)
        XCTAssertEqual(std, 0.02, accuracy: 0.002)
        XCTAssertEqual(bn.beta.value.data.allSatisfy { $0 == 0 }, true)
        XCTAssertEqual(bn.namedParameters(prefix: "bn").map(\.name), ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"])
    }
}
