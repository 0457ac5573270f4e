import ArgumentParser
import Foundation
import MMLCore

extension DatasetLayout: ExpressibleByArgument {}
extension SyntheticCue: ExpressibleByArgument {}

/// Where a dataset is and how to read it (`DatasetSource` in the core); shared by every command that opens data.
struct DatasetOptions: ParsableArguments {
    @Argument(help: "Dataset root, or 'synthetic' for the built-in generated data.")
    var path: String = "synthetic"

    @Option(help: "Layout: folder, csv, omniglot, omniglot-vinyals or synthetic (detected when omitted).")
    var layout: DatasetLayout?

    @Option(help: "Split: csv/synthetic train|val|test; omniglot background|evaluation|all; omniglot-vinyals train|val|test|trainval; folder: a subfolder.")
    var split: String?

    @Option(help: "Synthetic data: generator seed.")
    var syntheticSeed: UInt64 = 0

    @Option(help: "Synthetic data: image side in pixels (default 84, or a checkpoint's image size).")
    var syntheticSize: Int?

    @Option(help: "Synthetic data: channels, 1 or 3 (default 3, or a checkpoint's channels).")
    var syntheticChannels: Int?

    @Option(help: "Synthetic data: images per class.")
    var syntheticImages = 100

    @Option(help: "Synthetic data: make one level's cue constant across classes: pixel (glyph shape), part (pairing of the coloured spots) or distribution (share of light tiles).")
    var syntheticRemoveCue: SyntheticCue?

    @Option(help: "Refuse image files whose header declares more than this many pixels (width x height), before decoding (default 67108864 = 8192 x 8192).")
    var maxImagePixels: Int?

    @Flag(help: "Use data that names one image twice (a file listed twice in a split, in two classes, or support and query of one episode) with a warning instead of refusing it.")
    var allowDuplicates = false

    /// The core's description of this data.
    var source: DatasetSource {
        DatasetSource(path: path, layout: layout, split: split, syntheticSeed: syntheticSeed,
                      syntheticSize: syntheticSize, syntheticChannels: syntheticChannels,
                      syntheticImages: syntheticImages, syntheticRemoveCue: syntheticRemoveCue,
                      maxImagePixels: maxImagePixels, allowDuplicates: allowDuplicates)
    }

    /// The dataset these options name.
    /// - Parameter image: a model's image configuration, the default size and channels of synthetic data.
    func open(image: ImageConfig? = nil) throws -> any FewShotDataset { try source.open(image: image) }

    /// This dataset restricted to another split.
    func with(split: String) -> DatasetOptions {
        var d = self
        d.split = split
        return d
    }

    /// The layout (given or detected).
    var resolvedLayout: DatasetLayout { source.resolvedLayout }
}
