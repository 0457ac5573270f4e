/// A first-order optimiser over the trainable parameters of a `ParameterContainer`.
///
/// Parameters are reached through the container's explicit visitor (no reflection); per-parameter state
/// (momentum, Adam moments) is keyed by the parameter's dotted name, so one optimiser serves one model.
public protocol Optimizer: AnyObject {
    /// The step size used by the next `step`; a schedule sets it before each step.
    var learningRate: Float { get set }
    /// Updates every trainable parameter of `model` from its accumulated gradient (gradients are not cleared).
    func step(_ model: any ParameterContainer)
    /// The per-parameter state (momentum buffers, Adam moments and step counts) as named tensors, for
    /// checkpoints that resume exactly. Names are `<kind>.<parameter name>`.
    func exportState() -> [(name: String, tensor: Tensor)]
    /// Restores what `exportState` returned (replacing the current state).
    /// - Throws: `MMLError` when a tensor has an unknown name.
    func importState(_ tensors: [(name: String, tensor: Tensor)]) throws
}

extension Optimizer {
    /// Updates the parameters of several containers (for example backbone and head) in one step.
    public func step(_ models: [any ParameterContainer]) { for m in models { step(m) } }
}

/// Checks that a hyperparameter is finite and in range. - Throws: `MMLError(.config)`.
func checkHyperparameter(_ value: Float, _ name: String, _ optimizer: String, _ ok: (Float) -> Bool,
                         _ expected: String) throws {
    guard value.isFinite, ok(value) else {
        throw MMLError(.config, "\(optimizer): \(name) = \(value) is invalid; it must be \(expected)")
    }
}
