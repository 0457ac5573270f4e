/// The smallest norm a row is divided by (rows of zeros map to zero instead of NaN).
let minimumRowNorm: Float = 1e-8

/// Rows divided by their L2 norms (clamped below at 1e-8) and the norms used.
func normalizeRows(_ x: [Float], rows: Int, cols: Int) -> (normalized: [Float], norms: [Float]) {
    var out = x, norms = [Float](repeating: 0, count: rows)
    for r in 0..<rows {
        var s: Float = 0
        for c in 0..<cols { s += x[r * cols + c] * x[r * cols + c] }
        let nrm = max(s.squareRoot(), minimumRowNorm)
        norms[r] = nrm
        for c in 0..<cols { out[r * cols + c] = x[r * cols + c] / nrm }
    }
    return (out, norms)
}

/// Adds dL/dx into `grad` for y = x / |x| row-wise: dx = (dy - (dy . y) y) / |x|.
func normalizeRowsBackward(_ dy: [Float], normalized y: [Float], norms: [Float], rows: Int, cols: Int,
                           into grad: inout [Float]) {
    for r in 0..<rows {
        var dot: Float = 0
        for c in 0..<cols { dot += dy[r * cols + c] * y[r * cols + c] }
        let inv = 1 / norms[r]
        for c in 0..<cols { grad[r * cols + c] += (dy[r * cols + c] - dot * y[r * cols + c]) * inv }
    }
}

/// Row-wise L2 normalisation `(N, D) -> (N, D)` with its backward, for embeddings (METHOD.md section 4).
public enum L2Normalize {
    /// What backward needs.
    public struct Cache { let y: [Float], norms: [Float], shape: [Int] }
    /// `x / max(|x|, 1e-8)` per row of an `(N, D)` tensor.
    public static func forward(_ x: Tensor) -> (output: Tensor, cache: Cache) {
        precondition(x.rank == 2, "[l2-normalize] needs (N, D), got \(x.shape)")
        let (y, norms) = normalizeRows(x.data, rows: x.shape[0], cols: x.shape[1])
        return (Tensor(shape: x.shape, data: y), Cache(y: y, norms: norms, shape: x.shape))
    }
    /// dL/dx from dL/dy.
    public static func backward(_ dy: Tensor, cache: Cache) -> Tensor {
        var dx = Tensor(shape: cache.shape)
        normalizeRowsBackward(dy.data, normalized: cache.y, norms: cache.norms, rows: cache.shape[0],
                              cols: cache.shape[1], into: &dx.data)
        return dx
    }
}

/// Global average pooling `(N, C, h, w) -> (N, C)` and its backward (the features the frozen-feature protocols
/// and the pre-training heads use).
public enum GlobalAveragePool {
    /// Mean over the spatial positions of each channel.
    public static func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4, "[gap] needs (N, C, h, w), got \(x.shape)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let hw = h * w
        var y = Tensor(shape: [n, c])
        for i in 0..<(n * c) {
            var s: Float = 0
            for p in 0..<hw { s += x.data[i * hw + p] }
            y.data[i] = s / Float(hw)
        }
        return y
    }
    /// dL/dx: each position gets dL/dy / (h w).
    public static func backward(_ dy: Tensor, inputShape: [Int]) -> Tensor {
        let hw = inputShape[2] * inputShape[3]
        var dx = Tensor(shape: inputShape)
        for i in 0..<dy.count {
            let v = dy.data[i] / Float(hw)
            for p in 0..<hw { dx.data[i * hw + p] = v }
        }
        return dx
    }
}
