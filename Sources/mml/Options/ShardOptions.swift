import ArgumentParser
import Foundation
import MMLCore

/// Sharded evaluation and per-episode output, shared by `mml eval` and `mml ablate`.
struct ShardOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Evaluate shard i of n (0-based) of the episodes: those whose position p in their setting has p % n == i.",
        discussion: "Taken from SLURM_ARRAY_TASK_ID (minus SLURM_ARRAY_TASK_MIN) and SLURM_ARRAY_TASK_COUNT when "
            + "those are set and this option is not; --shard 0/1 evaluates everything inside an array job.",
        valueName: "i/n"))
    var shard: String?

    @Option(help: ArgumentHelp(
        "Write the per-episode results (JSON Lines) to this file, or into this directory (ending in / or existing) "
            + "as episodes.jsonl / episodes-shard-<i>-of-<n>.jsonl.", valueName: "path"))
    var episodesOut: String?

    /// The shard: `--shard`, else the SLURM array task's, else nil. A shard taken from SLURM is noted on stderr.
    /// - Throws: `MMLError` for bad syntax, bounds or SLURM variables.
    func resolvedShard() throws -> ShardSpec? {
        if let shard { return try ShardSpec.parse(shard) }
        let env = ProcessInfo.processInfo.environment
        guard let s = try ShardSpec.fromSLURM(environment: env) else { return nil }
        printError("note: shard \(s) from SLURM_ARRAY_TASK_ID=\(env["SLURM_ARRAY_TASK_ID"] ?? "") of "
                   + "SLURM_ARRAY_TASK_COUNT=\(env["SLURM_ARRAY_TASK_COUNT"] ?? "") (give --shard to override)")
        return s
    }

    /// The per-episode file for `--episodes-out` (a directory gets the default name), or nil.
    func episodesPath(shard: ShardSpec?) -> String? {
        episodesOut.map { EpisodeFileFormat.outputPath($0, shard: shard) }
    }
}
