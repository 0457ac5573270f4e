import MMLCore
import MMLKernels
import MMLTestSupport
import XCTest

/// Whole backbones: shapes at 84x84 / 28x28, finite-difference gradients on small widths, names, seeding, threads.
final class BackboneTests: XCTestCase {
    func small(_ kind: BackboneKind, channels: Int = 3, seed: UInt64 = 1) throws -> any Backbone {
        let widths = kind == .resnet12 ? [3, 4, 5, 6] : [4, 5, 4, 3]
        return try makeBackbone(BackboneConfiguration(kind: kind, inputChannels: channels, widths: widths,
                                                      initialization: .kaiming, seed: seed, dropBlockRate: 0))
    }

    func testOutputShapesOfFullSizeBackbones() throws {
        let expect: [(BackboneKind, Int, [Int])] = [(.conv64F, 84, [2, 64, 21, 21]), (.conv4, 84, [2, 64, 5, 5]),
                                                   (.conv4, 28, [2, 64, 1, 1]), (.conv64F, 28, [2, 64, 7, 7]),
                                                   (.resnet12, 84, [2, 640, 5, 5]), (.resnet12, 28, [2, 640, 1, 1])]
        for (kind, size, shape) in expect {
            let ch = size == 28 ? 1 : 3
            let b = try makeBackbone(BackboneConfiguration(kind: kind, inputChannels: ch, seed: 3))
            let x = LayerFD.random([2, ch, size, size], seed: 4)
            try validateBackboneInput(b, shape: x.shape)
            let y = b.forward(x, training: false).output
            XCTAssertEqual(y.shape, shape, "\(kind) at \(size)")
            XCTAssertTrue(y.isFinite)
            XCTAssertEqual(b.outputChannels, shape[1])
            XCTAssertEqual(b.outputSize(height: size, width: size).height, shape[2])
        }
    }

    func testParameterNamesAndCounts() throws {
        let c = try makeBackbone(BackboneConfiguration(kind: .conv64F))
        let names = c.namedParameters(prefix: "backbone").map(\.name)
        XCTAssertEqual(names.first, "backbone.block1.conv.weight")
        XCTAssertTrue(names.contains("backbone.block4.bn.running_var"))
        XCTAssertEqual(names.count, 4 * 5)
        // Conv-64F without conv bias: 3*64*9 + 3*64*64*9 weights + 4*2*64 BN = 112,576
        XCTAssertEqual(c.trainableParameterCount, 3 * 64 * 9 + 3 * 64 * 64 * 9 + 4 * 128)
        let r = try makeBackbone(BackboneConfiguration(kind: .resnet12))
        XCTAssertTrue(r.namedParameters(prefix: "backbone").map(\.name).contains("backbone.block3.downsample.conv.weight"))
        // ResNet-12 is about 12.4 M parameters
        XCTAssertGreaterThan(r.trainableParameterCount, 12_000_000)
        XCTAssertLessThan(r.trainableParameterCount, 12_600_000)
    }

    func testMMLInitialisationStatisticsAndSeeding() throws {
        let a = try makeBackbone(BackboneConfiguration(kind: .conv64F, seed: 7))
        let b = try makeBackbone(BackboneConfiguration(kind: .conv64F, seed: 7))
        let c = try makeBackbone(BackboneConfiguration(kind: .conv64F, seed: 8))
        let wa = a.namedParameters()[5].parameter.value.data  // block2.conv.weight
        XCTAssertEqual(wa, b.namedParameters()[5].parameter.value.data)
        XCTAssertNotEqual(wa, c.namedParameters()[5].parameter.value.data)
        let mean = wa.map(Double.init).reduce(0, +) / Double(wa.count)
        let std = (wa.map { (Double($0) - mean) * (Double($0) - mean) }.reduce(0, +) / Double(wa.count)).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 0.001)
        XCTAssertEqual(std, 0.02, accuracy: 0.001)
        let k = try makeBackbone(BackboneConfiguration(kind: .conv64F, initialization: .kaiming, seed: 7))
        let wk = k.namedParameters()[5].parameter.value.data.map(Double.init)
        let sk = (wk.map { $0 * $0 }.reduce(0, +) / Double(wk.count)).squareRoot()
        XCTAssertEqual(sk, (2 / 1.04).squareRoot() / (64.0 * 9).squareRoot(), accuracy: 0.003)
    }

    /// L = sum w * backbone(x) in training mode; checks dx and a few entries of every parameter.
    func checkBackbone(_ b: any Backbone, input: Tensor, eps: Float = 1e-3, epsilons: [Float]? = nil) {
        LayerFD.eps = eps
        defer { LayerFD.eps = 1e-2 }
        var x = input
        let (y, cache) = b.forward(x, training: true)
        let w = LayerFD.weights(like: y, seed: 11)
        b.zeroGradients()
        let dx = b.backward(w, cache: cache, inputGradient: true)!
        let params = b.namedParameters().filter { $0.parameter.isTrainable }
        let grads = params.map { $0.parameter.grad }
        let buffers = b.namedParameters().filter { !$0.parameter.isTrainable }.map { ($0.parameter, $0.parameter.value) }
        func loss() -> Double {
            let out = b.forward(x, training: true).output
            for (p, v) in buffers { p.value = v }
            return LayerFD.dot(out, w)
        }
        LayerFD.check("\(b.kind) dx", analytic: dx, probes: LayerFD.probes(x.count, 4, seed: 1),
                 get: { x.data[$0] }, set: { x.data[$0] = $1 }, loss: loss)
        for (k, (name, p)) in params.enumerated() {
            LayerFD.check("\(b.kind) \(name)", analytic: grads[k], probes: LayerFD.probes(p.value.count, 2, seed: UInt64(k)),
                     get: { p.value.data[$0] }, set: { p.value.data[$0] = $1 }, loss: loss, epsilons: epsilons)
        }
    }

    func testConv64FGradients() throws { checkBackbone(try small(.conv64F), input: LayerFD.random([3, 3, 8, 8], seed: 21)) }
    /// Widths of 16 put blocks 2-4 on the Winograd kernels and every block tail on the fused BN + pool kernels.
    func testConv64FGradientsOnWinogradLayers() throws {
        let b = try makeBackbone(BackboneConfiguration(kind: .conv64F, widths: [16, 16, 16, 16], initialization: .kaiming,
                                                       seed: 3, dropBlockRate: 0))
        XCTAssertTrue((b as! ConvNet).blocks[1].conv.usesWinograd)
        // with 16 channels and batch 2 the float loss carries ~1e-3 relative noise at eps 1e-3 (measured on one
        // probe: numeric 0.0593 / 0.0656 for Winograd / im2col at 1e-3, both 0.0633 at 1e-2, analytic 0.0634), so
        // dx takes a step of 1e-2 here; a parameter probe passes when one of three steps agrees (1e-2 alone crosses
        // max-pool / leaky kinks on some weights)
        checkBackbone(b, input: LayerFD.random([2, 3, 10, 10], seed: 24), eps: 1e-2, epsilons: [1e-3, 3e-3, 1e-2])
    }
    /// A whole Conv-64F training step on the Winograd layers equals the im2col one up to float rounding.
    func testConv64FWinogradStepMatchesIm2col() throws {
        var outs: [[Float]] = []
        for winograd in [true, false] {
            Conv2D.winogradEnabled = winograd
            defer { Conv2D.winogradEnabled = true }
            let b = try makeBackbone(BackboneConfiguration(kind: .conv64F, widths: [16, 16, 16, 16],
                                                           initialization: .kaiming, seed: 3, dropBlockRate: 0))
            let x = LayerFD.random([2, 3, 10, 10], seed: 24)
            let (y, c) = b.forward(x, training: true)
            b.zeroGradients()
            let dx = b.backward(LayerFD.weights(like: y, seed: 11), cache: c, inputGradient: true)!
            outs.append(y.data + dx.data + b.namedParameters().flatMap { $0.parameter.isTrainable ? $0.parameter.grad.data : [] })
        }
        var worst = 0.0, at = 0
        for (i, (a, b)) in zip(outs[0], outs[1]).enumerated() {
            let e = Double(abs(a - b)) - 1e-4 - 1e-3 * Double(abs(b))
            if e > worst { worst = e; at = i }
        }
        XCTAssertLessThanOrEqual(worst, 0, "winograd vs im2col at \(at): \(outs[0][at]) vs \(outs[1][at])")
    }
    func testConv4Gradients() throws { checkBackbone(try small(.conv4, channels: 1), input: LayerFD.random([3, 1, 16, 16], seed: 22)) }
    /// ResNet-12 is 12 layers of LeakyReLU(0.1) and 4 max-pools: a float central difference on an early weight
    /// crosses kinks and jumps between steps (measured: the numeric value moves by 30% between eps 1e-3 and 3e-4
    /// while the analytic one agrees to 1e-4 for the last stages). So the check runs in two modes: training mode
    /// with batch statistics, and frozen statistics; each probe passes when one of five steps agrees (the numeric
    /// values converge on the analytic ones as the step shrinks; on the AVX2 path block1.downsample.conv.weight[4]
    /// gave 0.69 / 1.33 / 1.55 at 1e-4 / 3e-5 / 1e-5 against the analytic 1.5496, the portable path 0.68 / 1.55 /
    /// 1.65 against 1.5496: the step that lands depends on the rounding, the analytic values do not, see
    /// testResNet12GradientsAgreeAcrossKernelPaths).
    func testResNet12Gradients() throws {
        let b = try small(.resnet12)
        let x = LayerFD.random([2, 3, 16, 16], seed: 23)
        for _ in 0..<10 { _ = b.forward(x, training: true) }  // running statistics close to the batch's
        // steps down to 3e-5 carry float noise of ~1e-2 absolute in the quotient: atol 1e-2, rtol 5e-2 here.
        LayerFD.atol = 1e-2
        LayerFD.rtol = 5e-2
        defer { LayerFD.atol = 2e-3; LayerFD.rtol = 3e-2 }
        checkBackbone(b, input: x, epsilons: [1e-3, 3e-4, 1e-4, 3e-5, 1e-5])
        b.freezesBatchNormStatistics = true
        checkBackbone(b, input: x, epsilons: [1e-3, 3e-4, 1e-4, 3e-5, 1e-5])
    }

    /// The analytic ResNet-12 gradients (and outputs) of the dispatched layer kernels (AVX-512 or AVX2) against the
    /// portable ones: the same to float rounding (measured on the AVX2 path: at most 1.6e-3 relative, with 1e-3 as
    /// the floor of the scale).
    func testResNet12GradientsAgreeAcrossKernelPaths() throws {
        var results: [[Float]] = []
        for portable in [false, true] {
            mml_layers_force_portable(portable ? 1 : 0)
            defer { mml_layers_force_portable(0) }
            let b = try small(.resnet12)
            let x = LayerFD.random([2, 3, 16, 16], seed: 23)
            for _ in 0..<10 { _ = b.forward(x, training: true) }
            let (y, cache) = b.forward(x, training: true)
            b.zeroGradients()
            let dx = b.backward(LayerFD.weights(like: y, seed: 11), cache: cache, inputGradient: true)!
            let grads = b.namedParameters().flatMap { $0.parameter.isTrainable ? $0.parameter.grad.data : [] }
            results.append(y.data + dx.data + grads)
        }
        XCTAssertEqual(results[0].count, results[1].count)
        let worst = zip(results[0], results[1]).map { Double(abs($0 - $1)) / (1e-3 + Double(abs($1))) }.max()!
        XCTAssertLessThanOrEqual(worst, 1e-2)
    }

    func testOneAndTwoThreadsGiveTheSameResults() throws {
        var outs: [[Float]] = []
        for t in [1, 2] {
            let b = try makeBackbone(BackboneConfiguration(kind: .resnet12, widths: [4, 6, 8, 10], seed: 5))
            b.threads = t
            let x = LayerFD.random([6, 3, 20, 20], seed: 6)
            let (y, c) = b.forward(x, training: true)
            _ = b.backward(LayerFD.weights(like: y, seed: 7), cache: c, inputGradient: true)
            outs.append(y.data + b.namedParameters().flatMap { $0.parameter.isTrainable ? $0.parameter.grad.data : [] })
        }
        let diff = zip(outs[0], outs[1]).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(diff, 1e-6)
    }

    func testFrozenBatchNormStatistics() throws {
        let b = try small(.conv64F)
        let x = LayerFD.random([2, 3, 8, 8], seed: 8)
        b.freezesBatchNormStatistics = true
        let before = b.namedParameters().filter { $0.name.hasSuffix("running_mean") }.map { $0.parameter.value.data }
        let yFrozen = b.forward(x, training: true).output
        let after = b.namedParameters().filter { $0.name.hasSuffix("running_mean") }.map { $0.parameter.value.data }
        XCTAssertEqual(before, after)
        let yEval = b.forward(x, training: false).output
        XCTAssertLessThanOrEqual(zip(yFrozen.data, yEval.data).map { abs($0 - $1) }.max()!, 1e-6)
    }

    func testConfigurationAndInputErrors() throws {
        XCTAssertThrowsError(try makeBackbone(BackboneConfiguration(kind: .conv4, inputChannels: 2))) { e in
            XCTAssertTrue("\(e)".contains("inputChannels is 2"), "\(e)")
        }
        XCTAssertThrowsError(try makeBackbone(BackboneConfiguration(kind: .conv4, widths: [8, 8]))) { e in
            XCTAssertTrue("\(e)".contains("must be 4 positive"), "\(e)")
        }
        XCTAssertThrowsError(try makeBackbone(BackboneConfiguration(kind: .resnet12, dropBlockRate: 1.5))) { e in
            XCTAssertTrue("\(e)".contains("dropBlockRate 1.5"), "\(e)")
        }
        let b = try makeBackbone(BackboneConfiguration(kind: .conv4, inputChannels: 1))
        XCTAssertThrowsError(try validateBackboneInput(b, shape: [2, 3, 28, 28])) { e in
            XCTAssertTrue("\(e)".contains("expects (N, 1, H, W)"), "\(e)")
        }
        XCTAssertThrowsError(try validateBackboneInput(b, shape: [2, 1, 8, 8])) { e in
            XCTAssertTrue("\(e)".contains("too small"), "\(e)")
        }
    }

    /// The fused inference paths of Conv-64F / Conv-4 (per-image im2col below 16 channels, Winograd + fused tail
    /// above) equal the layer-by-layer evaluation.
    func testFusedInferenceMatchesLayerByLayer() throws {
        for (kind, widths) in [(BackboneKind.conv64F, [5, 7, 6, 9]), (.conv4, [5, 7, 6, 9]),
                               (.conv64F, [16, 17, 16, 18]), (.conv4, [16, 17, 16, 18])] {
            let b = try makeBackbone(BackboneConfiguration(kind: kind, widths: widths, seed: 12)) as! ConvNet
            let x = LayerFD.random([3, 3, 19, 17], seed: 13)
            for _ in 0..<3 { _ = b.forward(x, training: true) }  // non-trivial running statistics
            let fused = b.forward(x, training: false).output
            var h = x
            for blk in b.blocks {
                h = blk.conv.forward(h, training: false).output
                h = blk.bn.forward(h, training: false).output
                h = LeakyReLU(negativeSlope: blk.negativeSlope).forward(h, training: false).output
                if let p = blk.pool { h = p.forward(h, training: false).output }
            }
            XCTAssertEqual(fused.shape, h.shape)
            let worst = zip(fused.data, h.data).map { abs($0 - $1) - 1e-5 - 1e-4 * abs($1) }.max()!
            XCTAssertLessThanOrEqual(worst, 0, "\(kind)")
        }
    }
}
