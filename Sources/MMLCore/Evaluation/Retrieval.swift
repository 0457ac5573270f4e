import Foundation

/// Retrieval metrics of an embedding on held-out classes (METHOD.md section 4; Musgrave et al. 2020 for MAP@R).
public struct RetrievalMetrics: Sendable, Equatable, Codable {
    /// Recall@k for each k asked: the fraction of queries with at least one same-class sample among their k
    /// nearest neighbours.
    public var recallAt: [Int: Double]
    /// Mean over queries of (same-class samples among the R nearest) / R, R = the query's same-class count.
    public var rPrecision: Double
    /// Mean over queries of (1/R) sum_{i <= R} P@i [neighbour i is same-class].
    public var mapAtR: Double
    /// Queries scored (those with at least one other sample of their class).
    public var queries: Int
    /// Queries left out for being alone in their class.
    public var skippedQueries: Int

    /// "R@1 .. R@8, R-precision, MAP@R" in percent.
    public var summary: String {
        recallAt.keys.sorted().map { String(format: "R@%d %.2f", $0, recallAt[$0]! * 100) }.joined(separator: "  ")
            + String(format: "  RP %.2f  MAP@R %.2f", rPrecision * 100, mapAtR * 100)
    }
}

/// Exact retrieval metrics: every sample is a query against all the others (itself excluded), ranked by
/// Euclidean distance between the rows of `embeddings` (on L2-normalised embeddings this is the cosine ranking);
/// equal distances rank the smaller index first. The k nearest neighbours are found by brute force over the whole
/// set, with k = max(largest recall k, largest class size - 1), so MAP@R and R-precision are exact for every
/// class. Queries alone in their class are skipped (counted in `skippedQueries`).
///
/// - Parameters: `embeddings (N, D)`, `labels` N class ids, `recallKs` e.g. [1, 2, 4, 8], `threads` (0 = all cores).
/// - Throws: `MMLError(.invalidArgument)` for a shape mismatch, non-finite values, a k < 1, or no scorable query.
public func retrievalMetrics(embeddings: Tensor, labels: [Int], recallKs: [Int] = [1, 2, 4, 8],
                             threads: Int = 0) throws -> RetrievalMetrics {
    guard embeddings.rank == 2, embeddings.shape[0] == labels.count else {
        throw MMLError(.invalidArgument, "retrieval: embeddings must be (N, D) with N = \(labels.count) labels, got "
                       + "\(embeddings.shape)")
    }
    guard embeddings.isFinite else {
        throw MMLError(.numerical, "retrieval: the embeddings hold NaN or Inf")
    }
    guard !recallKs.isEmpty, recallKs.allSatisfy({ $0 >= 1 }) else {
        throw MMLError(.invalidArgument, "retrieval: recall k values must be >= 1, got \(recallKs)")
    }
    let n = labels.count, d = embeddings.shape[1]
    var classSize: [Int: Int] = [:]
    for l in labels { classSize[l, default: 0] += 1 }
    let k = min(n - 1, max(recallKs.max()!, (classSize.values.max() ?? 1) - 1))
    guard n >= 2, k >= 1, labels.contains(where: { classSize[$0]! >= 2 }) else {
        throw MMLError(.invalidArgument, "retrieval: no class has two samples among the \(n); retrieval needs "
                       + "held-out classes with at least 2 images each")
    }
    var sqNorm = [Float](repeating: 0, count: n)
    for i in 0..<n { for c in 0..<d { sqNorm[i] += embeddings.data[i * d + c] * embeddings.data[i * d + c] } }

    // Per query: the k nearest (index) in rank order.
    let block = 256
    let blocks = (n + block - 1) / block
    var neighbours = [[Int]](repeating: [], count: n)
    let lock = NSLock()
    let work = { (b: Int) in
        let lo = b * block, hi = min(n, lo + block), rows = hi - lo
        var dots = [Float](repeating: 0, count: rows * n)
        NNKernels.gemm("retrieval", transposeB: true, m: rows, n: n, k: d, a: embeddings.data, aOffset: lo * d,
                       lda: d, b: embeddings.data, ldb: d, beta: 0, c: &dots, ldc: n)
        var local: [[Int]] = []
        for r in 0..<rows {
            let q = lo + r
            // Sorted ascending by (distance, index): insertion into a list of at most k.
            var bestD: [Float] = [], bestI: [Int] = []
            bestD.reserveCapacity(k + 1); bestI.reserveCapacity(k + 1)
            for j in 0..<n where j != q {
                let dist = sqNorm[q] + sqNorm[j] - 2 * dots[r * n + j]
                if bestD.count == k && !(dist < bestD[k - 1]) { continue }
                var pos = bestD.count
                while pos > 0 && dist < bestD[pos - 1] { pos -= 1 }
                bestD.insert(dist, at: pos); bestI.insert(j, at: pos)
                if bestD.count > k { bestD.removeLast(); bestI.removeLast() }
            }
            local.append(bestI)
        }
        lock.lock()
        for r in 0..<rows { neighbours[lo + r] = local[r] }
        lock.unlock()
    }
    let workers = threads <= 0 ? ProcessInfo.processInfo.activeProcessorCount : threads
    if workers <= 1 || blocks == 1 { for b in 0..<blocks { work(b) } }
    else { DispatchQueue.concurrentPerform(iterations: blocks, execute: work) }
    return retrievalMetrics(neighbours: neighbours, labels: labels, classSize: classSize, recallKs: recallKs)
}

/// The metrics from each query's ranked neighbours (at least max(recall k, R) of them, or all others).
func retrievalMetrics(neighbours: [[Int]], labels: [Int], classSize: [Int: Int], recallKs: [Int]) -> RetrievalMetrics {
    var hits = [Int: Int](), rp = 0.0, map = 0.0, scored = 0, skipped = 0
    for (q, ranked) in neighbours.enumerated() {
        let r = classSize[labels[q]]! - 1
        if r == 0 { skipped += 1; continue }
        scored += 1
        let rel = ranked.map { labels[$0] == labels[q] }
        for kk in recallKs where rel.prefix(kk).contains(true) { hits[kk, default: 0] += 1 }
        var found = 0, ap = 0.0
        for i in 0..<min(r, rel.count) where rel[i] {
            found += 1
            ap += Double(found) / Double(i + 1)
        }
        rp += Double(found) / Double(r)
        map += ap / Double(r)
    }
    var recall: [Int: Double] = [:]
    for kk in recallKs { recall[kk] = Double(hits[kk] ?? 0) / Double(max(scored, 1)) }
    return RetrievalMetrics(recallAt: recall, rPrecision: rp / Double(max(scored, 1)),
                            mapAtR: map / Double(max(scored, 1)), queries: scored, skippedQueries: skipped)
}
