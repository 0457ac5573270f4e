import Foundation

/// The pixel level (DN4 image-to-class k-NN, Li et al. CVPR 2019; METHOD.md 2.1).
///
/// Every local descriptor (a column of a C x H x W feature map) is L2-normalised over C. For query image q with
/// descriptors x_1..x_M and class c with the pooled support descriptors S_c (k_shot * M of them):
///
///     pixel(q, c) = sum_i  sum of the K largest cos(x_i, s), s in S_c
///
/// computed by the fused grouped top-K kernel, so the (queries*M) x (support*M) matrix is never stored.
public struct PixelLevel: Sendable {
    /// Neighbours per descriptor: DN4 uses 3, MML's training scripts 1.
    public var neighbours: Int
    /// Threads for the kernel (0 = all cores).
    public var threads: Int
    /// Normalisation epsilon (as torch.nn.functional.normalize).
    public var eps: Float = 1e-12

    public init(neighbours: Int = 3, threads: Int = 0) {
        self.neighbours = neighbours
        self.threads = threads
    }

    /// What `backward` needs.
    public struct Cache: Sendable {
        var queryRows: [Float], queryNorms: [Float]
        var supportRows: [Float], supportNorms: [Float]
        var selected: [Int32]
        var queryShape: [Int], supportShape: [Int], way: Int
    }

    /// Scores (queries x way).
    /// - Parameters:
    ///   - support: (N_s, C, H, W) support feature maps.
    ///   - labels: the class (0..<way) of each support map.
    ///   - query: (N_q, C, H, W) query feature maps.
    ///   - keepCache: keep what `backward` needs (the selected neighbours).
    ///   - precision: the inner products' arithmetic (`SimilarityPrecision`; bf16 and bf16amx are for evaluation).
    /// - Throws: `MMLError` for non-finite features or a class with fewer than `neighbours` descriptors.
    public func forward(support: Tensor, labels: [Int], query: Tensor, way: Int, keepCache: Bool = false,
                        precision: SimilarityPrecision = .fp32) throws -> (scores: Tensor, cache: Cache?) {
        let (ns, c, m) = try EpisodeShapes.check(support: support, labels: labels, query: query, way: way)
        let nq = query.shape[0]
        let (qRows, qNorms) = try SimilarityKernels.mapsToRows(query.data, count: nq, dimension: c, positions: m,
                                                               normalize: true, eps: eps, threads: threads)
        let (sRows, sNorms) = try SimilarityKernels.mapsToRows(support.data, count: ns, dimension: c, positions: m,
                                                               normalize: true, eps: eps, threads: threads)
        var groups = [Int32](repeating: 0, count: ns * m)
        for (i, l) in labels.enumerated() { for p in 0..<m { groups[i * m + p] = Int32(l) } }
        let r = try SimilarityKernels.groupTopK(queries: qRows, rows: nq * m, references: sRows, referenceRows: ns * m,
                                                dimension: c, groups: groups, groupCount: way, k: neighbours,
                                                selections: keepCache, precision: precision.kernel, threads: threads)
        let scores = EpisodeShapes.sumOverParts(r.sums, queries: nq, parts: m, way: way)
        let cache = keepCache ? Cache(queryRows: qRows, queryNorms: qNorms, supportRows: sRows, supportNorms: sNorms,
                                      selected: r.selectedIndices ?? [], queryShape: query.shape,
                                      supportShape: support.shape, way: way) : nil
        return (Tensor(shape: [nq, way], data: scores), cache)
    }

    /// Gradients with respect to the support and query feature maps given dL/dscores (queries x way).
    public func backward(_ dScores: Tensor, cache: Cache) -> (support: Tensor, query: Tensor) {
        let nq = cache.queryShape[0], ns = cache.supportShape[0], c = cache.queryShape[1]
        let m = cache.queryShape.dropFirst(2).reduce(1, *), way = cache.way
        // Each descriptor's top-K sum enters its image's score with weight 1.
        let (dq, ds) = EpisodeShapes.partGradients(dScores, "pixel", queryParts: cache.queryRows,
                                                   supportParts: cache.supportRows, queries: nq, supports: ns,
                                                   parts: m, dimension: c, way: way, k: neighbours,
                                                   selected: cache.selected, threads: threads)
        let dqRaw = SimilarityKernels.l2NormalizeRowsBackward(dy: dq, y: cache.queryRows, norms: cache.queryNorms,
                                                              rows: nq * m, dimension: c, eps: eps, threads: threads)
        let dsRaw = SimilarityKernels.l2NormalizeRowsBackward(dy: ds, y: cache.supportRows, norms: cache.supportNorms,
                                                              rows: ns * m, dimension: c, eps: eps, threads: threads)
        return (Tensor(shape: cache.supportShape, data: SimilarityKernels.rowsToMaps(dsRaw, count: ns, dimension: c,
                                                                                     positions: m, threads: threads)),
                Tensor(shape: cache.queryShape, data: SimilarityKernels.rowsToMaps(dqRaw, count: nq, dimension: c,
                                                                                   positions: m, threads: threads)))
    }
}

/// Shape checks and layout changes shared by the metric heads.
enum EpisodeShapes {
    /// Checks an episode's feature maps and labels; returns (support count, channels, positions per map).
    static func check(support: Tensor, labels: [Int], query: Tensor, way: Int) throws -> (Int, Int, Int) {
        guard support.rank >= 2, query.rank >= 2, support.shape.dropFirst() == query.shape.dropFirst() else {
            throw MMLError(.invalidArgument, "support maps \(support.shape) and query maps \(query.shape) must be (N, C, H, W) with the same C, H, W")
        }
        guard support.shape[0] > 0, query.shape[0] > 0 else {
            throw MMLError(.invalidArgument, "an episode needs at least one support and one query map (got \(support.shape[0]) and \(query.shape[0]))")
        }
        guard labels.count == support.shape[0] else {
            throw MMLError(.invalidArgument, "\(labels.count) support labels for \(support.shape[0]) support maps; give one label per map")
        }
        guard way >= 1 else { throw MMLError(.invalidArgument, "way must be at least 1, got \(way)") }
        if let i = labels.firstIndex(where: { $0 < 0 || $0 >= way }) {
            throw MMLError(.invalidArgument, "support label \(labels[i]) (map \(i)) is outside 0..<\(way)")
        }
        for c in 0..<way where !labels.contains(c) {
            throw MMLError(.invalidArgument, "class \(c) of the \(way)-way episode has no support map")
        }
        return (support.shape[0], support.shape[1], support.shape.dropFirst(2).reduce(1, *))
    }

    /// An image's score is the sum of its parts' (descriptors', regions', channels') top-K sums:
    /// `scores[i, j] = sum_p sums[(i, p), j]` over (queries, parts, way) sums, parts in order.
    static func sumOverParts(_ sums: [Float], queries nq: Int, parts: Int, way: Int) -> [Float] {
        var scores = [Float](repeating: 0, count: nq * way)
        for i in 0..<nq {
            for p in 0..<parts {
                let base = (i * parts + p) * way
                for j in 0..<way { scores[i * way + j] += sums[base + j] }
            }
        }
        return scores
    }

    /// The backward of `sumOverParts` and the top-K rule with the selection held fixed: dL/d(query parts)
    /// ((queries * parts) x dimension) and dL/d(support parts) ((supports * parts) x dimension) from dL/dscores
    /// (queries x way). `op` names the head in the shape check.
    static func partGradients(_ dScores: Tensor, _ op: String, queryParts: [Float], supportParts: [Float],
                              queries nq: Int, supports ns: Int, parts: Int, dimension: Int, way: Int, k: Int,
                              selected: [Int32], threads: Int) -> (query: [Float], support: [Float]) {
        precondition(dScores.shape == [nq, way], "[\(op)] dScores \(dScores.shape) vs \([nq, way])")
        let dSums = spreadOverParts(dScores.data, queries: nq, parts: parts, way: way)
        var dq = [Float](repeating: 0, count: nq * parts * dimension)
        var ds = [Float](repeating: 0, count: ns * parts * dimension)
        SimilarityKernels.groupTopKBackward(dQueries: &dq, dReferences: &ds, dSums: dSums, selectedIndices: selected,
                                            queries: queryParts, rows: nq * parts, references: supportParts,
                                            referenceRows: ns * parts, dimension: dimension, groupCount: way, k: k,
                                            threads: threads)
        return (dq, ds)
    }

    /// The backward of `sumOverParts`: each part's sum enters its image's score with weight 1, so
    /// `dSums[(i, p), j] = dScores[i, j]`.
    static func spreadOverParts(_ dScores: [Float], queries nq: Int, parts: Int, way: Int) -> [Float] {
        var dSums = [Float](repeating: 0, count: nq * parts * way)
        for i in 0..<nq {
            for p in 0..<parts { for j in 0..<way { dSums[(i * parts + p) * way + j] = dScores[i * way + j] } }
        }
        return dSums
    }
}
