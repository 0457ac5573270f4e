#if canImport(Glibc)
import Glibc
#endif

/// 2-D convolution (cross-correlation as PyTorch's `Conv2d`) with zero padding.
///
/// 3x3 / stride-1 / padding-1 layers without bias over >= 16 input channels run on Winograd kernels (forward and
/// dL/dx on F(4x4, 3x3) at 42x42 and larger maps, F(2x2, 3x3) below; dL/dW on F(2x2, 3x3); `usesWinograd`); the
/// same shape over at most 8 input channels (a first layer) takes dL/dW from a direct kernel (`usesDirect`); all
/// others run on im2col-free packed GEMMs.
///
/// `x: (N, C, H, W) -> (N, C', H', W')`, `H' = (H + 2 padding - k) / stride + 1`. Weight `(C', C, k, k)`,
/// optional bias `(C')`. Implemented by im2col + a packed AVX-512 GEMM in C (`ConvKernels.forward`),
/// split over images on `threads` threads; the workspace is allocated once and reused.
public final class Conv2D: Layer {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    /// `(C', C, k, k)`.
    public let weight: Parameter
    /// `(C')`, or nil for a convolution without bias (the usual case before BatchNorm).
    public let bias: Parameter?
    /// Threads for the kernel: 0 = all cores, 1 = the calling thread.
    public var threads: Int = 0
    /// Whether 3x3 / stride-1 / padding-1 convolutions without bias over at least `winogradMinimumChannels` input
    /// channels use the Winograd kernels (F(2x2, 3x3) or F(4x4, 3x3) by map size, see `winogradTile`; the same
    /// results up to float rounding, 2.25x or 4x fewer multiplies). On by default; `MML_CONV=im2col` in the environment, or setting this to false, selects the
    /// im2col + GEMM path everywhere (for comparisons).
    nonisolated(unsafe) public static var winogradEnabled: Bool =
        ProcessInfo_environmentValue("MML_CONV") != "im2col"
    /// Below this many input channels the transforms cost more than they save (Conv-64F's RGB input layer).
    public static let winogradMinimumChannels = 16
    /// The Winograd output tile: nil (the default) picks per map size (`ConvKernels.preferredWinogradTile`:
    /// F(4x4, 3x3) at 42x42 and larger, F(2x2, 3x3) below); 2 or 4 forces one. `MML_WINOGRAD_TILE=2|4` in the
    /// environment sets it.
    nonisolated(unsafe) public static var winogradTileOverride: Int32? = {
        switch ProcessInfo_environmentValue("MML_WINOGRAD_TILE") {
        case "2": return 2
        case "4": return 4
        default: return nil
        }
    }()

    /// The Winograd output tile used on an `h x w` map.
    public static func winogradTile(height h: Int, width w: Int) -> Int32 {
        winogradTileOverride ?? ConvKernels.preferredWinogradTile(height: h, width: w)
    }
    private var workspace: [Float] = []
    private var winogradWorkspace: [Float] = []
    private var weightGradientWorkspace: [Float] = []

    /// At most this many input channels (a network's first layer: 1 or 3) and a 3x3 / stride-1 / padding-1 shape
    /// without bias: training runs the direct kernels (`usesDirect`).
    public static let directMaximumChannels = 8

    /// True when this layer's shape qualifies for the direct small-channel weight gradient (and `MML_CONV` is not
    /// `im2col`): dL/dW by `mml_conv3x3_direct_backward_weight_f32` (16 output pixels to a vector, the (channel, tap)
    /// sums in registers), where the im2col GEMM spends most of its time packing a transposed dy at K = 9C = 27.
    /// The forward pass stays on the im2col GEMM (faster there than the direct conv-block kernel without its pool).
    public var usesDirect: Bool {
        Conv2D.winogradEnabled && kernelSize == 3 && stride == 1 && padding == 1 && bias == nil
            && inputChannels <= Conv2D.directMaximumChannels
    }

    /// True when this layer's shape qualifies for the Winograd kernels (and they are enabled).
    public var usesWinograd: Bool {
        Conv2D.winogradEnabled && kernelSize == 3 && stride == 1 && padding == 1 && bias == nil
            && inputChannels >= Conv2D.winogradMinimumChannels
    }

    /// What backward needs: the input.
    public struct Cache { public let input: Tensor }

    /// - Parameters: channel counts, square kernel size, stride, zero padding; `bias` adds a bias vector
    ///   (initialised to 0); weights drawn from `initialization` with `generator`.
    public init<G: RandomNumberGenerator>(inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1,
                                          padding: Int = 0, bias: Bool = false,
                                          initialization: WeightInitialization = .mml, generator: inout G) {
        precondition(inputChannels > 0 && outputChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0,
                     "[conv2d] bad configuration C=\(inputChannels) C'=\(outputChannels) k=\(kernelSize) "
                     + "stride=\(stride) padding=\(padding)")
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        let std = initialization.standardDeviation(fanIn: inputChannels * kernelSize * kernelSize)
        weight = Parameter(Tensor(shape: [outputChannels, inputChannels, kernelSize, kernelSize],
                                  normalMean: 0, std: std, generator: &generator))
        self.bias = bias ? Parameter(Tensor(shape: [outputChannels])) : nil
    }

    /// The output spatial size for an input of `h x w`.
    public func outputSize(height h: Int, width w: Int) -> (height: Int, width: Int) {
        ((h + 2 * padding - kernelSize) / stride + 1, (w + 2 * padding - kernelSize) / stride + 1)
    }

    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {
        visit(parameterName(prefix, "weight"), weight)
        if let bias { visit(parameterName(prefix, "bias"), bias) }
    }

    private func checkInput(_ x: Tensor) -> (n: Int, c: Int, h: Int, w: Int) {
        let d = x.nchw
        precondition(d.c == inputChannels, "[conv2d] weight C=\(inputChannels) does not match input C=\(d.c)")
        precondition(d.h + 2 * padding >= kernelSize && d.w + 2 * padding >= kernelSize,
                     "[conv2d] input \(d.h)x\(d.w) smaller than kernel \(kernelSize) with padding \(padding)")
        return d
    }

    /// `x: (N, C, H, W) -> (N, C', H', W')`.
    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache) {
        let d = checkInput(x)
        let y = usesWinograd
            ? ConvKernels.winogradForward(x, weight: weight.value, tile: Conv2D.winogradTile(height: d.h, width: d.w),
                                          workspace: &winogradWorkspace, threads: threads)
            : ConvKernels.forward(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding,
                                  workspace: &workspace, threads: threads)
        return (y, Cache(input: x))
    }

    /// dL/dx; adds dL/dW = sum_n dy_n col_n^T and dL/db = sum over (n, y, x) of dy into the gradients.
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor {
        backward(dy, cache: cache, inputGradient: true)!
    }

    /// As `backward(_:cache:)`; with `inputGradient == false` only the parameter gradients are computed
    /// (the first layer of a network needs no dL/dx) and nil is returned.
    public func backward(_ dy: Tensor, cache: Cache, inputGradient: Bool) -> Tensor? {
        let x = cache.input
        let d = checkInput(x)
        let (oh, ow) = outputSize(height: d.h, width: d.w)
        precondition(dy.shape == [d.n, outputChannels, oh, ow],
                     "[conv2d] dy shape \(dy.shape) does not match output [\(d.n), \(outputChannels), \(oh), \(ow)]")
        if usesWinograd {
            // dW by the Winograd weight-gradient kernel, dx by the Winograd backward-data kernel
            ConvKernels.winogradWeightGradient(dy, input: x, into: &weight.grad, workspace: &weightGradientWorkspace,
                                               threads: threads)
            guard inputGradient else { return nil }
            return ConvKernels.winogradBackwardData(dy, inputShape: x.shape, weight: weight.value,
                                                    tile: Conv2D.winogradTile(height: d.h, width: d.w),
                                                    workspace: &winogradWorkspace, threads: threads)
        }
        if usesDirect {
            ConvKernels.directWeightGradient(dy, input: x, into: &weight.grad, workspace: &weightGradientWorkspace,
                                             threads: threads)
            guard inputGradient else { return nil }
            // dL/dx (no backbone needs it from a first layer): the im2col path's backward data alone
            return ConvKernels.backwardData(dy, input: x, weight: weight.value, stride: stride, padding: padding,
                                            workspace: &workspace, threads: threads)
        }
        var biasGradient = bias?.grad
        let dx = ConvKernels.backward(dy, input: x, weight: weight.value, stride: stride, padding: padding,
                                      inputGradient: inputGradient, weightGradient: &weight.grad,
                                      biasGradient: &biasGradient, workspace: &workspace, threads: threads)
        if let bias, let biasGradient { bias.grad = biasGradient }
        return dx
    }
}

/// The value of an environment variable (without Foundation), or nil.
func ProcessInfo_environmentValue(_ name: String) -> String? {
    guard let v = getenv(name) else { return nil }
    return String(cString: v)
}
