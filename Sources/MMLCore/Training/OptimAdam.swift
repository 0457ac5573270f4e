#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

/// Adam (Kingma & Ba 2015) with PyTorch's `torch.optim.Adam` update (L2 weight decay added to the gradient), or
/// AdamW's decoupled decay when `decoupledWeightDecay`:
///
///     g = grad + weightDecay * p            (Adam)      p = p (1 - lr * weightDecay)   (AdamW)
///     m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2
///     p = p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
/// MML v1 trains with lr 1e-3, betas (0.5, 0.9) (METHOD.md 2.5).
public final class Adam: Optimizer {
    public var learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let weightDecay: Float
    public let decoupledWeightDecay: Bool
    /// Steps taken so far (t in the bias corrections), per parameter.
    private var steps: [String: Int] = [:]
    private var moments: [String: (m: [Float], v: [Float])] = [:]

    /// - Throws: `MMLError(.config)` for betas outside [0, 1), a negative rate / decay or a non-positive epsilon.
    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0, decoupledWeightDecay: Bool = false) throws {
        try checkHyperparameter(learningRate, "learningRate", "Adam", { $0 >= 0 }, ">= 0")
        try checkHyperparameter(beta1, "beta1", "Adam", { $0 >= 0 && $0 < 1 }, "in [0, 1)")
        try checkHyperparameter(beta2, "beta2", "Adam", { $0 >= 0 && $0 < 1 }, "in [0, 1)")
        try checkHyperparameter(epsilon, "epsilon", "Adam", { $0 > 0 }, "> 0")
        try checkHyperparameter(weightDecay, "weightDecay", "Adam", { $0 >= 0 }, ">= 0")
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
    }

    public func step(_ model: any ParameterContainer) {
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = epsilon, wd = weightDecay, decoupled = decoupledWeightDecay
        model.visitParameters(prefix: "") { name, p in
            guard p.isTrainable else { return }
            let n = p.value.count
            let t = (steps[name] ?? 0) + 1
            steps[name] = t
            var (m, v) = moments[name] ?? ([Float](repeating: 0, count: n), [Float](repeating: 0, count: n))
            moments[name] = nil  // keep the arrays uniquely referenced while updating in place
            precondition(m.count == n, "[adam] parameter \(name) changed size")
            let c1 = Float(1 - pow(Double(b1), Double(t))), c2 = Float(1 - pow(Double(b2), Double(t)))
            NNKernels.adamStep(values: &p.value.data, gradient: p.grad.data, m: &m, v: &v, learningRate: lr,
                               beta1: b1, beta2: b2, epsilon: eps, weightDecay: wd, decoupled: decoupled, c1: c1,
                               c2: c2)
            moments[name] = (m, v)
        }
    }

    public func exportState() -> [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = []
        for name in moments.keys.sorted() {
            let (m, v) = moments[name]!
            out.append((name: "m." + name, tensor: Tensor(shape: [m.count], data: m)))
            out.append((name: "v." + name, tensor: Tensor(shape: [v.count], data: v)))
            out.append((name: "t." + name, tensor: Tensor(shape: [1], data: [Float(steps[name] ?? 0)])))
        }
        return out
    }

    public func importState(_ tensors: [(name: String, tensor: Tensor)]) throws {
        var m: [String: [Float]] = [:], v: [String: [Float]] = [:], t: [String: Int] = [:]
        for (name, x) in tensors {
            if name.hasPrefix("m.") { m[String(name.dropFirst(2))] = x.data }
            else if name.hasPrefix("v.") { v[String(name.dropFirst(2))] = x.data }
            else if name.hasPrefix("t.") { t[String(name.dropFirst(2))] = Int(x.data.first ?? 0) }
            else {
                throw MMLError(.invalidArgument, "Adam state: unexpected tensor '\(name)'; was it saved by another optimiser?")
            }
        }
        var moments: [String: (m: [Float], v: [Float])] = [:]
        for (name, mm) in m {
            guard let vv = v[name], vv.count == mm.count, let tt = t[name] else {
                throw MMLError(.invalidArgument, "Adam state: parameter '\(name)' lacks its second moment or step count")
            }
            moments[name] = (mm, vv)
            t[name] = tt
        }
        self.moments = moments
        self.steps = t.filter { moments[$0.key] != nil }
    }
}
