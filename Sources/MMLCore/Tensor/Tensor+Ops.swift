/// The few tensor operations the layers, backbones and optimisers need.
extension Tensor {
    /// A tensor of zeros with the same shape.
    public static func zeros(like other: Tensor) -> Tensor { Tensor(shape: other.shape) }

    /// A tensor of independent normal samples N(mean, std^2), drawn from `generator` in element order.
    public init<G: RandomNumberGenerator>(shape: [Int], normalMean mean: Float, std: Float,
                                          generator: inout G) {
        self.init(shape: shape)
        for i in 0..<data.count { data[i] = mean + std * generator.nextNormal() }
    }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "[tensor] cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: newShape, data: data)
    }

    /// Elementwise sum; shapes must match.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "[tensor] + shapes \(a.shape) and \(b.shape) differ")
        var r = a
        NNKernels.add(b.data, into: &r.data)
        return r
    }

    /// Adds `other` into this tensor (`self += scale * other`); shapes must match.
    public mutating func add(_ other: Tensor, scaledBy scale: Float = 1) {
        precondition(shape == other.shape, "[tensor] add shapes \(shape) and \(other.shape) differ")
        NNKernels.add(other.data, scaledBy: scale, into: &data)
    }

    /// Sets every element to zero, keeping the shape and the storage.
    public mutating func zero() { NNKernels.zero(&data) }

    /// The dimensions of an NCHW tensor; precondition: rank 4.
    public var nchw: (n: Int, c: Int, h: Int, w: Int) {
        precondition(rank == 4, "[tensor] expected an (N, C, H, W) tensor, got shape \(shape)")
        return (shape[0], shape[1], shape[2], shape[3])
    }

    /// The element sum in double precision.
    public func sum() -> Double { data.reduce(0.0) { $0 + Double($1) } }

    /// True when every element is finite.
    public var isFinite: Bool { data.allSatisfy { $0.isFinite } }
}

extension Tensor {
    /// A tensor whose elements are not initialised: for outputs a kernel overwrites completely (saves a pass
    /// over memory and the page faults of zero-filling a large buffer).
    public init(uninitializedShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "[tensor] negative dimension in shape \(shape)")
        let n = shape.reduce(1, *)
        self.init(shape: shape, data: CommonKernels.uninitializedFloats(n))
    }
}

/// Process-wide allocator tuning for training loops.
public enum TensorMemory {
    /// Tells glibc malloc to keep freed memory for reuse instead of returning large blocks to the kernel, so that
    /// the per-step activations (hundreds of MB at batch 80) are not page-faulted in again on every step.
    /// The same as `AllocatorTuning.apply()`.
    public static func keepFreedMemoryForReuse() { AllocatorTuning.apply() }
    /// Returns the retained free memory to the system now (for example before measuring a peak).
    public static func releaseFreedMemory() { CommonKernels.releaseFreedMemory() }
}
