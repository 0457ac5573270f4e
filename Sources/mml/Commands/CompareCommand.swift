import ArgumentParser
import Foundation
import MMLCore

/// `mml compare A B`: the paired difference of two runs on the very same episodes.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Paired comparison of two runs' per-episode results: A - B with its 95% interval.",
        discussion: """
            A and B are per-episode files of mml eval or mml ablate (--episodes-out; ablate writes episodes.jsonl), \
            or directories of a sharded run's files (merged on the fly). The episodes must be the same: files whose \
            settings or episode hashes differ are refused. For each accuracy both have (fused or the protocol's, \
            each level's, each ablation row's): A and B with their 95% intervals, and the mean of the per-episode \
            differences A - B +- 1.96 std / sqrt(n).
            """
    )

    @Argument(help: "The first run's per-episode file (or directory of shard files).") var a: String
    @Argument(help: "The second run's per-episode file (or directory of shard files).") var b: String
    @Flag(help: "Print the comparison as JSON.") var json = false

    func run() throws {
        try runReportingErrors {
            let fa = try EpisodeFile<IgnoredReport>.load([a]).merged
            let fb = try EpisodeFile<IgnoredReport>.load([b]).merged
            let c = try EpisodeComparison(fa, named: a, fb, named: b)
            print(json ? try c.jsonText() : c.text, terminator: json ? "\n" : "")
        }
    }
}
