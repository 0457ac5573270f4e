import MMLCore
import MMLTestSupport
import XCTest

/// Every layer's backward against central finite differences (see `FD` for the tolerance).
final class LayerGradientTests: XCTestCase {
    /// Checks dL/dx and dL/dparameter for a layer under L = sum w * forward(x).
    func checkLayer<L: Layer>(_ name: String, _ layer: L, input: Tensor, training: Bool = true, probes: Int = 6,
                              file: StaticString = #filePath, line: UInt = #line) {
        var x = input
        let (y0, cache) = layer.forward(x, training: training)
        let w = LayerFD.weights(like: y0, seed: 99)
        layer.zeroGradients()
        let dx = layer.backward(w, cache: cache)
        XCTAssertEqual(dx.shape, x.shape, "\(name) dx shape", file: file, line: line)
        let params = layer.namedParameters().filter { $0.parameter.isTrainable }
        let grads = params.map { $0.parameter.grad }
        // Running statistics move on every training forward; restore them so the loss is a fixed function.
        let buffers = layer.namedParameters().filter { !$0.parameter.isTrainable }.map { ($0.parameter, $0.parameter.value) }
        func loss() -> Double {
            let y = layer.forward(x, training: training).output
            for (p, v) in buffers { p.value = v }
            return LayerFD.dot(y, w)
        }
        LayerFD.check("\(name) dx", analytic: dx, probes: LayerFD.probes(x.count, probes, seed: 1),
                 get: { x.data[$0] }, set: { x.data[$0] = $1 }, loss: loss, file: file, line: line)
        for (k, (pname, p)) in params.enumerated() {
            LayerFD.check("\(name) d\(pname)", analytic: grads[k], probes: LayerFD.probes(p.value.count, probes, seed: 2),
                     get: { p.value.data[$0] }, set: { p.value.data[$0] = $1 }, loss: loss, file: file, line: line)
        }
    }

    func testConv2DGradients() {
        var g = SeededRNG(state: 1)
        let conv = Conv2D(inputChannels: 3, outputChannels: 5, kernelSize: 3, stride: 2, padding: 1, bias: true,
                          initialization: .normal(std: 0.3), generator: &g)
        checkLayer("conv 3x3/2", conv, input: LayerFD.random([2, 3, 7, 6], seed: 2))
        let pw = Conv2D(inputChannels: 4, outputChannels: 2, kernelSize: 1, initialization: .normal(std: 0.5), generator: &g)
        checkLayer("conv 1x1", pw, input: LayerFD.random([3, 4, 5, 5], seed: 3))
    }

    /// The forward output and (dL/dx, dL/dW) of `conv` on x with the fast paths on, then off (`MML_CONV=im2col`'s
    /// switch); `check` sees the switch's state while it is set.
    func withAndWithoutFastPaths(_ conv: Conv2D, _ x: Tensor, seed: UInt64, check: (Bool) -> Void)
        -> [(y: [Float], rest: [Float])] {
        var results: [(y: [Float], rest: [Float])] = []
        for fast in [true, false] {
            Conv2D.winogradEnabled = fast
            defer { Conv2D.winogradEnabled = true }
            check(fast)
            conv.zeroGradients()
            let (y, c) = conv.forward(x, training: true)
            let dx = conv.backward(LayerFD.weights(like: y, seed: seed), cache: c)
            results.append((y.data, dx.data + conv.weight.grad.data))
        }
        return results
    }

    /// The Winograd path (3x3, stride 1, padding 1, no bias, >= 16 input channels): finite differences, and the same
    /// forward, dL/dx and dL/dW as the im2col path up to float rounding.
    func testWinogradConv2DGradientsAndAgreementWithIm2col() {
        var g = SeededRNG(state: 31)
        let conv = Conv2D(inputChannels: 16, outputChannels: 6, kernelSize: 3, padding: 1,
                          initialization: .normal(std: 0.1), generator: &g)
        XCTAssertTrue(conv.usesWinograd)
        checkLayer("winograd conv 3x3", conv, input: LayerFD.random([2, 16, 5, 7], seed: 32))
        let results = withAndWithoutFastPaths(conv, LayerFD.random([3, 16, 9, 8], seed: 33), seed: 34) {
            XCTAssertEqual(conv.usesWinograd, $0)
        }
        let both = results.map { $0.y + $0.rest }
        let worst = zip(both[0], both[1]).map { abs($0 - $1) - 1e-5 - 1e-5 * abs($1) }.max()!
        XCTAssertLessThanOrEqual(worst, 0, "winograd vs im2col")
        let small = Conv2D(inputChannels: 15, outputChannels: 6, kernelSize: 3, padding: 1, generator: &g)
        XCTAssertFalse(small.usesWinograd, "below 16 input channels the im2col path is used")
        let strided = Conv2D(inputChannels: 16, outputChannels: 6, kernelSize: 3, stride: 2, padding: 1, generator: &g)
        XCTAssertFalse(strided.usesWinograd)
    }

    /// The direct weight gradient (3x3, stride 1, padding 1, no bias, <= 8 input channels: a first layer): finite
    /// differences, the same forward bits as with it switched off (the forward stays on the GEMM), dL/dx and dL/dW
    /// as the im2col path's up to float rounding.
    func testDirectConv2DGradientsAndAgreementWithIm2col() {
        var g = SeededRNG(state: 35)
        let conv = Conv2D(inputChannels: 3, outputChannels: 6, kernelSize: 3, padding: 1,
                          initialization: .normal(std: 0.3), generator: &g)
        XCTAssertTrue(conv.usesDirect)
        XCTAssertFalse(conv.usesWinograd)
        checkLayer("direct conv 3x3", conv, input: LayerFD.random([2, 3, 5, 7], seed: 36))
        let results = withAndWithoutFastPaths(conv, LayerFD.random([3, 3, 9, 19], seed: 37), seed: 38) {
            XCTAssertEqual(conv.usesDirect, $0)
        }
        XCTAssertEqual(results[0].y, results[1].y, "the forward does not change with the direct weight gradient")
        let worst = zip(results[0].rest, results[1].rest).map { abs($0 - $1) - 1e-5 - 1e-5 * abs($1) }.max()!
        XCTAssertLessThanOrEqual(worst, 0, "direct vs im2col backward")
        let wide = Conv2D(inputChannels: 9, outputChannels: 6, kernelSize: 3, padding: 1, generator: &g)
        XCTAssertFalse(wide.usesDirect, "above 8 input channels the GEMM path is used")
        let strided = Conv2D(inputChannels: 3, outputChannels: 6, kernelSize: 3, stride: 2, padding: 1, generator: &g)
        XCTAssertFalse(strided.usesDirect)
        let biased = Conv2D(inputChannels: 3, outputChannels: 6, kernelSize: 3, padding: 1, bias: true, generator: &g)
        XCTAssertFalse(biased.usesDirect)
    }

    /// A first layer's dL/dx on the direct path comes from the im2col backward with no dW (the C kernel skips that
    /// GEMM): the same bits as the full im2col backward's dL/dx (the fast paths off), on 1 and 2 threads, and the
    /// weight gradient is the direct kernel's alone (as with `inputGradient: false`).
    func testDirectConv2DInputGradientIsTheFullBackwardsWithoutItsWeightGradient() {
        var g = SeededRNG(state: 39)
        let conv = Conv2D(inputChannels: 3, outputChannels: 7, kernelSize: 3, padding: 1,
                          initialization: .normal(std: 0.3), generator: &g)
        let x = LayerFD.random([5, 3, 11, 17], seed: 40)
        for threads in [1, 2] {
            conv.threads = threads
            var dxs: [Tensor] = [], dws: [Tensor] = []
            for fast in [true, false] {
                Conv2D.winogradEnabled = fast
                defer { Conv2D.winogradEnabled = true }
                XCTAssertEqual(conv.usesDirect, fast)
                conv.zeroGradients()
                let (y, c) = conv.forward(x, training: true)
                let dy = LayerFD.weights(like: y, seed: 41)
                dxs.append(conv.backward(dy, cache: c))
                dws.append(conv.weight.grad)
                if fast {
                    conv.zeroGradients()
                    XCTAssertNil(conv.backward(dy, cache: c, inputGradient: false))
                    XCTAssertEqual(conv.weight.grad, dws[0], "dW of the direct path, with or without dL/dx")
                }
            }
            XCTAssertEqual(dxs[0], dxs[1], "dL/dx: direct path vs the full im2col backward, threads \(threads)")
            XCTAssertNotEqual(dws[0], dws[1], "the two paths' dW differ in rounding (so the check above could fail)")
        }
    }

    func testConv2DBackwardAccumulatesIntoGradients() {
        var g = SeededRNG(state: 4)
        let conv = Conv2D(inputChannels: 2, outputChannels: 3, kernelSize: 3, padding: 1, generator: &g)
        let x = LayerFD.random([2, 2, 5, 5], seed: 5)
        let (y, c) = conv.forward(x, training: true)
        let dy = LayerFD.weights(like: y, seed: 6)
        _ = conv.backward(dy, cache: c)
        let once = conv.weight.grad
        _ = conv.backward(dy, cache: c)
        for i in 0..<once.count {
            XCTAssertEqual(conv.weight.grad.data[i], 2 * once.data[i], accuracy: 1e-5 + 1e-5 * abs(once.data[i]))
        }
    }

    func testBatchNormGradientsWithBatchAndFrozenStatistics() {
        var g = SeededRNG(state: 7)
        let bn = BatchNorm2D(channels: 3, gammaStd: 0.3, generator: &g)
        checkLayer("bn train", bn, input: LayerFD.random([4, 3, 3, 2], seed: 8))
        bn.freezesStatistics = true
        bn.runningMean.value = Tensor(shape: [3], data: [0.1, -0.2, 0.3])
        bn.runningVariance.value = Tensor(shape: [3], data: [0.5, 1.5, 2.0])
        checkLayer("bn frozen", bn, input: LayerFD.random([4, 3, 3, 2], seed: 9))
        checkLayer("bn eval", bn, input: LayerFD.random([2, 3, 2, 2], seed: 10), training: false)
    }

    func testActivationGradients() {
        // keep inputs away from the kink at 0, where the derivative jumps
        var x = LayerFD.random([2, 3, 4, 4], seed: 11)
        for i in 0..<x.count where abs(x.data[i]) < 0.05 { x.data[i] = 0.3 }
        checkLayer("leaky relu", LeakyReLU(negativeSlope: 0.2), input: x)
        checkLayer("relu", ReLU(), input: x)
    }

    func testPoolingGradients() {
        // distinct values so that no window has a near-tie that eps could flip
        var x = Tensor(shape: [2, 3, 5, 6])
        var g = SeededRNG(state: 12)
        var perm = Array(0..<x.count)
        perm.shuffle(using: &g)
        for i in 0..<x.count { x.data[i] = Float(perm[i]) * 0.1 }
        checkLayer("maxpool 2", MaxPool2D(kernelSize: 2), input: x)
        checkLayer("maxpool 3/2 overlapping", MaxPool2D(kernelSize: 3, stride: 2), input: x)
        checkLayer("avgpool 2", AvgPool2D(kernelSize: 2), input: LayerFD.random([2, 3, 5, 6], seed: 13))
        checkLayer("avgpool 3/1", AvgPool2D(kernelSize: 3, stride: 1), input: LayerFD.random([1, 2, 4, 5], seed: 14))
        checkLayer("global avgpool", GlobalAvgPool2D(), input: LayerFD.random([2, 3, 3, 4], seed: 15))
    }

    func testLinearAndFlattenGradients() {
        var g = SeededRNG(state: 16)
        checkLayer("linear", Linear(inputFeatures: 7, outputFeatures: 4, initialization: .normal(std: 0.3), generator: &g),
                   input: LayerFD.random([5, 7], seed: 17))
        checkLayer("flatten", Flatten(), input: LayerFD.random([3, 2, 2, 2], seed: 18))
        XCTAssertEqual(Flatten().forward(LayerFD.random([3, 2, 4, 5], seed: 1), training: false).output.shape, [3, 40])
    }

    func testDropBlockIsSeededScaledAndDifferentiable() {
        let x = LayerFD.random([4, 3, 10, 10], seed: 19)
        let a = DropBlock(blockSize: 3, rate: 0.2, seed: 5), b = DropBlock(blockSize: 3, rate: 0.2, seed: 5)
        let (ya, ca) = a.forward(x, training: true)
        let (yb, _) = b.forward(x, training: true)
        XCTAssertEqual(ya.data, yb.data, "same seed, same mask")
        let mask = ca.scaledMask!
        let zeros = mask.filter { $0 == 0 }.count
        let dropped = Double(zeros) / Double(mask.count)
        XCTAssertGreaterThan(dropped, 0.1, "about rate 0.2 of the units dropped")
        XCTAssertLessThan(dropped, 0.35)
        let kept = mask.first { $0 > 0 }!
        XCTAssertEqual(Double(kept), Double(mask.count) / Double(mask.count - zeros), accuracy: 1e-4)
        for i in 0..<x.count { XCTAssertEqual(ya.data[i], x.data[i] * mask[i], accuracy: 1e-6) }
        let dy = LayerFD.weights(like: ya, seed: 20)
        let dx = a.backward(dy, cache: ca)
        for i in 0..<x.count { XCTAssertEqual(dx.data[i], dy.data[i] * mask[i], accuracy: 1e-6) }
        // a second call draws a new mask; inference is the identity
        XCTAssertNotEqual(a.forward(x, training: true).output.data, ya.data)
        XCTAssertEqual(a.forward(x, training: false).output.data, x.data)
    }
}
