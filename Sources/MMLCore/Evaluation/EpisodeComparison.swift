import Foundation

/// A paired comparison of two runs on the very same episodes (`mml compare A B`): per setting, each accuracy both
/// runs have (the fused / protocol accuracy, each level's, each ablation row's) with the mean of the per-episode
/// differences A - B and its 95% interval (`pairedDifference`, mean +- 1.96 std / sqrt(n)), and where both files
/// hold each query's prediction (`EpisodeRecord.predictions`, written by `mml eval`) how many of them differ.
public struct EpisodeComparison: Codable, Sendable {
    /// One accuracy of both runs.
    public struct Measure: Codable, Sendable, Equatable {
        /// `accuracy` (fused or the protocol's), a level name, or an ablation row's name.
        public var name: String
        public var a: AccuracySummary
        public var b: AccuracySummary
        /// Mean and 95% interval of the per-episode differences a - b.
        public var difference: AccuracySummary
        /// Queries whose predicted label differs between A and B, over all paired episodes; nil unless both files
        /// hold this measure's predictions for every episode.
        public var changedPredictions: Int?
        /// Queries whose predictions were compared (nil with `changedPredictions`).
        public var comparedPredictions: Int?

        /// `changedPredictions / comparedPredictions` (nil without predictions).
        public var changedFraction: Double? {
            guard let changedPredictions, let comparedPredictions, comparedPredictions > 0 else { return nil }
            return Double(changedPredictions) / Double(comparedPredictions)
        }
    }

    /// One setting.
    public struct Setting: Codable, Sendable {
        public var way: Int
        public var shot: Int
        public var query: Int
        /// Paired episodes.
        public var episodes: Int
        public var measures: [Measure]
    }

    /// What A and B are (their paths as given).
    public var a: String
    public var b: String
    public var settings: [Setting]

    /// Compares two complete per-episode files (merged when sharded).
    /// - Throws: `MMLError(.invalidArgument)` when the settings differ, or naming the first episode whose hashes
    ///   differ.
    public init<R, S>(_ fa: EpisodeFile<R>, named a: String, _ fb: EpisodeFile<S>, named b: String) throws {
        guard fa.header.settings == fb.header.settings else {
            func list(_ s: [EpisodeSetting]) -> String { s.map(\.description).joined(separator: "; ") }
            throw MMLError(.invalidArgument, "\(a) and \(b) have different settings (\(list(fa.header.settings)) vs "
                           + "\(list(fb.header.settings))); compare runs of the same settings")
        }
        self.a = a
        self.b = b
        settings = []
        for setting in fa.header.settings {
            let ra = fa.records(of: setting), rb = fb.records(of: setting)
            guard ra.map(\.index) == rb.map(\.index), ra.count == setting.episodes else {
                throw MMLError(.invalidArgument, "\(a) and \(b) do not hold the same episodes of \(setting.name); "
                               + "compare complete runs (merge shards first)")
            }
            if let k = ra.indices.first(where: { ra[$0].hash != rb[$0].hash }) {
                throw MMLError(.invalidArgument, "episode \(ra[k].index) of \(setting.name) differs: hash "
                               + "\(ra[k].hash) in \(a) vs \(rb[k].hash) in \(b); the runs were not on the same episodes (another "
                               + "seed, dataset, split or episode list)")
            }
            var measures: [Measure] = []
            func add(_ name: String, _ x: [Double?], _ y: [Double?]) {
                guard x.allSatisfy({ $0 != nil }), y.allSatisfy({ $0 != nil }) else { return }
                let xs = x.map { $0! }, ys = y.map { $0! }
                var m = Measure(name: name, a: AccuracySummary(xs), b: AccuracySummary(ys),
                                difference: pairedDifference(xs, ys))
                // The same episode (same hash) has the same queries, so the lists pair up query by query.
                let pa = ra.map { $0.predictions?[name] }, pb = rb.map { $0.predictions?[name] }
                if pa.allSatisfy({ $0 != nil }), pb.allSatisfy({ $0 != nil }),
                   zip(pa, pb).allSatisfy({ $0!.count == $1!.count }) {
                    m.comparedPredictions = pa.reduce(0) { $0 + $1!.count }
                    m.changedPredictions = zip(pa, pb).reduce(0) { n, p in
                        n + zip(p.0!, p.1!).filter { $0 != $1 }.count
                    }
                }
                measures.append(m)
            }
            add("accuracy", ra.map(\.accuracy), rb.map(\.accuracy))
            for l in MetricLevel.allCases {
                add(l.rawValue, ra.map { $0.levels?[l.rawValue] }, rb.map { $0.levels?[l.rawValue] })
            }
            let rows = allLevelSubsets().map(AblationRow.name) + ["all (trained fusion)"]
            for name in rows { add(name, ra.map { $0.subsets?[name] }, rb.map { $0.subsets?[name] }) }
            settings.append(Setting(way: setting.way, shot: setting.shot, query: setting.query,
                                    episodes: ra.count, measures: measures))
        }
    }

    /// The comparison as pretty-printed JSON with sorted keys (`mml compare --json`).
    public func jsonText() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try enc.encode(self), as: UTF8.self)
    }

    /// The comparison as text: per setting, one line per measure (percent, mean +- 95% interval), with the
    /// changed predictions where both files hold them.
    public var text: String {
        var s = "A: \(a)\nB: \(b)\n"
        for st in settings {
            let withPredictions = st.measures.contains { $0.changedPredictions != nil }
            s += "\(st.way)-way \(st.shot)-shot, \(st.query) queries, \(st.episodes) paired episodes:\n"
            s += "    " + "".padding(toLength: 24, withPad: " ", startingAt: 0)
                + "A                 B                 A - B (paired)" + (withPredictions ? "   predictions changed" : "")
                + "\n"
            for m in st.measures {
                let d = String(format: "%+.2f +- %.2f", m.difference.mean * 100, m.difference.ci95 * 100)
                s += "    " + m.name.padding(toLength: 24, withPad: " ", startingAt: 0)
                    + m.a.percentString.padding(toLength: 18, withPad: " ", startingAt: 0)
                    + m.b.percentString.padding(toLength: 18, withPad: " ", startingAt: 0)
                if let changed = m.changedPredictions, let n = m.comparedPredictions, let f = m.changedFraction {
                    s += d.padding(toLength: 18, withPad: " ", startingAt: 0)
                        + String(format: "%d of %d (%.3f%%)", changed, n, f * 100)
                } else {
                    s += d
                }
                s += "\n"
            }
        }
        return s
    }
}
