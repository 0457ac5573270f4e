import Foundation

/// A portable list of episodes: class names and item paths per episode, so another harness (or another mml
/// run) can evaluate on the very same episodes.
///
/// JSON: `{"dataset", "split", "way", "shot", "query", "seed", "episodes": [{"index", "classes": [name],
/// "support": [[path]], "query": [[path]]}]}`; paths are absolute file paths (or synthetic ids).
public struct EpisodeList: Sendable, Codable, Equatable {
    /// One episode by names.
    public struct Entry: Sendable, Codable, Equatable {
        public var index: Int
        public var classes: [String]
        public var support: [[String]]
        public var query: [[String]]
    }
    public var dataset: String
    public var split: String?
    public var way: Int
    public var shot: Int
    public var query: Int
    public var seed: UInt64
    public var episodes: [Entry]

    /// Names the episodes of `sampler` (indices into `sampler.dataset`).
    public init(episodes: [Episode], sampler: EpisodeSampler, split: String?) {
        let ds = sampler.dataset
        let names = ds.classNames
        dataset = ds.name
        self.split = split
        way = sampler.way
        shot = sampler.shot
        query = sampler.query
        seed = sampler.seed
        self.episodes = episodes.map { e in
            Entry(index: e.index, classes: e.classes.map { names[$0] },
                  support: zip(e.classes, e.support).map { c, items in items.map { ds.itemPath(ofClass: c, item: $0) } },
                  query: zip(e.classes, e.query).map { c, items in items.map { ds.itemPath(ofClass: c, item: $0) } })
        }
    }

    /// The JSON encoding (sorted keys, pretty-printed).
    public func jsonData() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try enc.encode(self)
    }

    /// Writes the list as JSON to `path` atomically.
    public func write(to path: String) throws { try AtomicFile.write(jsonData(), to: path) }

    /// The largest episode list read (600 5-way 5-shot 15-query episodes with 100-byte paths take ~6 MB).
    public static let maxFileBytes = 1 << 30

    /// Reads a list written by `write`. Throws `MMLError(.fileNotFound / .corruptFile)` naming the file.
    public static func read(from path: String) throws -> EpisodeList {
        guard let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue,
              let data = size > maxFileBytes ? Data() : FileManager.default.contents(atPath: path) else {
            throw MMLError(.fileNotFound, "episode list \(path) does not exist or is not readable")
        }
        return try decode(data, source: path, fileSize: size)
    }

    /// Decodes and checks the JSON of an episode list; `source` names it in errors.
    /// - Throws: `MMLError(.corruptFile)` for a file over `maxFileBytes`, JSON nested deeper than
    ///   `JSONInput.maxDepth`, JSON that is not an episode list, or episodes whose counts disagree with the list's
    ///   way, shot and query (each named with its index); `.invalidArgument` for way, shot or query below 1 (0
    ///   for query) or an episode index listed twice.
    public static func decode(_ data: Data, source: String, fileSize: Int? = nil) throws -> EpisodeList {
        let size = fileSize ?? data.count
        guard size <= maxFileBytes else {
            throw MMLError(.corruptFile, "episode list \(source) is \(size) bytes, more than the \(maxFileBytes)-byte "
                           + "limit; write fewer episodes per list (`mml data episodes --episodes`)")
        }
        let list = try JSONInput.decode(EpisodeList.self, from: data, source: "episode list \(source)",
                                        what: "episode JSON")
        try list.check(source: "episode list \(source)")
        return list
    }

    /// Checks the counts: every episode has `way` classes, `shot` support and `query` query paths for each, and
    /// no index twice.
    func check(source: String) throws {
        guard way >= 1, shot >= 1, query >= 0 else {
            throw MMLError(.invalidArgument, "\(source) declares way \(way), shot \(shot), query \(query); episodes need "
                           + "way >= 1, shot >= 1 and query >= 0")
        }
        var seen = Set<Int>()
        for e in episodes {
            func bad(_ what: String) -> MMLError {
                MMLError(.corruptFile, "\(source): episode \(e.index) \(what), but the list is \(way)-way \(shot)-shot "
                         + "with \(query) queries per class; the file was edited or truncated, regenerate it with "
                         + "`mml data episodes`")
            }
            guard seen.insert(e.index).inserted else {
                throw MMLError(.invalidArgument, "\(source): episode index \(e.index) is listed twice; each episode "
                               + "index may appear once")
            }
            guard e.classes.count == way else { throw bad("has \(e.classes.count) classes") }
            guard e.support.count == way, e.query.count == way else {
                throw bad("has support for \(e.support.count) and queries for \(e.query.count) classes")
            }
            if let j = e.support.firstIndex(where: { $0.count != shot }) {
                throw bad("has \(e.support[j].count) support image(s) for class '\(e.classes[j])'")
            }
            if let j = e.query.firstIndex(where: { $0.count != query }) {
                throw bad("has \(e.query[j].count) query image(s) for class '\(e.classes[j])'")
            }
            if Set(e.classes).count != e.classes.count {
                throw bad("names a class twice (\(e.classes.joined(separator: ", ")))")
            }
        }
    }

    /// The episodes as indices into `dataset` (which must hold every named class and path).
    /// - Parameters:
    ///   - allowDuplicates: accept an episode that names one image twice (say as support and query) and report it
    ///     in `warnings` instead of throwing.
    ///   - warnings: receives one line per such episode (at most 5, then a count), starting with
    ///     `DatasetHygiene.warningPrefix`.
    /// - Throws: `MMLError(.invalidArgument)` naming the first missing class or path and its episode, or the first
    ///   episode that names an image twice (same resolved file at the same rotation) and `allowDuplicates`.
    public func resolve(in dataset: any FewShotDataset, allowDuplicates: Bool = false,
                        warnings: inout [String]) throws -> [Episode] {
        let episodes = try resolveIndices(in: dataset)
        var cache: [String: String] = [:], repeated: [String] = []
        for e in episodes {
            guard let r = DatasetHygiene.repeatedImages(in: e, of: dataset, cache: &cache) else { continue }
            if !allowDuplicates {
                throw MMLError(.invalidArgument, "episode \(e.index) of the list names an image twice: \(r); an image "
                               + "that is both support and query makes the episode a lookup. Regenerate the list "
                               + "(`mml data episodes`) or pass `allowDuplicates` to use it as it is")
            }
            repeated.append("episode \(e.index): \(r)")
        }
        if !repeated.isEmpty {
            let more = repeated.count > 5 ? " and \(repeated.count - 5) more episode(s)" : ""
            warnings.append("\(DatasetHygiene.warningPrefix) (`allowDuplicates`): \(repeated.count) episode(s) of the "
                            + "list name an image twice: " + repeated.prefix(5).joined(separator: "; ") + more)
        }
        return episodes
    }

    /// The episodes as indices into `dataset`, refusing any that names an image twice (`resolve(in:allowDuplicates:
    /// warnings:)`).
    public func resolve(in dataset: any FewShotDataset) throws -> [Episode] {
        var ignored: [String] = []
        return try resolve(in: dataset, allowDuplicates: false, warnings: &ignored)
    }

    private func resolveIndices(in dataset: any FewShotDataset) throws -> [Episode] {
        var classIndex: [String: Int] = [:]
        for (i, n) in dataset.classNames.enumerated() where classIndex[n] == nil { classIndex[n] = i }
        var itemIndex: [Int: [String: Int]] = [:]
        func item(_ c: Int, _ path: String, _ e: Int) throws -> Int {
            if itemIndex[c] == nil {
                var m: [String: Int] = [:]
                for i in 0..<dataset.itemCount(ofClass: c) { m[dataset.itemPath(ofClass: c, item: i)] = i }
                itemIndex[c] = m
            }
            guard let i = itemIndex[c]![path] else {
                throw MMLError(.invalidArgument, "episode \(e) names '\(path)', which is not an image of class "
                               + "'\(dataset.classNames[c])' in \(dataset.name)")
            }
            return i
        }
        return try episodes.map { e in
            let cs = try e.classes.map { name -> Int in
                guard let c = classIndex[name] else {
                    throw MMLError(.invalidArgument, "episode \(e.index) names class '\(name)', which \(dataset.name) "
                                   + "does not have; open the dataset and split the list was made from")
                }
                return c
            }
            let s = try zip(cs, e.support).map { c, ps in try ps.map { try item(c, $0, e.index) } }
            let q = try zip(cs, e.query).map { c, ps in try ps.map { try item(c, $0, e.index) } }
            return Episode(index: e.index, classes: cs, support: s, query: q)
        }
    }
}
