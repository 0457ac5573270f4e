import Foundation

/// Baseline heads for the same harness: class prototypes are the means of the support embeddings (flattened
/// feature maps).
public enum PrototypeDistance: String, Sendable, Codable, CaseIterable {
    /// Prototypical Networks (Snell et al. 2017): score = -||x - p_c||^2.
    case squaredEuclidean = "protonet"
    /// Cosine to the class mean: score = cos(x, p_c).
    case cosine = "cosine-proto"
}

/// Prototype scoring over flattened embeddings.
public struct PrototypeHead: Sendable {
    public let distance: PrototypeDistance
    public init(distance: PrototypeDistance) { self.distance = distance }

    /// What `backward` needs.
    public struct Cache: Sendable {
        var support: Tensor, query: Tensor, labels: [Int], way: Int
        var prototypes: [Float], counts: [Int]
    }

    /// Class means of `support` rows.
    static func prototypes(_ support: Tensor, labels: [Int], way: Int) -> ([Float], [Int]) {
        let d = support.count / support.shape[0]
        var p = [Float](repeating: 0, count: way * d)
        var counts = [Int](repeating: 0, count: way)
        for (i, c) in labels.enumerated() {
            counts[c] += 1
            for j in 0..<d { p[c * d + j] += support.data[i * d + j] }
        }
        for c in 0..<way {
            precondition(counts[c] > 0, "[prototype] class \(c) has no support image")
            let inv = 1 / Float(counts[c])
            for j in 0..<d { p[c * d + j] *= inv }
        }
        return (p, counts)
    }

    /// Scores (queries x way).
    /// - Parameters:
    ///   - support: (N_s, ...) embeddings; each row flattened.
    ///   - labels: class index in 0..<way for each support row.
    ///   - query: (N_q, ...) embeddings of the same per-row size.
    public func forward(support: Tensor, labels: [Int], query: Tensor, way: Int) -> (Tensor, Cache) {
        let ns = support.shape[0], nq = query.shape[0]
        let d = support.count / max(ns, 1)
        precondition(labels.count == ns, "[prototype] \(labels.count) labels for \(ns) support rows")
        precondition(query.count == nq * d, "[prototype] query rows of \(query.count / max(nq, 1)) vs support \(d)")
        let (p, counts) = Self.prototypes(support, labels: labels, way: way)
        var out = [Float](repeating: 0, count: nq * way)
        for i in 0..<nq {
            for c in 0..<way {
                var dot = 0.0, xx = 0.0, pp = 0.0
                for j in 0..<d {
                    let x = Double(query.data[i * d + j]), y = Double(p[c * d + j])
                    dot += x * y; xx += x * x; pp += y * y
                }
                switch distance {
                case .squaredEuclidean: out[i * way + c] = Float(-(xx - 2 * dot + pp))
                case .cosine: out[i * way + c] = Float(dot / max((xx * pp).squareRoot(), 1e-12))
                }
            }
        }
        return (Tensor(shape: [nq, way], data: out),
                Cache(support: support, query: query, labels: labels, way: way, prototypes: p, counts: counts))
    }

    /// Gradients with respect to the support and query embeddings given dL/dscores.
    public func backward(_ dScores: Tensor, cache: Cache) -> (support: Tensor, query: Tensor) {
        let nq = cache.query.shape[0], way = cache.way
        let d = cache.query.count / max(nq, 1)
        var dq = [Float](repeating: 0, count: cache.query.count)
        var dp = [Float](repeating: 0, count: way * d)
        for i in 0..<nq {
            for c in 0..<way {
                let g = Double(dScores.data[i * way + c])
                if g == 0 { continue }
                switch distance {
                case .squaredEuclidean:
                    // s = -||x - p||^2: ds/dx = -2 (x - p), ds/dp = 2 (x - p)
                    for j in 0..<d {
                        let diff = Double(cache.query.data[i * d + j] - cache.prototypes[c * d + j])
                        dq[i * d + j] += Float(-2 * g * diff)
                        dp[c * d + j] += Float(2 * g * diff)
                    }
                case .cosine:
                    // s = x.p / (|x||p|): ds/dx = p/(|x||p|) - s x/|x|^2, symmetric for p.
                    var dot = 0.0, xx = 0.0, pp = 0.0
                    for j in 0..<d {
                        let x = Double(cache.query.data[i * d + j]), y = Double(cache.prototypes[c * d + j])
                        dot += x * y; xx += x * x; pp += y * y
                    }
                    let nx = max(xx.squareRoot(), 1e-12), np = max(pp.squareRoot(), 1e-12)
                    let s = dot / (nx * np)
                    for j in 0..<d {
                        let x = Double(cache.query.data[i * d + j]), y = Double(cache.prototypes[c * d + j])
                        dq[i * d + j] += Float(g * (y / (nx * np) - s * x / (nx * nx)))
                        dp[c * d + j] += Float(g * (x / (nx * np) - s * y / (np * np)))
                    }
                }
            }
        }
        // p_c = mean of its support rows: each row gets dp_c / count_c.
        var ds = [Float](repeating: 0, count: cache.support.count)
        for (r, c) in cache.labels.enumerated() {
            let inv = 1 / Float(cache.counts[c])
            for j in 0..<d { ds[r * d + j] = dp[c * d + j] * inv }
        }
        return (Tensor(shape: cache.support.shape, data: ds), Tensor(shape: cache.query.shape, data: dq))
    }
}
