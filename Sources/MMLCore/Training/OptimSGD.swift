/// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay, with PyTorch's
/// `torch.optim.SGD` update:
///
///     g = grad + weightDecay * p
///     b = g                                        (first step)
///     b = momentum * b + (1 - dampening) * g       (later steps)
///     g = g + momentum * b  (Nesterov)  or  g = b  (momentum != 0)
///     p = p - lr * g
/// The neg-margin fine-tuning protocol uses momentum 0.9, dampening 0.9, weight decay 1e-3 (METHOD.md 3).
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    public let dampening: Float
    public let weightDecay: Float
    public let nesterov: Bool
    private var buffers: [String: [Float]] = [:]

    /// - Throws: `MMLError(.config)` for a negative or non-finite value, or Nesterov without momentum or with
    ///   dampening (as PyTorch).
    public init(learningRate: Float, momentum: Float = 0, dampening: Float = 0, weightDecay: Float = 0,
                nesterov: Bool = false) throws {
        try checkHyperparameter(learningRate, "learningRate", "SGD", { $0 >= 0 }, ">= 0")
        try checkHyperparameter(momentum, "momentum", "SGD", { $0 >= 0 && $0 < 1 }, "in [0, 1)")
        try checkHyperparameter(dampening, "dampening", "SGD", { $0 >= 0 && $0 <= 1 }, "in [0, 1]")
        try checkHyperparameter(weightDecay, "weightDecay", "SGD", { $0 >= 0 }, ">= 0")
        if nesterov && (momentum <= 0 || dampening != 0) {
            throw MMLError(.config, "SGD: Nesterov momentum needs momentum > 0 and dampening 0 "
                           + "(got momentum \(momentum), dampening \(dampening))")
        }
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
    }

    public func step(_ model: any ParameterContainer) {
        let lr = learningRate, mu = momentum, damp = dampening, wd = weightDecay, nest = nesterov
        model.visitParameters(prefix: "") { name, p in
            guard p.isTrainable else { return }
            let n = p.value.count
            let first = buffers[name] == nil
            var buf = buffers[name] ?? [Float](repeating: 0, count: n)
            buffers[name] = nil  // keep the array uniquely referenced so the update is in place, not a copy
            precondition(buf.count == n, "[sgd] parameter \(name) changed size")
            NNKernels.sgdStep(values: &p.value.data, gradient: p.grad.data, buffer: &buf, firstStep: first,
                              learningRate: lr, momentum: mu, dampening: damp, weightDecay: wd, nesterov: nest)
            if mu != 0 { buffers[name] = buf }
        }
    }

    public func exportState() -> [(name: String, tensor: Tensor)] {
        buffers.keys.sorted().map { (name: "momentum." + $0, tensor: Tensor(shape: [buffers[$0]!.count], data: buffers[$0]!)) }
    }

    public func importState(_ tensors: [(name: String, tensor: Tensor)]) throws {
        var b: [String: [Float]] = [:]
        for (name, t) in tensors {
            guard name.hasPrefix("momentum.") else {
                throw MMLError(.invalidArgument, "SGD state: unexpected tensor '\(name)'; was it saved by another optimiser?")
            }
            b[String(name.dropFirst("momentum.".count))] = t.data
        }
        buffers = b
    }
}
