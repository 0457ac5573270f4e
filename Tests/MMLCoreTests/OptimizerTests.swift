import MMLCore
import XCTest

/// Optimisers against reference loops written here in double, and the schedules against their formulas.
final class OptimizerTests: XCTestCase {
    final class Model: ParameterContainer {
        let a = Parameter(Tensor(shape: [3], data: [1, -2, 0.5]))
        let buffer = Parameter(Tensor(shape: [1], data: [7]), trainable: false)
        func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {
            visit(parameterName(prefix, "a"), a)
            visit(parameterName(prefix, "buffer"), buffer)
        }
    }

    let grads: [[Double]] = [[0.1, -0.3, 2], [0.5, 0.2, -1], [-0.4, 0.0, 0.3]]

    func runSGD(lr: Double, mu: Double, damp: Double, wd: Double, nesterov: Bool) throws {
        let m = Model()
        let opt = try SGD(learningRate: Float(lr), momentum: Float(mu), dampening: Float(damp), weightDecay: Float(wd),
                          nesterov: nesterov)
        var p = [1.0, -2, 0.5], b = [0.0, 0, 0]
        for (t, g) in grads.enumerated() {
            m.a.grad = Tensor(shape: [3], data: g.map(Float.init))
            opt.step(m)
            for i in 0..<3 {
                var d = g[i] + wd * p[i]
                if mu != 0 {
                    b[i] = t == 0 ? d : mu * b[i] + (1 - damp) * d
                    d = nesterov ? d + mu * b[i] : b[i]
                }
                p[i] -= lr * d
            }
            for i in 0..<3 { XCTAssertEqual(Double(m.a.value.data[i]), p[i], accuracy: 1e-5, "step \(t)") }
        }
        XCTAssertEqual(m.buffer.value.data, [7], "buffers are never updated")
    }

    func testSGDVariants() throws {
        try runSGD(lr: 0.1, mu: 0, damp: 0, wd: 0, nesterov: false)
        try runSGD(lr: 0.1, mu: 0.9, damp: 0, wd: 1e-2, nesterov: false)
        try runSGD(lr: 0.01, mu: 0.9, damp: 0.9, wd: 1e-3, nesterov: false)  // the neg-margin protocol
        try runSGD(lr: 0.05, mu: 0.8, damp: 0, wd: 0, nesterov: true)
    }

    func testAdamMatchesReference() throws {
        for (decoupled, wd) in [(false, 0.0), (false, 0.01), (true, 0.1)] {
            let m = Model()
            let (lr, b1, b2, eps) = (1e-2, 0.5, 0.9, 1e-8)
            let opt = try Adam(learningRate: Float(lr), beta1: Float(b1), beta2: Float(b2), epsilon: Float(eps),
                               weightDecay: Float(wd), decoupledWeightDecay: decoupled)
            var p = [1.0, -2, 0.5], mm = [0.0, 0, 0], vv = [0.0, 0, 0]
            for (k, g) in grads.enumerated() {
                let t = Double(k + 1)
                m.a.grad = Tensor(shape: [3], data: g.map(Float.init))
                opt.step(m)
                for i in 0..<3 {
                    var gi = g[i]
                    if decoupled { p[i] *= 1 - lr * wd } else { gi += wd * p[i] }
                    mm[i] = b1 * mm[i] + (1 - b1) * gi
                    vv[i] = b2 * vv[i] + (1 - b2) * gi * gi
                    p[i] -= lr * (mm[i] / (1 - pow(b1, t))) / ((vv[i] / (1 - pow(b2, t))).squareRoot() + eps)
                    XCTAssertEqual(Double(m.a.value.data[i]), p[i], accuracy: 1e-5)
                }
            }
        }
    }

    func testHyperparameterErrors() {
        XCTAssertThrowsError(try SGD(learningRate: -1)) { XCTAssertTrue("\($0)".contains("learningRate = -1.0")) }
        XCTAssertThrowsError(try SGD(learningRate: 0.1, momentum: 0.9, dampening: 0.5, nesterov: true)) {
            XCTAssertTrue("\($0)".contains("Nesterov momentum needs momentum > 0 and dampening 0"), "\($0)")
        }
        XCTAssertThrowsError(try Adam(beta1: 1)) { XCTAssertTrue("\($0)".contains("beta1 = 1.0 is invalid")) }
        XCTAssertThrowsError(try Adam(epsilon: 0)) { XCTAssertTrue("\($0)".contains("epsilon")) }
        XCTAssertThrowsError(try LearningRateSchedule.step(every: 0, factor: 0.5).validate()) {
            XCTAssertTrue("\($0)".contains("every = 0"))
        }
        XCTAssertThrowsError(try LearningRateSchedule.warmup(steps: 5, then: .cosine(total: 0, minimum: 0)).validate()) {
            XCTAssertTrue("\($0)".contains("cosine schedule: total = 0"))
        }
    }

    func testSchedules() {
        let base: Float = 0.1
        XCTAssertEqual(LearningRateSchedule.constant.learningRate(base: base, step: 99), 0.1, accuracy: 1e-7)
        let step = LearningRateSchedule.step(every: 10, factor: 0.5)
        XCTAssertEqual(step.learningRate(base: base, step: 9), 0.1, accuracy: 1e-7)
        XCTAssertEqual(step.learningRate(base: base, step: 10), 0.05, accuracy: 1e-7)
        XCTAssertEqual(step.learningRate(base: base, step: 25), 0.025, accuracy: 1e-7)
        let cos = LearningRateSchedule.cosine(total: 100, minimum: 0.001)
        XCTAssertEqual(cos.learningRate(base: base, step: 0), 0.1, accuracy: 1e-7)
        XCTAssertEqual(cos.learningRate(base: base, step: 50), 0.001 + 0.099 * 0.5, accuracy: 1e-6)
        XCTAssertEqual(cos.learningRate(base: base, step: 100), 0.001, accuracy: 1e-7)
        XCTAssertEqual(cos.learningRate(base: base, step: 500), 0.001, accuracy: 1e-7)
        let warm = LearningRateSchedule.warmup(steps: 4, then: step)
        XCTAssertEqual(warm.learningRate(base: base, step: 0), 0.025, accuracy: 1e-7)
        XCTAssertEqual(warm.learningRate(base: base, step: 3), 0.1, accuracy: 1e-7)
        XCTAssertEqual(warm.learningRate(base: base, step: 14), 0.05, accuracy: 1e-7)
    }
}
