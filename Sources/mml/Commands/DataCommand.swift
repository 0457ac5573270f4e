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
            let config = DatasetInspectionConfiguration(dataset: dataset.source, decode: decode,
                                                        samplesDirectory: writeSamples)
            render(try DatasetInspection(config).run())
        }
    }

    private func render(_ r: DatasetInspectionReport) {
        print("dataset     \(r.name)")
        print("classes     \(r.classCount)")
        print("images      \(r.imageCount)")
        if let lo = r.imagesPerClass.min(), let hi = r.imagesPerClass.max() {
            let sorted = r.imagesPerClass.sorted()
            print("per class   min \(lo)  median \(sorted[sorted.count / 2])  max \(hi)")
        }
        print("image sizes" + (r.sampled ? " (sampled)" : ""))
        for k in r.imageKinds { print("  \(k.description): \(k.count)") }
        if classes {
            for (name, n) in zip(r.classNames, r.imagesPerClass) { print("  \(name): \(n)") }
        }
        print("skipped     \(r.skippedFiles) file(s) that are not PNG/JPEG")
        print("problems    \(r.problems.count)")
        for p in r.problems.prefix(50) { print("  \(FlagNames.render(MMLError(.config, p)))") }
        if r.problems.count > 50 { print("  ... and \(r.problems.count - 50) more") }
        if let dir = r.samplesDirectory { print("samples     written to \(dir)") }
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
            let config = EpisodeListingConfiguration(dataset: dataset.source, way: way, shot: shot, query: query,
                                                     episodes: episodes, seed: seed,
                                                     dropSmallClasses: dropSmallClasses, out: output)
            let list: EpisodeList
            do {
                list = try EpisodeListingRun(config).run { event in
                    if case .warning(let w) = event { warn(w) }
                }
            } catch let e as MMLError where e.fields.contains("out") {
                // This command's flag for the core's `out` is --output.
                throw MMLError(e.kind, e.rendered { $0 == "out" ? "--output" : "`\($0)`" })
            }
            print("wrote \(episodes) episodes (\(way)-way \(shot)-shot, \(query) queries, seed \(seed)) of \(list.dataset) to \(output)")
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
            try Limits.check(size, "size", in: Limits.imageSide, "the image side in pixels")
            if channels != 1 && channels != 3 {
                throw MMLError(.invalidArgument, "`channels` \(channels): the cache stores 1 (grey) or 3 (colour) channels")
            }
            try dataset.source.validate()
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
