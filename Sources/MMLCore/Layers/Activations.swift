/// Leaky ReLU, `y = x > 0 ? x : slope x`, elementwise on any shape (slope 0 is ReLU).
/// MML's Conv-64F uses slope 0.2, ResNet-12 0.1.
public final class LeakyReLU: ParameterFreeLayer {
    public let negativeSlope: Float
    /// What backward needs: the input (its sign selects the derivative).
    public struct Cache { public let input: Tensor }

    public init(negativeSlope: Float = 0.01) { self.negativeSlope = negativeSlope }

    /// Any shape to the same shape.
    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache) {
        (applyLeaky(x, negativeSlope), Cache(input: x))
    }
    /// dL/dx = dy where x > 0, slope dy elsewhere (the derivative at 0 taken as slope, as PyTorch).
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor { leakyBackward(dy, cache.input, negativeSlope) }
}

/// ReLU, `y = max(x, 0)`, elementwise on any shape (Conv-4 uses it).
public final class ReLU: ParameterFreeLayer {
    /// What backward needs: the input.
    public struct Cache { public let input: Tensor }

    public init() {}

    /// Any shape to the same shape.
    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache) {
        (applyLeaky(x, 0), Cache(input: x))
    }
    /// dL/dx = dy where x > 0, else 0.
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor { leakyBackward(dy, cache.input, 0) }
}

/// `x > 0 ? x : slope x` elementwise (slope 0 is ReLU).
func applyLeaky(_ x: Tensor, _ slope: Float) -> Tensor { NNKernels.leakyReLU(x, slope: slope) }

/// dL/dx of `applyLeaky` at input x: dy where x > 0, slope dy elsewhere.
func leakyBackward(_ dy: Tensor, _ x: Tensor, _ slope: Float) -> Tensor {
    NNKernels.leakyReLUBackward(dy, input: x, slope: slope)
}
