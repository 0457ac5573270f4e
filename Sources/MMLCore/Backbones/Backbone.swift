/// The state a backbone's forward pass leaves for its backward pass. Opaque: only the backbone that made it
/// can read it.
public struct BackboneCache {
    let storage: Any
    init(_ storage: Any) { self.storage = storage }
}

/// A feature extractor `(N, C_in, H, W) -> (N, C, h, w)` (METHOD.md section 1) with an explicit backward pass.
public protocol Backbone: ParameterContainer {
    /// The architecture name, e.g. "conv64f".
    var kind: BackboneKind { get }
    /// Input channels (1 for Omniglot, 3 for colour images).
    var inputChannels: Int { get }
    /// Channels of the output feature map.
    var outputChannels: Int { get }
    /// The output map size for an input of `height x width`.
    func outputSize(height: Int, width: Int) -> (height: Int, width: Int)
    /// Threads for the layer kernels (0 = all cores, 1 = the calling thread). Results do not depend on it.
    var threads: Int { get set }
    /// When true, training-mode forwards use and keep the BatchNorm running statistics (MML freezes them after
    /// the first epoch).
    var freezesBatchNormStatistics: Bool { get set }
    /// `x: (N, C_in, H, W) -> (N, C, h, w)`; `training` selects batch statistics and DropBlock.
    func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: BackboneCache)
    /// dL/dx (nil when `inputGradient` is false, which saves the first layer's input gradient); parameter
    /// gradients accumulate into the parameters.
    func backward(_ dy: Tensor, cache: BackboneCache, inputGradient: Bool) -> Tensor?
    /// Restarts every random layer (DropBlock) from `seed`; trainers call it per episode or batch so that random
    /// masks are a pure function of (seed, step) and a resumed run matches an uninterrupted one.
    func reseed(_ seed: UInt64)
}

extension Backbone {
    /// Backbones without random layers have nothing to reseed.
    public func reseed(_ seed: UInt64) {}
}

/// The backbones of METHOD.md section 1.
public enum BackboneKind: String, Sendable, Codable, CaseIterable {
    /// DN4 / ADM / MML v1: 4 x [conv3x3 64, BN, LeakyReLU(0.2)], max-pool after blocks 1 and 2 (84 -> 21x21x64).
    case conv64F = "conv64f"
    /// ProtoNet / Baseline++: 4 x [conv3x3 64, BN, ReLU, max-pool] (84 -> 5x5x64, 28 -> 1x1x64).
    case conv4 = "conv4"
    /// MML v4 / neg-margin: 4 residual stages 64-160-320-640, LeakyReLU(0.1), max-pool (84 -> 5x5x640).
    case resnet12 = "resnet12"
}

/// How a backbone's weights start.
public enum BackboneInitialization: String, Sendable, Codable, CaseIterable {
    /// MML / DN4: conv weights N(0, 0.02), BatchNorm gamma N(1, 0.02), beta 0.
    case mml
    /// Kaiming normal (fan-in, for the block's activation slope), BatchNorm gamma 1, beta 0.
    case kaiming
}

/// Everything that defines a backbone before training.
public struct BackboneConfiguration: Sendable {
    public var kind: BackboneKind
    /// 1 (grey) or 3 (colour) input channels.
    public var inputChannels: Int
    /// Channel widths per block / stage; nil for the architecture's own (64 x 4, or 64-160-320-640).
    /// Smaller widths make tests fast.
    public var widths: [Int]?
    public var initialization: BackboneInitialization
    /// The seed of the initial weights (and of ResNet-12's DropBlock masks).
    public var seed: UInt64
    /// ResNet-12 only: DropBlock rate in stages 3 and 4 (0 switches it off) and block size.
    public var dropBlockRate: Float
    public var dropBlockSize: Int

    public init(kind: BackboneKind, inputChannels: Int = 3, widths: [Int]? = nil,
                initialization: BackboneInitialization = .mml, seed: UInt64 = 0, dropBlockRate: Float = 0.1,
                dropBlockSize: Int = 5) {
        self.kind = kind; self.inputChannels = inputChannels; self.widths = widths
        self.initialization = initialization; self.seed = seed; self.dropBlockRate = dropBlockRate
        self.dropBlockSize = dropBlockSize
    }

    /// The widths in use.
    public var resolvedWidths: [Int] {
        widths ?? (kind == .resnet12 ? [64, 160, 320, 640] : [64, 64, 64, 64])
    }

    /// Checks the configuration. - Throws: `MMLError(.config)` naming the bad field and what to do.
    public func validate() throws {
        guard inputChannels == 1 || inputChannels == 3 else {
            throw MMLError(.config, "backbone \(kind.rawValue): inputChannels is \(inputChannels); use 1 (grey) or 3 (colour)")
        }
        let w = resolvedWidths
        guard w.count == 4, w.allSatisfy({ $0 > 0 }) else {
            throw MMLError(.config, "backbone \(kind.rawValue): widths \(w) must be 4 positive channel counts")
        }
        guard dropBlockRate >= 0, dropBlockRate < 1, dropBlockSize > 0 else {
            throw MMLError(.config, "backbone \(kind.rawValue): dropBlockRate \(dropBlockRate) must be in [0, 1) "
                           + "and dropBlockSize \(dropBlockSize) positive")
        }
    }
}

/// Builds the backbone a configuration describes. - Throws: `MMLError(.config)` for a bad configuration.
public func makeBackbone(_ configuration: BackboneConfiguration) throws -> any Backbone {
    try configuration.validate()
    switch configuration.kind {
    case .conv64F, .conv4: return ConvNet(configuration)
    case .resnet12: return ResNet12(configuration)
    }
}

/// Checks that an input fits a backbone. - Throws: `MMLError(.invalidArgument)` naming the sizes.
public func validateBackboneInput(_ backbone: any Backbone, shape: [Int]) throws {
    guard shape.count == 4, shape[1] == backbone.inputChannels else {
        throw MMLError(.invalidArgument, "backbone \(backbone.kind.rawValue) expects (N, \(backbone.inputChannels), H, W) "
                       + "images, got shape \(shape); convert the images to \(backbone.inputChannels) channel(s)")
    }
    let out = backbone.outputSize(height: shape[2], width: shape[3])
    guard out.height >= 1, out.width >= 1, shape[0] >= 1 else {
        throw MMLError(.invalidArgument, "backbone \(backbone.kind.rawValue): input \(shape[2])x\(shape[3]) is too "
                       + "small (the output would be \(out.height)x\(out.width)); resize images to at least 16x16")
    }
}

/// Training forward through a chain of blocks, keeping each block's cache.
func chainForward<Block, Cache>(_ x: Tensor, blocks: [Block],
                                _ forward: (Block, Tensor) -> (Tensor, Cache)) -> (Tensor, [Cache]) {
    var h = x
    var caches: [Cache] = []
    caches.reserveCapacity(blocks.count)
    for b in blocks {
        let (y, c) = forward(b, h)
        caches.append(c)
        h = y
    }
    return (h, caches)
}

/// Backward through a chain of blocks in reverse order; the first block's input gradient only when asked.
func chainBackward<Block, Cache>(_ dy: Tensor, blocks: [Block], cache: BackboneCache, name: String, inputGradient: Bool,
                                 _ backward: (Block, Tensor, Cache, Bool) -> Tensor?) -> Tensor? {
    guard let caches = cache.storage as? [Cache], caches.count == blocks.count else {
        preconditionFailure("[\(name)] cache does not come from this backbone's forward")
    }
    var g = dy
    for i in stride(from: blocks.count - 1, through: 0, by: -1) {
        guard let d = backward(blocks[i], g, caches[i], i > 0 || inputGradient) else { return nil }
        g = d
    }
    return g
}
