import Foundation

/// The first line of a per-episode file: which run it belongs to and which share of its episodes it holds
/// (docs/EPISODES.md).
public struct EpisodeFileHeader<Report: Codable & Sendable>: Codable, Sendable {
    /// Always `mml-episodes`.
    public var format: String
    /// The format's version (1).
    public var version: Int
    /// `eval` or `ablate`.
    public var command: String
    /// What identifies the run, as text: checkpoint hash, dataset, split, protocol, levels, settings, seed, ...
    /// Shards of one run have equal manifests; paired comparisons need equal episodes, not equal manifests.
    public var manifest: [String: String]
    /// The run's settings, in the order it evaluated them.
    public var settings: [EpisodeSetting]
    /// The share of the episodes this file holds; nil: all of them.
    public var shard: ShardSpec?
    /// Wall time this file's evaluation took (summed over the shards in a merged file).
    public var seconds: Double
    /// What the run printed when it started, as (key, value) pairs.
    public var facts: [[String]]
    /// The run's report over this file's episodes (its command's result type).
    public var report: Report

    public init(command: String, manifest: [String: String], settings: [EpisodeSetting], shard: ShardSpec?,
                seconds: Double, facts: [[String]], report: Report) {
        format = EpisodeFileFormat.name
        version = EpisodeFileFormat.version
        self.command = command; self.manifest = manifest; self.settings = settings; self.shard = shard
        self.seconds = seconds; self.facts = facts; self.report = report
    }
}

/// The format's name and version, and the part of a header every reader decodes first.
public enum EpisodeFileFormat {
    public static let name = "mml-episodes"
    public static let version = 1

    /// The file a run writes for `given`: `given` itself, or when it is an existing directory or ends in `/`, the
    /// default name inside it (`episodes.jsonl`, or `ShardSpec.fileName` for a shard).
    public static func outputPath(_ given: String, shard: ShardSpec?) -> String {
        var isDir: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: given, isDirectory: &isDir)
        guard given.hasSuffix("/") || (exists && isDir.boolValue) else { return given }
        return URL(fileURLWithPath: given).appendingPathComponent(shard?.fileName ?? "episodes.jsonl").path
    }

    /// The fields that say what a file is, whatever its report.
    public struct Kind: Codable, Sendable {
        public var format: String
        public var version: Int
        public var command: String
    }
}

/// A report nobody reads: lets a reader decode any per-episode file's header (`mml compare`).
public struct IgnoredReport: Codable, Sendable {
    public init() {}
    public init(from decoder: Decoder) throws {}
    public func encode(to encoder: Encoder) throws {}
}

/// A per-episode file: a header line, then one `EpisodeRecord` per line (JSON Lines), in setting order and
/// episode order. Written by `mml eval` / `mml ablate` (sharded or not), merged by `mml eval merge` /
/// `mml ablate merge`, compared by `mml compare`.
public struct EpisodeFile<Report: Codable & Sendable>: Sendable {
    public var header: EpisodeFileHeader<Report>
    public var records: [EpisodeRecord]

    public init(header: EpisodeFileHeader<Report>, records: [EpisodeRecord]) {
        self.header = header
        self.records = records
    }

    /// The file's text: the header and each record as one line of compact JSON with sorted keys.
    public func text() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var lines = [String(decoding: try enc.encode(header), as: UTF8.self)]
        for r in records { lines.append(String(decoding: try enc.encode(r), as: UTF8.self)) }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes the file atomically. - Throws: `MMLError(.io)`.
    public func write(to path: String) throws { try AtomicFile.write(try text(), to: path) }

    /// The records of `setting`, in file order.
    public func records(of setting: EpisodeSetting) -> [EpisodeRecord] {
        records.filter { $0.way == setting.way && $0.shot == setting.shot }
    }

    /// Reads a file.
    /// - Parameter command: the command whose files are expected (nil: any).
    /// - Throws: `MMLError(.fileNotFound)` / `.corruptFile` naming the file and line; `.invalidArgument` when the
    ///   file belongs to another command.
    public static func read(_ path: String, command: String? = nil) throws -> EpisodeFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MMLError(.fileNotFound, "per-episode file \(path) does not exist or is not readable")
        }
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
        let dec = JSONDecoder()
        guard let first = lines.first, let kind = try? dec.decode(EpisodeFileFormat.Kind.self, from: Data(first)),
              kind.format == EpisodeFileFormat.name else {
            throw MMLError(.corruptFile, "\(path) is not a per-episode file of mml (its first line must be a JSON "
                           + "header with \"format\": \"\(EpisodeFileFormat.name)\"); give files written by mml eval "
                           + "or mml ablate")
        }
        guard kind.version <= EpisodeFileFormat.version else {
            throw MMLError(.unsupportedFormat, "\(path) has per-episode format version \(kind.version); this mml "
                           + "reads version \(EpisodeFileFormat.version) and older")
        }
        if let command, kind.command != command {
            throw MMLError(.invalidArgument, "\(path) holds results of mml \(kind.command), not mml \(command); use "
                           + "mml \(kind.command) merge for it")
        }
        let header: EpisodeFileHeader<Report>
        do { header = try dec.decode(EpisodeFileHeader<Report>.self, from: Data(first)) } catch {
            throw MMLError(.corruptFile, "\(path) line 1: the header is incomplete or malformed (\(MMLError.describe(error)))")
        }
        var records: [EpisodeRecord] = []
        records.reserveCapacity(lines.count - 1)
        for (k, line) in lines.dropFirst().enumerated() {
            do { records.append(try dec.decode(EpisodeRecord.self, from: Data(line))) } catch {
                throw MMLError(.corruptFile, "\(path) line \(k + 2): not a per-episode record (\(MMLError.describe(error))); the file is "
                               + "damaged, write it again")
            }
        }
        return EpisodeFile(header: header, records: records)
    }

    /// The per-episode files named by `inputs`: each a file, or a directory whose `episodes-shard-*.jsonl` files are
    /// taken (sorted by name), or when it has none its `episodes*.jsonl` files. - Throws: `MMLError(.fileNotFound)` naming an input that does not exist or a directory
    /// without such files.
    public static func paths(_ inputs: [String]) throws -> [String] {
        guard !inputs.isEmpty else {
            throw MMLError(.invalidArgument, "give at least one per-episode file or directory of shard files")
        }
        var out: [String] = []
        for input in inputs {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else {
                throw MMLError(.fileNotFound, "\(input) does not exist; give per-episode files (.jsonl) or directories "
                               + "holding them")
            }
            guard isDir.boolValue else { out.append(input); continue }
            var names = ((try? FileManager.default.contentsOfDirectory(atPath: input)) ?? [])
                .filter { $0.hasPrefix("episodes") && $0.hasSuffix(".jsonl") }.sorted()
            // A shard directory that also holds the merged file (`mml ablate merge` writes episodes.jsonl beside
            // the shards): the shards, so merging again or comparing the directory works.
            let shards = names.filter { $0.hasPrefix("episodes-shard-") }
            if !shards.isEmpty { names = shards }
            guard !names.isEmpty else {
                throw MMLError(.fileNotFound, "\(input) holds no per-episode files (episodes*.jsonl); give the "
                               + "directory the shards wrote to")
            }
            out += names.map { URL(fileURLWithPath: input).appendingPathComponent($0).path }
        }
        return out
    }

    /// Reads the files `inputs` name (`paths(_:)`) and merges them (`merged(_:)`).
    public static func load(_ inputs: [String], command: String? = nil) throws
        -> (merged: EpisodeFile, parts: [(path: String, file: EpisodeFile)]) {
        let parts = try paths(inputs).map { (path: $0, file: try read($0, command: command)) }
        return (try merged(parts), parts)
    }

    /// The shards of one run as one file, records in setting and episode order (the order of an unsharded run),
    /// `seconds` summed, the header (and report) of the first file otherwise.
    /// - Throws: `MMLError(.invalidArgument)` naming the files when they are of different commands or runs
    ///   (manifests differ: each differing entry with both values), when a shard is missing or given twice, or an
    ///   episode is missing, duplicated or in the wrong shard.
    public static func merged(_ parts: [(path: String, file: EpisodeFile)]) throws -> EpisodeFile {
        guard let (firstPath, first) = parts.first.map({ ($0.path, $0.file) }) else {
            throw MMLError(.invalidArgument, "no per-episode files to merge")
        }
        for (path, f) in parts.dropFirst() {
            if f.header.command != first.header.command {
                throw MMLError(.invalidArgument, "\(path) holds mml \(f.header.command) results but \(firstPath) mml "
                               + "\(first.header.command) results; merge the files of one run")
            }
            let keys = Set(f.header.manifest.keys).union(first.header.manifest.keys).sorted()
            let diffs = keys.filter { f.header.manifest[$0] != first.header.manifest[$0] }.map {
                "\($0): \(f.header.manifest[$0] ?? "(none)") vs \(first.header.manifest[$0] ?? "(none)")"
            }
            if !diffs.isEmpty || f.header.settings != first.header.settings {
                let all = diffs + (f.header.settings != first.header.settings
                    ? ["settings: \(f.header.settings) vs \(first.header.settings)"] : [])
                throw MMLError(.invalidArgument, "\(path) is not from the same run as \(firstPath): "
                               + all.joined(separator: "; ") + "; merge the shards of one run (same checkpoint, data, "
                               + "settings and seed)")
            }
        }
        // Shards: one count, each index exactly once.
        let shards = parts.map { $0.file.header.shard ?? ShardSpec(index: 0, count: 1) }
        let n = shards[0].count
        if let k = shards.firstIndex(where: { $0.count != n }) {
            throw MMLError(.invalidArgument, "\(parts[k].path) is shard \(shards[k]) but \(firstPath) is shard "
                           + "\(shards[0]); merge the shards of one run (one shard count)")
        }
        var byIndex: [Int: String] = [:]
        for (k, s) in shards.enumerated() {
            if let other = byIndex[s.index] {
                throw MMLError(.invalidArgument, "shard \(s) is given twice: \(other) and \(parts[k].path); give each "
                               + "shard's file once")
            }
            byIndex[s.index] = parts[k].path
        }
        let missing = (0..<n).filter { byIndex[$0] == nil }
        if !missing.isEmpty {
            throw MMLError(.invalidArgument, "shard(s) \(missing.map { "\($0)/\(n)" }.joined(separator: ", ")) missing "
                           + "(given: \(shards.map(\.description).joined(separator: ", "))); wait for every task "
                           + "of the array to finish, or run the missing shards with --shard")
        }
        // Episodes: each of each setting exactly once, in the shard it belongs to.
        var records: [EpisodeRecord] = []
        for setting in first.header.settings {
            var slot = [(record: EpisodeRecord, path: String)?](repeating: nil, count: setting.episodes)
            for ((path, f), shard) in zip(parts, shards) {
                for r in f.records(of: setting) {
                    guard (0..<setting.episodes).contains(r.index) else {
                        throw MMLError(.invalidArgument, "\(path): episode \(r.index) of \(setting.name) is outside "
                                       + "0..<\(setting.episodes); the file is damaged")
                    }
                    guard shard.contains(r.index) else {
                        throw MMLError(.invalidArgument, "\(path): episode \(r.index) of \(setting.name) does not "
                                       + "belong to shard \(shard)")
                    }
                    if let prior = slot[r.index] {
                        throw MMLError(.invalidArgument, "episode \(r.index) of \(setting.name) appears twice "
                                       + "(\(prior.path) and \(path))")
                    }
                    slot[r.index] = (r, path)
                }
            }
            let absent = slot.indices.filter { slot[$0] == nil }
            if !absent.isEmpty {
                let list = absent.prefix(10).map(String.init).joined(separator: ", ")
                    + (absent.count > 10 ? " and \(absent.count - 10) more" : "")
                throw MMLError(.invalidArgument, "episode(s) \(list) of \(setting.name) missing from the shard files; "
                               + "a shard's file is incomplete, run that shard again")
            }
            records += slot.map { $0!.record }
        }
        let known = Set(first.header.settings.map { [$0.way, $0.shot] })
        for (path, f) in parts {
            if let r = f.records.first(where: { !known.contains([$0.way, $0.shot]) }) {
                throw MMLError(.invalidArgument, "\(path): episode \(r.index) is of \(r.way)-way \(r.shot)-shot, a "
                               + "setting the header does not list; the file is damaged")
            }
        }
        var header = first.header
        header.shard = nil
        header.seconds = parts.reduce(0) { $0 + $1.file.header.seconds }
        return EpisodeFile(header: header, records: records)
    }
}
