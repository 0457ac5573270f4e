import ArgumentParser
import Foundation
import MMLCore

/// `mml score`: score one episode of precomputed features (from any framework) with the multi-level metric.
struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score an episode of precomputed features: per-level and fused scores as .npy files or JSON.",
        discussion: """
        Features are .npy files, float32 or float64, little-endian, C order, shaped (N, C, H, W) feature maps or \
        (N, M, C) descriptor sets (M descriptors of dimension C). Labels are 1-D int32/int64 .npy files; support \
        labels may be any integers: classes are numbered 0..<way in order of first appearance, and score column j \
        is the j-th class (the mapping is in the JSON and in <stem>.classes.npy).

        Fusion: with --checkpoint the metric, its fusion weights and trained statistics come from the checkpoint. \
        Without one, a learned fusion has no trained statistics, so `--fusion learned` (the default) normalises \
        each level's scores by their own mean and standard deviation over this episode and adds them with equal \
        weights; `--fusion fixed` is MML v4's fixed fusion, log(sum of weighted per-level softmax outputs) (weights pixel 1, \
        part 0.5, distribution 0.5).
        """
    )

    @Option(help: "Support features (.npy): (N_s, C, H, W) or (N_s, M, C).")
    var support: String
    @Option(help: "Support labels (.npy, 1-D integers, one per support item).")
    var supportLabels: String
    @Option(help: "Query features (.npy), same layout and C (and H, W or M) as the support.")
    var query: String
    @Option(help: "Query labels (.npy); when given, accuracy is reported.")
    var queryLabels: String?
    @Option(help: "Expected number of classes; an error when the support labels have another number.")
    var way: Int?

    @OptionGroup(title: "Metric (without --checkpoint)") var metricOptions: MetricOptions
    @Option(help: "A trained episodic checkpoint (.safetensors): metric, fusion weights and statistics from it.")
    var checkpoint: String?

    @Option(help: "Write fused scores here (.npy, queries x way), per level <stem>.<level>.npy, classes <stem>.classes.npy.")
    var out: String?
    @Flag(help: "Print scores (per level and fused), the class mapping and accuracy as JSON on stdout.")
    var json = false
    @Option(help: "Threads for the kernels (0 = all cores).")
    var threads = 0

    func run() throws {
        try runReportingErrors { try score() }
    }

    /// The metric the flags (or the checkpoint) describe for a `way`-way episode, and a description of its fusion.
    func metric(way: Int) throws -> (MultiLevelMetric, FusionStatistics, String) {
        if let checkpoint {
            let given = metricOptions.givenFlags
            guard given.isEmpty else {
                throw MMLError(.invalidArgument, "\(given.joined(separator: ", ")) cannot be combined with --checkpoint: "
                               + "the metric comes from the checkpoint; drop the flag(s) or the checkpoint")
            }
            let loaded = try Checkpoint.load(checkpoint, threads: threads)
            guard let m = loaded.model.scoringMetric, let config = loaded.model.configuration.metric else {
                throw MMLError(.invalidArgument, "\(checkpoint) is a \(loaded.model.configuration.kind) model without a "
                               + "metric head; give metric flags (--levels, ...) instead of --checkpoint")
            }
            let f = m.fixedFusion != nil ? "fixed fusion \(config.resolvedFixedWeights)"
                                         : "learned fusion with the checkpoint's weights and statistics"
            return (m, .stored, config.summary + "; " + f)
        }
        let config = try metricOptions.configuration(way: way)
        let m = try config.makeMetric(threads: threads)
        let f = config.fusion == "fixed"
            ? "fixed fusion: log of the \(config.resolvedFixedWeights)-weighted sum of per-level softmax outputs"
            : "learned fusion without trained statistics: each level normalised by its mean/std over this episode, equal weights"
        return (m, .episode, config.summary + "; " + f)
    }

    /// Reads a 1-D integer label file with `count` entries.
    static func readLabels(_ path: String, count: Int, of features: String, role: String) throws -> [Int] {
        let a = try NPY.read(path)
        guard a.dtype == .int32 || a.dtype == .int64 else {
            throw MMLError(.unsupportedFormat, "\(path): \(role) labels have dtype \(a.dtype.rawValue); labels must be "
                           + "int32 or int64 (save arr.astype(np.int64))")
        }
        guard a.shape.count == 1 else {
            throw MMLError(.invalidArgument, "\(path): \(role) labels have shape \(a.shape); give a 1-D array with one "
                           + "label per item")
        }
        guard a.shape[0] == count else {
            throw MMLError(.invalidArgument, "\(path) has \(a.shape[0]) \(role) labels but \(features) has \(count) "
                           + "\(role) items; give one label per item")
        }
        return try a.ints(source: path)
    }

    static func readFeatures(_ path: String, role: String) throws -> Tensor {
        let t = try NPY.readTensor(path)
        guard t.rank == 3 || t.rank == 4, !t.shape.contains(0) else {
            throw MMLError(.invalidArgument, "\(path): \(role) features have shape \(t.shape); give (N, C, H, W) feature "
                           + "maps or (N, M, C) descriptor sets with no empty dimension")
        }
        return t
    }

    func score() throws {
        guard out != nil || json else {
            throw MMLError(.invalidArgument, "nothing to write: give --out scores.npy and/or --json")
        }
        let s = try Self.readFeatures(support, role: "support")
        let q = try Self.readFeatures(query, role: "query")
        guard s.rank == q.rank else {
            throw MMLError(.invalidArgument, "\(support) has shape \(s.shape) but \(query) has \(q.shape); give both "
                           + "as (N, C, H, W) or both as (N, M, C)")
        }
        let channelAxis = s.rank == 4 ? 1 : 2
        guard s.shape[channelAxis] == q.shape[channelAxis] else {
            throw MMLError(.invalidArgument, "support features \(support) have C = \(s.shape[channelAxis]) channels but "
                           + "query features \(query) have C = \(q.shape[channelAxis]); extract both with the same backbone")
        }
        let rawSupport = try Self.readLabels(supportLabels, count: s.shape[0], of: support, role: "support")
        var classes: [Int] = []
        var column: [Int: Int] = [:]
        for l in rawSupport where column[l] == nil { column[l] = classes.count; classes.append(l) }
        if let way, way != classes.count {
            throw MMLError(.invalidArgument, "\(supportLabels) has \(classes.count) distinct labels \(classes) but --way "
                           + "is \(way); give support items of exactly \(way) classes")
        }
        let (metric, stats, description) = try metric(way: classes.count)
        var mappedQuery: [Int]?
        if let queryLabels {
            let raw = try Self.readLabels(queryLabels, count: q.shape[0], of: query, role: "query")
            mappedQuery = try raw.enumerated().map { i, l in
                guard let c = column[l] else {
                    throw MMLError(.invalidArgument, "\(queryLabels): query \(i) has label \(l), which no support item "
                                   + "has (support labels: \(classes)); every query class needs support items")
                }
                return c
            }
        }
        let scores = try scoreEpisode(metric: metric, support: s, labels: rawSupport.map { column[$0]! }, query: q,
                                      way: classes.count, fusionStatistics: stats)
        let accuracy = try mappedQuery.map { try scores.accuracy(queryLabels: $0) }
        if let out {
            let stem = out.hasSuffix(".npy") ? String(out.dropLast(4)) : out
            for l in scores.levels { try NPY.write(scores.levelScores[l]!, to: "\(stem).\(l.rawValue).npy") }
            try NPY.write(ints: classes, shape: [classes.count], to: "\(stem).classes.npy")
            try NPY.write(scores.fused, to: stem + ".npy")
        }
        if json {
            func rows(_ t: Tensor) -> [[Double]] {
                (0..<t.shape[0]).map { i in (0..<t.shape[1]).map { Double(t.data[i * t.shape[1] + $0]) } }
            }
            var obj: [String: Any] = [
                "way": classes.count, "support": s.shape[0], "query": q.shape[0], "classes": classes,
                "levels": scores.levels.map(\.rawValue), "metric": description,
                "scores": Dictionary(uniqueKeysWithValues: scores.levels.map { ($0.rawValue, rows(scores.levelScores[$0]!)) }),
                "fused": rows(scores.fused), "predictions": scores.predictions.map { classes[$0] },
            ]
            if let accuracy {
                var a: [String: Double] = ["fused": accuracy.fused]
                for (l, v) in accuracy.levels { a[l.rawValue] = v }
                obj["accuracy"] = a
            }
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("scored \(q.shape[0]) queries, \(classes.count)-way: \(description)")
            if let out { print("wrote \(out) and per-level scores next to it") }
            if let accuracy {
                print(String(format: "accuracy fused %.4f", accuracy.fused) + scores.levels.map {
                    String(format: "  %@ %.4f", $0.rawValue, accuracy.levels[$0]!) }.joined())
            }
        }
    }
}
