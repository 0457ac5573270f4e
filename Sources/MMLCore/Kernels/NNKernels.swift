import MMLKernels

/// Thin wrappers over the C layer kernels (mml_nn.h): mml's packed GEMM, BatchNorm statistics / affine map /
/// backward, the fused BatchNorm -> leaky ReLU -> 2x2 max-pool tail and its backward, max and average pooling and
/// the leaky ReLU. They check shapes (a mismatch is a broken internal contract: `precondition` naming the op and
/// the shapes), call C, and trap with the op's name on a failing status (never user input once the shapes are
/// checked). The elementwise tensor updates and the optimiser steps are in `NNKernels+Updates.swift`.
///
/// Thread counts: 0 = all cores; results do not depend on it.
enum NNKernels {
    // MARK: - GEMM

    /// `C = alpha op(A) op(B) + beta C` in row-major storage with mml's own single-threaded packed GEMM
    /// (OpenBLAS's worker threads would keep spinning after the call): op(A) is m x k (A is k x m when
    /// `transposeA`), op(B) is k x n, C is m x n; `aOffset` is where A starts in `a`. Nothing happens when m == 0.
    static func gemm(_ op: String, transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                     alpha: Float = 1, a: [Float], aOffset: Int = 0, lda: Int, b: [Float], ldb: Int, beta: Float,
                     c: inout [Float], ldc: Int) {
        guard m > 0 else { return }
        func extent(_ rows: Int, _ cols: Int, _ ld: Int) -> Int { rows == 0 ? 0 : (rows - 1) * ld + cols }
        precondition(aOffset >= 0 && a.count >= aOffset + (transposeA ? extent(k, m, lda) : extent(m, k, lda))
                     && b.count >= (transposeB ? extent(n, k, ldb) : extent(k, n, ldb)) && c.count >= extent(m, n, ldc),
                     "[\(op)] gemm \(m)x\(n)x\(k) (transposes \(transposeA), \(transposeB)) does not fit A \(a.count) "
                     + "floats from \(aOffset), B \(b.count), C \(c.count) with ld \(lda), \(ldb), \(ldc)")
        let status = a.withUnsafeBufferPointer { ap in
            mml_sgemm_f32(transposeA ? 1 : 0, transposeB ? 1 : 0, Int64(m), Int64(n), Int64(k), alpha,
                          ap.baseAddress! + aOffset, Int64(lda), b, Int64(ldb), beta, &c, Int64(ldc))
        }
        CommonKernels.require(status, op)
    }

    // MARK: - BatchNorm

    /// Per-channel mean and biased variance over (N, H, W) of x (N, C, H, W); `(C)` each.
    static func batchNormStatistics(_ x: Tensor, threads: Int) -> (mean: [Float], variance: [Float]) {
        let d = x.nchw
        var mean = [Float](repeating: 0, count: d.c), variance = mean
        let status = mml_batchnorm_stats_f32(&mean, &variance, x.data, Int64(d.n), Int64(d.c), Int64(d.h * d.w),
                                             Int32(threads))
        CommonKernels.require(status, "batchnorm2d stats")
        return (mean, variance)
    }

    private static func checkChannels(_ x: Tensor, _ vectors: [[Float]], _ op: String) -> (n: Int, c: Int, h: Int,
                                                                                           w: Int) {
        let d = x.nchw
        precondition(vectors.allSatisfy { $0.count == d.c },
                     "[\(op)] per-channel vectors of \(vectors.map(\.count)) for input \(x.shape)")
        return d
    }

    /// `y = scale[c] x + shift[c]` per channel of x (N, C, H, W), then a leaky ReLU when `leakySlope` is given
    /// (0 for ReLU); scale and shift `(C)`.
    static func channelAffine(_ x: Tensor, scale: [Float], shift: [Float], leakySlope: Float?, threads: Int) -> Tensor {
        let d = checkChannels(x, [scale, shift], "batchnorm2d")
        var y = Tensor(uninitializedShape: x.shape)
        let status = mml_channel_affine_f32(&y.data, x.data, scale, shift, Int64(d.n), Int64(d.c), Int64(d.h * d.w),
                                            leakySlope == nil ? 0 : 1, leakySlope ?? 0, Int32(threads))
        CommonKernels.require(status, "batchnorm2d")
        return y
    }

    /// `maxpool2x2(leaky(scale[c] x + shift[c]))` in one pass (floor mode, first maximum on ties):
    /// x (N, C, H, W) -> (N, C, H / 2, W / 2) and the argmax of each window (index inside its H x W plane).
    static func affineLeakyMaxPool2x2(_ x: Tensor, scale: [Float], shift: [Float], leakySlope: Float,
                                      threads: Int) -> (output: Tensor, argmax: [Int32]) {
        let d = checkChannels(x, [scale, shift], "batchnorm2d+leaky+maxpool")
        var y = Tensor(uninitializedShape: [d.n, d.c, d.h / 2, d.w / 2])
        var arg = CommonKernels.uninitializedIndices(y.count)
        let status = mml_affine_leaky_maxpool2x2_f32(&y.data, &arg, x.data, scale, shift, Int64(d.n), Int64(d.c),
                                                     Int64(d.h), Int64(d.w), leakySlope, Int32(threads))
        CommonKernels.require(status, "batchnorm2d+leaky+maxpool")
        return (y, arg)
    }

    /// BatchNorm backward with xhat = (x - mean) invstd: adds dL/dgamma = sum dy xhat and dL/dbeta = sum dy and
    /// returns dL/dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)) with `batchStatistics`, gamma invstd dy
    /// otherwise. dy, x (N, C, H, W); mean, inverseStd, gamma and the gradients `(C)`.
    static func batchNormBackward(_ dy: Tensor, input x: Tensor, mean: [Float], inverseStd: [Float], gamma: Tensor,
                                  gammaGradient: inout Tensor, betaGradient: inout Tensor, batchStatistics: Bool,
                                  threads: Int) -> Tensor {
        let d = checkChannels(x, [mean, inverseStd, gamma.data, gammaGradient.data, betaGradient.data],
                              "batchnorm2d backward")
        var dx = Tensor(uninitializedShape: x.shape)
        let status = mml_batchnorm_backward_f32(&dx.data, &gammaGradient.data, &betaGradient.data, dy.data, x.data,
                                                mean, inverseStd, gamma.data, Int64(d.n), Int64(d.c),
                                                Int64(d.h * d.w), batchStatistics ? 1 : 0, Int32(threads))
        CommonKernels.require(status, "batchnorm2d backward")
        return dx
    }

    /// Backward of `affineLeakyMaxPool2x2` followed through BatchNorm (as `batchNormBackward`): dy, `pooled`
    /// (N, C, H / 2, W / 2) and `argmax` from the forward, x (N, C, H, W) -> dL/dx (N, C, H, W); the full-size
    /// activation gradient is never stored.
    static func maxPoolLeakyBatchNormBackward(_ dy: Tensor, argmax: [Int32], pooled: Tensor, input x: Tensor,
                                              mean: [Float], inverseStd: [Float], gamma: Tensor,
                                              gammaGradient: inout Tensor, betaGradient: inout Tensor,
                                              leakySlope: Float, batchStatistics: Bool, threads: Int) -> Tensor {
        let d = checkChannels(x, [mean, inverseStd, gamma.data, gammaGradient.data, betaGradient.data],
                              "batchnorm2d+leaky+maxpool backward")
        var dx = Tensor(uninitializedShape: x.shape)
        let status = mml_maxpool_leaky_batchnorm_backward_f32(
            &dx.data, &gammaGradient.data, &betaGradient.data, dy.data, argmax, pooled.data, x.data, mean,
            inverseStd, gamma.data, Int64(d.n), Int64(d.c), Int64(d.h), Int64(d.w), leakySlope,
            batchStatistics ? 1 : 0, Int32(threads))
        CommonKernels.require(status, "batchnorm2d+leaky+maxpool backward")
        return dx
    }

    // MARK: - pooling (square windows, no padding, floor mode)

    /// The (N, C, H, W) of x and the pooled size, checking that a window fits.
    static func pooledSize(_ x: Tensor, kernelSize k: Int, stride: Int, _ op: String)
        -> (d: (n: Int, c: Int, h: Int, w: Int), oh: Int, ow: Int) {
        let d = x.nchw
        precondition(d.h >= k && d.w >= k, "[\(op)] input \(d.h)x\(d.w) < kernel \(k)")
        return (d, (d.h - k) / stride + 1, (d.w - k) / stride + 1)
    }

    /// Max pooling: x (N, C, H, W) -> (N, C, H', W') and the argmax of each window (index inside its plane).
    static func maxPool2D(_ x: Tensor, kernelSize k: Int, stride: Int, threads: Int) -> (output: Tensor,
                                                                                           argmax: [Int32]) {
        let (d, oh, ow) = pooledSize(x, kernelSize: k, stride: stride, "maxpool2d")
        var y = Tensor(uninitializedShape: [d.n, d.c, oh, ow])
        var arg = CommonKernels.uninitializedIndices(y.count)
        let status = mml_maxpool2d_f32(&y.data, &arg, x.data, Int64(d.n * d.c), Int64(d.h), Int64(d.w), Int64(k),
                                       Int64(stride), Int32(threads))
        CommonKernels.require(status, "maxpool2d")
        return (y, arg)
    }

    /// Backward of `maxPool2D`: dL/dx (`inputShape`), each dy routed to its window's argmax (summed on overlaps).
    static func maxPool2DBackward(_ dy: Tensor, argmax: [Int32], inputShape: [Int]) -> Tensor {
        var dx = Tensor(uninitializedShape: inputShape)
        let d = dx.nchw, g = dy.nchw
        precondition(g.n == d.n && g.c == d.c && dy.count == argmax.count,
                     "[maxpool2d] dy shape \(dy.shape) does not match the forward output")
        let status = mml_maxpool2d_backward_f32(&dx.data, dy.data, argmax, Int64(d.n * d.c), Int64(d.h), Int64(d.w),
                                                Int64(g.h), Int64(g.w))
        CommonKernels.require(status, "maxpool2d backward")
        return dx
    }

    /// Average pooling: x (N, C, H, W) -> (N, C, H', W').
    static func avgPool2D(_ x: Tensor, kernelSize k: Int, stride: Int) -> Tensor {
        let (d, oh, ow) = pooledSize(x, kernelSize: k, stride: stride, "avgpool2d")
        var y = Tensor(shape: [d.n, d.c, oh, ow])
        let status = mml_avgpool2d_f32(&y.data, x.data, Int64(d.n * d.c), Int64(d.h), Int64(d.w), Int64(k),
                                       Int64(stride))
        CommonKernels.require(status, "avgpool2d")
        return y
    }

    /// Backward of `avgPool2D`: dL/dx (`inputShape`), each dy spread evenly (1 / k^2) over its window.
    static func avgPool2DBackward(_ dy: Tensor, inputShape: [Int], kernelSize k: Int, stride: Int) -> Tensor {
        var dx = Tensor(shape: inputShape)
        let d = dx.nchw
        let oh = (d.h - k) / stride + 1, ow = (d.w - k) / stride + 1
        precondition(dy.shape == [d.n, d.c, oh, ow], "[avgpool2d] dy shape \(dy.shape) does not match the output")
        let status = mml_avgpool2d_backward_f32(&dx.data, dy.data, Int64(d.n * d.c), Int64(d.h), Int64(d.w),
                                                Int64(k), Int64(stride))
        CommonKernels.require(status, "avgpool2d backward")
        return dx
    }

    // MARK: - activations

    /// `y = x > 0 ? x : slope x`, elementwise on any shape (slope 0 is ReLU).
    static func leakyReLU(_ x: Tensor, slope: Float) -> Tensor {
        var y = Tensor(uninitializedShape: x.shape)
        CommonKernels.require(mml_leaky_relu_f32(&y.data, x.data, Int64(x.count), slope), "leaky_relu")
        return y
    }

    /// `dx = x > 0 ? dy : slope dy` (the derivative at 0 taken as slope, as PyTorch); dy and x of one shape.
    static func leakyReLUBackward(_ dy: Tensor, input x: Tensor, slope: Float) -> Tensor {
        precondition(dy.shape == x.shape, "[leaky_relu] dy shape \(dy.shape) does not match input \(x.shape)")
        var dx = Tensor(uninitializedShape: x.shape)
        CommonKernels.require(mml_leaky_relu_backward_f32(&dx.data, dy.data, x.data, Int64(x.count), slope),
                              "leaky_relu backward")
        return dx
    }
}
