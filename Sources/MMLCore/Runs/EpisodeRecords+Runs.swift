import Foundation

/// The per-episode file of `mml eval` (`EvaluationRun` with `episodesOut`).
public typealias EvaluationEpisodeFile = EpisodeFile<EvaluationRunResult>
/// The per-episode file of `mml ablate` (`AblationRun`).
public typealias AblationEpisodeFile = EpisodeFile<AblationRunResult>

extension DatasetSource {
    /// What a per-episode hash adds to the items' names: the generator's seed (and a removed cue) for synthetic
    /// data (its item names do not hold them), empty for files.
    public var episodeDataIdentity: String {
        guard resolvedLayout == .synthetic else { return "" }
        return "synthetic-seed=\(syntheticSeed)" + (syntheticRemoveCue.map { ";removed-cue=\($0.rawValue)" } ?? "")
    }
}

extension EvaluationRunResult.Setting {
    /// A setting's summaries from its episodes' records, in episode order: the one way both an unsharded run and a
    /// merge of shards make a report, so they print the same numbers. `seconds` is the evaluation's wall time.
    public init(way: Int, shot: Int, query: Int, seed: UInt64, evaluationProtocol: EvaluationProtocol,
                records: [EpisodeRecord], seconds: Double) {
        let accuracy = EvaluationRunResult.Summary(AccuracySummary(records.map(\.accuracy)))
        var levels: [String: EvaluationRunResult.Summary]?
        if evaluationProtocol == .metric {
            var names = Set<String>()
            for r in records { names.formUnion(r.levels?.keys ?? [:].keys) }
            levels = Dictionary(uniqueKeysWithValues: names.map { name in
                (name, EvaluationRunResult.Summary(AccuracySummary(records.compactMap { $0.levels?[name] })))
            })
        }
        self.init(way: way, shot: shot, query: query, episodes: records.count, seed: seed,
                  evaluationProtocol: evaluationProtocol, accuracy: accuracy,
                  fused: evaluationProtocol == .metric ? accuracy : nil, levels: levels, seconds: seconds,
                  episodesPerSecond: Double(records.count) / max(seconds, 1e-9))
    }
}

extension EvaluationRunResult {
    /// The report of all shards of one `mml eval` run (`mml eval merge`): every accuracy computed from the merged
    /// records exactly as an unsharded run computes it (equal numbers, bit for bit); `seconds` is the shards' summed
    /// wall time and `episodes_per_second` the episodes over that sum.
    /// - Parameter inputs: per-episode files or directories of them (`EpisodeFile.paths`).
    /// - Returns: the report and the merged file (which `write(to:)` saves as one unsharded file).
    /// - Throws: `MMLError` from reading or merging (`EpisodeFile.merged`), naming the offending files.
    public static func merged(_ inputs: [String]) throws -> (result: EvaluationRunResult, file: EvaluationEpisodeFile) {
        let (file, parts) = try EvaluationEpisodeFile.load(inputs, command: "eval")
        var result = file.header.report
        guard result.results.count == file.header.settings.count else {
            throw MMLError(.corruptFile, "\(parts[0].path): the header's report has \(result.results.count) settings "
                           + "but the header lists \(file.header.settings.count); the file is damaged")
        }
        var merged = file
        for (k, setting) in file.header.settings.enumerated() {
            let s = result.results[k]
            let seconds = parts.reduce(0.0) { sum, part in
                sum + (part.file.header.report.results.first { $0.way == s.way && $0.shot == s.shot }?.seconds ?? 0)
            }
            result.results[k] = Setting(way: s.way, shot: s.shot, query: s.query, seed: s.seed,
                                        evaluationProtocol: s.evaluationProtocol, records: file.records(of: setting),
                                        seconds: seconds)
        }
        result.kernels = KernelPaths.union(parts.map { $0.file.header.report.kernels })
        merged.header.report = result
        return (result, merged)
    }
}

extension AblationRunResult {
    /// The result's rows rebuilt from per-episode records (in episode order): each row's per-episode accuracies are
    /// the records' `subsets[row.name]`, its summary and its paired difference to the first row computed from them.
    /// The one way both an unsharded ablation and a merge of shards make the table.
    /// - Throws: `MMLError(.corruptFile)` when a record lacks a row.
    public func withRows(from records: [EpisodeRecord], source: String) throws -> AblationRunResult {
        var r = self
        r.episodes = records.count
        r.rows = try rows.map { row in
            let acc = try records.map { rec -> Double in
                guard let v = rec.subsets?[row.name] else {
                    throw MMLError(.corruptFile, "\(source): episode \(rec.index) has no accuracy of row '\(row.name)'; "
                                   + "the file is damaged")
                }
                return v
            }
            return AblationRow(name: row.name, levels: row.levels, accuracy: AccuracySummary(acc),
                               differenceToFull: AccuracySummary([]), perEpisode: acc, weights: row.weights)
        }
        let full = r.rows.first?.perEpisode ?? []
        for i in r.rows.indices { r.rows[i].differenceToFull = pairedDifference(r.rows[i].perEpisode, full) }
        return r
    }

    /// The table of all shards of one `mml ablate` run (`mml ablate merge`), equal in every number to the
    /// unsharded run's. - Throws: `MMLError` from reading or merging, naming the offending files.
    public static func merged(_ inputs: [String]) throws -> (result: AblationRunResult, file: AblationEpisodeFile) {
        let (file, parts) = try AblationEpisodeFile.load(inputs, command: "ablate")
        var merged = file
        merged.header.report = try file.header.report.withRows(from: file.records, source: parts[0].path)
        merged.header.report.kernels = KernelPaths.union(parts.map { $0.file.header.report.kernels })
        return (merged.header.report, merged)
    }

    /// Writes `ablation.md`, `ablation.json` and `ablation.svg` into `directory`, reporting each to `events`.
    public func writeFiles(into directory: String, events: (RunEvent) -> Void) throws {
        try Self.writeFiles(markdown: markdown, json: try jsonText(), svg: svg, into: directory,
                            what: ("ablation table (Markdown)", "ablation table (JSON)", "ablation chart"),
                            events: events)
    }

    /// Writes the three files of an ablation (`ablation.md`, `.json`, `.svg`) into `directory`, each atomically, and
    /// reports each to `events` with its `what`. Shared by one model's and a seed study's ablation.
    static func writeFiles(markdown: String, json: String, svg: String, into directory: String,
                           what: (markdown: String, json: String, svg: String),
                           events: (RunEvent) -> Void) throws {
        func path(_ name: String) -> String { URL(fileURLWithPath: directory).appendingPathComponent(name).path }
        try AtomicFile.write(markdown, to: path("ablation.md"))
        events(.wrote(path: path("ablation.md"), what: what.markdown))
        try AtomicFile.write(json, to: path("ablation.json"))
        events(.wrote(path: path("ablation.json"), what: what.json))
        try AtomicFile.write(svg, to: path("ablation.svg"))
        events(.wrote(path: path("ablation.svg"), what: what.svg))
    }
}
