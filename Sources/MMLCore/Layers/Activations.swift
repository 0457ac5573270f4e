import MMLKernels

/// Leaky ReLU, `y = x > 0 ? x : slope x`, elementwise on any shape (slope 0 is ReLU).
/// MML's Conv-64F uses slope 0.2, ResNet-12 0.1.
public final class LeakyReLU: Layer {
    public let negativeSlope: Float
    /// What backward needs: the input (its sign selects the derivative).
    public struct Cache { public let input: Tensor }

    public init(negativeSlope: Float = 0.01) { self.negativeSlope = negativeSlope }
    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {}

    /// Any shape to the same shape.
    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache) {
        (applyLeaky(x, negativeSlope), Cache(input: x))
    }
    /// dL/dx = dy where x > 0, slope dy elsewhere (the derivative at 0 taken as slope, as PyTorch).
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor { leakyBackward(dy, cache.input, negativeSlope) }
}

/// ReLU, `y = max(x, 0)`, elementwise on any shape (Conv-4 uses it).
public final class ReLU: Layer {
    /// What backward needs: the input.
    public struct Cache { public let input: Tensor }

    public init() {}
    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {}

    /// Any shape to the same shape.
    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache) {
        (applyLeaky(x, 0), Cache(input: x))
    }
    /// dL/dx = dy where x > 0, else 0.
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor { leakyBackward(dy, cache.input, 0) }
}

func applyLeaky(_ x: Tensor, _ slope: Float) -> Tensor {
    var y = Tensor(uninitializedShape: x.shape)
    let status = y.data.withUnsafeMutableBufferPointer { yp in
        x.data.withUnsafeBufferPointer { mml_leaky_relu_f32(yp.baseAddress, $0.baseAddress, Int64(x.count), slope) }
    }
    requireLayerKernel(status, "leaky_relu")
    return y
}

func leakyBackward(_ dy: Tensor, _ x: Tensor, _ slope: Float) -> Tensor {
    precondition(dy.shape == x.shape, "[leaky_relu] dy shape \(dy.shape) does not match input \(x.shape)")
    var dx = Tensor(uninitializedShape: x.shape)
    let status = dx.data.withUnsafeMutableBufferPointer { dxp in
        dy.data.withUnsafeBufferPointer { dyp in
            x.data.withUnsafeBufferPointer {
                mml_leaky_relu_backward_f32(dxp.baseAddress, dyp.baseAddress, $0.baseAddress, Int64(x.count), slope)
            }
        }
    }
    requireLayerKernel(status, "leaky_relu backward")
    return dx
}
