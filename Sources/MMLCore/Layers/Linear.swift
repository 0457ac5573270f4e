import MMLKernels

/// A fully connected layer, `y = x W^T + b` (PyTorch `Linear`): `x: (N, in) -> (N, out)`, W `(out, in)`, b `(out)`.
///
/// Uses mml's own single-threaded GEMM rather than OpenBLAS: an OpenBLAS call leaves its worker threads spinning
/// for a while afterwards, and they would compete with the conv kernels' threads that run right after.
public final class Linear: Layer {
    public let inputFeatures: Int
    public let outputFeatures: Int
    /// `(out, in)`.
    public let weight: Parameter
    /// `(out)` or nil.
    public let bias: Parameter?
    /// What backward needs: the input.
    public struct Cache { public let input: Tensor }

    /// Weights from `initialization` (fan-in = `inputFeatures`) with `generator`; bias 0.
    public init<G: RandomNumberGenerator>(inputFeatures: Int, outputFeatures: Int, bias: Bool = true,
                                          initialization: WeightInitialization = .mml, generator: inout G) {
        precondition(inputFeatures > 0 && outputFeatures > 0,
                     "[linear] bad sizes in=\(inputFeatures) out=\(outputFeatures)")
        self.inputFeatures = inputFeatures
        self.outputFeatures = outputFeatures
        weight = Parameter(Tensor(shape: [outputFeatures, inputFeatures], normalMean: 0,
                                  std: initialization.standardDeviation(fanIn: inputFeatures), generator: &generator))
        self.bias = bias ? Parameter(Tensor(shape: [outputFeatures])) : nil
    }

    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {
        visit(parameterName(prefix, "weight"), weight)
        if let bias { visit(parameterName(prefix, "bias"), bias) }
    }

    /// `(N, in) -> (N, out)`.
    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache) {
        precondition(x.rank == 2 && x.shape[1] == inputFeatures,
                     "[linear] input shape \(x.shape) does not match in=\(inputFeatures)")
        let n = x.shape[0]
        var y = Tensor(shape: [n, outputFeatures])
        if let bias {
            for i in 0..<n { for j in 0..<outputFeatures { y.data[i * outputFeatures + j] = bias.value.data[j] } }
        }
        if n > 0 {
            requireLayerKernel(mml_sgemm_f32(0, 1, Int64(n), Int64(outputFeatures), Int64(inputFeatures), 1, x.data,
                                        Int64(inputFeatures), weight.value.data, Int64(inputFeatures), 1, &y.data,
                                        Int64(outputFeatures)), "linear")
        }
        return (y, Cache(input: x))
    }

    /// dL/dx = dy W; adds dL/dW = dy^T x and dL/db = sum over rows of dy.
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor {
        let x = cache.input
        let n = x.shape[0]
        precondition(dy.shape == [n, outputFeatures], "[linear] dy shape \(dy.shape) does not match [\(n), \(outputFeatures)]")
        var dx = Tensor(shape: x.shape)
        guard n > 0 else { return dx }
        requireLayerKernel(mml_sgemm_f32(0, 0, Int64(n), Int64(inputFeatures), Int64(outputFeatures), 1, dy.data,
                                    Int64(outputFeatures), weight.value.data, Int64(inputFeatures), 0, &dx.data,
                                    Int64(inputFeatures)), "linear backward")
        requireLayerKernel(mml_sgemm_f32(1, 0, Int64(outputFeatures), Int64(inputFeatures), Int64(n), 1, dy.data,
                                    Int64(outputFeatures), x.data, Int64(inputFeatures), 1, &weight.grad.data,
                                    Int64(inputFeatures)), "linear backward")
        if let bias {
            for i in 0..<n { for j in 0..<outputFeatures { bias.grad.data[j] += dy.data[i * outputFeatures + j] } }
        }
        return dx
    }
}

/// Flattens all dimensions after the first: `(N, d1, d2, ...) -> (N, d1 * d2 * ...)`.
public final class Flatten: Layer {
    /// What backward needs: the input shape.
    public struct Cache { public let inputShape: [Int] }
    public init() {}
    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {}

    /// `(N, ...) -> (N, prod(...))`.
    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache) {
        precondition(x.rank >= 1, "[flatten] needs rank >= 1, got \(x.shape)")
        let n = x.shape[0]
        return (x.reshaped([n, n == 0 ? 0 : x.count / n]), Cache(inputShape: x.shape))
    }
    /// dL/dx is dy reshaped back.
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor { dy.reshaped(cache.inputShape) }
}
