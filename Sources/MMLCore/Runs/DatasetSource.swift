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

    public init(path: String = "synthetic", layout: DatasetLayout? = nil, split: String? = nil,
                syntheticSeed: UInt64 = 0, syntheticSize: Int? = nil, syntheticChannels: Int? = nil,
                syntheticImages: Int = 100, syntheticRemoveCue: SyntheticCue? = nil) {
        self.path = path; self.layout = layout; self.split = split; self.syntheticSeed = syntheticSeed
        self.syntheticSize = syntheticSize; self.syntheticChannels = syntheticChannels
        self.syntheticImages = syntheticImages; self.syntheticRemoveCue = syntheticRemoveCue
    }

    /// Opens the dataset.
    /// - Parameter image: a model's image configuration, the default size and channels of synthetic data.
    /// - Throws: `MMLError` when the files cannot be read.
    public func open(image: ImageConfig? = nil) throws -> any FewShotDataset {
        let opts = SyntheticDataset.Options(seed: syntheticSeed, imagesPerClass: syntheticImages,
                                            size: syntheticSize ?? image?.size ?? 84,
                                            channels: syntheticChannels ?? image?.channels ?? 3,
                                            removedCue: syntheticRemoveCue)
        return try Datasets.open(path: path, layout: layout, split: split, synthetic: opts)
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
