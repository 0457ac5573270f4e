import Foundation

/// The part level (METHOD.md 2.2), in both published forms, each followed by the top-K image-to-class rule.
public struct PartLevel: Sendable {
    /// Which parts.
    public enum Form: Sendable, Equatable {
        /// Pooled regions (MML v4 "Grid-3,2"): average-pool the map over each g x g grid (adaptive pooling bounds),
        /// L2-normalise each region's C-vector. `[3, 2]` gives 13 regions per image.
        case grid([Int])
        /// Channel parts (MML v1 code): L2-normalise each descriptor over C, then each channel's M-vector (its
        /// spatial response map) is a part; inner products, no re-normalisation.
        case channels
    }
    public var form: Form
    /// Neighbours per part.
    public var neighbours: Int
    public var threads: Int
    public var eps: Float = 1e-12

    public init(form: Form = .grid([3, 2]), neighbours: Int = 1, threads: Int = 0) {
        self.form = form
        self.neighbours = neighbours
        self.threads = threads
    }

    /// What `backward` needs.
    public struct Cache: Sendable {
        var queryParts: [Float], supportParts: [Float]
        var queryAux: [Float], supportAux: [Float]  // norms (grid: of regions; channels: of descriptors)
        var queryNormalized: [Float], supportNormalized: [Float]  // channels: normalised descriptor rows
        var selected: [Int32]
        var queryShape: [Int], supportShape: [Int], way: Int, partsPerImage: Int, partDimension: Int
    }

    /// Regions (count * R, C) of maps (count, C, H, W), unnormalised (the C kernel `mml_region_pool_f32`:
    /// adaptive bounds floor(i n / g) ..< ceil((i + 1) n / g), grid by grid, row-major inside a grid).
    func pooledRegions(_ maps: Tensor, grids: [Int]) -> [Float] {
        SimilarityKernels.regionPool(maps.data, count: maps.shape[0], channels: maps.shape[1], height: maps.shape[2],
                                     width: maps.shape[3], grids: grids, threads: threads)
    }

    /// Scores (queries x way). Both forms score their parts with the grouped top-K kernel, so `precision` (bf16 for
    /// evaluation, `SimilarityPrecision`) applies to both; pooling and normalisation stay fp32.
    public func forward(support: Tensor, labels: [Int], query: Tensor, way: Int, keepCache: Bool = false,
                        precision: SimilarityPrecision = .fp32) throws -> (scores: Tensor, cache: Cache?) {
        let (ns, c, m) = try EpisodeShapes.check(support: support, labels: labels, query: query, way: way)
        let nq = query.shape[0]
        var qParts: [Float], sParts: [Float], qAux: [Float], sAux: [Float], perImage: Int, dim: Int
        var qNorm: [Float] = [], sNorm: [Float] = []
        switch form {
        case .grid(let grids):
            guard support.rank == 4, !grids.isEmpty, grids.allSatisfy({ $0 >= 1 && $0 <= min(support.shape[2], support.shape[3]) }) else {
                throw MMLError(.invalidArgument, "grid sizes \(grids) need (N, C, H, W) maps with H, W >= each size; the maps are \(support.shape)")
            }
            perImage = grids.reduce(0) { $0 + $1 * $1 }
            dim = c
            (qParts, qAux) = try SimilarityKernels.l2NormalizeRows(pooledRegions(query, grids: grids), rows: nq * perImage, dimension: c, eps: eps)
            (sParts, sAux) = try SimilarityKernels.l2NormalizeRows(pooledRegions(support, grids: grids), rows: ns * perImage, dimension: c, eps: eps)
        case .channels:
            perImage = c
            dim = m
            (qNorm, qAux) = try SimilarityKernels.mapsToRows(query.data, count: nq, dimension: c, positions: m, normalize: true, eps: eps, threads: threads)
            (sNorm, sAux) = try SimilarityKernels.mapsToRows(support.data, count: ns, dimension: c, positions: m, normalize: true, eps: eps, threads: threads)
            qParts = SimilarityKernels.rowsToMaps(qNorm, count: nq, dimension: c, positions: m, threads: threads)
            sParts = SimilarityKernels.rowsToMaps(sNorm, count: ns, dimension: c, positions: m, threads: threads)
        }
        var groups = [Int32](repeating: 0, count: ns * perImage)
        for (i, l) in labels.enumerated() { for p in 0..<perImage { groups[i * perImage + p] = Int32(l) } }
        let r = try SimilarityKernels.groupTopK(queries: qParts, rows: nq * perImage, references: sParts,
                                                referenceRows: ns * perImage, dimension: dim, groups: groups,
                                                groupCount: way, k: neighbours, selections: keepCache,
                                                precision: precision.kernel, threads: threads)
        let scores = EpisodeShapes.sumOverParts(r.sums, queries: nq, parts: perImage, way: way)
        let cache = keepCache ? Cache(queryParts: qParts, supportParts: sParts, queryAux: qAux, supportAux: sAux,
                                      queryNormalized: qNorm, supportNormalized: sNorm, selected: r.selectedIndices ?? [],
                                      queryShape: query.shape, supportShape: support.shape, way: way,
                                      partsPerImage: perImage, partDimension: dim) : nil
        return (Tensor(shape: [nq, way], data: scores), cache)
    }

    /// Gradients with respect to the support and query feature maps given dL/dscores.
    public func backward(_ dScores: Tensor, cache: Cache) -> (support: Tensor, query: Tensor) {
        let nq = cache.queryShape[0], ns = cache.supportShape[0], way = cache.way
        let per = cache.partsPerImage, dim = cache.partDimension
        let (dq, ds) = EpisodeShapes.partGradients(dScores, "part", queryParts: cache.queryParts,
                                                   supportParts: cache.supportParts, queries: nq, supports: ns,
                                                   parts: per, dimension: dim, way: way, k: neighbours,
                                                   selected: cache.selected, threads: threads)
        func toMaps(_ dParts: [Float], parts: [Float], aux: [Float], normalized: [Float], shape: [Int]) -> [Float] {
            let n = shape[0], c = shape[1], m = shape.dropFirst(2).reduce(1, *)
            switch form {
            case .grid(let grids):
                let dRegions = SimilarityKernels.l2NormalizeRowsBackward(dy: dParts, y: parts, norms: aux, rows: n * per,
                                                                         dimension: c, eps: eps, threads: threads)
                return SimilarityKernels.regionPoolBackward(dRegions, count: n, channels: c, height: shape[2],
                                                            width: shape[3], grids: grids, threads: threads)
            case .channels:
                // Parts are the normalised descriptor rows transposed: transpose the gradient back to rows.
                var dRows = [Float](repeating: 0, count: n * m * c)
                for img in 0..<n { for ch in 0..<c { for p in 0..<m { dRows[(img * m + p) * c + ch] = dParts[(img * c + ch) * m + p] } } }
                let dRaw = SimilarityKernels.l2NormalizeRowsBackward(dy: dRows, y: normalized, norms: aux, rows: n * m,
                                                                     dimension: c, eps: eps, threads: threads)
                return SimilarityKernels.rowsToMaps(dRaw, count: n, dimension: c, positions: m, threads: threads)
            }
        }
        return (Tensor(shape: cache.supportShape, data: toMaps(ds, parts: cache.supportParts, aux: cache.supportAux,
                                                               normalized: cache.supportNormalized, shape: cache.supportShape)),
                Tensor(shape: cache.queryShape, data: toMaps(dq, parts: cache.queryParts, aux: cache.queryAux,
                                                             normalized: cache.queryNormalized, shape: cache.queryShape)))
    }
}
