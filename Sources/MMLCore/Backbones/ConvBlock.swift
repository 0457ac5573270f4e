/// Conv3x3 (padding 1) -> BatchNorm -> (Leaky)ReLU -> optional 2x2 max-pool: the block of Conv-64F and Conv-4.
///
/// `x: (N, C, H, W) -> (N, C', H, W)` or `(N, C', H / 2, W / 2)` with pooling. BN, the activation and the pooling run as one
/// fused pass.
public final class ConvBlock: ParameterContainer {
    public let conv: Conv2D
    public let bn: BatchNorm2D
    /// The activation's negative slope (0 for ReLU).
    public let negativeSlope: Float
    public let pool: MaxPool2D?

    /// What backward needs.
    public struct Cache {
        let conv: Conv2D.Cache
        let bn: BatchNorm2D.Cache
        /// The activation output, or with pooling the pooled output (its sign equals the activation input's at
        /// each argmax, which is all the derivative needs).
        let activated: Tensor
        let pool: MaxPool2D.Cache?
    }

    public init<G: RandomNumberGenerator>(inputChannels: Int, outputChannels: Int, negativeSlope: Float, pool: Bool,
                                          initialization: BackboneInitialization, generator: inout G) {
        let w: WeightInitialization = initialization == .mml ? .mml : .kaimingNormal(negativeSlope: negativeSlope)
        conv = Conv2D(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 3, padding: 1,
                      initialization: w, generator: &generator)
        bn = BatchNorm2D(channels: outputChannels, gammaStd: initialization == .mml ? 0.02 : 0, generator: &generator)
        self.negativeSlope = negativeSlope
        self.pool = pool ? MaxPool2D(kernelSize: 2) : nil
    }

    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {
        conv.visitParameters(prefix: parameterName(prefix, "conv"), visit)
        bn.visitParameters(prefix: parameterName(prefix, "bn"), visit)
    }

    var threads: Int {
        get { conv.threads }
        set { conv.threads = newValue; bn.threads = newValue; pool?.threads = newValue }
    }

    private var workspace: [Float] = []

    /// Inference: conv, folded BatchNorm, activation and pooling one image at a time in cache (the direct
    /// conv-block kernel), with no full-size intermediate maps; for Winograd-eligible convs, the Winograd conv with
    /// BN, activation and pooling folded into its output transform.
    func inferenceForward(_ x: Tensor) -> Tensor {
        let d = x.nchw
        precondition(d.c == conv.inputChannels, "[convblock] input C=\(d.c) does not match \(conv.inputChannels)")
        let (scale, shift) = bn.foldedAffine()
        // Winograd-eligible convs: the Winograd conv with BN, activation and pooling folded into its output
        // transform; others (the first layer): the conv-block kernel
        if conv.usesWinograd {
            return ConvKernels.winogradBlockForward(x, weight: conv.weight.value, scale: scale, shift: shift,
                                                    negativeSlope: negativeSlope, pooled: pool != nil,
                                                    tile: Conv2D.winogradTile(height: d.h, width: d.w),
                                                    workspace: &workspace, threads: threads)
        }
        return ConvKernels.directBlockForward(x, weight: conv.weight.value, scale: scale, shift: shift,
                                              negativeSlope: negativeSlope, pooled: pool != nil,
                                              workspace: &workspace, threads: threads)
    }

    func forward(_ x: Tensor, training: Bool) -> (Tensor, Cache) {
        let (c, cc) = conv.forward(x, training: training)
        guard pool != nil else {
            let (a, bc) = bn.forward(c, training: training, leakySlope: negativeSlope)
            return (a, Cache(conv: cc, bn: bc, activated: a, pool: nil))
        }
        // BN, activation and pooling in one pass; the cache keeps the pooled output (its sign is the activation's
        // at each argmax) instead of the full-size activation
        let (p, arg, bc) = bn.forwardLeakyMaxPool2x2(c, training: training, leakySlope: negativeSlope)
        return (p, Cache(conv: cc, bn: bc, activated: p, pool: MaxPool2D.Cache(inputShape: c.shape, argmax: arg)))
    }

    func backward(_ dy: Tensor, cache: Cache, inputGradient: Bool) -> Tensor? {
        let dc: Tensor
        if let pc = cache.pool {
            dc = bn.backwardLeakyMaxPool2x2(dy, argmax: pc.argmax, pooled: cache.activated, cache: cache.bn,
                                            leakySlope: negativeSlope)
        } else {
            dc = bn.backward(leakyBackward(dy, cache.activated, negativeSlope), cache: cache.bn)
        }
        return conv.backward(dc, cache: cache.conv, inputGradient: inputGradient)
    }
}

/// Conv-64F (DN4 / MML v1) and Conv-4 (ProtoNet): four `ConvBlock`s (METHOD.md section 1).
///
/// Conv-64F: LeakyReLU(0.2), pools after blocks 1 and 2: `(N, C_in, 84, 84) -> (N, 64, 21, 21)`.
/// Conv-4: ReLU, pools after every block: `(N, C_in, 84, 84) -> (N, 64, 5, 5)`, `28 -> 1`.
/// Parameter names: `block1.conv.weight`, `block1.bn.weight|bias|running_mean|running_var`, ...
public final class ConvNet: Backbone {
    public let kind: BackboneKind
    public let inputChannels: Int
    public let blocks: [ConvBlock]

    public init(_ configuration: BackboneConfiguration) {
        precondition(configuration.kind != .resnet12, "[convnet] configuration is for \(configuration.kind)")
        kind = configuration.kind
        inputChannels = configuration.inputChannels
        var g = SeededRNG(state: configuration.seed)
        let widths = configuration.resolvedWidths
        var c = configuration.inputChannels
        var blocks: [ConvBlock] = []
        for (i, w) in widths.enumerated() {
            let pool = configuration.kind == .conv4 || i < 2
            blocks.append(ConvBlock(inputChannels: c, outputChannels: w,
                                    negativeSlope: configuration.kind == .conv4 ? 0 : 0.2, pool: pool,
                                    initialization: configuration.initialization, generator: &g))
            c = w
        }
        self.blocks = blocks
    }

    public var outputChannels: Int { blocks.last!.conv.outputChannels }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        var (h, w) = (height, width)
        for b in blocks where b.pool != nil { (h, w) = (h / 2, w / 2) }
        return (h, w)
    }

    public var threads: Int {
        get { blocks[0].threads }
        set { for b in blocks { b.threads = newValue } }
    }

    public var freezesBatchNormStatistics: Bool {
        get { blocks[0].bn.freezesStatistics }
        set { for b in blocks { b.bn.freezesStatistics = newValue } }
    }

    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {
        for (i, b) in blocks.enumerated() { b.visitParameters(prefix: parameterName(prefix, "block\(i + 1)"), visit) }
    }

    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: BackboneCache) {
        var h = x
        if !training {
            // Inference needs no cache: the fused per-image path.
            for b in blocks { h = b.inferenceForward(h) }
            return (h, BackboneCache([ConvBlock.Cache]()))
        }
        let (out, caches) = chainForward(h, blocks: blocks) { $0.forward($1, training: training) }
        return (out, BackboneCache(caches))
    }

    public func backward(_ dy: Tensor, cache: BackboneCache, inputGradient: Bool) -> Tensor? {
        chainBackward(dy, blocks: blocks, cache: cache, name: "convnet", inputGradient: inputGradient) {
            (b: ConvBlock, g: Tensor, c: ConvBlock.Cache, wantInput: Bool) in b.backward(g, cache: c, inputGradient: wantInput)
        }
    }
}
