/// A dense float32 tensor, contiguous and row-major (NCHW for images).
///
/// Only what the engine needs: a shape and a flat buffer. Value semantics (copy on write through Array).
public struct Tensor: Sendable, Equatable {
    /// The extent of each dimension, outermost first, e.g. `[N, C, H, W]`.
    public var shape: [Int]
    /// The elements in row-major order; `data.count == shape.reduce(1, *)`.
    public var data: [Float]

    /// A tensor of the given shape filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "[tensor] negative dimension in shape \(shape)")
        self.shape = shape
        self.data = [Float](repeating: value, count: shape.reduce(1, *))
    }

    /// A tensor over existing elements; `data.count` must equal the product of `shape`.
    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count,
                     "[tensor] shape \(shape) needs \(shape.reduce(1, *)) elements, got \(data.count)")
        self.shape = shape
        self.data = data
    }

    /// The number of elements.
    @inlinable public var count: Int { data.count }
    /// The number of dimensions.
    @inlinable public var rank: Int { shape.count }
}
