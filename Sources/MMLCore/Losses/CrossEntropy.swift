#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Softmax cross-entropy averaged over a batch:
///     L = (1 / N) sum_i [ logsumexp(z_i) - z_i[y_i] ],   dL/dz_i = (softmax(z_i) - onehot(y_i)) / N.
/// Computed with the max subtracted (stable for any finite logits).
public enum SoftmaxCrossEntropy {
    /// The forward result: the mean loss and the softmax probabilities `(N, K)` that backward needs.
    public struct Output {
        public let loss: Double
        public let probabilities: Tensor
        public let labels: [Int]
    }

    /// - Parameters: `logits (N, K)`, `labels` N class indices in [0, K).
    /// - Throws: `MMLError(.invalidArgument)` for a label out of range, a count mismatch, or non-finite logits.
    public static func forward(logits: Tensor, labels: [Int]) throws -> Output {
        guard logits.rank == 2 else {
            throw MMLError(.invalidArgument, "cross-entropy: logits must be (N, K), got shape \(logits.shape)")
        }
        let n = logits.shape[0], k = logits.shape[1]
        guard labels.count == n, n > 0, k > 0 else {
            throw MMLError(.invalidArgument, "cross-entropy: \(labels.count) labels for \(n) rows of \(k) logits")
        }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= k }) {
            throw MMLError(.invalidArgument, "cross-entropy: label \(labels[bad]) of row \(bad) is outside 0..<\(k)")
        }
        guard logits.isFinite else {
            throw MMLError(.numerical, "cross-entropy: the logits hold NaN or Inf (diverged training? lower the learning rate)")
        }
        var p = Tensor(shape: logits.shape)
        var total = 0.0
        for i in 0..<n {
            let row = i * k
            var m = -Float.infinity
            for j in 0..<k { m = max(m, logits.data[row + j]) }
            var s = 0.0
            for j in 0..<k {
                let e = exp(Double(logits.data[row + j] - m))
                p.data[row + j] = Float(e)
                s += e
            }
            for j in 0..<k { p.data[row + j] = Float(Double(p.data[row + j]) / s) }
            total += log(s) + Double(m) - Double(logits.data[row + labels[i]])
        }
        return Output(loss: total / Double(n), probabilities: p, labels: labels)
    }

    /// dL/dlogits = (softmax - onehot) / N, scaled by `scale` (dL/dloss, 1 by default).
    public static func backward(_ output: Output, scale: Float = 1) -> Tensor {
        var g = output.probabilities
        let n = g.shape[0], k = g.shape[1]
        for i in 0..<n { g.data[i * k + output.labels[i]] -= 1 }
        let f = scale / Float(n)
        for i in 0..<g.count { g.data[i] *= f }
        return g
    }
}
