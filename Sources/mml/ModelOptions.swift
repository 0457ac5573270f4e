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

    /// The configuration these options give. - Throws: `MMLError(.config)`.
    func configuration(way: Int) throws -> MetricConfiguration {
        var c = MetricConfiguration(way: way)
        if let levels { c.levels = try MetricConfiguration.parseLevels(levels).sorted() }
        if let pixelK { c.pixelNeighbours = pixelK }
        if let partForm { c.partForm = partForm }
        if let partK { c.partNeighbours = partK }
        if let distance { c.distance = distance }
        if let distributionEps { c.distributionEps = distributionEps }
        if let fusion { c.fusion = fusion }
        if let fusionNormalization { c.fusionNormalization = fusionNormalization }
        if let w = fixedWeights {
            c.fixedWeights = try w.split(separator: ",").map {
                guard let v = Float($0.trimmingCharacters(in: .whitespaces)) else {
                    throw MMLError(.config, "--fixed-weights '\(w)': '\($0)' is not a number")
                }
                return v
            }
        }
        try c.validate()
        return c
    }
}

/// Image size / channels / augmentation, with defaults that follow the dataset.
struct ImageOptions: ParsableArguments {
    @Option(help: "Image side in pixels (default: 28 for Omniglot, the synthetic size, else 84).")
    var imageSize: Int?

    @Option(help: "Image channels, 1 or 3 (default: 1 for Omniglot, the synthetic channels, else 3).")
    var channels: Int?

    @Option(help: "Training augmentation: none, or mml (resize 100/84 of the size, random crop, flip, colour jitter 0.4).")
    var augment = "none"

    /// The evaluation (no augmentation) and training image configurations for a dataset.
    func configurations(for dataset: DatasetOptions) throws -> (train: ImageConfig, eval: ImageConfig) {
        let layout = dataset.resolvedLayout
        let omniglot = layout == .omniglot || layout == .omniglotVinyals
        let size = imageSize ?? (omniglot ? 28 : layout == .synthetic ? dataset.syntheticSize ?? 84 : 84)
        let ch = channels ?? (omniglot ? 1 : layout == .synthetic ? dataset.syntheticChannels ?? 3 : 3)
        let mean: [Float] = ch == 3 && !omniglot && layout != .synthetic ? ImageConfig.imagenetMean : [0]
        let std: [Float] = ch == 3 && !omniglot && layout != .synthetic ? ImageConfig.imagenetStd : [1]
        let eval = ImageConfig(size: size, channels: ch, mean: mean, std: std)
        var train = eval
        switch augment {
        case "none": break
        case "mml":
            train.resize = Int((Double(size) * 100 / 84).rounded())
            train.augmentation = .mml
        default:
            throw MMLError(.config, "--augment \(augment): use none or mml")
        }
        try eval.validate()
        try train.validate()
        return (train, eval)
    }
}

/// Backbone options for every command that builds a model (train, ablate --retrain, pretrain, train-embedding).
/// Where the default differs between commands the option is nil when not given, and `Defaults` says what it is.
struct BackboneOptions: ParsableArguments {
    @Option(help: "Backbone: conv64f (DN4/MML), conv4 or resnet12 (default: conv64f; conv4 for pretrain and train-embedding).")
    var backbone: BackboneKind?

    @Option(help: "Backbone widths, 4 comma-separated channel counts (default: the architecture's own).")
    var widths: String?

    @Option(help: "Weight initialisation: mml (N(0, 0.02)) or kaiming (default: mml; kaiming for pretrain and train-embedding).")
    var initialization: BackboneInitialization?

    @Option(help: "Seed of the initial weights (default: 0; pretrain and train-embedding: their --seed).")
    var initSeed: UInt64?

    /// The defaults of the options above that differ between commands.
    struct Defaults {
        var backbone: BackboneKind
        var initialization: BackboneInitialization
        var initSeed: UInt64

        /// `mml train` and `mml ablate --retrain`: Conv-64F, MML's N(0, 0.02) initialisation, seed 0.
        static let episodic = Defaults(backbone: .conv64F, initialization: .mml, initSeed: 0)

        /// `mml pretrain` and `mml train-embedding`: Conv-4, Kaiming initialisation, weights seeded by the command's
        /// `--seed`.
        static func supervised(seed: UInt64) -> Defaults {
            Defaults(backbone: .conv4, initialization: .kaiming, initSeed: seed)
        }
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

    /// The configuration of a fresh model of `kind` for `dataset`, with these options, `image` and `metric`: how
    /// every command builds a new model. Its image configuration is the training one (with augmentation); evaluate
    /// with `.forEvaluation`. - Throws: `MMLError(.config)` for a bad option.
    func modelConfiguration(kind: String, dataset: DatasetOptions, image: ImageOptions, defaults: Defaults,
                            metric: MetricConfiguration? = nil) throws -> ModelConfiguration {
        let images = try image.configurations(for: dataset)
        return ModelConfiguration(kind: kind, backbone: backbone ?? defaults.backbone,
                                  inputChannels: images.eval.channels, widths: try resolvedWidths(),
                                  initialization: initialization ?? defaults.initialization,
                                  seed: initSeed ?? defaults.initSeed, image: images.train, metric: metric)
    }
}

extension ImageConfig {
    /// The same configuration without training augmentation (and without the larger resize it crops from).
    var forEvaluation: ImageConfig {
        var c = self
        c.augmentation = .none
        c.resize = nil
        return c
    }
}

/// Parses `1,5` or `5` into integers. - Throws: `MMLError(.config)` naming the option.
func parseIntList(_ text: String, option: String) throws -> [Int] {
    let v = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !v.isEmpty, v.allSatisfy({ ($0 ?? 0) >= 1 }) else {
        throw MMLError(.config, "\(option) '\(text)': give positive integers separated by commas")
    }
    return v.map { $0! }
}

/// Writes to standard error.
func printError(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// Formats seconds as 1h02m, 3m12s or 42s.
func formatDuration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "?" }
    let t = Int(s.rounded())
    if t >= 3600 { return String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) }
    if t >= 60 { return String(format: "%dm%02ds", t / 60, t % 60) }
    return "\(t)s"
}

/// A one-line progress display: redrawn in place on a terminal, plain lines every `plainEvery` updates otherwise.
final class ProgressLine {
    let isTTY = isatty(fileno(stderr)) != 0
    let plainEvery: Int
    var updates = 0
    init(plainEvery: Int) { self.plainEvery = plainEvery }

    func update(done: Int, total: Int, text: String, force: Bool = false) {
        updates += 1
        if isTTY {
            let width = 24
            let filled = total > 0 ? min(width, done * width / total) : 0
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(total) \(text)\u{1B}[K".utf8))
        } else if force || updates % plainEvery == 0 {
            FileHandle.standardError.write(Data("\(done)/\(total) \(text)\n".utf8))
        }
    }

    func finish() { if isTTY { FileHandle.standardError.write(Data("\n".utf8)) } }
}
