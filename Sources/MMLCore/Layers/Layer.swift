/// A named tensor of a model: a trainable parameter with its gradient, or a buffer (BatchNorm running
/// statistics) that is saved with the model but never updated by an optimiser.
///
/// A reference type so that layers, optimisers and checkpoints share one storage: `backward` adds into `grad`,
/// the optimiser reads `grad` and updates `value`.
public final class Parameter {
    /// The current values.
    public var value: Tensor
    /// dL/dvalue, accumulated by `backward` (+=) until `zeroGradient()`. Empty (count 0) for buffers.
    public var grad: Tensor
    /// False for buffers such as running statistics.
    public let isTrainable: Bool

    /// A parameter (trainable, with a zero gradient of the same shape) or a buffer (no gradient).
    public init(_ value: Tensor, trainable: Bool = true) {
        self.value = value
        self.isTrainable = trainable
        self.grad = trainable ? Tensor(shape: value.shape) : Tensor(shape: [0])
    }

    /// Sets the gradient to zero.
    public func zeroGradient() { if isTrainable { grad.zero() } }

    /// When non-nil, `movingAverage(toward:momentum:)` records its updates here (momentum, target) instead of
    /// applying them, for `applyMovingAverage` to apply later in a chosen order: the trainer applies every episode's
    /// running-statistics updates in episode order, whichever process computed the episode.
    public var deferredUpdates: [(momentum: Float, target: [Float])]?

    /// The running-statistics update `value = (1 - momentum) value + momentum target` (or, while
    /// `deferredUpdates` is set, its record).
    public func movingAverage(toward target: [Float], momentum: Float) {
        if deferredUpdates != nil { deferredUpdates!.append((momentum, target)); return }
        applyMovingAverage(toward: target, momentum: momentum)
    }

    /// Applies one running-statistics update now: `value = (1 - momentum) value + momentum target`, elementwise.
    public func applyMovingAverage(toward target: [Float], momentum: Float) {
        precondition(target.count == value.count, "[parameter] moving average of \(target.count) values for \(value.count)")
        let keep = 1 - momentum
        for i in 0..<target.count { value.data[i] = keep * value.data[i] + momentum * target[i] }
    }
}

/// Anything that owns parameters: it lists them by name, in a fixed order, without reflection.
public protocol ParameterContainer: AnyObject {
    /// Calls `visit` for every parameter and buffer as (`prefix.name`, parameter), e.g.
    /// `backbone.block1.conv.weight`, in a fixed order.
    func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void)
}

extension ParameterContainer {
    /// All parameters and buffers with their dotted names, in visiting order.
    public func namedParameters(prefix: String = "") -> [(name: String, parameter: Parameter)] {
        var out: [(name: String, parameter: Parameter)] = []
        visitParameters(prefix: prefix) { out.append(($0, $1)) }
        return out
    }

    /// Sets every trainable parameter's gradient to zero.
    public func zeroGradients() { visitParameters(prefix: "") { _, p in p.zeroGradient() } }

    /// The number of trainable scalars.
    public var trainableParameterCount: Int {
        var n = 0
        visitParameters(prefix: "") { _, p in if p.isTrainable { n += p.value.count } }
        return n
    }
}

/// Joins a prefix and a name with a dot (`"a" + "b" -> "a.b"`, `"" + "b" -> "b"`).
@inlinable public func parameterName(_ prefix: String, _ name: String) -> String {
    prefix.isEmpty ? name : prefix + "." + name
}

/// A layer with an explicit forward / backward pair.
///
/// `forward` returns the output and what `backward` needs (the cache); `backward` returns dL/dx and adds
/// (+=, never overwrites) into its parameters' `grad`. One layer may run several forwards before their backwards.
public protocol Layer: ParameterContainer {
    /// What the backward pass needs from its forward pass.
    associatedtype Cache
    /// The layer applied to `x`; `training` selects batch statistics, dropping, etc.
    func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache)
    /// dL/dx from dL/dy; parameter gradients accumulate into the parameters.
    func backward(_ dy: Tensor, cache: Cache) -> Tensor
}

/// How convolution and linear weights are initialised.
public enum WeightInitialization: Sendable, Equatable {
    /// N(0, std^2): the MML / DN4 initialisation uses std = 0.02.
    case normal(std: Float)
    /// Kaiming (He) normal for a (leaky) ReLU of the given negative slope:
    /// std = sqrt(2 / (1 + slope^2)) / sqrt(fan_in), fan_in = inputs per output (C * kh * kw).
    case kaimingNormal(negativeSlope: Float)

    /// The MML initialisation: N(0, 0.02).
    public static let mml = WeightInitialization.normal(std: 0.02)

    /// The standard deviation for a weight with `fanIn` inputs per output.
    public func standardDeviation(fanIn: Int) -> Float {
        switch self {
        case .normal(let std): return std
        case .kaimingNormal(let a): return (2 / (1 + a * a)).squareRoot() / Float(max(fanIn, 1)).squareRoot()
        }
    }
}

/// The thread count the layer kernels use when none is given: all online cores.
public let defaultLayerThreads = 0

/// A layer without parameters or buffers (activations, pooling, reshapes): it has nothing to visit.
public protocol ParameterFreeLayer: Layer {}

extension ParameterFreeLayer {
    /// Visits nothing: the layer owns no parameters.
    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {}
}

/// The cache of a layer whose backward needs only the input's shape.
public struct InputShapeCache {
    /// The shape of the forward pass's input.
    public let inputShape: [Int]
}
