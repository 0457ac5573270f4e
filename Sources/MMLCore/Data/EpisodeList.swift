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

    /// Reads a list written by `write`. Throws `MMLError(.fileNotFound / .corruptFile)` naming the file.
    public static func read(from path: String) throws -> EpisodeList {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MMLError(.fileNotFound, "episode list \(path) does not exist or is not readable")
        }
        do { return try JSONDecoder().decode(EpisodeList.self, from: data) } catch {
            throw MMLError(.corruptFile, "episode list \(path) is not valid episode JSON: \(MMLError.describe(error))")
        }
    }

    /// The episodes as indices into `dataset` (which must hold every named class and path).
    /// Throws `MMLError(.invalidArgument)` naming the first missing class or path and its episode.
    public func resolve(in dataset: any FewShotDataset) throws -> [Episode] {
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
