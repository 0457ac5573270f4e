import ArgumentParser
import Foundation
import MMLCore

extension BackboneKind: ExpressibleByArgument {}
extension BackboneInitialization: ExpressibleByArgument {}
extension FusionNormalization: ExpressibleByArgument {}

/// The metric's options, shared by train, ablate and score. Every option is nil when not given; the defaults are
/// `MetricConfiguration()`'s (METHOD.md section 2), so they live in one place.
struct MetricOptions: ParsableArguments {
    @Option(help: "Metric levels: all, or a comma-separated subset of pixel, part, distribution (default all).")
    var levels: String?

    @Option(name: .customLong("pixel-k"), help: "Pixel level: neighbours K (default 1; MML trains with 1, DN4 with 3).")
    var pixelK: Int?

    @Option(help: "Part level: grid:G1,G2,... (pooled regions over G x G grids, MML v4; needs H, W >= every G) or channels (MML v1). Default grid:3,2.")
    var partForm: String?

    @Option(name: .customLong("part-k"), help: "Part level: neighbours K (default 1).")
    var partK: Int?

    @Option(help: "Distribution level: kl (query||class), kl-cq, kl-sym, w2 or mml-v1 (default kl).")
    var distance: String?

    @Option(help: "Distribution level: covariance ridge eps (default 0.01).")
    var distributionEps: Float?

    @Option(help: "Fusion: learned (per-level normalisation + learned weights; the default) or fixed (MML v4).")
    var fusion: String?

    @Option(help: "Learned fusion normaliser: per-level (default) or per-position (ties the model to its n-way).")
    var fusionNormalization: FusionNormalization?

    @Option(help: "Fixed fusion: comma-separated weights, one per enabled level (default 1, 0.5, 0.5).")
    var fixedWeights: String?

    /// The flags given on the command line, spelled as the user types them (for "cannot be combined" errors).
    var givenFlags: [String] {
        let given: [(String, Bool)] = [
            ("--levels", levels != nil), ("--pixel-k", pixelK != nil), ("--part-form", partForm != nil),
            ("--part-k", partK != nil), ("--distance", distance != nil), ("--distribution-eps", distributionEps != nil),
            ("--fusion", fusion != nil), ("--fusion-normalization", fusionNormalization != nil),
            ("--fixed-weights", fixedWeights != nil),
        ]
        return given.filter(\.1).map(\.0)
    }

    /// The configuration these options give; the core parses each text once (`PartLevel.Form.parse`,
    /// `DistributionDistance.parse`, `FusionKind.parse`). - Throws: `MMLError(.config)` naming the field.
    func configuration(way: Int) throws -> MetricConfiguration {
        try configuration(over: MetricConfiguration(way: way), way: way)
    }

    /// `base` with every given metric flag applied, for `way` (`mml train --config` keeps the rest of `base`).
    /// - Throws: `MMLError(.config)` naming the field.
    func configuration(over base: MetricConfiguration, way: Int) throws -> MetricConfiguration {
        var c = base
        c.way = way
        if let levels { c.levels = try MetricConfiguration.parseLevels(levels).sorted() }
        if let pixelK { c.pixelNeighbours = pixelK }
        if let partForm { c.partForm = try PartLevel.Form.parse(partForm) }
        if let partK { c.partNeighbours = partK }
        if let distance { c.distance = try DistributionDistance.parse(distance) }
        if let distributionEps { c.distributionEps = distributionEps }
        if let fusion { c.fusion = try FusionKind.parse(fusion) }
        if let fusionNormalization { c.fusionNormalization = fusionNormalization }
        if let fixedWeights { c.fixedWeights = try MetricConfiguration.parseWeights(fixedWeights) }
        try c.validate()
        return c
    }
}

extension InkConvention: ExpressibleByArgument {}
extension ResizeFilter: ExpressibleByArgument {}

/// Pixel preprocessing (`Preprocessing` in the core): ink convention, resize filter, mean and std. Every option is
/// nil when not given: train-like commands then use the dataset's defaults, `mml eval` the checkpoint's own.
struct PreprocessingOptions: ParsableArguments {
    @Option(help: "Ink convention: paper-white (pixels as stored; the default) or ink-one (1 - pixel, as Snell et al.'s Omniglot loaders feed it).")
    var ink: InkConvention?

    @Option(help: "Resize filter: triangle (antialiased bilinear; the default), area (exact area averaging, OpenCV's INTER_AREA) or box (PIL's Image.BOX: the mean of the pixels whose centres fall in the footprint; equal to area at integer factors).")
    var resizeFilter: ResizeFilter?

    @Option(help: "Per-channel mean subtracted after scaling pixels to [0, 1]: 1 or 3 comma-separated values (default: ImageNet's for colour folder/CSV data, else 0).")
    var mean: String?

    @Option(help: "Per-channel standard deviation divided by: 1 or 3 comma-separated values (default: ImageNet's for colour folder/CSV data, else 1).")
    var std: String?

    /// The core's preprocessing. - Throws: `MMLError(.config)` naming `mean` / `std` for malformed lists.
    func preprocessing() throws -> Preprocessing {
        Preprocessing(ink: ink, resizeFilter: resizeFilter,
                      mean: try mean.map { try Preprocessing.parseValues($0, field: "mean") },
                      std: try std.map { try Preprocessing.parseValues($0, field: "std") })
    }
}

/// Image size / channels / augmentation / preprocessing (`ImageSettings` in the core), with defaults that follow
/// the dataset.
struct ImageOptions: ParsableArguments {
    @Option(help: "Image side in pixels (default: 28 for Omniglot, the synthetic size, else 84).")
    var imageSize: Int?

    @Option(help: "Image channels, 1 or 3 (default: 1 for Omniglot, the synthetic channels, else 3).")
    var channels: Int?

    @Option(help: "Training augmentation: none; mml (resize 100/84 of the size, random crop, flip, colour jitter 0.4); or shift (random translations of up to 1/14 of the side, 2 px at 28, edges replicated; nothing else: for Omniglot) (default: none).")
    var augment: String?

    @OptionGroup var preprocessingOptions: PreprocessingOptions

    /// The flags given on the command line, spelled as the user types them (for "cannot apply" errors).
    var givenFlags: [String] {
        let p = preprocessingOptions
        let given: [(String, Bool)] = [
            ("--image-size", imageSize != nil), ("--channels", channels != nil), ("--augment", augment != nil),
            ("--ink", p.ink != nil), ("--resize-filter", p.resizeFilter != nil), ("--mean", p.mean != nil),
            ("--std", p.std != nil),
        ]
        return given.filter(\.1).map(\.0)
    }

    /// The core's image settings (no `--augment`: none). - Throws: `MMLError(.config)` for an unknown augmentation
    /// or malformed preprocessing.
    func settings() throws -> ImageSettings {
        let p = try preprocessingOptions.preprocessing()
        return ImageSettings(size: imageSize, channels: channels,
                             augmentation: try augment.map(AugmentationKind.parse) ?? .none,
                             preprocessing: p.isEmpty ? nil : p)
    }
}

/// Backbone options (`BackboneSettings` in the core) for every command that builds a model (train, ablate
/// --retrain, pretrain, train-embedding). Where the default differs between commands the option is nil when not
/// given, and `BackboneSettings.Defaults` says what it is.
struct BackboneOptions: ParsableArguments {
    @Option(help: "Backbone: conv64f (DN4/MML), conv4 or resnet12 (default: conv64f; conv4 for pretrain and train-embedding).")
    var backbone: BackboneKind?

    @Option(help: "Backbone widths, 4 comma-separated channel counts (default: the architecture's own).")
    var widths: String?

    @Option(help: "Weight initialisation: mml (N(0, 0.02)) or kaiming (default: mml; kaiming for pretrain and train-embedding).")
    var initialization: BackboneInitialization?

    @Option(help: "Seed of the initial weights (default: 0; pretrain and train-embedding: their --seed).")
    var initSeed: UInt64?

    /// The flags given on the command line, spelled as the user types them (for "cannot apply" errors).
    var givenFlags: [String] {
        let given: [(String, Bool)] = [("--backbone", backbone != nil), ("--widths", widths != nil),
                                       ("--initialization", initialization != nil), ("--init-seed", initSeed != nil)]
        return given.filter(\.1).map(\.0)
    }

    /// The parsed `--widths`. - Throws: `MMLError(.config)` for a malformed list.
    func resolvedWidths() throws -> [Int]? {
        guard let widths else { return nil }
        let w = widths.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard w.count == 4, w.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw MMLError(.config, "--widths '\(widths)' must be comma-separated positive integers; give 4 positive "
                           + "channel counts, e.g. 64,64,64,64")
        }
        return w.map { $0! }
    }

    /// The core's backbone settings. - Throws: `MMLError(.config)` for malformed widths.
    func settings() throws -> BackboneSettings {
        BackboneSettings(kind: backbone, widths: try resolvedWidths(), initialization: initialization, seed: initSeed)
    }

    /// The configuration of a fresh model of `kind` for `dataset`, with these options, `image` and `metric`.
    func modelConfiguration(kind: String, dataset: DatasetOptions, image: ImageOptions,
                            defaults: BackboneSettings.Defaults,
                            metric: MetricConfiguration? = nil) throws -> ModelConfiguration {
        try settings().modelConfiguration(kind: kind, dataset: dataset.source, image: try image.settings(),
                                          defaults: defaults, metric: metric)
    }
}
