#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// The classifier heads of supervised pre-training (METHOD.md section 3; Liu et al. 2020, Chen et al. 2019).
public enum ClassifierHeadKind: String, Sendable, Codable, CaseIterable {
    /// Baseline: a linear layer with bias, `logits = W x + b` (margin and scale unused).
    case softmax
    /// Baseline++: `logits_j = s * cos(x, w_j)` (margin unused).
    case cosine
    /// Negative-margin cosine: `logits_j = s * (cos(x, w_j) - m * [j = y])`.
    case negCosine = "neg-cosine"
    /// Negative-margin softmax: `z = W x; z -= min_j z_j; logits_j = s * (z_j - m * [j = y])`.
    case negSoftmax = "neg-softmax"

    /// The default scale s of the head (30 for neg-cosine and cosine, 5 for neg-softmax, 1 for softmax).
    public var defaultScale: Float {
        switch self {
        case .softmax: return 1
        case .cosine, .negCosine: return 30
        case .negSoftmax: return 5
        }
    }

    /// Whether the head uses a margin.
    public var usesMargin: Bool { self == .negCosine || self == .negSoftmax }
}

/// A classifier head `(N, D) features -> (N, K) logits` with a margin on the target logit and an explicit backward.
///
/// Sign convention (as Liu et al.): the target logit is `s * (z_y - m)`, so a **negative** margin m *raises* the
/// target logit (the loss asks less separation between classes) and a positive margin lowers it (the usual
/// large-margin losses). The margin only enters the training loss; `predict` uses the plain logits (m = 0).
///
/// The weight `(K, D)` (and for `softmax` the bias `(K)`) are `Parameter`s visited as `weight` / `bias`, so any
/// optimiser updates them and a checkpoint stores them as extra tensors (e.g. `head.weight`).
public final class MarginClassifier: ParameterContainer {
    public let kind: ClassifierHeadKind
    public let inputFeatures: Int
    public let classes: Int
    /// The scale s.
    public let scale: Float
    /// The margin m (0 for `softmax` and `cosine`).
    public let margin: Float
    /// `(K, D)` class weights.
    public let weight: Parameter
    /// `(K)` bias of the `softmax` head; nil otherwise.
    public let bias: Parameter?

    /// What backward needs from forward.
    public struct Cache {
        let input: Tensor
        /// Normalised inputs and their norms (cosine heads).
        let xn: [Float], xNorm: [Float]
        /// Normalised weights and their norms (cosine heads).
        let wn: [Float], wNorm: [Float]
        /// Row-wise argmin of z (neg-softmax).
        let argmin: [Int]
    }

    /// A head with weights N(0, 1/D) drawn from `SeededRNG(seed:)`.
    /// - Parameters: `scale` nil for the kind's default; `margin` ignored (0) by `softmax` and `cosine`.
    /// - Throws: `MMLError(.config)` for sizes < 1, or a non-finite / non-positive scale or non-finite margin.
    public init(kind: ClassifierHeadKind, inputFeatures: Int, classes: Int, scale: Float? = nil, margin: Float = 0,
                seed: UInt64) throws {
        guard inputFeatures >= 1, classes >= 1 else {
            throw MMLError(.config, "classifier head: needs >= 1 input feature and >= 1 class, got \(inputFeatures) "
                           + "and \(classes)")
        }
        let s = scale ?? kind.defaultScale
        guard s.isFinite, s > 0 else {
            throw MMLError(.config, "classifier head: scale must be a positive number, got \(s)")
        }
        guard margin.isFinite else { throw MMLError(.config, "classifier head: margin must be finite, got \(margin)") }
        self.kind = kind
        self.inputFeatures = inputFeatures
        self.classes = classes
        self.scale = s
        self.margin = kind.usesMargin ? margin : 0
        var rng = SeededRNG(seed: seed)
        weight = Parameter(Tensor(shape: [classes, inputFeatures], normalMean: 0,
                                  std: 1 / Float(inputFeatures).squareRoot(), generator: &rng))
        bias = kind == .softmax ? Parameter(Tensor(shape: [classes])) : nil
    }

    public func visitParameters(prefix: String, _ visit: (String, Parameter) -> Void) {
        visit(parameterName(prefix, "weight"), weight)
        if let bias { visit(parameterName(prefix, "bias"), bias) }
    }

    /// The training logits `(N, K)` for `x: (N, D)` with the margin applied to each row's `labels[i]`
    /// (pass nil labels for plain logits, m = 0). - Throws: `MMLError(.invalidArgument)` for a shape or label error.
    public func forward(_ x: Tensor, labels: [Int]?) throws -> (logits: Tensor, cache: Cache) {
        guard x.rank == 2, x.shape[1] == inputFeatures else {
            throw MMLError(.invalidArgument, "classifier head: features must be (N, \(inputFeatures)), got \(x.shape)")
        }
        let n = x.shape[0], d = inputFeatures, k = classes
        if let labels {
            guard labels.count == n else {
                throw MMLError(.invalidArgument, "classifier head: \(labels.count) labels for \(n) feature rows")
            }
            if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= k }) {
                throw MMLError(.invalidArgument, "classifier head: label \(labels[bad]) of row \(bad) is outside "
                               + "0..<\(k); does the head have as many classes as the dataset?")
            }
        }
        var z = Tensor(shape: [n, k])
        var xn: [Float] = [], xNorm: [Float] = [], wn: [Float] = [], wNorm: [Float] = []
        var argmin: [Int] = []
        switch kind {
        case .softmax, .negSoftmax:
            if let bias { for i in 0..<n { for j in 0..<k { z.data[i * k + j] = bias.value.data[j] } } }
            gemm(x.data, weight.value.data, &z.data, n: n, k: k, d: d)
            if kind == .negSoftmax {
                argmin = [Int](repeating: 0, count: n)
                for i in 0..<n {
                    var best = 0
                    for j in 1..<max(k, 1) where z.data[i * k + j] < z.data[i * k + best] { best = j }
                    argmin[i] = best
                    let lo = z.data[i * k + best]
                    for j in 0..<k { z.data[i * k + j] = scale * (z.data[i * k + j] - lo) }
                }
            }
        case .cosine, .negCosine:
            (xn, xNorm) = normalizeRows(x.data, rows: n, cols: d)
            (wn, wNorm) = normalizeRows(weight.value.data, rows: k, cols: d)
            gemm(xn, wn, &z.data, n: n, k: k, d: d)
            for i in 0..<z.count { z.data[i] *= scale }
        }
        if let labels, margin != 0 {
            for i in 0..<n { z.data[i * k + labels[i]] -= scale * margin }
        }
        return (z, Cache(input: x, xn: xn, xNorm: xNorm, wn: wn, wNorm: wNorm, argmin: argmin))
    }

    /// dL/dx `(N, D)` from dL/dlogits `(N, K)`; adds dL/dW (and dL/db) into the parameters' gradients.
    public func backward(_ dLogits: Tensor, cache: Cache) -> Tensor {
        let n = cache.input.shape[0], d = inputFeatures, k = classes
        precondition(dLogits.shape == [n, k], "[head] dLogits \(dLogits.shape) does not match [\(n), \(k)]")
        var dx = Tensor(shape: [n, d])
        switch kind {
        case .softmax, .negSoftmax:
            var dz = dLogits.data
            if kind == .negSoftmax {
                // logits_j = s (z_j - z_min) - s m [j = y]  =>  dz_j = s g_j - [j = argmin] s sum_l g_l
                for i in 0..<n {
                    var total: Float = 0
                    for j in 0..<k { total += dz[i * k + j]; dz[i * k + j] *= scale }
                    dz[i * k + cache.argmin[i]] -= scale * total
                }
            }
            if let bias { for i in 0..<n { for j in 0..<k { bias.grad.data[j] += dz[i * k + j] } } }
            gemmBackward(dz, a: cache.input.data, w: weight.value.data, da: &dx.data, dw: &weight.grad.data,
                         n: n, k: k, d: d)
        case .cosine, .negCosine:
            let g = dLogits.data.map { $0 * scale }
            var dxn = [Float](repeating: 0, count: n * d), dwn = [Float](repeating: 0, count: k * d)
            gemmBackward(g, a: cache.xn, w: cache.wn, da: &dxn, dw: &dwn, n: n, k: k, d: d)
            normalizeRowsBackward(dxn, normalized: cache.xn, norms: cache.xNorm, rows: n, cols: d, into: &dx.data)
            normalizeRowsBackward(dwn, normalized: cache.wn, norms: cache.wNorm, rows: k, cols: d,
                                  into: &weight.grad.data)
        }
        return dx
    }

    /// The plain logits (m = 0) of `x: (N, D)`, e.g. for accuracy.
    public func predict(_ x: Tensor) throws -> Tensor { try forward(x, labels: nil).logits }

    /// Forward, softmax cross-entropy and backward in one call: returns the mean loss, the accuracy of the
    /// plain (margin-free) logits, and dL/dx; the head's gradients accumulate.
    public func trainingStep(_ x: Tensor, labels: [Int]) throws -> (loss: Double, accuracy: Double, dx: Tensor) {
        let (logits, cache) = try forward(x, labels: labels)
        let ce = try SoftmaxCrossEntropy.forward(logits: logits, labels: labels)
        let dx = backward(SoftmaxCrossEntropy.backward(ce), cache: cache)
        // The margin only shifts the target logit: add it back to score the plain logits.
        var plain = logits
        if margin != 0 { for i in labels.indices { plain.data[i * classes + labels[i]] += scale * margin } }
        return (ce.loss, MMLCore.accuracy(of: plain, labels: labels), dx)
    }

    /// C (n, k) += A (n, d) * W (k, d)^T.
    private func gemm(_ a: [Float], _ w: [Float], _ c: inout [Float], n: Int, k: Int, d: Int) {
        guard n > 0 else { return }
        NNKernels.gemm("classifier head", transposeB: true, m: n, n: k, k: d, a: a, lda: d, b: w, ldb: d, beta: 1,
                       c: &c, ldc: k)
    }

    /// dA = G W, dW += G^T A for C = A W^T.
    private func gemmBackward(_ g: [Float], a: [Float], w: [Float], da: inout [Float], dw: inout [Float],
                              n: Int, k: Int, d: Int) {
        guard n > 0 else { return }
        NNKernels.gemm("classifier head backward", m: n, n: d, k: k, a: g, lda: k, b: w, ldb: d, beta: 0, c: &da,
                       ldc: d)
        NNKernels.gemm("classifier head backward", transposeA: true, m: k, n: d, k: n, a: g, lda: k, b: a, ldb: d,
                       beta: 1, c: &dw, ldc: d)
    }
}
