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
        try runReportingErrors {
            guard out != nil || json else {
                throw MMLError(.invalidArgument, "nothing to write: give --out scores.npy and/or --json")
            }
            if checkpoint != nil, !metricOptions.givenFlags.isEmpty {
                throw MMLError(.invalidArgument, "\(metricOptions.givenFlags.joined(separator: ", ")) cannot be combined "
                               + "with --checkpoint: the metric comes from the checkpoint; drop the flag(s) or the checkpoint")
            }
            let config = EpisodeScoringRunConfiguration(
                support: support, supportLabels: supportLabels, query: query, queryLabels: queryLabels, way: way,
                metric: checkpoint == nil ? try metricOptions.configuration(way: 1) : nil, checkpoint: checkpoint,
                out: out, threads: threads)
            let r = try EpisodeScoringRun(config).run()
            if json {
                print(try r.jsonText())
                return
            }
            print("scored \(r.query) queries, \(r.way)-way: \(r.metric)")
            if let out { print("wrote \(out) and per-level scores next to it") }
            if let accuracy = r.accuracy {
                print(String(format: "accuracy fused %.4f", accuracy["fused"]!) + r.levels.map {
                    String(format: "  %@ %.4f", $0, accuracy[$0]!) }.joined())
            }
        }
    }
}
