import ArgumentParser
import Foundation
import MMLCore

/// `mml data`: look at datasets and write episode lists.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Inspect datasets and write episode lists.",
        subcommands: [DataInspectCommand.self, DataEpisodesCommand.self, DataCacheCommand.self]
    )
}

struct DataInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a dataset's classes, image counts, image sizes found and any problems."
    )

    @OptionGroup var dataset: DatasetOptions

    @Flag(help: "Decode every image (finds corrupt files; slower) instead of reading headers only.")
    var decode = false

    @Flag(help: "List every class with its image count.")
    var classes = false

    @Option(help: "Write the first image of up to 10 classes as PNGs into this directory (to look at the data).")
    var writeSamples: String?

    func run() throws {
        try runReportingErrors {
            let ds = try dataset.open()
            let counts = ds.itemCounts
            print("dataset     \(ds.name)")
            print("classes     \(ds.classCount)")
            print("images      \(counts.reduce(0, +))")
            if let lo = counts.min(), let hi = counts.max() {
                let sorted = counts.sorted()
                print("per class   min \(lo)  median \(sorted[sorted.count / 2])  max \(hi)")
            }
            var sizes: [String: Int] = [:]
            var problems: [String] = []
            for c in 0..<ds.classCount {
                for i in 0..<counts[c] {
                    do {
                        let key: String
                        if ds is SyntheticDataset || decode {
                            let img = try ds.loadImage(ofClass: c, item: i, channels: 3)
                            key = "\(img.width)x\(img.height)"
                        } else {
                            let path = ds.itemPath(ofClass: c, item: i)
                            let info = try ImageCodec.probe(try ImageCodec.readFile(path), source: path)
                            key = "\(info.width)x\(info.height) \(info.format.rawValue) \(info.channels)ch \(info.bitDepth)-bit"
                        }
                        sizes[key, default: 0] += 1
                    } catch let e as MMLError { problems.append(e.message) }
                    if ds is SyntheticDataset && i >= 1 { break } // generated: the size is the same for all
                }
            }
            print("image sizes" + (ds is SyntheticDataset ? " (sampled)" : ""))
            for (k, n) in sizes.sorted(by: { $0.value > $1.value }) { print("  \(k): \(n)") }
            if classes {
                for c in 0..<ds.classCount { print("  \(ds.classNames[c]): \(counts[c])") }
            }
            let empty = counts.indices.filter { counts[$0] == 0 }.map { ds.classNames[$0] }
            if !empty.isEmpty { problems.append("\(empty.count) class(es) have no images: \(empty.prefix(10).joined(separator: ", "))") }
            problems = ds.warnings + problems
            print("skipped     \(ds.skippedFiles.count) file(s) that are not PNG/JPEG")
            print("problems    \(problems.count)")
            for p in problems.prefix(50) { print("  \(p)") }
            if problems.count > 50 { print("  ... and \(problems.count - 50) more") }
            if let dir = writeSamples {
                for c in 0..<min(10, ds.classCount) where counts[c] > 0 {
                    let img = try ds.loadImage(ofClass: c, item: 0, channels: 3)
                    try ImageCodec.write(img, to: "\(dir)/class\(c).png")
                }
                print("samples     written to \(dir)")
            }
        }
    }
}

struct DataEpisodesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "episodes",
        abstract: "Write an episode list (JSON: class names and file paths per episode), atomically."
    )

    @OptionGroup var dataset: DatasetOptions

    @Option(help: "Classes per episode (n-way).")
    var way = 5
    @Option(help: "Support images per class (k-shot).")
    var shot = 1
    @Option(help: "Query images per class.")
    var query = 15
    @Option(help: "Number of episodes.")
    var episodes = 600
    @Option(help: "Episode seed: episode i is a pure function of (seed, i).")
    var seed: UInt64 = 0
    @Flag(help: "Drop classes with fewer than shot + query images (with a warning) instead of failing.")
    var dropSmallClasses = false
    @Option(name: [.short, .long], help: "Output JSON file.")
    var output: String

    func run() throws {
        try runReportingErrors {
            guard episodes >= 1 else { throw MMLError(.invalidArgument, "--episodes must be >= 1, got \(episodes)") }
            let ds = try dataset.open()
            let sampler = try EpisodeSampler(dataset: ds, way: way, shot: shot, query: query, seed: seed,
                                             dropSmallClasses: dropSmallClasses)
            for w in sampler.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
            let list = EpisodeList(episodes: sampler.episodes(episodes), sampler: sampler, split: dataset.split)
            try list.write(to: output)
            print("wrote \(episodes) episodes (\(way)-way \(shot)-shot, \(query) queries, seed \(seed)) of \(ds.name) to \(output)")
        }
    }
}

struct DataCacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Decode and resize every image of a split once and write the binary cache file (memory-mapped by later runs)."
    )

    @OptionGroup var dataset: DatasetOptions

    @Option(help: "Side the images are resized to.")
    var size = 84
    @Option(help: "Channels stored (1 or 3).")
    var channels = 3
    @Option(help: "Cache file (default: <root>/.mml-cache/<layout>-<split>-<size>x<size>x<channels>.bin).")
    var output: String?

    func run() throws {
        try runReportingErrors {
            let ds = try dataset.open()
            let layout = dataset.layout ?? DatasetLayout.detect(path: dataset.path, split: dataset.split)
            let file = output ?? ImageCache.defaultFile(root: dataset.path, tag: "\(layout.rawValue)-\(dataset.split ?? "default")",
                                                        side: size, channels: channels)
            let t0 = Date()
            let cache = try ImageCache(dataset: ds, side: size, channels: channels, file: file)
            if cache.isMapped {
                print("cache \(file) is up to date (\(ds.totalItems) images)")
                return
            }
            try cache.write(file: file)
            print(String(format: "wrote %@: %d images at %dx%dx%d in %.1f s", file, ds.totalItems, size, size, channels,
                         Date().timeIntervalSince(t0)))
        }
    }
}
