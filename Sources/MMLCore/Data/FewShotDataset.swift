import Foundation

/// A labelled image collection seen as classes, each with an ordered list of items.
///
/// Samplers work on (class index, item index) pairs; `itemPath` is an item's stable name (a file path, or a
/// `synthetic/...` id) used in episode lists and caches; `loadImage` decodes one item at its native size.
public protocol FewShotDataset: Sendable {
    /// A description for messages, e.g. "omniglot-vinyals:test at /data/omniglot".
    var name: String { get }
    /// Class names, index = class index.
    var classNames: [String] { get }
    /// The number of items of class `c`.
    func itemCount(ofClass c: Int) -> Int
    /// The stable name of item `i` of class `c` (absolute file path for file datasets).
    func itemPath(ofClass c: Int, item i: Int) -> String
    /// Decodes item `i` of class `c` with `channels` (1 or 3) channels at its stored size (rotated where the
    /// layout says so). Throws `MMLError` naming the file when it cannot be read or decoded.
    func loadImage(ofClass c: Int, item i: Int, channels: Int) throws -> PixelImage
    /// Counter-clockwise quarter turns applied to every image of class `c` when loading. Items of different
    /// classes with the same `itemPath` are the same source image at different turns (Vinyals rotations); the
    /// image cache uses that to decode such a file once. Default 0.
    func quarterTurns(ofClass c: Int) -> Int
    /// Files skipped while scanning (not PNG/JPEG).
    var skippedFiles: [String] { get }
    /// Warnings found while opening (skipped files, dropped classes); empty when clean.
    var warnings: [String] { get }
}

extension FewShotDataset {
    public func quarterTurns(ofClass c: Int) -> Int { 0 }
    /// The number of classes.
    public var classCount: Int { classNames.count }
    /// The item counts of every class.
    public var itemCounts: [Int] { (0..<classCount).map { itemCount(ofClass: $0) } }
    /// The total number of items.
    public var totalItems: Int { itemCounts.reduce(0, +) }
}

/// A class of a file-backed dataset: image files, optionally all rotated by quarter turns.
public struct FileClass: Sendable, Equatable {
    /// The class name (e.g. "Alphabet/character01/rot090").
    public var name: String
    /// Absolute image file paths, sorted.
    public var files: [String]
    /// Counter-clockwise quarter turns applied when loading (Vinyals Omniglot rotations).
    public var quarterTurns: Int

    public init(name: String, files: [String], quarterTurns: Int = 0) {
        self.name = name
        self.files = files
        self.quarterTurns = quarterTurns
    }
}

/// A dataset of image files grouped into classes: what the folder, CSV and Omniglot layouts open into.
public struct FileImageDataset: FewShotDataset {
    public let name: String
    /// The classes in index order.
    public let classes: [FileClass]
    public let skippedFiles: [String]
    public internal(set) var warnings: [String]
    /// The largest width x height decoded; a larger image is refused from its header (`maxImagePixels`).
    public var maxImagePixels: Int

    public init(name: String, classes: [FileClass], skippedFiles: [String] = [], warnings: [String] = [],
                maxImagePixels: Int = ImageCodec.defaultMaxPixels) {
        self.name = name
        self.classes = classes
        self.skippedFiles = skippedFiles
        self.warnings = warnings
        self.maxImagePixels = maxImagePixels
    }

    public var classNames: [String] { classes.map(\.name) }
    public func itemCount(ofClass c: Int) -> Int { classes[c].files.count }
    public func itemPath(ofClass c: Int, item i: Int) -> String { classes[c].files[i] }
    public func quarterTurns(ofClass c: Int) -> Int { classes[c].quarterTurns }

    public func loadImage(ofClass c: Int, item i: Int, channels: Int) throws -> PixelImage {
        let img = try ImageCodec.decodeFile(classes[c].files[i], channels: channels, maxPixels: maxImagePixels)
        return img.rotated(quarterTurns: classes[c].quarterTurns)
    }
}

/// A view of a dataset restricted to some of its classes (e.g. after dropping classes that are too small).
public struct ClassSubset: FewShotDataset {
    /// The underlying dataset.
    public let base: any FewShotDataset
    /// Indices into `base`'s classes.
    public let classIndices: [Int]
    public let warnings: [String]

    public init(base: any FewShotDataset, classIndices: [Int], warnings: [String] = []) {
        self.base = base
        self.classIndices = classIndices
        self.warnings = base.warnings + warnings
    }

    public var name: String { base.name }
    public var classNames: [String] { classIndices.map { base.classNames[$0] } }
    public var skippedFiles: [String] { base.skippedFiles }
    public func itemCount(ofClass c: Int) -> Int { base.itemCount(ofClass: classIndices[c]) }
    public func itemPath(ofClass c: Int, item i: Int) -> String { base.itemPath(ofClass: classIndices[c], item: i) }
    public func quarterTurns(ofClass c: Int) -> Int { base.quarterTurns(ofClass: classIndices[c]) }
    public func loadImage(ofClass c: Int, item i: Int, channels: Int) throws -> PixelImage {
        try base.loadImage(ofClass: classIndices[c], item: i, channels: channels)
    }
}

/// What an episode-size error tells the user to change: the configuration fields of whoever asked for the episodes
/// (backquoted in the message, so that each front end renders them as its own flags or keywords).
public struct EpisodeFields: Sendable, Equatable {
    /// The fields of the shot and the queries per class.
    public var shot: String, query: String
    /// The advice when the split has too few classes for the way (the message's words, fields backquoted).
    public var tooFewClasses: String
    /// The field that skips classes with too few images; nil when the caller has no such option (then the message
    /// does not offer it).
    public var dropSmallClasses: String?
    /// Put before the message: where the episodes come from (e.g. "validation split 'val': "); may be empty.
    public var context: String

    public init(shot: String = "shot", query: String = "query",
                tooFewClasses: String = "lower `way` or use a larger split",
                dropSmallClasses: String? = "dropSmallClasses", context: String = "") {
        self.shot = shot; self.query = query; self.tooFewClasses = tooFewClasses
        self.dropSmallClasses = dropSmallClasses; self.context = context
    }

    /// `EpisodeSampler`'s own parameters (`way`, `shot`, `query`, `dropSmallClasses`): for callers of the sampler.
    public static let sampler = EpisodeFields()
    /// A run whose episodes are set by `way`, `shot` and `query` and that has no `dropSmallClasses` option
    /// (training, evaluation, ablation).
    public static let run = EpisodeFields(dropSmallClasses: nil)
    /// A training run's validation episodes: `validationWay`, `validationShot`, `validationQuery` on
    /// `validationSplit` (which can also be turned off); the training episodes' fields stay as they are.
    public static func validation(split: String) -> EpisodeFields {
        EpisodeFields(shot: "validationShot", query: "validationQuery",
                      tooFewClasses: "lower `validationWay` (the training way stays), use a larger `validationSplit`, "
                          + "or set `validationSplit` none",
                      dropSmallClasses: nil, context: "validation split '\(split)': ")
    }
}

/// Checks that `dataset` can give `way`-way episodes with `perClass` images per class.
/// - Parameters:
///   - dropSmallClasses: drop classes with fewer than `perClass` items (listed in `warnings`) instead of throwing.
///   - fields: the configuration fields the errors tell the user to change.
/// - Returns: the dataset, or a `ClassSubset` without the small classes.
/// - Throws: `MMLError(.datasetTooSmall)` naming the small classes and the numbers, or when fewer than `way`
///   classes remain.
public func validateForEpisodes(_ dataset: any FewShotDataset, way: Int, perClass: Int, shot: Int, query: Int,
                                dropSmallClasses: Bool, fields: EpisodeFields = .sampler) throws -> any FewShotDataset {
    let counts = dataset.itemCounts
    let small = counts.indices.filter { counts[$0] < perClass }
    var result: any FewShotDataset = dataset
    if !small.isEmpty {
        let listed = small.prefix(10).map { "'\(dataset.classNames[$0])' (\(counts[$0]) images)" }.joined(separator: ", ")
        let more = small.count > 10 ? " and \(small.count - 10) more" : ""
        if !dropSmallClasses {
            let skip = fields.dropSmallClasses.map { ", add images, or pass `\($0)` to skip them" } ?? " or add images"
            throw MMLError(.datasetTooSmall,
                           fields.context + "\(small.count) class(es) of \(dataset.name) have fewer images than "
                           + "\(shot)-shot + \(query) queries = \(perClass): \(listed)\(more); "
                           + "lower `\(fields.shot)`/`\(fields.query)`\(skip)")
        }
        let keep = counts.indices.filter { counts[$0] >= perClass }
        result = ClassSubset(base: dataset, classIndices: keep,
                             warnings: ["dropped \(small.count) class(es) with fewer than \(perClass) images: \(listed)\(more)"])
    }
    if result.classCount < way {
        throw MMLError(.datasetTooSmall,
                       fields.context + "\(dataset.name) has \(result.classCount) class(es) with at least "
                       + "\(perClass) images, but \(way)-way episodes need \(way); \(fields.tooFewClasses)")
    }
    return result
}
