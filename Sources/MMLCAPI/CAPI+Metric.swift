import Foundation
import MMLCore

// Metrics and episode scores: mml_metric_*, mml_score_*, mml_scores_*.

/// A metric handle: an `EpisodeScorer` (immutable: scoring takes no lock).
final class MetricHandle: Handle {
    override class var kind: String { "metric" }
    let scorer: EpisodeScorer
    init(_ scorer: EpisodeScorer) { self.scorer = scorer }
}

/// A scores handle: one episode's results in memory that stays put until `mml_scores_free`.
final class ScoresHandle: Handle {
    override class var kind: String { "scores" }
    let queries: Int64, way: Int64
    let levelNames: [UnsafeMutablePointer<CChar>]
    let levelScores: [UnsafeMutableBufferPointer<Float>]
    let fused: UnsafeMutableBufferPointer<Float>
    let classes: UnsafeMutableBufferPointer<Int64>
    let predictions: UnsafeMutableBufferPointer<Int64>

    init(_ r: LabelledEpisodeScores) {
        func copy<T>(_ a: [T]) -> UnsafeMutableBufferPointer<T> {
            let b = UnsafeMutableBufferPointer<T>.allocate(capacity: max(a.count, 1))
            _ = b.initialize(from: a)
            return b
        }
        queries = Int64(r.scores.fused.shape[0])
        way = Int64(r.scores.fused.shape[1])
        levelNames = r.scores.levels.map { strdup($0.rawValue)! }
        levelScores = r.scores.levels.map { copy(r.scores.levelScores[$0]!.data) }
        fused = copy(r.scores.fused.data)
        classes = copy(r.classes.map(Int64.init))
        predictions = copy(r.predictions.map(Int64.init))
    }

    deinit {
        levelNames.forEach { free($0) }
        levelScores.forEach { $0.deallocate() }
        fused.deallocate(); classes.deallocate(); predictions.deallocate()
    }
}

@_cdecl("mml_metric_create")
public func mml_metric_create(_ json: UnsafePointer<CChar>?, _ threads: Int32,
                              _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let out = try checkedOut(out, "out (mml_metric **)")
        let text = json.map { String(cString: $0) } ?? "{}"
        guard threads >= 0 else { throw CAPIError(.invalidArgument, "threads is \(threads); give 0 (all cores) or more") }
        let config = try ConfigurationJSON.decode(MetricConfiguration.self, from: text, over: MetricConfiguration(),
                                                  what: "metric configuration")
        out.pointee = Registry.register(MetricHandle(try EpisodeScorer(metric: config, threads: Int(threads))))
    }
}

@_cdecl("mml_metric_from_checkpoint")
public func mml_metric_from_checkpoint(_ path: UnsafePointer<CChar>?, _ threads: Int32,
                                       _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let out = try checkedOut(out, "out (mml_metric **)")
        let path = try string(path, "path")
        guard threads >= 0 else { throw CAPIError(.invalidArgument, "threads is \(threads); give 0 (all cores) or more") }
        out.pointee = Registry.register(MetricHandle(try EpisodeScorer(checkpoint: path, threads: Int(threads))))
    }
}

@_cdecl("mml_metric_describe")
public func mml_metric_describe(_ metric: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    guarded {
        let out = try checkedOut(out, "out (char **)")
        let m = try Registry.lookup(metric, as: MetricHandle.self, role: "metric")
        struct Description: Encodable { let configuration: MetricConfiguration; let description: String; let levels: [String] }
        out.pointee = try cString(ConfigurationJSON.text(Description(
            configuration: m.scorer.metricConfiguration, description: m.scorer.description,
            levels: m.scorer.metricConfiguration.levels.map(\.rawValue))))
    }
}

@_cdecl("mml_metric_free")
public func mml_metric_free(_ metric: OpaquePointer?) -> Int32 {
    guarded { try Registry.release(metric, as: MetricHandle.self, role: "metric") }
}

/// Reads one episode's inputs (checked) from caller memory.
private func episodeInputs(support: UnsafePointer<Float>?, supportShape: UnsafePointer<Int64>?,
                           labels labelPointer: UnsafePointer<Int64>?, query: UnsafePointer<Float>?,
                           queryShape: UnsafePointer<Int64>?, rank: Int32) throws -> (Tensor, [Int], Tensor) {
    let ss = try shape(supportShape, rank: rank, "support_shape", ranks: 3...4)
    let qs = try shape(queryShape, rank: rank, "query_shape", ranks: 3...4)
    let s = try tensor(support, shape: ss, "support")
    let q = try tensor(query, shape: qs, "query")
    return (s, try labels(labelPointer, count: ss[0], "support_labels"), q)
}

@_cdecl("mml_score_episode")
public func mml_score_episode(_ metric: OpaquePointer?, _ support: UnsafePointer<Float>?,
                              _ supportShape: UnsafePointer<Int64>?, _ supportLabels: UnsafePointer<Int64>?,
                              _ query: UnsafePointer<Float>?, _ queryShape: UnsafePointer<Int64>?, _ rank: Int32,
                              _ way: Int64, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let out = try checkedOut(out, "out (mml_scores **)")
        let m = try Registry.lookup(metric, as: MetricHandle.self, role: "metric")
        let (s, l, q) = try episodeInputs(support: support, supportShape: supportShape, labels: supportLabels,
                                          query: query, queryShape: queryShape, rank: rank)
        guard way >= 0 else { throw CAPIError(.invalidArgument, "way is \(way); give 0 (any) or the number of classes") }
        let r = try m.scorer.score(support: s, labels: l, query: q, way: way == 0 ? nil : Int(way))
        out.pointee = Registry.register(ScoresHandle(r))
    }
}

@_cdecl("mml_score_batch")
public func mml_score_batch(_ metric: OpaquePointer?, _ episodes: Int64, _ support: UnsafePointer<Float>?,
                            _ supportShape: UnsafePointer<Int64>?, _ supportLabels: UnsafePointer<Int64>?,
                            _ query: UnsafePointer<Float>?, _ queryShape: UnsafePointer<Int64>?, _ rank: Int32,
                            _ way: Int64, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let out else { throw CAPIError(.invalidArgument, "out (mml_scores **) is NULL; pass an array of `episodes` handles") }
        guard episodes >= 1 else { throw CAPIError(.invalidArgument, "episodes is \(episodes); give at least 1") }
        for e in 0..<Int(episodes) { out[e] = nil }
        let m = try Registry.lookup(metric, as: MetricHandle.self, role: "metric")
        let ss = try shape(supportShape, rank: rank, "support_shape", ranks: 3...4)
        let qs = try shape(queryShape, rank: rank, "query_shape", ranks: 3...4)
        let sn = try elementCount([Int(episodes)] + ss, "support (episodes x support_shape)")
        let qn = try elementCount([Int(episodes)] + qs, "query (episodes x query_shape)")
        guard let support, let query, let supportLabels else {
            throw CAPIError(.invalidArgument, "support, query and support_labels must not be NULL")
        }
        guard way >= 0 else { throw CAPIError(.invalidArgument, "way is \(way); give 0 (any) or the number of classes") }
        let per = (s: sn / Int(episodes), q: qn / Int(episodes))
        var results: [ScoresHandle] = []
        for e in 0..<Int(episodes) {
            let s = try tensor(support + e * per.s, shape: ss, "support")
            let q = try tensor(query + e * per.q, shape: qs, "query")
            let l = try labels(supportLabels + e * ss[0], count: ss[0], "support_labels")
            do {
                results.append(ScoresHandle(try m.scorer.score(support: s, labels: l, query: q,
                                                                way: way == 0 ? nil : Int(way))))
            } catch let error as MMLError {
                throw MMLError(error.kind, "episode \(e): " + error.template)
            }
        }
        for (e, r) in results.enumerated() { out[e] = Registry.register(r) }
    }
}

@_cdecl("mml_scores_free")
public func mml_scores_free(_ scores: OpaquePointer?) -> Int32 {
    guarded { try Registry.release(scores, as: ScoresHandle.self, role: "scores") }
}

/// Runs an accessor; a bad handle gives `fallback` and sets the last error.
private func access<T>(_ p: OpaquePointer?, _ fallback: T, _ body: (ScoresHandle) throws -> T) -> T {
    var value = fallback
    _ = guarded { value = try body(try Registry.lookup(p, as: ScoresHandle.self, role: "scores")) }
    return value
}

@_cdecl("mml_scores_queries")
public func mml_scores_queries(_ s: OpaquePointer?) -> Int64 { access(s, -1) { $0.queries } }

@_cdecl("mml_scores_way")
public func mml_scores_way(_ s: OpaquePointer?) -> Int64 { access(s, -1) { $0.way } }

@_cdecl("mml_scores_level_count")
public func mml_scores_level_count(_ s: OpaquePointer?) -> Int32 { access(s, -1) { Int32($0.levelNames.count) } }

private func level(_ h: ScoresHandle, _ i: Int32) throws -> Int {
    guard i >= 0, Int(i) < h.levelNames.count else {
        throw CAPIError(.invalidArgument, "level index \(i) is outside 0..<\(h.levelNames.count)")
    }
    return Int(i)
}

@_cdecl("mml_scores_level_name")
public func mml_scores_level_name(_ s: OpaquePointer?, _ i: Int32) -> UnsafePointer<CChar>? {
    access(s, nil) { UnsafePointer($0.levelNames[try level($0, i)]) }
}

@_cdecl("mml_scores_level")
public func mml_scores_level(_ s: OpaquePointer?, _ i: Int32) -> UnsafePointer<Float>? {
    access(s, nil) { UnsafePointer($0.levelScores[try level($0, i)].baseAddress!) }
}

@_cdecl("mml_scores_fused")
public func mml_scores_fused(_ s: OpaquePointer?) -> UnsafePointer<Float>? {
    access(s, nil) { UnsafePointer($0.fused.baseAddress!) }
}

@_cdecl("mml_scores_classes")
public func mml_scores_classes(_ s: OpaquePointer?) -> UnsafePointer<Int64>? {
    access(s, nil) { UnsafePointer($0.classes.baseAddress!) }
}

@_cdecl("mml_scores_predictions")
public func mml_scores_predictions(_ s: OpaquePointer?) -> UnsafePointer<Int64>? {
    access(s, nil) { UnsafePointer($0.predictions.baseAddress!) }
}
