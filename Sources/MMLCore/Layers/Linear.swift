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
            NNKernels.gemm("linear", transposeB: true, m: n, n: outputFeatures, k: inputFeatures, a: x.data,
                           lda: inputFeatures, b: weight.value.data, ldb: inputFeatures, beta: 1, c: &y.data,
                           ldc: outputFeatures)
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
        NNKernels.gemm("linear backward", m: n, n: inputFeatures, k: outputFeatures, a: dy.data, lda: outputFeatures,
                       b: weight.value.data, ldb: inputFeatures, beta: 0, c: &dx.data, ldc: inputFeatures)
        NNKernels.gemm("linear backward", transposeA: true, m: outputFeatures, n: inputFeatures, k: n, a: dy.data,
                       lda: outputFeatures, b: x.data, ldb: inputFeatures, beta: 1, c: &weight.grad.data,
                       ldc: inputFeatures)
        if let bias {
            for i in 0..<n { for j in 0..<outputFeatures { bias.grad.data[j] += dy.data[i * outputFeatures + j] } }
        }
        return dx
    }
}

/// Flattens all dimensions after the first: `(N, d1, d2, ...) -> (N, d1 * d2 * ...)`.
public final class Flatten: ParameterFreeLayer {
    /// What backward needs: the input shape.
    public typealias Cache = InputShapeCache
    public init() {}

    /// `(N, ...) -> (N, prod(...))`.
    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache) {
        precondition(x.rank >= 1, "[flatten] needs rank >= 1, got \(x.shape)")
        let n = x.shape[0]
        return (x.reshaped([n, n == 0 ? 0 : x.count / n]), Cache(inputShape: x.shape))
    }
    /// dL/dx is dy reshaped back.
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor { dy.reshaped(cache.inputShape) }
}
