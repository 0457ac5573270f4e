import MMLKernels

/// Thin wrappers over the C convolution kernels (mml_conv.h): the implicit-im2col packed-GEMM convolution and its
/// backward, the 3x3 Winograd forward / backward-data / weight-gradient kernels, and the inference conv blocks with
/// the folded BatchNorm, activation and pooling applied in the conv's output. They check shapes (a mismatch is a
/// broken internal contract: `precondition` naming the op and the shapes), grow the caller's workspace, call C,
/// and trap with the op's name on a failing status (the shapes were checked, so it is never user input).
///
/// Thread counts: 0 = all cores; results do not depend on it.
enum ConvKernels {
    /// The Winograd output tile (2 or 4) the kernels prefer on an `h x w` map: F(4x4, 3x3) from 42x42 up.
    static func preferredWinogradTile(height h: Int, width w: Int) -> Int32 {
        mml_conv3x3_winograd_preferred_tile(Int64(h), Int64(w))
    }

    /// The (N, C, H, W) of `x` and the (C', k) of a square `weight` (C', C, k, k) over it.
    private static func sizes(_ x: Tensor, _ weight: Tensor, _ op: String)
        -> (n: Int64, c: Int64, h: Int64, w: Int64, cout: Int64, k: Int64) {
        let d = x.nchw
        precondition(weight.rank == 4 && weight.shape[1] == d.c && weight.shape[2] == weight.shape[3],
                     "[\(op)] weight \(weight.shape) does not match input \(x.shape)")
        return (Int64(d.n), Int64(d.c), Int64(d.h), Int64(d.w), Int64(weight.shape[0]), Int64(weight.shape[2]))
    }

    /// The output size of a k x k conv with `stride` and zero `padding` on an `h x w` map.
    private static func outputSize(_ h: Int64, _ w: Int64, k: Int64, stride: Int, padding: Int) -> (Int, Int) {
        let p = Int64(padding), s = Int64(stride)
        return (Int((h + 2 * p - k) / s + 1), Int((w + 2 * p - k) / s + 1))
    }

    // MARK: - general path (implicit im2col + packed GEMM)

    /// `y = conv(x, weight) + bias`: x (N, C, H, W), weight (C', C, k, k), bias (C') or nil
    /// -> (N, C', (H + 2 padding - k) / stride + 1, ...). `workspace` grows to what the kernel needs and is kept.
    static func forward(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int,
                        workspace: inout [Float], threads: Int) -> Tensor {
        let s = sizes(x, weight, "conv2d")
        precondition(bias == nil || bias!.count == Int(s.cout), "[conv2d] bias \(bias!.shape) for C'=\(s.cout)")
        let (oh, ow) = outputSize(s.h, s.w, k: s.k, stride: stride, padding: padding)
        let wsCount = ensureWorkspace(&workspace, s, stride: stride, padding: padding, threads: threads)
        var y = Tensor(uninitializedShape: [Int(s.n), Int(s.cout), oh, ow])
        let status = mml_conv2d_forward_f32(&y.data, x.data, weight.data, bias?.data, s.n, s.c, s.h, s.w, s.cout,
                                            s.k, s.k, Int64(stride), Int64(padding), &workspace, wsCount,
                                            Int32(threads))
        CommonKernels.require(status, "conv2d")
        return y
    }

    /// Backward of `forward`: adds dL/dW = sum_n dy_n col_n^T into `weightGradient` and dL/db = sum over (n, y, x)
    /// of dy into `biasGradient` (when there is one); returns dL/dx (N, C, H, W), or nil without `inputGradient`.
    static func backward(_ dy: Tensor, input x: Tensor, weight: Tensor, stride: Int, padding: Int, inputGradient: Bool,
                         weightGradient: inout Tensor, biasGradient: inout Tensor?, workspace: inout [Float],
                         threads: Int) -> Tensor? {
        precondition(weightGradient.shape == weight.shape,
                     "[conv2d backward] dW \(weightGradient.shape) does not match weight \(weight.shape)")
        return weightGradient.data.withUnsafeMutableBufferPointer { dw in
            backward(dy, input: x, weight: weight, stride: stride, padding: padding, inputGradient: inputGradient,
                     weightGradient: dw.baseAddress, biasGradient: &biasGradient, workspace: &workspace,
                     threads: threads)
        }
    }

    /// dL/dx (N, C, H, W) of `forward` alone: no parameter gradient is computed (the C kernel skips the dW GEMM
    /// given no dW), and dL/dx has the same bits as `backward`'s.
    static func backwardData(_ dy: Tensor, input x: Tensor, weight: Tensor, stride: Int, padding: Int,
                             workspace: inout [Float], threads: Int) -> Tensor {
        var noBias: Tensor? = nil
        return backward(dy, input: x, weight: weight, stride: stride, padding: padding, inputGradient: true,
                        weightGradient: nil, biasGradient: &noBias, workspace: &workspace, threads: threads)!
    }

    /// `backward` with dL/dW accumulated at `weightGradient` (C' x C x k x k floats) or not computed (nil).
    private static func backward(_ dy: Tensor, input x: Tensor, weight: Tensor, stride: Int, padding: Int,
                                 inputGradient: Bool, weightGradient: UnsafeMutablePointer<Float>?,
                                 biasGradient: inout Tensor?, workspace: inout [Float], threads: Int) -> Tensor? {
        let s = sizes(x, weight, "conv2d backward")
        let (oh, ow) = outputSize(s.h, s.w, k: s.k, stride: stride, padding: padding)
        precondition(dy.shape == [Int(s.n), Int(s.cout), oh, ow]
                     && (biasGradient == nil || biasGradient!.count == Int(s.cout)),
                     "[conv2d backward] dy \(dy.shape), db \(biasGradient?.shape ?? []) "
                     + "do not match input \(x.shape) and weight \(weight.shape)")
        let wsCount = ensureWorkspace(&workspace, s, stride: stride, padding: padding, threads: threads)
        var dx = inputGradient ? Tensor(uninitializedShape: x.shape) : Tensor(shape: [0])
        let status = dx.data.withUnsafeMutableBufferPointer { dxp in
            withOptionalData(&biasGradient) { dbp in
                mml_conv2d_backward_f32(inputGradient ? dxp.baseAddress : nil, weightGradient, dbp, dy.data,
                                        x.data, weight.data, s.n, s.c, s.h, s.w, s.cout, s.k, s.k, Int64(stride),
                                        Int64(padding), &workspace, wsCount, Int32(threads))
            }
        }
        CommonKernels.require(status, "conv2d backward")
        return inputGradient ? dx : nil
    }

    private static func ensureWorkspace(_ workspace: inout [Float], _ s: (n: Int64, c: Int64, h: Int64, w: Int64,
                                                                           cout: Int64, k: Int64),
                                        stride: Int, padding: Int, threads: Int) -> Int64 {
        let need = mml_conv2d_workspace_floats(s.n, s.c, s.h, s.w, s.cout, s.k, s.k, Int64(stride), Int64(padding),
                                               Int32(threads))
        return CommonKernels.ensure(&workspace, floats: need, "conv2d",
                                    "(n: \(s.n), c: \(s.c), h: \(s.h), w: \(s.w))")
    }

    // MARK: - 3x3 Winograd (stride 1, padding 1, no bias)

    /// Winograd F(tile x tile, 3x3) forward: x (N, C, H, W), weight (C', C, 3, 3) -> (N, C', H, W).
    static func winogradForward(_ x: Tensor, weight: Tensor, tile: Int32, workspace: inout [Float],
                                threads: Int) -> Tensor {
        let s = sizes(x, weight, "conv2d winograd")
        var y = Tensor(uninitializedShape: [Int(s.n), Int(s.cout), Int(s.h), Int(s.w)])
        runWinogradTile(mml_conv3x3_winograd_tile_forward_f32, into: &y, from: x, weight: weight, s, tile: tile,
                        workspace: &workspace, threads: threads, "conv2d winograd")
        return y
    }

    /// Winograd backward data: dL/dx (N, C, H, W) of the forward over `inputShape` from dy (N, C', H, W).
    static func winogradBackwardData(_ dy: Tensor, inputShape: [Int], weight: Tensor, tile: Int32,
                                     workspace: inout [Float], threads: Int) -> Tensor {
        var dx = Tensor(uninitializedShape: inputShape)
        let s = sizes(dx, weight, "conv2d winograd backward data")
        precondition(dy.shape == [Int(s.n), Int(s.cout), Int(s.h), Int(s.w)],
                     "[conv2d winograd backward data] dy \(dy.shape) does not match input \(inputShape)")
        runWinogradTile(mml_conv3x3_winograd_tile_backward_data_f32, into: &dx, from: dy, weight: weight, s,
                        tile: tile, workspace: &workspace, threads: threads, "conv2d winograd backward data")
        return dx
    }

    /// The Winograd forward or backward-data kernel (same signature: output, input, weight, sizes of the forward
    /// direction, tile, workspace, threads) from `input` into `output`.
    private static func runWinogradTile(
        _ kernel: (UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, Int64, Int64, Int64,
                   Int64, Int64, Int32, UnsafeMutablePointer<Float>?, Int64, Int32) -> Int32,
        into output: inout Tensor, from input: Tensor, weight: Tensor,
        _ s: (n: Int64, c: Int64, h: Int64, w: Int64, cout: Int64, k: Int64), tile: Int32,
        workspace: inout [Float], threads: Int, _ op: String
    ) {
        precondition(s.k == 3, "[\(op)] weight \(weight.shape) is not 3x3")
        let nthreads = Int32(max(threads, 0))
        let need = mml_conv3x3_winograd_tile_workspace_floats(s.n, s.c, s.h, s.w, s.cout, tile, nthreads)
        let wsCount = CommonKernels.ensure(&workspace, floats: need, "conv2d",
                                           "(n: \(s.n), c: \(s.c), h: \(s.h), w: \(s.w))")
        let status = kernel(&output.data, input.data, weight.data, s.n, s.c, s.h, s.w, s.cout, tile, &workspace,
                            wsCount, nthreads)
        CommonKernels.require(status, op)
    }

    /// The 3x3 weight gradients' shared C signatures: the workspace size and the kernel.
    private typealias WeightGradientWorkspace = (Int64, Int64, Int64, Int64, Int64, Int32) -> Int64
    private typealias WeightGradientKernel = (UnsafeMutablePointer<Float>?, UnsafePointer<Float>?,
                                              UnsafePointer<Float>?, Int64, Int64, Int64, Int64, Int64,
                                              UnsafeMutablePointer<Float>?, Int64, Int32) -> Int32

    /// Adds dL/dW (C', C, 3, 3) of x (N, C, H, W) and dy (N, C', H, W) into `weightGradient` with `kernel`.
    private static func weightGradient(_ dy: Tensor, input x: Tensor, into weightGradient: inout Tensor,
                                       workspace: inout [Float], threads: Int, _ op: String,
                                       _ workspaceFloats: WeightGradientWorkspace, _ kernel: WeightGradientKernel) {
        let s = sizes(x, weightGradient, op)
        precondition(s.k == 3 && dy.shape == [Int(s.n), Int(s.cout), Int(s.h), Int(s.w)],
                     "[\(op)] dy \(dy.shape), dW \(weightGradient.shape), x \(x.shape)")
        let need = workspaceFloats(s.n, s.c, s.h, s.w, s.cout, Int32(threads))
        let wsCount = CommonKernels.ensure(&workspace, floats: need, "conv2d",
                                           "(n: \(s.n), c: \(s.c), h: \(s.h), w: \(s.w))")
        let status = kernel(&weightGradient.data, dy.data, x.data, s.n, s.c, s.h, s.w, s.cout, &workspace, wsCount,
                            Int32(threads))
        CommonKernels.require(status, op)
    }

    /// The Winograd F(2x2, 3x3) weight gradient: adds dL/dW (C', C, 3, 3) of x (N, C, H, W) and dy (N, C', H, W)
    /// into `weightGradient`.
    static func winogradWeightGradient(_ dy: Tensor, input x: Tensor, into weightGradient: inout Tensor,
                                       workspace: inout [Float], threads: Int) {
        self.weightGradient(dy, input: x, into: &weightGradient, workspace: &workspace, threads: threads,
                            "conv2d winograd weight gradient", mml_conv3x3_wgrad_workspace_floats,
                            mml_conv3x3_winograd_backward_weight_f32)
    }

    /// The same weight gradient by direct accumulation, for few input channels (a network's first layer):
    /// adds dL/dW into `weightGradient`; the same bits on every ISA path and thread count.
    static func directWeightGradient(_ dy: Tensor, input x: Tensor, into weightGradient: inout Tensor,
                                     workspace: inout [Float], threads: Int) {
        self.weightGradient(dy, input: x, into: &weightGradient, workspace: &workspace, threads: threads,
                            "conv2d direct weight gradient", mml_conv3x3_direct_wgrad_workspace_floats,
                            mml_conv3x3_direct_backward_weight_f32)
    }

    // MARK: - inference blocks: conv -> affine (folded BatchNorm) -> leaky ReLU -> optional 2x2 max-pool

    /// The output shape of an inference block: (N, C', H, W), or (N, C', H / 2, W / 2) pooled.
    private static func blockOutputShape(_ s: (n: Int64, c: Int64, h: Int64, w: Int64, cout: Int64, k: Int64),
                                         pooled: Bool) -> [Int] {
        [Int(s.n), Int(s.cout), Int(pooled ? s.h / 2 : s.h), Int(pooled ? s.w / 2 : s.w)]
    }

    /// The Winograd 3x3 conv with `y = leaky(scale * conv + shift)` and the optional 2x2 max-pool applied inside
    /// its output transform: x (N, C, H, W), weight (C', C, 3, 3), scale and shift (C').
    static func winogradBlockForward(_ x: Tensor, weight: Tensor, scale: [Float], shift: [Float],
                                     negativeSlope: Float, pooled: Bool, tile: Int32, workspace: inout [Float],
                                     threads: Int) -> Tensor {
        let s = sizes(x, weight, "convblock winograd")
        precondition(s.k == 3 && scale.count == Int(s.cout) && shift.count == Int(s.cout),
                     "[convblock winograd] weight \(weight.shape), scale \(scale.count), shift \(shift.count)")
        let nthreads = Int32(max(threads, 0))
        let need = mml_conv3x3_winograd_tile_workspace_floats(s.n, s.c, s.h, s.w, s.cout, tile, nthreads)
        let wsCount = CommonKernels.ensure(&workspace, floats: need, "convblock", x.shape.description)
        var y = Tensor(uninitializedShape: blockOutputShape(s, pooled: pooled))
        let status = mml_conv3x3_winograd_tile_forward_affine_leaky_f32(
            &y.data, x.data, weight.data, scale, shift, negativeSlope, pooled ? 1 : 0, s.n, s.c, s.h, s.w, s.cout,
            tile, &workspace, wsCount, nthreads)
        CommonKernels.require(status, "convblock winograd")
        return y
    }

    /// The direct conv-block kernel (few input channels: Conv-64F's first layer), one image at a time in cache:
    /// `y = maxpool2x2?(leaky(scale * conv3x3(x, weight, padding 1) + shift))`; shapes as `winogradBlockForward`.
    static func directBlockForward(_ x: Tensor, weight: Tensor, scale: [Float], shift: [Float], negativeSlope: Float,
                                   pooled: Bool, workspace: inout [Float], threads: Int) -> Tensor {
        let s = sizes(x, weight, "convblock")
        precondition(s.k == 3 && scale.count == Int(s.cout) && shift.count == Int(s.cout),
                     "[convblock] weight \(weight.shape), scale \(scale.count), shift \(shift.count)")
        let nthreads = Int32(max(threads, 0))
        let need = mml_conv_block_workspace_floats(s.c, s.h, s.w, s.cout, 3, 1, s.n, nthreads)
        let wsCount = CommonKernels.ensure(&workspace, floats: need, "convblock", x.shape.description)
        var y = Tensor(uninitializedShape: blockOutputShape(s, pooled: pooled))
        let status = mml_conv_block_forward_f32(&y.data, x.data, weight.data, scale, shift, s.n, s.c, s.h, s.w,
                                                s.cout, 3, 1, negativeSlope, pooled ? 1 : 0, &workspace, wsCount,
                                                nthreads)
        CommonKernels.require(status, "convblock")
        return y
    }
}

/// Calls `body` with the address of the tensor's elements, or nil when there is no tensor.
func withOptionalData<R>(_ t: inout Tensor?, _ body: (UnsafeMutablePointer<Float>?) -> R) -> R {
    guard t != nil else { return body(nil) }
    return t!.data.withUnsafeMutableBufferPointer { body($0.baseAddress) }
}
