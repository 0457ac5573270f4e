import Foundation

/// Where a dataset is and how to read it: the part of every run's configuration that names its data.
///
///     let source = DatasetSource(path: "/data/omniglot", layout: .omniglotVinyals, split: "test")
///     let data = try source.open()
public struct DatasetSource: Codable, Sendable, Equatable {
    /// Dataset root, or `synthetic` for the built-in generated data.
    public var path: String
    /// How to read it (nil: detected from the files, `DatasetLayout.detect`).
    public var layout: DatasetLayout?
    /// csv / synthetic: train|val|test; omniglot: background|evaluation|all; omniglot-vinyals: train|val|test|trainval;
    /// folder: a subfolder. Nil: the run's default split.
    public var split: String?
    /// Synthetic data: generator seed.
    public var syntheticSeed: UInt64
    /// Synthetic data: image side (nil: a model's image size, else 84).
    public var syntheticSize: Int?
    /// Synthetic data: channels (nil: a model's channels, else 3).
    public var syntheticChannels: Int?
    /// Synthetic data: images per class.
    public var syntheticImages: Int
    /// Synthetic data: the cue made constant across classes (nil: none; `SyntheticDataset.Options.removedCue`).
    public var syntheticRemoveCue: SyntheticCue?
    /// The largest width x height of an image file accepted (nil: `ImageCodec.defaultMaxPixels`, 8192 x 8192); a
    /// larger one is refused from its header before its pixels are allocated.
    public var maxImagePixels: Int?
    /// Use a dataset or episode list that names one image twice (a file listed twice in a split, shared by two
    /// classes, or both support and query of an episode) with a warning, instead of refusing it. Written only when
    /// true (like `maxImagePixels` only when set), so configurations and checkpoints written before these two fields
    /// (and those that leave them at their defaults) stay byte-identical.
    @OmittedWhenDefault public var allowDuplicates: Bool

    public init(path: String = "synthetic", layout: DatasetLayout? = nil, split: String? = nil,
                syntheticSeed: UInt64 = 0, syntheticSize: Int? = nil, syntheticChannels: Int? = nil,
                syntheticImages: Int = 100, syntheticRemoveCue: SyntheticCue? = nil, maxImagePixels: Int? = nil,
                allowDuplicates: Bool = false) {
        self.path = path; self.layout = layout; self.split = split; self.syntheticSeed = syntheticSeed
        self.syntheticSize = syntheticSize; self.syntheticChannels = syntheticChannels
        self.syntheticImages = syntheticImages; self.syntheticRemoveCue = syntheticRemoveCue
        self.maxImagePixels = maxImagePixels; self.allowDuplicates = allowDuplicates
    }

    /// The image pixel limit in force: `maxImagePixels`, else `ImageCodec.defaultMaxPixels`.
    public var resolvedMaxImagePixels: Int { maxImagePixels ?? ImageCodec.defaultMaxPixels }

    /// Checks the synthetic data's numbers (the generator checks them again when it opens).
    /// - Throws: `MMLError` naming the field and its range.
    public func validate() throws {
        try Limits.check(syntheticSize, "syntheticSize", in: 8...1024, "the synthetic image side")
        if let ch = syntheticChannels, ch != 1 && ch != 3 {
            throw MMLError(.invalidArgument, "`syntheticChannels` \(ch): synthetic images have 1 or 3 channels")
        }
        try Limits.check(syntheticImages, "syntheticImages", in: Limits.images, "synthetic images per class")
        if let m = maxImagePixels, m < 1 {
            throw MMLError(.invalidArgument, "`maxImagePixels` must be at least 1, got \(m)")
        }
        let d = DatasetSource()
        let given = [("syntheticSeed", syntheticSeed != d.syntheticSeed), ("syntheticSize", syntheticSize != nil),
                     ("syntheticChannels", syntheticChannels != nil),
                     ("syntheticImages", syntheticImages != d.syntheticImages),
                     ("syntheticRemoveCue", syntheticRemoveCue != nil)].filter(\.1).map { "`\($0.0)`" }
        if !given.isEmpty, resolvedLayout != .synthetic {
            throw MMLError(.invalidArgument, given.joined(separator: ", ") + (given.count == 1 ? " only applies" : " only apply")
                           + " to the built-in synthetic "
                           + "data; \(path) is read as \(resolvedLayout.rawValue) data: drop "
                           + (given.count == 1 ? "it" : "them"))
        }
    }

    /// Opens the dataset, refusing duplicate images (`DatasetHygiene`) unless `allowDuplicates`.
    /// - Parameters:
    ///   - image: a model's image configuration, the default size and channels of synthetic data.
    ///   - events: receives the warning about duplicates when `allowDuplicates` lets them through.
    /// - Throws: `MMLError` when the files cannot be read, `maxImagePixels` is below 1, or an image is named twice.
    public func open(image: ImageConfig? = nil, events: (RunEvent) -> Void = { _ in }) throws -> any FewShotDataset {
        if let m = maxImagePixels, m < 1 {
            throw MMLError(.invalidArgument, "`maxImagePixels` must be at least 1, got \(m)")
        }
        let opts = SyntheticDataset.Options(seed: syntheticSeed, imagesPerClass: syntheticImages,
                                            size: syntheticSize ?? image?.size ?? 84,
                                            channels: syntheticChannels ?? image?.channels ?? 3,
                                            removedCue: syntheticRemoveCue)
        let ds = try Datasets.open(path: path, layout: layout, split: split, synthetic: opts,
                                   maxImagePixels: resolvedMaxImagePixels, allowDuplicates: allowDuplicates)
        for w in ds.warnings where w.hasPrefix(DatasetHygiene.warningPrefix) { events(.warning(w)) }
        return ds
    }

    /// This source restricted to another split.
    public func with(split: String) -> DatasetSource {
        var d = self
        d.split = split
        return d
    }

    /// This source with `split` when none is set.
    public func withDefaultSplit(_ split: String) -> DatasetSource { with(split: self.split ?? split) }

    /// The layout (given or detected).
    public var resolvedLayout: DatasetLayout { layout ?? DatasetLayout.detect(path: path, split: split) }
}
