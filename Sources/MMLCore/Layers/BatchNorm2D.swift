/// Batch normalisation over the channels of NCHW maps (Ioffe & Szegedy 2015), as PyTorch's `BatchNorm2d`.
///
/// `x: (N, C, H, W) -> (N, C, H, W)`, `y = gamma (x - mu) / sqrt(var + eps) + beta` per channel.
/// Training: mu, var are the batch statistics over (N, H, W) (biased variance), and the running statistics move
/// by `running = (1 - momentum) running + momentum * batch` (the unbiased variance, as PyTorch). Inference, or
/// training with `freezesStatistics`: the running statistics are used and not updated (the gradient then treats
/// them as constants).
public final class BatchNorm2D: Layer {
    public let channels: Int
    public let momentum: Float
    public let epsilon: Float
    /// gamma, `(C)`; PyTorch's name `weight`.
    public let gamma: Parameter
    /// beta, `(C)`; PyTorch's name `bias`.
    public let beta: Parameter
    /// Running mean `(C)`, a buffer.
    public let runningMean: Parameter
    /// Running (unbiased) variance `(C)`, a buffer.
    public let runningVariance: Parameter
    /// When true, training-mode forwards use and keep the running statistics (MML freezes them after epoch 1).
    public var freezesStatistics = false
    /// Threads for the kernels: 0 = all cores.
    public var threads: Int = 0

    /// What backward needs.
    public struct Cache {
        public let input: Tensor
        /// The statistics used: mu and 1 / sqrt(var + eps), `(C)` each.
        public let mean: [Float]
        public let inverseStd: [Float]
        /// True when the batch's own statistics were used (the gradient flows through them).
        public let usedBatchStatistics: Bool
    }

    /// - Parameters: `gammaStd` > 0 draws gamma from N(1, gammaStd^2) (MML: 0.02) with `generator`, 0 sets it to 1;
    ///   beta starts at 0, running mean at 0 and running variance at 1.
    public init<G: RandomNumberGenerator>(channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5,
                                          gammaStd: Float = 0.02, generator: inout G) {
        precondition(channels > 0, "[batchnorm2d] channels must be positive, got \(channels)")
        self.channels = channels
        self.momentum = momentum
        self.epsilon = epsilon
        gamma = Parameter(gammaStd > 0 ? Tensor(shape: [channels], normalMean: 1, std: gammaStd, generator: &generator)
                                       : Tensor(shape: [channels], repeating: 1))
        beta = Parameter(Tensor(shape: [channels]))
        runningMean = Parameter(Tensor(shape: [channels]), trainable: false)
        runningVariance = Parameter(Tensor(shape: [channels], repeating: 1), trainable: false)
    }

    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {
        visit(parameterName(prefix, "weight"), gamma)
        visit(parameterName(prefix, "bias"), beta)
        visit(parameterName(prefix, "running_mean"), runningMean)
        visit(parameterName(prefix, "running_var"), runningVariance)
    }

    /// The statistics a forward pass would use, updating the running ones in training mode.
    private func statistics(_ x: Tensor, training: Bool) -> (mean: [Float], invstd: [Float], batch: Bool) {
        let d = x.nchw
        precondition(d.c == channels, "[batchnorm2d] channels \(channels) do not match input C=\(d.c)")
        if training && !freezesStatistics {
            let (mean, variance) = NNKernels.batchNormStatistics(x, threads: threads)
            let m = d.n * d.h * d.w
            let unbias = m > 1 ? Float(m) / Float(m - 1) : 1
            runningMean.movingAverage(toward: mean, momentum: momentum)
            runningVariance.movingAverage(toward: variance.map { $0 * unbias }, momentum: momentum)
            return (mean, variance.map { 1 / ($0 + epsilon).squareRoot() }, true)
        }
        return (runningMean.value.data, runningVariance.value.data.map { 1 / ($0 + epsilon).squareRoot() }, false)
    }

    /// The affine map `y = scale x + shift` per channel that normalising with `mean` and `inverseStd`
    /// (1 / sqrt(var + eps)) and then applying gamma and beta amounts to: `scale = gamma invstd`,
    /// `shift = beta - mean scale`; `(C)` each. The forward passes use it with the statistics they normalise with.
    public func affine(mean: [Float], inverseStd: [Float]) -> (scale: [Float], shift: [Float]) {
        precondition(mean.count == channels && inverseStd.count == channels,
                     "[batchnorm2d] statistics of \(mean.count), \(inverseStd.count) channels for \(channels)")
        var scale = [Float](repeating: 0, count: channels), shift = scale
        for c in 0..<channels {
            scale[c] = gamma.value.data[c] * inverseStd[c]
            shift[c] = beta.value.data[c] - mean[c] * scale[c]
        }
        return (scale, shift)
    }

    /// The inference fold with the running statistics, for kernels that apply BatchNorm inside a conv's output:
    /// `scale = gamma / sqrt(running_var + eps)`, `shift = beta - running_mean scale`; `(C)` each. (It divides by
    /// the square root, where `affine(mean:inverseStd:)` multiplies by its reciprocal: the two can differ in the
    /// last bit, and each path keeps the rounding it has always had.)
    public func foldedAffine() -> (scale: [Float], shift: [Float]) {
        var scale = [Float](repeating: 0, count: channels), shift = scale
        for c in 0..<channels {
            scale[c] = gamma.value.data[c] / (runningVariance.value.data[c] + epsilon).squareRoot()
            shift[c] = beta.value.data[c] - runningMean.value.data[c] * scale[c]
        }
        return (scale, shift)
    }

    /// `x: (N, C, H, W) -> (N, C, H, W)`.
    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache) {
        let (y, cache) = forward(x, training: training, leakySlope: nil)
        return (y, cache)
    }

    /// The forward pass with an optional fused leaky ReLU (`leakySlope`, 0 for ReLU) applied after the affine map,
    /// so that BN + activation costs one pass over memory. The cache is BatchNorm's alone.
    public func forward(_ x: Tensor, training: Bool, leakySlope: Float?) -> (output: Tensor, cache: Cache) {
        let (mean, invstd, batch) = statistics(x, training: training)
        let (scale, shift) = affine(mean: mean, inverseStd: invstd)
        let y = NNKernels.channelAffine(x, scale: scale, shift: shift, leakySlope: leakySlope, threads: threads)
        return (y, Cache(input: x, mean: mean, inverseStd: invstd, usedBatchStatistics: batch))
    }

    /// The forward pass fused with a leaky ReLU (`leakySlope`, 0 for ReLU) and a 2x2 / stride-2 max-pool (floor
    /// mode), as `MaxPool2D(kernelSize: 2).forward(forward(x, training:, leakySlope:).output)` but in one pass that
    /// never stores the full-size activation: `(N, C, H, W) -> (N, C, H / 2, W / 2)`, with the argmax indices
    /// (inside each H x W plane) that `backwardLeakyMaxPool2x2` needs.
    public func forwardLeakyMaxPool2x2(_ x: Tensor, training: Bool, leakySlope: Float)
        -> (output: Tensor, argmax: [Int32], cache: Cache) {
        let d = x.nchw
        precondition(d.h >= 2 && d.w >= 2, "[batchnorm2d] pooled input \(d.h)x\(d.w) is smaller than 2x2")
        let (mean, invstd, batch) = statistics(x, training: training)
        let (scale, shift) = affine(mean: mean, inverseStd: invstd)
        let (y, arg) = NNKernels.affineLeakyMaxPool2x2(x, scale: scale, shift: shift, leakySlope: leakySlope,
                                                       threads: threads)
        return (y, arg, Cache(input: x, mean: mean, inverseStd: invstd, usedBatchStatistics: batch))
    }

    /// The backward pass of `forwardLeakyMaxPool2x2`: dL/dx (N, C, H, W) from the pooled gradient `dy`, the
    /// argmax indices and the pooled output; adds dL/dgamma and dL/dbeta. The full-size activation gradient is
    /// never stored.
    public func backwardLeakyMaxPool2x2(_ dy: Tensor, argmax: [Int32], pooled: Tensor, cache: Cache,
                                        leakySlope: Float) -> Tensor {
        let x = cache.input
        let d = x.nchw
        precondition(dy.shape == [d.n, d.c, d.h / 2, d.w / 2] && pooled.shape == dy.shape && argmax.count == dy.count,
                     "[batchnorm2d] pooled dy shape \(dy.shape) does not match input \(x.shape)")
        return NNKernels.maxPoolLeakyBatchNormBackward(
            dy, argmax: argmax, pooled: pooled, input: x, mean: cache.mean, inverseStd: cache.inverseStd,
            gamma: gamma.value, gammaGradient: &gamma.grad, betaGradient: &beta.grad, leakySlope: leakySlope,
            batchStatistics: cache.usedBatchStatistics, threads: threads)
    }

    /// dL/dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)) with batch statistics (gamma invstd dy with fixed
    /// ones); adds dL/dgamma = sum dy xhat and dL/dbeta = sum dy.
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor {
        let x = cache.input
        precondition(dy.shape == x.shape, "[batchnorm2d] dy shape \(dy.shape) does not match input \(x.shape)")
        return NNKernels.batchNormBackward(dy, input: x, mean: cache.mean, inverseStd: cache.inverseStd,
                                           gamma: gamma.value, gammaGradient: &gamma.grad, betaGradient: &beta.grad,
                                           batchStatistics: cache.usedBatchStatistics, threads: threads)
    }
}
