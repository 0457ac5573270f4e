import MMLKernels

/// Max pooling with square windows, no padding, floor mode (PyTorch `MaxPool2d(k, stride)`).
///
/// `x: (N, C, H, W) -> (N, C, (H - k) / s + 1, (W - k) / s + 1)`. Ties pick the first maximum in the window.
public final class MaxPool2D: Layer {
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
        precondition(kernelSize > 0 && (stride ?? kernelSize) > 0, "[maxpool2d] bad kernel \(kernelSize)")
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
    }
    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {}

    /// `(N, C, H, W) -> (N, C, H', W')`.
    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache) {
        let d = x.nchw
        precondition(d.h >= kernelSize && d.w >= kernelSize, "[maxpool2d] input \(d.h)x\(d.w) < kernel \(kernelSize)")
        let oh = (d.h - kernelSize) / stride + 1, ow = (d.w - kernelSize) / stride + 1
        var y = Tensor(uninitializedShape: [d.n, d.c, oh, ow])
        var arg = [Int32](unsafeUninitializedCapacity: y.count) { _, c in c = y.count }
        let status = y.data.withUnsafeMutableBufferPointer { yp in
            x.data.withUnsafeBufferPointer { xp in
                mml_maxpool2d_f32(yp.baseAddress, &arg, xp.baseAddress, Int64(d.n * d.c), Int64(d.h), Int64(d.w),
                                  Int64(kernelSize), Int64(stride), Int32(threads))
            }
        }
        requireLayerKernel(status, "maxpool2d")
        return (y, Cache(inputShape: x.shape, argmax: arg))
    }

    /// dL/dx: each dy routed to the position of its window's maximum (summed where windows overlap).
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor {
        var dx = Tensor(uninitializedShape: cache.inputShape)
        let d = dx.nchw, g = dy.nchw
        precondition(g.n == d.n && g.c == d.c && dy.count == cache.argmax.count,
                     "[maxpool2d] dy shape \(dy.shape) does not match the forward output")
        let status = dx.data.withUnsafeMutableBufferPointer { dxp in
            dy.data.withUnsafeBufferPointer { dyp in
                mml_maxpool2d_backward_f32(dxp.baseAddress, dyp.baseAddress, cache.argmax, Int64(d.n * d.c),
                                           Int64(d.h), Int64(d.w), Int64(g.h), Int64(g.w))
            }
        }
        requireLayerKernel(status, "maxpool2d backward")
        return dx
    }
}

/// Average pooling with square windows, no padding, floor mode (PyTorch `AvgPool2d(k, stride)`).
///
/// `x: (N, C, H, W) -> (N, C, (H - k) / s + 1, (W - k) / s + 1)`.
public final class AvgPool2D: Layer {
    public let kernelSize: Int
    public let stride: Int
    /// What backward needs: the input shape.
    public struct Cache { public let inputShape: [Int] }

    /// `stride` defaults to the window size.
    public init(kernelSize: Int = 2, stride: Int? = nil) {
        precondition(kernelSize > 0 && (stride ?? kernelSize) > 0, "[avgpool2d] bad kernel \(kernelSize)")
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
    }
    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {}

    /// `(N, C, H, W) -> (N, C, H', W')`.
    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache) {
        let d = x.nchw
        precondition(d.h >= kernelSize && d.w >= kernelSize, "[avgpool2d] input \(d.h)x\(d.w) < kernel \(kernelSize)")
        let oh = (d.h - kernelSize) / stride + 1, ow = (d.w - kernelSize) / stride + 1
        var y = Tensor(shape: [d.n, d.c, oh, ow])
        let status = y.data.withUnsafeMutableBufferPointer { yp in
            x.data.withUnsafeBufferPointer { xp in
                mml_avgpool2d_f32(yp.baseAddress, xp.baseAddress, Int64(d.n * d.c), Int64(d.h), Int64(d.w),
                                  Int64(kernelSize), Int64(stride))
            }
        }
        requireLayerKernel(status, "avgpool2d")
        return (y, Cache(inputShape: x.shape))
    }

    /// dL/dx: each dy spread evenly (1 / k^2) over its window.
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor {
        var dx = Tensor(shape: cache.inputShape)
        let d = dx.nchw
        let oh = (d.h - kernelSize) / stride + 1, ow = (d.w - kernelSize) / stride + 1
        precondition(dy.shape == [d.n, d.c, oh, ow], "[avgpool2d] dy shape \(dy.shape) does not match the output")
        let status = dx.data.withUnsafeMutableBufferPointer { dxp in
            dy.data.withUnsafeBufferPointer { dyp in
                mml_avgpool2d_backward_f32(dxp.baseAddress, dyp.baseAddress, Int64(d.n * d.c), Int64(d.h),
                                           Int64(d.w), Int64(kernelSize), Int64(stride))
            }
        }
        requireLayerKernel(status, "avgpool2d backward")
        return dx
    }
}

/// Global average pooling: `x: (N, C, H, W) -> (N, C, 1, 1)`, the mean of each plane.
public final class GlobalAvgPool2D: Layer {
    /// What backward needs: the input shape.
    public struct Cache { public let inputShape: [Int] }
    public init() {}
    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {}

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
