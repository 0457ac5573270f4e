/// One ResNet-12 stage: three Conv3x3-BN-LeakyReLU(0.1) (the last activation after the residual sum), a 1x1
/// conv + BN shortcut, 2x2 max-pool, optional DropBlock.
///
///     z = BN3(conv3(a2)) + BN_s(conv_s(x)),  y = DropBlock(MaxPool(LeakyReLU(z)))
/// `x: (N, C, H, W) -> (N, C', H / 2, W / 2)`.
public final class ResidualBlock: ParameterContainer {
    public let conv1, conv2, conv3, shortcutConv: Conv2D
    public let bn1, bn2, bn3, shortcutBN: BatchNorm2D
    public let pool = MaxPool2D(kernelSize: 2)
    public let dropBlock: DropBlock?
    static let slope: Float = 0.1

    struct Cache {
        let c1: Conv2D.Cache, b1: BatchNorm2D.Cache, a1: Tensor
        let c2: Conv2D.Cache, b2: BatchNorm2D.Cache, a2: Tensor
        let c3: Conv2D.Cache, b3: BatchNorm2D.Cache
        let cs: Conv2D.Cache, bs: BatchNorm2D.Cache
        let a3: Tensor, p: MaxPool2D.Cache, d: DropBlock.Cache?
    }

    init<G: RandomNumberGenerator>(inputChannels c: Int, outputChannels w: Int, initialization: BackboneInitialization,
                                   dropBlock: DropBlock?, generator g: inout G) {
        let wi: WeightInitialization = initialization == .mml ? .mml : .kaimingNormal(negativeSlope: Self.slope)
        let gs: Float = initialization == .mml ? 0.02 : 0
        conv1 = Conv2D(inputChannels: c, outputChannels: w, kernelSize: 3, padding: 1, initialization: wi, generator: &g)
        bn1 = BatchNorm2D(channels: w, gammaStd: gs, generator: &g)
        conv2 = Conv2D(inputChannels: w, outputChannels: w, kernelSize: 3, padding: 1, initialization: wi, generator: &g)
        bn2 = BatchNorm2D(channels: w, gammaStd: gs, generator: &g)
        conv3 = Conv2D(inputChannels: w, outputChannels: w, kernelSize: 3, padding: 1, initialization: wi, generator: &g)
        bn3 = BatchNorm2D(channels: w, gammaStd: gs, generator: &g)
        shortcutConv = Conv2D(inputChannels: c, outputChannels: w, kernelSize: 1, initialization: wi, generator: &g)
        shortcutBN = BatchNorm2D(channels: w, gammaStd: gs, generator: &g)
        self.dropBlock = dropBlock
    }

    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {
        conv1.visitParameters(prefix: parameterName(prefix, "conv1"), visit)
        bn1.visitParameters(prefix: parameterName(prefix, "bn1"), visit)
        conv2.visitParameters(prefix: parameterName(prefix, "conv2"), visit)
        bn2.visitParameters(prefix: parameterName(prefix, "bn2"), visit)
        conv3.visitParameters(prefix: parameterName(prefix, "conv3"), visit)
        bn3.visitParameters(prefix: parameterName(prefix, "bn3"), visit)
        shortcutConv.visitParameters(prefix: parameterName(prefix, "downsample.conv"), visit)
        shortcutBN.visitParameters(prefix: parameterName(prefix, "downsample.bn"), visit)
    }

    var convs: [Conv2D] { [conv1, conv2, conv3, shortcutConv] }
    var bns: [BatchNorm2D] { [bn1, bn2, bn3, shortcutBN] }

    func forward(_ x: Tensor, training: Bool) -> (Tensor, Cache) {
        let (h1, c1) = conv1.forward(x, training: training)
        let (a1, b1) = bn1.forward(h1, training: training, leakySlope: Self.slope)
        let (h2, c2) = conv2.forward(a1, training: training)
        let (a2, b2) = bn2.forward(h2, training: training, leakySlope: Self.slope)
        let (h3, c3) = conv3.forward(a2, training: training)
        let (z3, b3) = bn3.forward(h3, training: training, leakySlope: nil)
        let (hs, cs) = shortcutConv.forward(x, training: training)
        let (zs, bs) = shortcutBN.forward(hs, training: training, leakySlope: nil)
        let a3 = applyLeaky(z3 + zs, Self.slope)
        let (p, pc) = pool.forward(a3, training: training)
        var out = p
        var dc: DropBlock.Cache?
        if let dropBlock {
            let (o, c) = dropBlock.forward(p, training: training)
            out = o
            dc = c
        }
        return (out, Cache(c1: c1, b1: b1, a1: a1, c2: c2, b2: b2, a2: a2, c3: c3, b3: b3, cs: cs, bs: bs, a3: a3,
                           p: pc, d: dc))
    }

    func backward(_ dy: Tensor, cache k: Cache, inputGradient: Bool) -> Tensor? {
        var g = dy
        if let dropBlock, let d = k.d { g = dropBlock.backward(g, cache: d) }
        g = pool.backward(g, cache: k.p)
        let dz = leakyBackward(g, k.a3, Self.slope)
        // main path
        var t = bn3.backward(dz, cache: k.b3)
        t = conv3.backward(t, cache: k.c3)
        t = bn2.backward(leakyBackward(t, k.a2, Self.slope), cache: k.b2)
        t = conv2.backward(t, cache: k.c2)
        t = bn1.backward(leakyBackward(t, k.a1, Self.slope), cache: k.b1)
        let dxMain = conv1.backward(t, cache: k.c1, inputGradient: inputGradient)
        // shortcut
        let s = shortcutBN.backward(dz, cache: k.bs)
        let dxShort = shortcutConv.backward(s, cache: k.cs, inputGradient: inputGradient)
        guard var dx = dxMain, let dxs = dxShort else { return nil }
        dx.add(dxs)
        return dx
    }
}

/// ResNet-12 (MML v4, neg-margin, MetaOptNet): four `ResidualBlock`s of widths 64-160-320-640,
/// `(N, C_in, 84, 84) -> (N, 640, 5, 5)`, `28 -> 1`. DropBlock in stages 3 and 4 during training.
/// Parameter names: `block1.conv1.weight`, `block1.bn1.running_mean`, `block1.downsample.conv.weight`, ...
public final class ResNet12: Backbone {
    public let kind = BackboneKind.resnet12
    public let inputChannels: Int
    public let blocks: [ResidualBlock]

    public init(_ configuration: BackboneConfiguration) {
        inputChannels = configuration.inputChannels
        var g = SeededRNG(state: configuration.seed)
        var c = configuration.inputChannels
        var blocks: [ResidualBlock] = []
        for (i, w) in configuration.resolvedWidths.enumerated() {
            let db = i >= 2 && configuration.dropBlockRate > 0
                ? DropBlock(blockSize: configuration.dropBlockSize, rate: configuration.dropBlockRate,
                            seed: configuration.seed &+ 0x5EED_0000 &+ UInt64(i))
                : nil
            blocks.append(ResidualBlock(inputChannels: c, outputChannels: w, initialization: configuration.initialization,
                                        dropBlock: db, generator: &g))
            c = w
        }
        self.blocks = blocks
    }

    public var outputChannels: Int { blocks.last!.conv3.outputChannels }

    public func reseed(_ seed: UInt64) {
        for (i, b) in blocks.enumerated() { b.dropBlock?.reseed(seed &+ 0x5EED_0000 &+ UInt64(i)) }
    }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        var (h, w) = (height, width)
        for _ in blocks { (h, w) = (h / 2, w / 2) }
        return (h, w)
    }

    public var threads: Int {
        get { blocks[0].conv1.threads }
        set {
            for b in blocks {
                for c in b.convs { c.threads = newValue }
                for n in b.bns { n.threads = newValue }
                b.pool.threads = newValue
            }
        }
    }

    public var freezesBatchNormStatistics: Bool {
        get { blocks[0].bn1.freezesStatistics }
        set { for b in blocks { for n in b.bns { n.freezesStatistics = newValue } } }
    }

    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {
        for (i, b) in blocks.enumerated() { b.visitParameters(prefix: parameterName(prefix, "block\(i + 1)"), visit) }
    }

    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: BackboneCache) {
        let h = x
        let (out, caches) = chainForward(h, blocks: blocks) { $0.forward($1, training: training) }
        return (out, BackboneCache(caches))
    }

    public func backward(_ dy: Tensor, cache: BackboneCache, inputGradient: Bool) -> Tensor? {
        chainBackward(dy, blocks: blocks, cache: cache, name: "resnet12", inputGradient: inputGradient) {
            (b: ResidualBlock, g: Tensor, c: ResidualBlock.Cache, wantInput: Bool) in b.backward(g, cache: c, inputGradient: wantInput)
        }
    }
}
