/// Max pooling with square windows, no padding, floor mode (PyTorch `MaxPool2d(k, stride)`).
///
/// `x: (N, C, H, W) -> (N, C, (H - k) / s + 1, (W - k) / s + 1)`. Ties pick the first maximum in the window.
public final class MaxPool2D: ParameterFreeLayer {
    public let kernelSize: Int
    public let stride: Int
    /// Threads for the kernel: 0 = all cores.
    public var threads: Int = 0
    /// What backward needs: the input shape and where each maximum came from (index inside its plane).
    public struct Cache {
        public let inputShape: [Int]
        public let argmax: [Int32]
    }

    /// `stride` defaults to the window size.
    public init(kernelSize: Int = 2, stride: Int? = nil) {
        (self.kernelSize, self.stride) = poolingWindow(kernelSize, stride, "maxpool2d")
    }

    /// `(N, C, H, W) -> (N, C, H', W')`.
    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache) {
        let (y, arg) = NNKernels.maxPool2D(x, kernelSize: kernelSize, stride: stride, threads: threads)
        return (y, Cache(inputShape: x.shape, argmax: arg))
    }

    /// dL/dx: each dy routed to the position of its window's maximum (summed where windows overlap).
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor {
        NNKernels.maxPool2DBackward(dy, argmax: cache.argmax, inputShape: cache.inputShape)
    }
}

/// Average pooling with square windows, no padding, floor mode (PyTorch `AvgPool2d(k, stride)`).
///
/// `x: (N, C, H, W) -> (N, C, (H - k) / s + 1, (W - k) / s + 1)`.
public final class AvgPool2D: ParameterFreeLayer {
    public let kernelSize: Int
    public let stride: Int
    /// What backward needs: the input shape.
    public typealias Cache = InputShapeCache

    /// `stride` defaults to the window size.
    public init(kernelSize: Int = 2, stride: Int? = nil) {
        (self.kernelSize, self.stride) = poolingWindow(kernelSize, stride, "avgpool2d")
    }

    /// `(N, C, H, W) -> (N, C, H', W')`.
    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache) {
        (NNKernels.avgPool2D(x, kernelSize: kernelSize, stride: stride), Cache(inputShape: x.shape))
    }

    /// dL/dx: each dy spread evenly (1 / k^2) over its window.
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor {
        NNKernels.avgPool2DBackward(dy, inputShape: cache.inputShape, kernelSize: kernelSize, stride: stride)
    }
}

/// A pooling window's (size, stride), the stride defaulting to the size; both must be positive.
private func poolingWindow(_ kernelSize: Int, _ stride: Int?, _ op: String) -> (Int, Int) {
    precondition(kernelSize > 0 && (stride ?? kernelSize) > 0, "[\(op)] bad kernel \(kernelSize)")
    return (kernelSize, stride ?? kernelSize)
}

/// Global average pooling: `x: (N, C, H, W) -> (N, C, 1, 1)`, the mean of each plane.
public final class GlobalAvgPool2D: ParameterFreeLayer {
    /// What backward needs: the input shape.
    public typealias Cache = InputShapeCache
    public init() {}

    /// `(N, C, H, W) -> (N, C, 1, 1)`.
    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache) {
        let d = x.nchw
        let hw = d.h * d.w
        var y = Tensor(shape: [d.n, d.c, 1, 1])
        for p in 0..<(d.n * d.c) {
            var s: Float = 0
            for i in 0..<hw { s += x.data[p * hw + i] }
            y.data[p] = s / Float(hw)
        }
        return (y, Cache(inputShape: x.shape))
    }

    /// dL/dx = dy / (H W) at every position of the plane.
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor {
        var dx = Tensor(shape: cache.inputShape)
        let d = dx.nchw
        let hw = d.h * d.w
        precondition(dy.count == d.n * d.c, "[global_avgpool] dy shape \(dy.shape) does not match (N, C, 1, 1)")
        for p in 0..<(d.n * d.c) {
            let g = dy.data[p] / Float(hw)
            for i in 0..<hw { dx.data[p * hw + i] = g }
        }
        return dx
    }
}
